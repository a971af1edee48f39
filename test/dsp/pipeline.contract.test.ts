/** Inbound and outbound frame pipelines: behaviour every backend must share. */
import { describe, expect, it } from 'vitest';
import { backends } from '../helpers/backends.js';
import { FrameKind, type DspBackend } from '../../src/dsp/backend.js';

function tone(n: number, rateHz: number, freqHz = 440, amp = 8000, phase0 = 0): Int16Array {
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.round(amp * Math.sin(2 * Math.PI * freqHz * ((i + phase0) / rateHz)));
  return out;
}

function ulawFrames(dsp: DspBackend, pcm8k: Int16Array): Uint8Array[] {
  const frames: Uint8Array[] = [];
  for (let i = 0; i + 160 <= pcm8k.length; i += 160) {
    const f = new Uint8Array(160);
    dsp.encodeUlaw(pcm8k.subarray(i, i + 160), f);
    frames.push(f);
  }
  return frames;
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return (e as { code?: string }).code;
  }
  return undefined;
}

describe.each(backends)('outbound pipeline on the $name backend', (dsp) => {
  it('re-frames any chunk sizes into exact 160-byte frames, keeping < 160 samples pending', () => {
    const p = dsp.createOutboundPipeline({ fromHz: 24000 });
    const input = tone(24000, 24000); // 1 s
    const sizes = [1, 37, 480, 1000, 2049, 5000, 7, 960];
    let off = 0;
    let total = 0;
    let k = 0;
    const dst = new Uint8Array(p.maxOutputBytes(5000));
    while (off < input.length) {
      const n = Math.min(sizes[k++ % sizes.length]!, input.length - off);
      const w = p.push(input.subarray(off, off + n), dst);
      expect(w % 160).toBe(0);
      expect(p.pendingSamples).toBeLessThan(160);
      total += w;
      off += n;
    }
    const fd = new Uint8Array(p.maxFlushBytes());
    const tail = p.flush(fd);
    expect(tail % 160).toBe(0);
    expect(p.pendingSamples).toBe(0);
    // 1 s at 8 kHz plus the resampler's 8 ms pre-delay, padded up to whole frames.
    expect(total + tail).toBe(Math.ceil((8000 + 64) / 160) * 160);
    p.close();
  });

  it('passes 8 kHz PCM straight to μ-law frames (no resampler)', () => {
    const p = dsp.createOutboundPipeline({ fromHz: 8000 });
    const pcm = tone(480, 8000);
    const dst = new Uint8Array(p.maxOutputBytes(480));
    expect(p.push(pcm, dst)).toBe(480);
    const expected = new Uint8Array(480);
    dsp.encodeUlaw(pcm, expected);
    expect(Array.from(dst.subarray(0, 480))).toEqual(Array.from(expected));
    p.close();
  });

  it('encodes A-law when asked', () => {
    const p = dsp.createOutboundPipeline({ fromHz: 8000, codec: 'alaw' });
    const pcm = tone(160, 8000);
    const dst = new Uint8Array(p.maxOutputBytes(160));
    p.push(pcm, dst);
    const expected = new Uint8Array(160);
    dsp.encodeAlaw(pcm, expected);
    expect(Array.from(dst.subarray(0, 160))).toEqual(Array.from(expected));
    p.close();
  });

  it('flush pads the last partial frame with silence', () => {
    const p = dsp.createOutboundPipeline({ fromHz: 8000 });
    const dst = new Uint8Array(p.maxOutputBytes(100));
    expect(p.push(tone(100, 8000), dst)).toBe(0);
    expect(p.pendingSamples).toBe(100);
    const fd = new Uint8Array(p.maxFlushBytes());
    expect(p.flush(fd)).toBe(160);
    expect(Array.from(fd.subarray(100, 160)).every((b) => b === 0xff)).toBe(true);
    p.close();
  });

  it('reset() drops pending audio (barge-in)', () => {
    const p = dsp.createOutboundPipeline({ fromHz: 16000 });
    const dst = new Uint8Array(p.maxOutputBytes(1000));
    p.push(tone(1000, 16000), dst);
    expect(p.pendingSamples).toBeGreaterThan(0);
    p.reset();
    expect(p.pendingSamples).toBe(0);
    const fresh = dsp.createOutboundPipeline({ fromHz: 16000 });
    const a = new Uint8Array(p.maxOutputBytes(3200));
    const b = new Uint8Array(fresh.maxOutputBytes(3200));
    const na = p.push(tone(3200, 16000), a);
    const nb = fresh.push(tone(3200, 16000), b);
    expect(na).toBe(nb);
    expect(Array.from(a.subarray(0, na))).toEqual(Array.from(b.subarray(0, nb)));
    p.close();
    fresh.close();
  });

  it('a destination too small is an error that consumes nothing', () => {
    const p = dsp.createOutboundPipeline({ fromHz: 24000 });
    const x = tone(4800, 24000);
    expect(codeOf(() => p.push(x, new Uint8Array(p.maxOutputBytes(4800) - 1)))).toBe('BRIDGE_ERR_DSP_DST_TOO_SMALL');
    expect(p.pendingSamples).toBe(0);
    expect(codeOf(() => p.flush(new Uint8Array(10)))).toBe('BRIDGE_ERR_DSP_DST_TOO_SMALL');
    p.close();
  });

  it('rejects bad options and use after close()', () => {
    expect(codeOf(() => dsp.createOutboundPipeline({ fromHz: 0 }))).toBe('BRIDGE_ERR_DSP_RATE');
    expect(codeOf(() => dsp.createOutboundPipeline({ fromHz: 24000, quality: 12 }))).toBe('BRIDGE_ERR_DSP_QUALITY');
    expect(codeOf(() => dsp.createOutboundPipeline({ fromHz: 8000, quality: 12 }))).toBe('BRIDGE_ERR_DSP_QUALITY');
    expect(codeOf(() => dsp.createOutboundPipeline({ fromHz: 24000, codec: 'gsm' as never }))).toBe('BRIDGE_ERR_DSP_ARGUMENT');
    const p = dsp.createOutboundPipeline({ fromHz: 24000 });
    p.close();
    p.close();
    expect(codeOf(() => p.push(new Int16Array(480), new Uint8Array(4000)))).toBe('BRIDGE_ERR_DSP_CLOSED');
    expect(codeOf(() => p.flush(new Uint8Array(4000)))).toBe('BRIDGE_ERR_DSP_CLOSED');
  });
});

