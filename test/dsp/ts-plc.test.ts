import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Plc, roundI16 } from '../../src/dsp/ts/plc.js';
import { ULAW_DECODE } from '../../src/dsp/ts/g711.js';

/** The speech fixture (espeak-ng μ-law WAV, see test/fixtures/README.md), decoded. */
function speech(): Int16Array {
  const wav = readFileSync(new URL('../fixtures/caller-order-status.8k-ulaw.wav', import.meta.url));
  let i = 12;
  while (i + 8 <= wav.length) {
    const id = wav.toString('latin1', i, i + 4);
    const len = wav.readUInt32LE(i + 4);
    if (id === 'data') {
      const data = wav.subarray(i + 8, Math.min(i + 8 + len, wav.length));
      const out = new Int16Array(data.length);
      for (let k = 0; k < data.length; k++) out[k] = ULAW_DECODE[data[k]!]!;
      return out;
    }
    i += 8 + len + (len & 1);
  }
  throw new Error('no data chunk');
}

function maxStep(x: Int16Array): number {
  let m = 0;
  for (let i = 1; i < x.length; i++) m = Math.max(m, Math.abs(x[i]! - x[i - 1]!));
  return m;
}

/** Runs 20 ms frames through the PLC, erasing those where lost(k). */
function run(sig: Int16Array, lost: (k: number) => boolean): { out: Int16Array; flags: boolean[] } {
  const plc = new Plc();
  const frames = Math.floor(sig.length / 160);
  const out = new Int16Array(frames * 160);
  const flags: boolean[] = [];
  const f = new Int16Array(160);
  for (let k = 0; k < frames; k++) {
    if (lost(k)) {
      plc.conceal(f);
    } else {
      f.set(sig.subarray(k * 160, k * 160 + 160));
      plc.good(f);
    }
    out.set(f, k * 160);
    flags.push(lost(k));
  }
  return { out, flags };
}

function snrDb(truth: Int16Array, out: Int16Array): number {
  let s = 0;
  let e = 0;
  for (let i = 0; i < truth.length; i++) {
    s += truth[i]! * truth[i]!;
    e += (truth[i]! - out[i]!) ** 2;
  }
  return 10 * Math.log10(s / e);
}

function fnv(samples: Int16Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < samples.length; i++) {
    const u = samples[i]! & 0xffff;
    h ^= u & 0xff;
    h = Math.imul(h, 16777619) >>> 0;
    h ^= u >>> 8;
    h = Math.imul(h, 16777619) >>> 0;
  }
  return h >>> 0;
}

/** Pinned by `plc::tests::parity_checksum` and `parity_checksum_close_losses` in native/dsp-core/src/plc.rs. */
const PLC_PARITY_CHECKSUM = 0x63d5960a;
const PLC_PARITY_CLOSE_LOSSES = 0xbf52591f;

const sig = speech();

function primed(startFrame: number, frames: number): Plc {
  const plc = new Plc();
  const f = new Int16Array(160);
  for (let k = startFrame; k < startFrame + frames; k++) {
    f.set(sig.subarray(k * 160, k * 160 + 160));
    plc.good(f);
  }
  return plc;
}

