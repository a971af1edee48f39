/**
 * The capacity bench's CPU-by-layer split (--perf): samples as `perf script -F ip,sym,dso`
 * prints them, JIT frames named from node's --perf-basic-prof map. The rule users rely on to
 * trust the split: where V8 reused code space, the code at an address is the one the map
 * logged last — not the older name perf itself may pick.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LAYERS, formatLayers, jitName, readJitMap, splitSamples } from '../../bench/capacity/cpu-layers.js';

const dir = mkdtempSync(join(tmpdir(), 'vb-layers-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Start-up code (a regexp of a library used once) at 0x7f0000001000, later freed; the frame
// path's function compiled over the same range; a ws function beside it; one of node's own.
const MAP = [
  '7f0000001000 800 RegExp:(\\[\\\\b\\])|(\\\\)?\\\\(?:u([A-F0-9]{4}))',
  '7f0000002000 100 JS:*socketOnData /app/node_modules/ws/lib/websocket.js:1437:22',
  '7f0000000f00 1000 JS:*caller file:///app/src/call/call-media.ts:1:1273',
  '7f0000003000 80 JS:*writeOrBuffer node:internal/streams/writable:548:23',
  '7f0000004000 80 JS:* file:///app/bench/capacity/minimal-relay.ts:1:503',
  '',
].join('\n');

function mapFile(): string {
  const p = join(dir, 'perf-1234.map');
  writeFileSync(p, MAP);
  return p;
}

describe('capacity bench: CPU by layer from perf samples', () => {
  it('names an address by the last map line that covers it (code space reused after start-up)', () => {
    const map = readJitMap(mapFile());
    expect(jitName(map, 0x7f0000001200)).toBe('JS:*caller file:///app/src/call/call-media.ts:1:1273');
    expect(jitName(map, 0x7f0000000f10)).toBe('JS:*caller file:///app/src/call/call-media.ts:1:1273');
    expect(jitName(map, 0x7f0000002050)).toBe('JS:*socketOnData /app/node_modules/ws/lib/websocket.js:1437:22');
    expect(jitName(map, 0x7f0000003080)).toBeUndefined(); // one past the end
    expect(jitName(map, 0x7e0000000000)).toBeUndefined();
  });

  it('splits samples into layers, by the JIT name from the map rather than the stale one perf printed', () => {
    const script = [
      '     7f0000001200 RegExp:(\\[\\\\b\\])|(\\\\)?\\\\(?:u([A-F0-9]{4})) (/tmp/perf-1234.map)',
      '     7f0000001300 RegExp:(\\[\\\\b\\])|(\\\\)?\\\\(?:u([A-F0-9]{4})) (/tmp/perf-1234.map)',
      '     7f0000002010 JS:*socketOnData /app/node_modules/ws/lib/websocket.js:1437:22 (/tmp/perf-1234.map)',
      '     7f0000003010 JS:*writeOrBuffer node:internal/streams/writable:548:23 (/tmp/perf-1234.map)',
      ' ffffffff82084f3a __tcp_transmit_skb ([kernel.kallsyms])',
      ' ffffffff8226e079 _raw_spin_unlock_irqrestore ([kernel.kallsyms])',
      '     7f4ec66006ff Builtins_RecordWriteSaveFP (/usr/bin/node)',
      '          122547d v8::internal::JsonParser<unsigned char>::ScanJsonString (/usr/bin/node)',
      '          1134a10 uv__io_poll (/usr/bin/node)',
      '     7f4ecc28a8c4 dsp_core::resampler::avx2::up_int (/app/native/dsp-node/voice-bridge-dsp.linux-x64-gnu.node)',
      '     7f4ecc28a8c4 bufferutil_mask (/app/node_modules/bufferutil/prebuilds/linux-x64/bufferutil.node)',
      '     7f52d7a28d4b __memmove_avx_unaligned_erms (/usr/lib/x86_64-linux-gnu/libc.so.6)',
      '',
    ].join('\n');
    const c = splitSamples(script, readJitMap(mapFile()));
    expect(c.samples).toBe(12);
    expect(c.appJs).toBeCloseTo(2 / 12, 2); // not "other JS": the regexp's name is stale
    expect(c.wsJs).toBeCloseTo(1 / 12, 2);
    expect(c.nodeJs).toBeCloseTo(1 / 12, 2);
    expect(c.kernel).toBeCloseTo(2 / 12, 2);
    expect(c.v8Builtins).toBeCloseTo(1 / 12, 2);
    expect(c.v8Runtime).toBeCloseTo(1 / 12, 2);
    expect(c.nodeNative).toBeCloseTo(1 / 12, 2);
    expect(c.dspAddon).toBeCloseTo(1 / 12, 2);
    expect(c.otherAddons).toBeCloseTo(1 / 12, 2);
    expect(c.libc).toBeCloseTo(1 / 12, 2);
    expect(c.otherJs).toBe(0);
    expect(LAYERS.reduce((s, l) => s + c[l], 0)).toBeCloseTo(1, 1);
    expect(formatLayers(c)).toMatch(/^(app JS|kernel) 17% · (app JS|kernel) 17% · /);
  });

  it("counts the relay's own file as its app code, and names JS by perf's symbol when there is no map", () => {
    const relay = splitSamples('     7f0000004010 JS:* file:///app/bench/capacity/minimal-relay.ts:1:503 (/tmp/perf-1234.map)\n', readJitMap(mapFile()));
    expect(relay.appJs).toBe(1);
    const noMap = splitSamples('     7f0000001200 JS:*caller file:///app/src/call/call-media.ts:1:1273 (/tmp/perf-99.map)\n', undefined);
    expect(noMap.appJs).toBe(1);
  });
});
