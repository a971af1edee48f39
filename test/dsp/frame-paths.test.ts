/**
 * The call's frame paths are plain calls that return their output (no sinks): what a
 * push returns is exactly what the backend's pipeline writes for the same input, frame
 * for frame; after a reset only silence comes out.
 */
import { describe, expect, it } from 'vitest';
import { backends } from '../helpers/backends.js';
import { InboundPath, OutboundPath } from '../../src/dsp/frame-paths.js';
import { encodeUlaw } from '../../src/dsp/ts/g711.js';

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
});
