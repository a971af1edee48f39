/** Resampler behaviour every backend must share (quality is in resampler-quality.test.ts). */
import { describe, expect, it } from 'vitest';
import { backends } from '../helpers/backends.js';
import type { DspBackend, Resampler } from '../../src/dsp/backend.js';

function chirp(n: number, rateHz: number, seed = 1): Int16Array {
  // A deterministic speech-band test signal: two sweeping tones plus a little noise.
  const out = new Int16Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    const t = i / rateHz;
    const v = 8000 * Math.sin(2 * Math.PI * (200 + 900 * t) * t) + 4000 * Math.sin(2 * Math.PI * 1234 * t) + ((s >>> 16) % 200) - 100;
    out[i] = Math.max(-32768, Math.min(32767, Math.round(v)));
  }
  return out;
}

function runChunked(r: Resampler, input: Int16Array, chunk: number): Int16Array {
  const out: number[] = [];
  const dst = new Int16Array(r.maxOutput(chunk));
  for (let i = 0; i < input.length; i += chunk) {
    const src = input.subarray(i, Math.min(i + chunk, input.length));
    const n = r.process(src, dst);
    for (let k = 0; k < n; k++) out.push(dst[k]!);
  }
  return Int16Array.from(out);
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return (e as { code?: string }).code;
  }
  return undefined;
}

