/**
 * EnergyVad on real (espeak-ng) speech and on synthetic signals. Expected speech
 * boundaries are computed from the signal itself by `energySegments` below: the
 * clip is cut into 20 ms windows, each window's RMS level is computed in floating
 * point (independently of frameDbfs), windows at or above the threshold are
 * "loud"; a segment starts at the first loud window of a run of ≥ 60 ms of loud
 * windows and ends at the end of its last loud window before a quiet gap of
 * ≥ silenceMs. The VAD must agree within ±100 ms.
 */
import { describe, expect, it } from 'vitest';
import { EnergyVad, frameDbfs, DBFS_FLOOR, type EnergyVadOptions } from '../../src/audio/vad.js';
import { readUlawFixture } from '../helpers/read-fixture.js';

const RATE = 8000;
const orderStatus = readUlawFixture('caller-order-status.8k-ulaw.wav');
const bargeIn = readUlawFixture('caller-barge-in.8k-ulaw.wav');

interface Segment {
  startMs: number;
  endMs: number;
}

function concat(...parts: Int16Array[]): Int16Array {
  const out = new Int16Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
const silence = (ms: number, rate = RATE) => new Int16Array((rate * ms) / 1000);

/** Deterministic uniform white noise at `dbfs` RMS (uniform on ±a has RMS a/√3). */
function whiteNoise(ms: number, dbfs: number, seed = 1, rate = RATE): Int16Array {
  const a = 32768 * 10 ** (dbfs / 20) * Math.sqrt(3);
  const out = new Int16Array((rate * ms) / 1000);
  let s = seed >>> 0;
  for (let i = 0; i < out.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0; // LCG (Numerical Recipes)
    out[i] = Math.round((s / 2 ** 32 - 0.5) * 2 * a);
  }
  return out;
}
const tone = (ms: number, amplitude: number, hz = 440, rate = RATE) =>
  Int16Array.from({ length: (rate * ms) / 1000 }, (_, i) => Math.round(amplitude * Math.sin((2 * Math.PI * hz * i) / rate)));
const mix = (a: Int16Array, b: Int16Array) => Int16Array.from(a, (x, i) => Math.max(-32768, Math.min(32767, x + (b[i] ?? 0))));
/** Zero-order hold up-sampling (the test only needs the same energy envelope at another rate). */
const hold = (x: Int16Array, factor: number) => Int16Array.from({ length: x.length * factor }, (_, i) => x[Math.floor(i / factor)]!);

/** The reference segmentation described in the header comment. */
function energySegments(pcm: Int16Array, rate: number, thresholdDbfs: number, silenceMs: number, startMs = 60): Segment[] {
  const frame = (rate * 20) / 1000;
  const loud: boolean[] = [];
  for (let f = 0; (f + 1) * frame <= pcm.length; f++) {
    let ms = 0;
    for (let i = f * frame; i < (f + 1) * frame; i++) ms += (pcm[i]! / 32768) ** 2;
    const rms = Math.sqrt(ms / frame);
    loud.push(rms > 0 && 20 * Math.log10(rms) >= thresholdDbfs);
  }
  const segments: Segment[] = [];
  let cur: { start: number; lastLoud: number } | undefined;
  let run = 0;
  for (let f = 0; f < loud.length; f++) {
    if (loud[f]) {
      run++;
      if (cur) cur.lastLoud = f;
      else if (run * 20 >= startMs) cur = { start: f - run + 1, lastLoud: f };
    } else {
      run = 0;
      if (cur && (f - cur.lastLoud) * 20 >= silenceMs) {
        segments.push({ startMs: cur.start * 20, endMs: (cur.lastLoud + 1) * 20 });
        cur = undefined;
      }
    }
  }
  if (cur) segments.push({ startMs: cur.start * 20, endMs: (cur.lastLoud + 1) * 20 });
  return segments;
}

interface Run {
  segments: Segment[];
  /** Sample clock at which each speechEnd was reported. */
  endReportedAt: number[];
  /** States per frame. */
  states: string[];
  vad: EnergyVad;
}

function runVad(pcm: Int16Array, options: Partial<EnergyVadOptions> & { sampleRateHz?: number } = {}): Run {
  const vad = new EnergyVad({ sampleRateHz: RATE, ...options });
  const rate = vad.sampleRateHz;
  const frame = new Int16Array(vad.frameSamples);
  const segments: Segment[] = [];
  const endReportedAt: number[] = [];
  const states: string[] = [];
  for (let at = 0; at + frame.length <= pcm.length; at += frame.length) {
    frame.set(pcm.subarray(at, at + frame.length));
    const s = vad.process(frame);
    states.push(s);
    if (s === 'speechEnd') {
      segments.push({ startMs: (vad.speechStartSample * 1000) / rate, endMs: (vad.speechEndSample * 1000) / rate });
      endReportedAt.push(vad.samplesProcessed);
    }
  }
  return { segments, endReportedAt, states, vad };
}

function expectSegmentsNear(actual: Segment[], expected: Segment[], toleranceMs = 100): void {
  expect(actual.length, `segments ${JSON.stringify(actual)} vs expected ${JSON.stringify(expected)}`).toBe(expected.length);
  actual.forEach((a, i) => {
    expect(Math.abs(a.startMs - expected[i]!.startMs), `start of segment ${i}`).toBeLessThanOrEqual(toleranceMs);
    expect(Math.abs(a.endMs - expected[i]!.endMs), `end of segment ${i}`).toBeLessThanOrEqual(toleranceMs);
  });
}

describe('frameDbfs', () => {
  it('is the RMS level relative to full scale, floored for digital silence', () => {
    expect(frameDbfs(new Int16Array(160))).toBe(DBFS_FLOOR);
    expect(frameDbfs(new Int16Array(0))).toBe(DBFS_FLOOR);
    const square = Int16Array.from({ length: 160 }, (_, i) => (i % 2 ? -32768 : 32767));
    expect(frameDbfs(square)).toBeCloseTo(0, 3);
    expect(frameDbfs(Int16Array.from({ length: 160 }, (_, i) => (i % 2 ? -16384 : 16384)))).toBeCloseTo(-6.0206, 3);
    expect(frameDbfs(tone(20, 32767, 400))).toBeCloseTo(-3.01, 1);
    // a single LSB is about −96 dBFS, above the floor
    expect(frameDbfs(Int16Array.of(1))).toBeCloseTo(-90.309, 2);
    // a sub-range
    const half = concat(new Int16Array(80), new Int16Array(80).fill(16384));
    expect(frameDbfs(half, 80, 160)).toBeCloseTo(-6.0206, 3);
  });
});

describe('EnergyVad', () => {
  it('rejects bad rates with stable codes', () => {
    expect(() => new EnergyVad({ sampleRateHz: 0 })).toThrow(expect.objectContaining({ code: 'BRIDGE_ERR_DSP_RATE' }));
    expect(() => new EnergyVad({ sampleRateHz: 11025 })).toThrow(expect.objectContaining({ code: 'BRIDGE_ERR_DSP_ARGUMENT' }));
    expect(() => new EnergyVad({ sampleRateHz: 8000, silenceMs: -1 })).toThrow(expect.objectContaining({ code: 'BRIDGE_ERR_DSP_ARGUMENT' }));
    expect(new EnergyVad({ sampleRateHz: 16000 }).frameSamples).toBe(320);
  });

  it('takes frames of other lengths (a resampler can give ±1 sample) and times them by their samples', () => {
    const pcm = concat(orderStatus.pcm, silence(1000));
    const vad = new EnergyVad({ sampleRateHz: RATE });
    const sizes = [159, 161, 160, 157, 163];
    const segments: Segment[] = [];
    let at = 0;
    for (let i = 0; at < pcm.length; i++) {
      const frame = pcm.subarray(at, at + sizes[i % sizes.length]!);
      at += frame.length;
      if (vad.process(frame) === 'speechEnd') segments.push({ startMs: vad.speechStartSample / 8, endMs: vad.speechEndSample / 8 });
    }
    expect(vad.samplesProcessed).toBe(pcm.length);
    expect(vad.process(new Int16Array(0))).toBe('silence');
    expect(vad.samplesProcessed).toBe(pcm.length);
    expectSegmentsNear(segments, [{ startMs: 40, endMs: 5360 }], 20);
  });

  it('finds the start and end of the order-status utterance within ±100 ms of its energy', () => {
    const pcm = concat(orderStatus.pcm, silence(1000));
    const expected = energySegments(pcm, RATE, -40, 600);
    expect(expected).toHaveLength(1); // one turn: its longest pause (~0.38 s) is shorter than the hangover
    const run = runVad(pcm, { thresholdDbfs: -40, silenceMs: 600 });
    expectSegmentsNear(run.segments, expected);
    // speechEnd is reported exactly one hangover after the last voiced frame
    expect(run.endReportedAt[0]).toBe(run.vad.speechEndSample + 600 * 8);
    expect(run.states.filter((s) => s === 'speechStart')).toHaveLength(1);
  });

  it('finds the barge-in utterance, which starts at the first sample', () => {
    const pcm = concat(bargeIn.pcm, silence(1000));
    const expected = energySegments(pcm, RATE, -40, 600);
    expect(expected).toHaveLength(1);
    expect(expected[0]!.startMs).toBe(0);
    expectSegmentsNear(runVad(pcm).segments, expected);
  });

  it('splits the turn at its pause when the hangover is shorter than the pause', () => {
    const pcm = concat(orderStatus.pcm, silence(1000));
    const expected = energySegments(pcm, RATE, -40, 300);
    expect(expected).toHaveLength(2);
    expectSegmentsNear(runVad(pcm, { silenceMs: 300 }).segments, expected);
  });

  it('hangover: a gap shorter than silenceMs stays one utterance, a longer one ends it', () => {
    const burst = tone(300, 8000);
    const one = runVad(concat(silence(200), burst, silence(500), burst, silence(1000)), { silenceMs: 600 });
    expect(one.segments).toEqual([{ startMs: 200, endMs: 1300 }]);
    const two = runVad(concat(silence(200), burst, silence(700), burst, silence(1000)), { silenceMs: 600 });
    expect(two.segments).toEqual([
      { startMs: 200, endMs: 500 },
      { startMs: 1200, endMs: 1500 },
    ]);
    // the state is 'speech' during the hangover and 'speechEnd' exactly silenceMs after the last voiced frame
    expect(two.endReportedAt).toEqual([(500 + 600) * 8, (1500 + 600) * 8]);
    expect(two.states[(500 + 560) / 20]).toBe('speech');
    expect(two.states[(500 + 600) / 20 - 1]).toBe('speechEnd');
  });

  it('needs startMs of voiced frames to start: a 40 ms click is not speech, 60 ms is', () => {
    expect(runVad(concat(silence(200), tone(40, 8000), silence(1000))).segments).toEqual([]);
    expect(runVad(concat(silence(200), tone(60, 8000), silence(1000))).segments).toEqual([{ startMs: 200, endMs: 260 }]);
  });

  it('ignores low-level line noise (−55 dBFS white noise) and tracks it as the noise floor', () => {
    const run = runVad(whiteNoise(10_000, -55));
    expect(run.states.every((s) => s === 'silence')).toBe(true);
    expect(run.vad.noiseFloorDbfs).toBeGreaterThan(-57);
    expect(run.vad.noiseFloorDbfs).toBeLessThan(-54);
    // even with the absolute threshold below the noise, the adaptive floor keeps it from being speech after one window
    const low = runVad(whiteNoise(10_000, -55, 7), { thresholdDbfs: -70 });
    expect(low.segments.length).toBeLessThanOrEqual(1);
    expect(low.segments[0]?.endMs ?? 0).toBeLessThanOrEqual(1100);
    expect(low.states.slice(100).every((s) => s === 'silence')).toBe(true);
  });

  it('adapts to line noise above the threshold and still hears speech over it', () => {
    const noise = whiteNoise(12_000, -35, 3);
    const speech = concat(silence(3000), orderStatus.pcm, silence(12_000 - 3000 - 5750));
    const run = runVad(mix(noise, speech));
    // the noise alone: at most the first window is taken for speech
    expect(run.segments[0]!.startMs).toBe(0);
    expect(run.segments[0]!.endMs).toBeLessThanOrEqual(1100);
    // then the caller, ~15 dB over the noise, is one turn starting near the clip's energy onset
    const expected = energySegments(concat(silence(3000), orderStatus.pcm, silence(1000)), RATE, -40, 600);
    expect(run.segments).toHaveLength(2);
    // (the clip's first and last syllables are weaker than noise + minSnrDb, so allow more than ±100 ms here)
    expect(Math.abs(run.segments[1]!.startMs - expected[0]!.startMs)).toBeLessThanOrEqual(200);
    expect(Math.abs(run.segments[1]!.endMs - expected[0]!.endMs)).toBeLessThanOrEqual(300);
  });

  it('works at other rates (16 and 24 kHz frames of 320 and 480 samples)', () => {
    const expected = energySegments(concat(orderStatus.pcm, silence(1000)), RATE, -40, 600);
    for (const factor of [2, 3]) {
      const pcm = hold(concat(orderStatus.pcm, silence(1000)), factor);
      const run = runVad(pcm, { sampleRateHz: RATE * factor });
      expect(run.vad.frameSamples).toBe(160 * factor);
      expectSegmentsNear(run.segments, expected);
    }
  });

  it.runIf(typeof (globalThis as { gc?: unknown }).gc === 'function')('allocates nothing per frame (heap flat over 100,000 frames)', () => {
    // One boxed double per frame would be ≥ 12 B/frame (1.2 MB here, below a scavenge); a flat heap stays < ~3 B/frame.
    const frames = Array.from({ length: 280 }, (_, k) => Int16Array.from({ length: 160 }, (_, i) => Math.round(((k * 37) % 100) * 80 * Math.sin(i / 3))));
    const vad = new EnergyVad({ sampleRateHz: RATE });
    const run = (n: number) => {
      for (let i = 0; i < n; i++) vad.process(frames[i % frames.length]!);
    };
    run(50_000); // warm-up: let the JIT settle
    (globalThis as unknown as { gc: () => void }).gc();
    const before = process.memoryUsage().heapUsed;
    run(100_000);
    const perFrame = (process.memoryUsage().heapUsed - before) / 100_000;
    expect(perFrame).toBeLessThan(8);
  });

  it('end() closes speech when input stops, reset() forgets everything', () => {
    const vad = new EnergyVad({ sampleRateHz: RATE });
    const frame = new Int16Array(160);
    for (let at = 0; at + 160 <= 8000; at += 160) {
      frame.set(orderStatus.pcm.subarray(at, at + 160));
      vad.process(frame);
    }
    expect(vad.speaking).toBe(true);
    expect(vad.end()).toBe('speechEnd');
    expect(vad.speaking).toBe(false);
    expect(vad.speechEndSample).toBeGreaterThan(vad.speechStartSample);
    expect(vad.speechEndSample).toBeLessThanOrEqual(8000);
    expect(vad.end()).toBe('silence');
    vad.reset();
    expect(vad.samplesProcessed).toBe(0);
    expect(vad.speechStartSample).toBe(-1);
    expect(vad.noiseFloorDbfs).toBe(DBFS_FLOOR);
  });
});
