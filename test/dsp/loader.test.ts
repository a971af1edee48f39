/**
 * loadDsp(): the auto fallback when the addon is missing or broken (in a real child
 * process pointed at a missing / corrupt addon through BRIDGE_DSP_ADDON), the
 * recorded reason, and BRIDGE_DSP=native failing loudly.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { loadDsp, dspLoadInfo } from '../../src/dsp/load.js';
import { nativeRequired } from '../helpers/backends.js';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..', '..');

const probe = `
import { loadDsp, dspLoadInfo } from './src/dsp/load.ts';
try {
  const dsp = await loadDsp();
  console.log(JSON.stringify({ ok: true, name: dsp.name, reason: dsp.fallbackReason ?? null, info: dspLoadInfo() }));
} catch (e) {
  console.log(JSON.stringify({ ok: false, code: e.code, message: e.message }));
}
`;

async function probeWith(env: Record<string, string>): Promise<Record<string, unknown>> {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', probe], {
    cwd: root,
    env: { ...process.env, ...env },
  });
  return JSON.parse(stdout.trim().split('\n').pop()!);
}

describe('loadDsp', () => {
  it('falls back to ts when the addon is missing, and records why', async () => {
    const r = await probeWith({ BRIDGE_DSP: 'auto', BRIDGE_DSP_ADDON: '/nonexistent/voice-bridge-dsp.node' });
    expect(r.ok).toBe(true);
    expect(r.name).toBe('ts');
    expect(String(r.reason)).toContain('/nonexistent/voice-bridge-dsp.node');
    expect((r.info as { fallbackReason: string }).fallbackReason).toBe(r.reason);
  });

  it('falls back to ts when the addon is corrupt', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vb-addon-'));
    const bad = join(dir, 'broken.node');
    writeFileSync(bad, 'this is not a shared object');
    const r = await probeWith({ BRIDGE_DSP: '', BRIDGE_DSP_ADDON: bad });
    expect(r.name).toBe('ts');
    expect(String(r.reason).length).toBeGreaterThan(0);
  });

  it('BRIDGE_DSP=native fails loudly with BRIDGE_ERR_DSP_UNAVAILABLE when the addon is missing', async () => {
    const r = await probeWith({ BRIDGE_DSP: 'native', BRIDGE_DSP_ADDON: '/nonexistent/x.node' });
    expect(r.ok).toBe(false);
    expect(r.code).toBe('BRIDGE_ERR_DSP_UNAVAILABLE');
    expect(String(r.message)).toContain('/nonexistent/x.node');
  });

  it('BRIDGE_DSP with an unknown value is a configuration error', async () => {
    const r = await probeWith({ BRIDGE_DSP: 'fastest' });
    expect(r.ok).toBe(false);
    expect(r.code).toBe('BRIDGE_ERR_DSP_ARGUMENT');
  });

  it('honours BRIDGE_DSP=ts', async () => {
    const r = await probeWith({ BRIDGE_DSP: 'ts' });
    expect(r).toMatchObject({ ok: true, name: 'ts', reason: null });
  });

  it('loads the built addon when asked for native (and reports its SIMD kernel), or says why not', async () => {
    const built = existsSync(join(root, 'native', 'dsp-node', 'index.cjs'));
    if (nativeRequired || built) {
      const dsp = await loadDsp({ backend: 'native' });
      expect(dsp.name).toBe('native');
      expect(dspLoadInfo()).toMatchObject({ backend: 'native', requested: 'native' });
      expect(dspLoadInfo()!.simd).toMatch(/^(avx512f|avx2\+fma|scalar)$/);
    } else {
      await expect(loadDsp({ backend: 'native' })).rejects.toMatchObject({ code: 'BRIDGE_ERR_DSP_UNAVAILABLE' });
    }
  });

  it('explicit backend "ts" never touches the addon', async () => {
    const dsp = await loadDsp({
      backend: 'ts',
      loadAddon: () => {
        throw new Error('must not be called');
      },
    });
    expect(dsp.name).toBe('ts');
  });
});
