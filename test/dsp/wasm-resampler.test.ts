/**
 * The WASM Speex resampler wrapper: same samples as the package it wraps,
 * the Resampler contract's errors, and memory that comes back.
 *
 * Tests run in order in one process and share the package's single WASM
 * module; the last block deliberately leaks through the raw package (to show
 * the leak test can fail), so it must stay last.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { beforeAll, describe, expect, it } from 'vitest';
import { ErrorCodes, isBridgeError, type ErrorCode } from '../../src/errors.js';
import type { Resampler } from '../../src/dsp/backend.js';
import { decodeUlaw } from '../../src/dsp/ts/g711.js';
import { createWasmResampler, wasmHeapBytes, wasmLiveResamplers, wasmReady } from '../../src/dsp/ts/wasm-resampler.js';
import { firstDifference } from '../helpers/signal.js';
import { readWav, WAVE_FORMAT_MULAW } from '../helpers/wav.js';

interface RawSpeexResampler {
  processChunk(chunk: Buffer): Buffer;
}
type RawSpeexResamplerClass = (new (channels: number, inRate: number, outRate: number, quality?: number) => RawSpeexResampler) & {
  initPromise: Promise<unknown>;
};
const requireCjs = createRequire(import.meta.url);
/** Loaded in beforeAll, after wasmReady(): the wrapper must be the package's first loader (see its header). */
let RawSpeex: RawSpeexResamplerClass;

/** gc() for the RSS and FinalizationRegistry checks (vitest does not pass --expose-gc). */
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function codeOf(fn: () => unknown): ErrorCode | string {
  try {
    fn();
  } catch (e) {
    return isBridgeError(e) ? e.code : `not a BridgeError: ${String(e)}`;
  }
  return 'did not throw';
}

function asBuffer(a: Int16Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}
function asInt16(b: Buffer): Int16Array {
  // Copy: the Buffer's offset need not be 2-aligned.
  return new Int16Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
}