describe.each(backends)('resampler contract on the $name backend', (dsp: DspBackend) => {
  it('turns the first 160-sample frame at 8k→24k into 480 samples (filter pre-delay included)', () => {
    const r = dsp.createResampler({ fromHz: 8000, toHz: 24000 });
    const dst = new Int16Array(r.maxOutput(160));
    expect(dst.length).toBeGreaterThanOrEqual(480);
    expect(r.process(chirp(160, 8000), dst)).toBe(480);
    expect(r.process(chirp(160, 8000), dst)).toBe(480);
    r.close();
  });

  it.each([
    [3, 3],
    [5, 5],
    [7, 8],
    [10, 16],
  ])('reports Speex latency at quality %i: %i ms on the 8 kHz side', (quality, ms) => {
    const up = dsp.createResampler({ fromHz: 8000, toHz: 24000, quality });
    expect(up.inputLatency).toBe((ms * 8000) / 1000);
    expect(up.outputLatency).toBe((ms * 24000) / 1000);
    const down = dsp.createResampler({ fromHz: 24000, toHz: 8000, quality });
    expect(down.inputLatency).toBe((ms * 24000) / 1000);
    expect(down.outputLatency).toBe((ms * 8000) / 1000);
    up.close();
    down.close();
  });

  it('defaults to quality 7', () => {
    const r = dsp.createResampler({ fromHz: 16000, toHz: 8000 });
    expect(r.quality).toBe(7);
    expect(r.outputLatency).toBe(64);
    r.close();
  });

  it.each([
    [8000, 16000],
    [8000, 24000],
    [24000, 8000],
    [48000, 8000],
    [8000, 22050],
    [44100, 8000],
  ])('gives the same output whatever the chunk size (%i → %i)', (fromHz, toHz) => {
    const input = chirp(fromHz / 2, fromHz); // 0.5 s
    const ref = runChunked(dsp.createResampler({ fromHz, toHz }), input, 4096);
    for (const chunk of [1, 7, 160, 333]) {
      const got = runChunked(dsp.createResampler({ fromHz, toHz }), input, chunk);
      expect(got.length).toBe(ref.length);
      expect(Buffer.from(got.buffer).equals(Buffer.from(ref.buffer))).toBe(true);
    }
  });

  it('flush drains the tail: total output minus the pre-delay equals input × ratio', () => {
    for (const [fromHz, toHz] of [
      [8000, 24000],
      [24000, 8000],
      [8000, 16000],
    ] as const) {
      const r = dsp.createResampler({ fromHz, toHz });
      const input = chirp(4800, fromHz);
      let total = runChunked(r, input, 160).length;
      const tail = new Int16Array(r.outputLatency + 1);
      total += r.flush(tail);
      expect(total - r.outputLatency).toBe((input.length * toHz) / fromHz);
      r.close();
    }
  });

  it('flush leaves the filter empty: the next utterance matches a fresh resampler', () => {
    const a = dsp.createResampler({ fromHz: 8000, toHz: 16000 });
    runChunked(a, chirp(1600, 8000, 9), 160);
    a.flush(new Int16Array(a.outputLatency + 1));
    const after = runChunked(a, chirp(1600, 8000, 3), 160);
    const fresh = runChunked(dsp.createResampler({ fromHz: 8000, toHz: 16000 }), chirp(1600, 8000, 3), 160);
    expect(Array.from(after)).toEqual(Array.from(fresh));
  });

  it('reset() gives the output of a fresh instance', () => {
    const a = dsp.createResampler({ fromHz: 24000, toHz: 8000 });
    runChunked(a, chirp(4800, 24000, 5), 480);
    a.reset();
    const after = runChunked(a, chirp(4800, 24000, 6), 480);
    const fresh = runChunked(dsp.createResampler({ fromHz: 24000, toHz: 8000 }), chirp(4800, 24000, 6), 480);
    expect(Array.from(after)).toEqual(Array.from(fresh));
  });

  it('same rate is an exact copy with no latency', () => {
    const r = dsp.createResampler({ fromHz: 16000, toHz: 16000 });
    const input = chirp(320, 16000);
    const dst = new Int16Array(r.maxOutput(320));
    expect(r.process(input, dst)).toBe(320);
    expect(Array.from(dst.subarray(0, 320))).toEqual(Array.from(input));
    expect(r.inputLatency).toBe(0);
    expect(r.outputLatency).toBe(0);
    r.close();
  });

  it('rejects bad rates and qualities with stable codes', () => {
    for (const fromHz of [0, -8000, 8000.5, 192001, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(codeOf(() => dsp.createResampler({ fromHz, toHz: 8000 }))).toBe('BRIDGE_ERR_DSP_RATE');
      expect(codeOf(() => dsp.createResampler({ fromHz: 8000, toHz: fromHz }))).toBe('BRIDGE_ERR_DSP_RATE');
    }
    for (const quality of [-1, 11, 7.5, Number.NaN]) {
      expect(codeOf(() => dsp.createResampler({ fromHz: 8000, toHz: 16000, quality }))).toBe('BRIDGE_ERR_DSP_QUALITY');
    }
    // The edges of the documented range are accepted.
    dsp.createResampler({ fromHz: 1000, toHz: 192000, quality: 0 }).close();
    dsp.createResampler({ fromHz: 192000, toHz: 1000, quality: 10 }).close();
  });

  it('a destination too small is an error that consumes nothing', () => {
    const a = dsp.createResampler({ fromHz: 8000, toHz: 24000 });
    const b = dsp.createResampler({ fromHz: 8000, toHz: 24000 });
    const x = chirp(160, 8000);
    expect(codeOf(() => a.process(x, new Int16Array(100)))).toBe('BRIDGE_ERR_DSP_DST_TOO_SMALL');
    expect(codeOf(() => a.flush(new Int16Array(1)))).toBe('BRIDGE_ERR_DSP_DST_TOO_SMALL');
    const da = new Int16Array(a.maxOutput(160));
    const db = new Int16Array(b.maxOutput(160));
    expect(a.process(x, da)).toBe(b.process(x, db));
    expect(Array.from(da)).toEqual(Array.from(db));
    a.close();
    b.close();
  });

  it('every method after close() throws BRIDGE_ERR_DSP_CLOSED; close() is idempotent', () => {
    const r = dsp.createResampler({ fromHz: 8000, toHz: 16000 });
    r.close();
    r.close();
    expect(codeOf(() => r.process(new Int16Array(160), new Int16Array(400)))).toBe('BRIDGE_ERR_DSP_CLOSED');
    expect(codeOf(() => r.flush(new Int16Array(400)))).toBe('BRIDGE_ERR_DSP_CLOSED');
    expect(codeOf(() => r.reset())).toBe('BRIDGE_ERR_DSP_CLOSED');
    expect(codeOf(() => r.maxOutput(160))).toBe('BRIDGE_ERR_DSP_CLOSED');
  });
});