describe.each(backends)('inbound pipeline on the $name backend', (dsp) => {
  it('releases in-order frames at once, resampled to the agent rate', () => {
    const p = dsp.createInboundPipeline({ toHz: 24000 });
    const frames = ulawFrames(dsp, tone(1600, 8000));
    const dst = new Int16Array(p.maxFrameOutput * 4);
    let now = 1000;
    for (let i = 0; i < frames.length; i++) {
      expect(p.push(frames[i]!, i + 1, i * 20, now, dst)).toBe(480);
      now += 20;
    }
    const s = p.stats();
    expect(s.framesIn).toBe(10);
    expect(s.framesOut).toBe(10);
    expect(s.lost).toBe(0);
    expect(p.bufferedFrames).toBe(0);
    p.close();
  });

  it('passes 8 kHz through as decoded μ-law', () => {
    const p = dsp.createInboundPipeline({ toHz: 8000 });
    const frames = ulawFrames(dsp, tone(160, 8000));
    const dst = new Int16Array(p.maxFrameOutput);
    expect(p.push(frames[0]!, 1, 0, 0, dst)).toBe(160);
    const expected = new Int16Array(160);
    dsp.decodeUlaw(frames[0]!, expected);
    expect(Array.from(dst.subarray(0, 160))).toEqual(Array.from(expected));
    p.close();
  });

  it('conceals a missing frame instead of skipping time', () => {
    const p = dsp.createInboundPipeline({ toHz: 16000, jitter: { initialDelayMs: 20, minDelayMs: 0, maxDelayMs: 100 } });
    const frames = ulawFrames(dsp, tone(160 * 6, 8000));
    const dst = new Int16Array(p.maxFrameOutput * 8);
    let out = 0;
    let now = 0;
    for (const i of [0, 1, 2, 4, 5]) {
      out += p.push(frames[i]!, i + 1, i * 20, now, dst);
      now += 20;
    }
    // frame 3 never comes: once its wait is over it is concealed, and 4–5 follow.
    out += p.poll(now + 500, dst);
    out += p.flush(dst);
    const s = p.stats();
    expect(s.lost).toBe(1);
    expect(s.concealed).toBe(1);
    expect(s.framesOut).toBe(6);
    expect(out).toBeGreaterThanOrEqual(6 * 320);
    p.close();
  });

  it('keeps frames that do not fit in dst and releases them later', () => {
    const p = dsp.createInboundPipeline({ toHz: 8000 });
    const frames = ulawFrames(dsp, tone(160 * 4, 8000));
    const big = new Int16Array(p.maxFrameOutput * 4);
    const one = new Int16Array(p.maxFrameOutput);
    // The first frame to arrive starts the stream; then frame 1 is late and 2, 3 wait for it.
    let w = p.push(frames[0]!, 1, 0, 0, big);
    expect(w).toBe(160);
    for (const i of [2, 3]) w += p.push(frames[i]!, i + 1, i * 20, 1, big);
    expect(w).toBe(160);
    expect(p.bufferedFrames).toBe(2);
    // Frame 1 arrives: three frames are due, but dst holds only one.
    expect(p.push(frames[1]!, 2, 20, 2, one)).toBe(160);
    expect(p.bufferedFrames).toBe(2);
    expect(p.poll(3, big)).toBe(320);
    expect(p.bufferedFrames).toBe(0);
    p.close();
  });

  it('rejects a payload that is not 160 bytes, and a short dst, without losing state', () => {
    const p = dsp.createInboundPipeline({ toHz: 16000 });
    const dst = new Int16Array(p.maxFrameOutput);
    expect(codeOf(() => p.push(new Uint8Array(159), 1, 0, 0, dst))).toBe('BRIDGE_ERR_DSP_FRAME_SIZE');
    expect(codeOf(() => p.push(new Uint8Array(160), 1, 0, 0, new Int16Array(10)))).toBe('BRIDGE_ERR_DSP_DST_TOO_SMALL');
    expect(p.stats().framesIn).toBe(0);
    expect(p.push(new Uint8Array(160).fill(0xff), 1, 0, 0, dst)).toBe(320);
    p.close();
  });

  it('rejects bad options and use after close()', () => {
    expect(codeOf(() => dsp.createInboundPipeline({ toHz: 200_000 }))).toBe('BRIDGE_ERR_DSP_RATE');
    expect(codeOf(() => dsp.createInboundPipeline({ toHz: 16000, quality: -1 }))).toBe('BRIDGE_ERR_DSP_QUALITY');
    expect(codeOf(() => dsp.createInboundPipeline({ toHz: 16000, jitter: { capacityFrames: 0 } }))).toBe('BRIDGE_ERR_DSP_ARGUMENT');
    const p = dsp.createInboundPipeline({ toHz: 16000 });
    p.close();
    p.close();
    expect(codeOf(() => p.push(new Uint8Array(160), 1, 0, 0, new Int16Array(640)))).toBe('BRIDGE_ERR_DSP_CLOSED');
    expect(codeOf(() => p.stats())).toBe('BRIDGE_ERR_DSP_CLOSED');
  });
});