/** Feeds `src` in `frame`-sample frames; concatenated output. */
function viaWrapper(r: Resampler, src: Int16Array, frame: number): Int16Array {
  const parts: Int16Array[] = [];
  const dst = new Int16Array(r.maxOutput(frame));
  for (let off = 0; off < src.length; off += frame) {
    const n = r.process(src.subarray(off, Math.min(src.length, off + frame)), dst);
    parts.push(dst.slice(0, n));
  }
  return concat(parts);
}
function viaPackage(p: RawSpeexResampler, src: Int16Array, frame: number): Int16Array {
  const parts: Int16Array[] = [];
  for (let off = 0; off < src.length; off += frame) parts.push(asInt16(p.processChunk(asBuffer(src.subarray(off, Math.min(src.length, off + frame))))));
  return concat(parts);
}
function concat(parts: Int16Array[]): Int16Array {
  const out = new Int16Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

// Evaluated at import, before beforeAll() awaits wasmReady(): the module is not initialised yet.
const codeBeforeReady = codeOf(() => createWasmResampler({ fromHz: 8000, toHz: 16000 }));

let speech8k: Int16Array;

const listenersBefore = {
  uncaughtException: process.listenerCount('uncaughtException'),
  unhandledRejection: process.listenerCount('unhandledRejection'),
};

beforeAll(async () => {
  await wasmReady();
  RawSpeex = (requireCjs('speex-resampler') as { default: RawSpeexResamplerClass }).default;
  await RawSpeex.initPromise;
  const wav = readWav(fileURLToPath(new URL('../fixtures/caller-order-status.8k-ulaw.wav', import.meta.url)));
  expect(wav.format).toBe(WAVE_FORMAT_MULAW);
  expect(wav.sampleRateHz).toBe(8000);
  expect(wav.channels).toBe(1);
  speech8k = new Int16Array(wav.data.length);
  decodeUlaw(wav.data, speech8k);
});

describe('matches the package it wraps', () => {
  // 20 ms frames: the package's own output sizing (ceil(bytes·out/in)) is exact for them.
  it.each([16000, 22050, 24000, 44100, 48000])('speech 8000 → %i and back, Q3/Q7/Q10: sample for sample with processChunk', (hz) => {
    for (const quality of [3, 7, 10]) {
      const up = createWasmResampler({ fromHz: 8000, toHz: hz, quality });
      const down = createWasmResampler({ fromHz: hz, toHz: 8000, quality });
      try {
        const ours = viaWrapper(up, speech8k, 160);
        const theirs = viaPackage(new RawSpeex(1, 8000, hz, quality), speech8k, 160);
        expect(ours.length).toBeGreaterThan(0);
        expect(firstDifference(ours, theirs)).toBe(-1);
        const oursBack = viaWrapper(down, theirs, hz / 50);
        const theirsBack = viaPackage(new RawSpeex(1, hz, 8000, quality), theirs, hz / 50);
        expect(firstDifference(oursBack, theirsBack)).toBe(-1);
      } finally {
        up.close();
        down.close();
      }
    }
  });

  it('keeps the filter pre-delay: a fresh 8k→24k state turns 160 samples into 480', () => {
    const r = createWasmResampler({ fromHz: 8000, toHz: 24000 });
    try {
      expect(r.quality).toBe(7);
      expect(r.inputLatency).toBe(64);
      expect(r.outputLatency).toBe(192);
      expect(r.maxOutput(160)).toBe(480);
      const dst = new Int16Array(480);
      expect(r.process(speech8k.subarray(0, 160), dst)).toBe(480);
    } finally {
      r.close();
    }
  });
});

describe('contract', () => {
  it('refuses to create a resampler before wasmReady() has resolved', () => {
    expect(codeBeforeReady).toBe(ErrorCodes.DSP_UNAVAILABLE);
  });

  it("leaves the process's error handling alone (the emscripten glue's listeners are removed)", () => {
    expect(process.listenerCount('uncaughtException')).toBe(listenersBefore.uncaughtException);
    expect(process.listenerCount('unhandledRejection')).toBe(listenersBefore.unhandledRejection);
    expect(process.listeners('unhandledRejection').map((l) => l.name)).not.toContain('abort');
  });

  it('rejects bad rates, qualities and arrays with stable codes', () => {
    for (const hz of [0, 999, 192001, 8000.5, Number.NaN, Infinity, '8000' as unknown as number]) {
      expect(codeOf(() => createWasmResampler({ fromHz: hz, toHz: 8000 }))).toBe(ErrorCodes.DSP_RATE);
      expect(codeOf(() => createWasmResampler({ fromHz: 8000, toHz: hz }))).toBe(ErrorCodes.DSP_RATE);
    }
    for (const quality of [-1, 11, 7.5, Number.NaN, '7' as unknown as number]) {
      expect(codeOf(() => createWasmResampler({ fromHz: 8000, toHz: 16000, quality }))).toBe(ErrorCodes.DSP_QUALITY);
    }
    expect(codeOf(() => createWasmResampler(null as unknown as { fromHz: number; toHz: number }))).toBe(ErrorCodes.DSP_ARGUMENT);
    // The edges are valid.
    for (const [fromHz, toHz, quality] of [[1000, 192000, 0], [192000, 1000, 10]] as const) {
      createWasmResampler({ fromHz, toHz, quality }).close();
    }

    const r = createWasmResampler({ fromHz: 8000, toHz: 16000 });
    try {
      const dst = new Int16Array(1000);
      for (const bad of [new Float32Array(160), new Uint8Array(320), Buffer.alloc(320), new Uint16Array(160), [0, 1, 2]]) {
        expect(codeOf(() => r.process(bad as unknown as Int16Array, dst))).toBe(ErrorCodes.DSP_ARGUMENT);
      }
      expect(codeOf(() => r.process(new Int16Array(160), new Float32Array(1000) as unknown as Int16Array))).toBe(ErrorCodes.DSP_ARGUMENT);
      expect(codeOf(() => r.flush(new Uint8Array(1000) as unknown as Int16Array))).toBe(ErrorCodes.DSP_ARGUMENT);
      for (const n of [-1, 1.5, Number.NaN]) expect(codeOf(() => r.maxOutput(n))).toBe(ErrorCodes.DSP_ARGUMENT);
    } finally {
      r.close();
    }
  });

  it('throws DST_TOO_SMALL before consuming anything', () => {
    const a = createWasmResampler({ fromHz: 8000, toHz: 24000 });
    const b = createWasmResampler({ fromHz: 8000, toHz: 24000 });
    try {
      const frame = speech8k.subarray(8000, 8160);
      expect(codeOf(() => a.process(frame, new Int16Array(479)))).toBe(ErrorCodes.DSP_DST_TOO_SMALL);
      expect(codeOf(() => a.flush(new Int16Array(a.outputLatency)))).toBe(ErrorCodes.DSP_DST_TOO_SMALL);
      // a must now behave exactly like the untouched b.
      expect(firstDifference(viaWrapper(a, speech8k, 160), viaWrapper(b, speech8k, 160))).toBe(-1);
    } finally {
      a.close();
      b.close();
    }
  });

  it('flush() emits the tail, then starts over like a fresh instance', () => {
    const r = createWasmResampler({ fromHz: 8000, toHz: 24000 });
    try {
      const body = viaWrapper(r, speech8k, 160);
      const tail = new Int16Array(r.outputLatency + 1);
      const t = r.flush(tail);
      // The tail is the output a stream of inputLatency zeros would have produced.
      const ref = createWasmResampler({ fromHz: 8000, toHz: 24000 });
      const refOut = viaWrapper(ref, concat([speech8k, new Int16Array(ref.inputLatency)]), 160);
      ref.close();
      expect(t).toBe(refOut.length - body.length);
      expect(firstDifference(concat([body, tail.subarray(0, t)]), refOut)).toBe(-1);
      // After flush: identical to a fresh instance.
      const fresh = createWasmResampler({ fromHz: 8000, toHz: 24000 });
      expect(firstDifference(viaWrapper(r, speech8k, 160), viaWrapper(fresh, speech8k, 160))).toBe(-1);
      fresh.close();
    } finally {
      r.close();
    }
  });

  it('reset() drops history: the output equals a fresh instance', () => {
    const r = createWasmResampler({ fromHz: 24000, toHz: 8000, quality: 5 });
    const fresh = createWasmResampler({ fromHz: 24000, toHz: 8000, quality: 5 });
    try {
      const src = new Int16Array(24000);
      for (let i = 0; i < src.length; i++) src[i] = Math.round(9000 * Math.sin(i * 0.21));
      viaWrapper(r, src.subarray(0, 7777), 480);
      r.reset();
      expect(firstDifference(viaWrapper(r, src, 480), viaWrapper(fresh, src, 480))).toBe(-1);
    } finally {
      r.close();
      fresh.close();
    }
  });

  it('same rate is an exact copy with zero latency', () => {
    const r = createWasmResampler({ fromHz: 16000, toHz: 16000, quality: 3 });
    try {
      expect(r.inputLatency).toBe(0);
      expect(r.outputLatency).toBe(0);
      const src = speech8k.subarray(0, 320);
      const dst = new Int16Array(320);
      expect(r.process(src, dst)).toBe(320);
      expect(firstDifference(dst, src)).toBe(-1);
      expect(r.flush(new Int16Array(1))).toBe(0);
    } finally {
      r.close();
    }
  });

  it('a chunk larger than the scratch cap equals frame-by-frame output', () => {
    const big = createWasmResampler({ fromHz: 8000, toHz: 48000 });
    const framed = createWasmResampler({ fromHz: 8000, toHz: 48000 });
    try {
      const dst = new Int16Array(big.maxOutput(speech8k.length));
      const n = big.process(speech8k, dst);
      expect(firstDifference(dst.subarray(0, n), viaWrapper(framed, speech8k, 160))).toBe(-1);
    } finally {
      big.close();
      framed.close();
    }
  });

  it('every method throws DSP_CLOSED after close(); close() is idempotent', () => {
    for (const [fromHz, toHz] of [[8000, 16000], [8000, 8000]] as const) {
      const r = createWasmResampler({ fromHz, toHz });
      r.close();
      r.close();
      expect(codeOf(() => r.process(new Int16Array(160), new Int16Array(1000)))).toBe(ErrorCodes.DSP_CLOSED);
      expect(codeOf(() => r.flush(new Int16Array(1000)))).toBe(ErrorCodes.DSP_CLOSED);
      expect(codeOf(() => r.reset())).toBe(ErrorCodes.DSP_CLOSED);
      expect(codeOf(() => r.maxOutput(160))).toBe(ErrorCodes.DSP_CLOSED);
      expect(() => r.close()).not.toThrow();
    }
  });
});

describe('memory', () => {
  const FRAME = new Int16Array(160).map((_, i) => Math.round(8000 * Math.sin(i / 3)));
  const OUT = new Int16Array(480);
  const MiB = 1024 * 1024;

  function cycle(): void {
    const r = createWasmResampler({ fromHz: 8000, toHz: 24000, quality: 7 });
    r.process(FRAME, OUT);
    r.close();
  }

  function usage(): NodeJS.MemoryUsage {
    gc();
    gc();
    return process.memoryUsage();
  }

  /*
   * Why a flat heap size proves no leak: each cycle allocates the Speex state
   * (~3 KB at 8k→24k Q7: struct, 287-sample history, 384-entry sinc table) and
   * one scratch block (8 + 2·(160 + 480) = 1288 B). Leaking either would take
   * ≥ 120 MB over 100,000 cycles, several times the free part of the 20 MB
   * initial heap, so the heap would have to grow (the last test shows that it
   * does, after a few thousand leaked package instances).
   */
  it('100,000 create/process/close cycles: WASM heap and RSS stay flat', () => {
    for (let i = 0; i < 2000; i++) cycle(); // warm-up: JIT, heap free lists
    const live0 = wasmLiveResamplers();
    const heap0 = wasmHeapBytes();
    const m0 = usage();
    for (let i = 1; i <= 100_000; i++) {
      cycle();
      // Each cycle leaves a few small JS objects for the GC. Under that churn V8
      // grows its young generation (heapTotal 11 → 39 MiB seen, heapUsed flat),
      // which moves RSS by ~30 MiB with no leak at all; a full GC now and then
      // keeps it at its initial size so RSS measures what is retained.
      if (i % 5000 === 0) gc();
    }
    const heap1 = wasmHeapBytes();
    const m1 = usage();
    console.log(
      `wrapper, 100k cycles: WASM heap ${heap0} → ${heap1} B, RSS ${(m0.rss / MiB).toFixed(1)} → ${(m1.rss / MiB).toFixed(1)} MiB, ` +
        `JS heapUsed ${(m0.heapUsed / MiB).toFixed(1)} → ${(m1.heapUsed / MiB).toFixed(1)} MiB`,
    );
    expect(wasmLiveResamplers()).toBe(live0);
    expect(heap1).toBeLessThanOrEqual(heap0 + MiB); // growth is never less than several MiB, so this means none
    expect(m1.rss - m0.rss).toBeLessThan(30 * MiB);
    expect(m1.heapUsed - m0.heapUsed).toBeLessThan(4 * MiB);
  });

  it('instances never closed are freed by the FinalizationRegistry after GC', async () => {
    const live0 = wasmLiveResamplers();
    (() => {
      for (let i = 0; i < 500; i++) createWasmResampler({ fromHz: 8000, toHz: 16000 }).process(FRAME, OUT);
    })();
    expect(wasmLiveResamplers()).toBe(live0 + 500);
    // Finalizers run on later turns after a GC; bounded wait on the state, no sleeps.
    for (let round = 0; round < 200 && wasmLiveResamplers() > live0; round++) {
      gc();
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    expect(wasmLiveResamplers()).toBe(live0);
  });

  it('keeps working when the heap grows under it (views re-read) — and the raw package leaks', () => {
    // A stream half processed before the heap grows and half after must equal one never interrupted.
    const ref = createWasmResampler({ fromHz: 8000, toHz: 24000 });
    const r = createWasmResampler({ fromHz: 8000, toHz: 24000 });
    const half = Math.floor(speech8k.length / 320) * 160;
    const before = viaWrapper(r, speech8k.subarray(0, half), 160);

    // The same loop as above through the package's own API (it has no way to free):
    // the heap must grow, so the wrapper's flat heap above is not a blind test.
    const heap0 = wasmHeapBytes();
    const buf = asBuffer(FRAME);
    let cycles = 0;
    while (wasmHeapBytes() === heap0 && cycles < 50_000) {
      new RawSpeex(1, 8000, 24000, 7).processChunk(buf);
      cycles++;
    }
    console.log(`raw package: heap grew ${heap0} → ${wasmHeapBytes()} B after ${cycles} create/process cycles`);
    expect(wasmHeapBytes()).toBeGreaterThan(heap0);

    const after = viaWrapper(r, speech8k.subarray(half), 160);
    expect(firstDifference(concat([before, after]), viaWrapper(ref, speech8k, 160))).toBe(-1);
    r.close();
    ref.close();
  });
});