describe('TS PLC', () => {
  it('passes received audio through unchanged', () => {
    const { out } = run(sig, () => false);
    expect(Array.from(out)).toEqual(Array.from(sig.subarray(0, out.length)));
  });

  it('continues a periodic signal seamlessly', () => {
    const tri = new Int16Array(1600);
    for (let i = 0; i < 1600; i++) {
      const p = i % 100;
      tri[i] = p < 50 ? p * 400 - 10000 : (100 - p) * 400 - 10000;
    }
    const plc = new Plc();
    const f = new Int16Array(160);
    for (let k = 0; k < 5; k++) {
      f.set(tri.subarray(k * 160, k * 160 + 160));
      plc.good(f);
    }
    expect(plc.conceal(f)).toBe(true);
    for (let k = 30; k < 80; k++) expect(Math.abs(f[k]! - tri[800 + k]!)).toBeLessThanOrEqual(1);
  });

  it('stays continuous on a fixed loss pattern and decays to silence by 60 ms', () => {
    const limit = maxStep(sig);
    const lostSet = new Set([20, 40, 41, 60, 61, 62, 90, 91, 92, 93, 94, 120, 150, 151, 152, 153]);
    const { out, flags } = run(sig, (k) => lostSet.has(k));
    for (let k = 1; k < flags.length; k++) {
      if (flags[k] !== flags[k - 1]) {
        const j = k * 160;
        expect(Math.abs(out[j]! - out[j - 1]!), `junction at frame ${k}`).toBeLessThanOrEqual(limit);
      }
    }
    expect(maxStep(out)).toBeLessThanOrEqual(limit);
    const s = 90 * 160;
    expect(out.subarray(s + 480, s + 800).every((x) => x === 0)).toBe(true);
    expect(out.subarray(s, s + 480).some((x) => x !== 0)).toBe(true);
  });

  it('reports silence after 60 ms (20 ms and 10 ms calls)', () => {
    const plc = primed(30, 5);
    const f = new Int16Array(160);
    const audible = [0, 1, 2, 3, 4].map(() => plc.conceal(f));
    expect(audible).toEqual([true, true, true, false, false]);
    expect(f.every((x) => x === 0)).toBe(true);
    const plc2 = primed(30, 5);
    const sub = new Int16Array(80);
    const flags = [0, 1, 2, 3, 4, 5, 6, 7].map(() => plc2.conceal(sub));
    expect(flags).toEqual([true, true, true, true, true, true, false, false]);
  });

  it('cross-fades the synthesis into the first good frame over ¼ period (recovery OLA)', () => {
    const limit = maxStep(sig);
    const plc = primed(40, 5);
    const conc = new Int16Array(160);
    plc.conceal(conc);
    const orig = sig.slice(46 * 160, 47 * 160);
    const f = orig.slice();
    plc.good(f);
    // The OLA spans P/4 samples, P/4 in 10..30, however long the erasure.
    expect(Array.from(f.subarray(30))).toEqual(Array.from(orig.subarray(30)));
    expect(Array.from(f.subarray(0, 10))).not.toEqual(Array.from(orig.subarray(0, 10)));
    expect(Math.abs(f[0]! - conc[159]!)).toBeLessThanOrEqual(limit);
    const orig2 = sig.slice(47 * 160, 48 * 160);
    const f2 = orig2.slice();
    plc.good(f2);
    expect(Array.from(f2)).toEqual(Array.from(orig2));
  });

  it('fades in over ¼ period after an erasure longer than 60 ms', () => {
    const plc = primed(40, 5);
    const f = new Int16Array(160);
    for (let i = 0; i < 6; i++) plc.conceal(f);
    const orig = sig.slice(50 * 160, 51 * 160);
    f.set(orig);
    plc.good(f);
    const fadeIn = (l: number) => {
      for (let k = 0; k < l; k++) if (f[k] !== roundI16(((k + 1) / (l + 1)) * orig[k]!)) return false;
      return f.subarray(l).every((x, k) => x === orig[l + k]);
    };
    expect([...Array(21).keys()].map((i) => i + 10).filter(fadeIn)).toHaveLength(1);
  });

  it('conceals a second loss 20 ms after the first about as well as the first (a tone)', () => {
    // Before the concealed output entered the history, the second pitch search saw the
    // tone with the first loss cut out of it: 0.7, −2.2 and −3.9 dB on these tones.
    for (const hz of [330, 440, 523]) {
      const tone = new Int16Array(3200);
      for (let i = 0; i < tone.length; i++) tone[i] = Math.round(8000 * Math.sin((2 * Math.PI * hz * i) / 8000));
      const { out } = run(tone, (k) => k === 10 || k === 12);
      const first = snrDb(tone.subarray(1600, 1760), out.subarray(1600, 1760));
      const second = snrDb(tone.subarray(1920, 2080), out.subarray(1920, 2080));
      expect(second, `${hz} Hz`).toBeGreaterThanOrEqual(5);
      expect(second, `${hz} Hz, first loss ${first.toFixed(1)} dB`).toBeGreaterThanOrEqual(first - 1.5);
    }
  });

  it('reset() forgets the history', () => {
    const plc = primed(50, 1);
    plc.reset();
    const f = new Int16Array(160);
    expect(plc.conceal(f)).toBe(true);
    expect(f.every((x) => x === 0)).toBe(true);
  });

  it('is bit-identical to the Rust PLC (shared checksum)', () => {
    const lost = (k: number) => k % 7 === 3 || (k % 50 >= 20 && k % 50 < 24) || k % 31 === 0;
    const { out } = run(sig, lost);
    expect(out.length).toBe(45920);
    expect(fnv(out).toString(16)).toBe(PLC_PARITY_CHECKSUM.toString(16));
  });

  it('is bit-identical to the Rust PLC on close-together and consecutive losses, in uneven calls', () => {
    // Same driver as plc::tests::parity_checksum_close_losses: single losses one and two
    // frames apart, pairs, triples, 100 ms erasures; frame k as one call of 160 samples
    // (k even) or calls of 80, 37 and 43 samples (k odd).
    const lost = (k: number) => k % 3 === 1 || k % 13 === 7 || (k % 29 >= 20 && k % 29 < 23) || (k % 97 >= 60 && k % 97 < 65);
    const plc = new Plc();
    const frames = Math.floor(sig.length / 160);
    const out = new Int16Array(frames * 160);
    for (let k = 0; k < frames; k++) {
      const f = sig.slice(k * 160, k * 160 + 160);
      const parts = k % 2 === 0 ? [[0, 160]] : [[0, 80], [80, 117], [117, 160]];
      for (const [a, b] of parts) {
        // Half the calls through `length` on a larger buffer, half on an exact view.
        const part = f.subarray(a!, k % 4 === 1 ? 160 : b!);
        if (lost(k)) plc.conceal(part, b! - a!);
        else plc.good(part, b! - a!);
      }
      out.set(f, k * 160);
    }
    expect(fnv(out).toString(16)).toBe(PLC_PARITY_CLOSE_LOSSES.toString(16));
  });
});
