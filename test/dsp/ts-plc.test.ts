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

/** Pinned by `plc::tests::parity_checksum` in native/dsp-core/src/plc.rs. */
const PLC_PARITY_CHECKSUM = 0x0c625a99;

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

  it('cross-fades the synthesis into the first good frame (recovery OLA)', () => {
    const limit = maxStep(sig);
    const plc = primed(40, 5);
    const conc = new Int16Array(160);
    plc.conceal(conc);
    const orig = sig.slice(46 * 160, 47 * 160);
    const f = orig.slice();
    plc.good(f);
    // The OLA spans P/4 + 32 samples (two erased 10 ms), P/4 in 10..30.
    expect(Array.from(f.subarray(62))).toEqual(Array.from(orig.subarray(62)));
    expect(Array.from(f.subarray(0, 42))).not.toEqual(Array.from(orig.subarray(0, 42)));
    expect(Math.abs(f[0]! - conc[159]!)).toBeLessThanOrEqual(limit);
    const orig2 = sig.slice(47 * 160, 48 * 160);
    const f2 = orig2.slice();
    plc.good(f2);
    expect(Array.from(f2)).toEqual(Array.from(orig2));
  });

  it('fades in after an erasure longer than 60 ms', () => {
    const plc = primed(40, 5);
    const f = new Int16Array(160);
    for (let i = 0; i < 6; i++) plc.conceal(f);
    const orig = sig.slice(50 * 160, 51 * 160);
    f.set(orig);
    plc.good(f);
    for (let k = 0; k < 80; k++) expect(f[k]).toBe(roundI16(((k + 1) / 81) * orig[k]!));
    expect(Array.from(f.subarray(80))).toEqual(Array.from(orig.subarray(80)));
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
});
