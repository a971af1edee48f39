/**
 * The call's frame paths are plain calls that return their output (no sinks): what a
 * push returns is exactly what the backend's pipeline writes for the same input, frame
 * for frame; after a reset only silence comes out. The inbound path asks the backend for
 * held frames on a tick only when a push may have left some (the tick runs for every call
 * every 20 ms): on random arrival patterns it releases exactly what a pipeline polled on
 * every tick releases, at the same ticks.
 */
import { describe, expect, it } from 'vitest';
import { backends } from '../helpers/backends.js';
import { InboundPath, OutboundPath } from '../../src/dsp/frame-paths.js';
import { encodeUlaw } from '../../src/dsp/ts/g711.js';
import { rng } from '../helpers/rng.js';

function tone(n: number, hz: number, rate: number, from = 0): Int16Array {
  return Int16Array.from({ length: n }, (_, i) => Math.round(6000 * Math.sin((2 * Math.PI * hz * (from + i)) / rate)));
}

describe.each(backends.map((b) => [b.name, b] as const))('frame paths (%s)', (_name, dsp) => {
  it('outbound: push returns the whole μ-law frames the pipeline makes, flush the tail, reset drops what was pending (silence after it)', () => {
    const path = new OutboundPath(dsp, { fromHz: 24000 });
    const ref = dsp.createOutboundPipeline({ fromHz: 24000 });
    const dst = new Uint8Array(160 * 64);
    let from = 0;
    let total = 0;
    for (const n of [7, 480, 1000, 333, 2400, 1]) {
      const pcm = tone(n, 440, 24000, from);
      from += n;
      const got = path.push(pcm);
      const want = dst.subarray(0, ref.push(pcm, dst));
      expect(got.length % 160).toBe(0);
      expect(Buffer.from(got).equals(Buffer.from(want))).toBe(true);
      total += got.length;
    }
    expect(total).toBeGreaterThan(0);
    const tail = path.flush();
    expect(tail.length % 160).toBe(0);
    expect(Buffer.from(tail).equals(Buffer.from(dst.subarray(0, ref.flush(dst))))).toBe(true);
    // Audio pending in the resampler and a partial frame, then a barge-in: nothing of it comes out afterwards.
    path.push(tone(250, 440, 24000));
    path.reset();
    const after = path.flush(); // at most the resampler's (zeroed) delay line, padded to a frame
    expect(after.every((b) => b === 0xff || b === 0x7f)).toBe(true); // μ-law ±0: silence

    path.close();
    ref.close();
  });

  it('inbound: push returns the PCM each frame releases, at the agent rate; poll what the jitter buffer held', () => {
    const path = new InboundPath(dsp, { toHz: 16000 });
    const ref = dsp.createInboundPipeline({ toHz: 16000 });
    const dst = new Int16Array(ref.maxFrameOutput * 8);
    const frame = new Uint8Array(160);
    const order = [0, 1, 2, 4, 3, 5, 7, 8, 9]; // one swapped pair, one loss (6)
    let released = 0;
    for (const [k, seq] of order.entries()) {
      encodeUlaw(tone(160, 300, 8000, seq * 160), frame);
      const now = k * 20;
      const got = path.push(frame, seq, seq * 20, now);
      const want = dst.subarray(0, ref.push(frame, seq, seq * 20, now, dst));
      expect(Array.from(got)).toEqual(Array.from(want));
      released += got.length;
    }
    expect(released).toBeGreaterThan(0);
    expect(path.bufferedFrames).toBe(ref.bufferedFrames);
    const later = 1000;
    const got = path.poll(later);
    expect(Array.from(got)).toEqual(Array.from(dst.subarray(0, ref.poll(later, dst))));
    expect(path.bufferedFrames).toBe(0);
    path.close();
    expect(path.bufferedFrames).toBe(0);
    ref.close();
  });

  it.each([
    ['default jitter buffer', {}],
    ['small buffer (forced releases, resyncs)', { capacityFrames: 6, maxGapFillFrames: 20, initialDelayMs: 60, maxDelayMs: 100 }],
  ] as const)('inbound: poll on the tick releases what polling the pipeline on every tick does (%s)', (_label, jitter) => {
    for (const seed of [1, 2, 3, 4]) {
      const next = rng(seed);
      const path = new InboundPath(dsp, { toHz: 24000, jitter });
      const ref = dsp.createInboundPipeline({ toHz: 24000, jitter });
      const dst = new Int16Array(ref.maxFrameOutput * 8);
      const frame = new Uint8Array(160);
      const got: number[] = [];
      const want: number[] = [];
      const gotAt: number[] = [];
      const wantAt: number[] = [];
      let pos = 0;
      let held = 0;
      for (let tick = 0; tick < 1500; tick++) {
        const now = tick * 20;
        // Arrivals this tick: usually one in order; sometimes none (a stall), a burst, a loss,
        // a swap, a duplicate, a jump ahead (beyond the buffer or the gap limit) or back.
        const r = next();
        const seqs: number[] = [];
        if (r < 0.55) seqs.push(pos++);
        else if (r < 0.65) {
          /* stall */
        } else if (r < 0.75) for (let k = 0; k < 2 + Math.floor(next() * 10); k++) seqs.push(pos++);
        else if (r < 0.82) seqs.push((pos += 1 + Math.floor(next() * 4)));
        else if (r < 0.88) seqs.push(pos + 1, pos), (pos += 2);
        else if (r < 0.92) seqs.push(Math.max(0, pos - 1 - Math.floor(next() * 3)));
        else if (r < 0.96) seqs.push((pos += 5 + Math.floor(next() * 40)));
        else if (r < 0.98) seqs.push((pos = Math.max(0, pos - 60 - Math.floor(next() * 40))));
        else seqs.push((pos += 100));
        for (const seq of seqs) {
          encodeUlaw(tone(160, 220 + (seq % 7) * 40, 8000, seq * 160), frame);
          for (const v of path.push(frame, seq, seq * 20, now)) got.push(v);
          const n = ref.push(frame, seq, seq * 20, now, dst);
          for (let i = 0; i < n; i++) want.push(dst[i]!);
        }
        for (const v of path.poll(now)) got.push(v);
        if (ref.bufferedFrames > 0) {
          held++;
          const n = ref.poll(now, dst);
          for (let i = 0; i < n; i++) want.push(dst[i]!);
        }
        gotAt.push(got.length);
        wantAt.push(want.length);
      }
      expect(gotAt, `seed ${seed}: samples out by each tick`).toEqual(wantAt);
      expect(held, 'the pattern held frames on some ticks').toBeGreaterThan(20);
      expect(Buffer.from(Int16Array.from(got).buffer).equals(Buffer.from(Int16Array.from(want).buffer)), `seed ${seed}`).toBe(true);
      expect(path.bufferedFrames).toBe(ref.bufferedFrames);
      path.close();
      ref.close();
    }
  });
});