describe.each(backends)('jitter buffer contract on the $name backend', (dsp) => {
  it('reorders, drops duplicates and too-late frames, and counts them', () => {
    const jb = dsp.createJitterBuffer({ initialDelayMs: 40, minDelayMs: 0, maxDelayMs: 200 });
    const payload = (v: number) => new Uint8Array(160).fill(v);
    const out = new Int16Array(160);
    const kinds: number[] = [];
    const drain = (now: number) => {
      for (let k = jb.pop(now, out); k !== FrameKind.None; k = jb.pop(now, out)) kinds.push(out[0]!);
    };
    jb.push(payload(0x80), 1, 0, 0);
    drain(0);
    jb.push(payload(0x81), 3, 40, 20); // 2 is missing: 3 waits
    drain(20);
    expect(kinds.length).toBe(1);
    jb.push(payload(0x82), 2, 20, 30); // 2 arrives within the wait
    drain(30);
    expect(kinds.length).toBe(3);
    expect(jb.push(payload(0x82), 2, 20, 31)).toBe(1); // duplicate
    const dec = new Int16Array(3);
    dsp.decodeUlaw(new Uint8Array([0x80, 0x82, 0x81]), dec);
    expect(kinds).toEqual(Array.from(dec));
    const s = jb.stats();
    expect(s.duplicate).toBe(1);
    expect(s.lost).toBe(0);
    jb.close();
    expect(codeOf(() => jb.pop(0, out))).toBe('BRIDGE_ERR_DSP_CLOSED');
  });
});
