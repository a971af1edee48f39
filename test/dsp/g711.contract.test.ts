/**
 * G.711 against the ITU-T G.191 reference definitions for all 256 codes and all
 * 65,536 int16 inputs, on every backend. The reference functions below are written
 * from openitu/STL `src/g711/g711.c`; the Sun/audioop encoder from CPython
 * `Modules/audioop.c` and the "Reese" one from Asterisk's ulaw.c, and the measured
 * difference counts (508 and 127, negative inputs only) pin down that we follow the
 * ITU reference, not one of them.
 */
import { describe, expect, it } from 'vitest';
import { backends } from '../helpers/backends.js';
import { isBridgeError } from '../../src/errors.js';

function ituUlawCompress(x: number): number {
  let absno = x < 0 ? (~x >> 2) + 33 : (x >> 2) + 33;
  if (absno > 0x1fff) absno = 0x1fff;
  let segno = 1;
  for (let i = absno >> 6; i !== 0; i >>= 1) segno++;
  let out = ((8 - segno) << 4) | (15 - ((absno >> segno) & 15));
  if (x >= 0) out |= 0x80;
  return out;
}
function ituUlawExpand(code: number): number {
  const inv = ~code & 0xff;
  const e = (inv >> 4) & 7;
  const m = inv & 15;
  const step = 4 << (e + 1);
  const mag = (0x80 << e) + step * m + step / 2 - 132;
  return code < 0x80 ? 0 - mag : mag; // 0 - 0 is +0: the decoders return integers, never -0
}
function ituAlawCompress(x: number): number {
  let ix = x < 0 ? ~x >> 4 : x >> 4;
  if (ix > 15) {
    let iexp = 1;
    while (ix > 31) {
      ix >>= 1;
      iexp++;
    }
    ix = ix - 16 + (iexp << 4);
  }
  if (x >= 0) ix |= 0x80;
  return (ix ^ 0x55) & 0xff;
}
function ituAlawExpand(code: number): number {
  const ix = (code ^ 0x55) & 0x7f;
  const e = ix >> 4;
  let m = ix & 15;
  if (e > 0) m += 16;
  m = (m << 4) + 8;
  if (e > 1) m <<= e - 1;
  return code > 127 ? m : 0 - m;
}
/** Sun/sox `st_14linear2ulaw` as CPython 3 audioop calls it (two's complement, bias 0x84 >> 2). */
function sunUlaw(x: number): number {
  let pcm = x >> 2;
  let mask: number;
  if (pcm < 0) {
    pcm = -pcm;
    mask = 0x7f;
  } else mask = 0xff;
  if (pcm > 8159) pcm = 8159;
  pcm += 0x84 >> 2;
  const segEnd = [0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff, 0x1fff];
  let seg = 0;
  while (seg < 8 && pcm > segEnd[seg]!) seg++;
  if (seg >= 8) return 0x7f ^ mask;
  return ((seg << 4) | ((pcm >> (seg + 1)) & 0xf)) ^ mask;
}
/** "Reese" exp_lut encoder: sign from bit 15, magnitude -x, clip 32635, bias 0x84. */
function reeseUlaw(x: number): number {
  const sign = (x >> 8) & 0x80;
  let s = sign ? -x : x;
  if (s > 32635) s = 32635;
  s += 0x84;
  let exp = 7;
  for (let mask = 0x4000; (s & mask) === 0 && exp > 0; mask >>= 1) exp--;
  const mant = (s >> (exp + 3)) & 0x0f;
  return ~(sign | (exp << 4) | mant) & 0xff;
}

const allInputs = new Int16Array(65536);
for (let i = 0; i < 65536; i++) allInputs[i] = i - 32768;
const allCodes = new Uint8Array(256);
for (let c = 0; c < 256; c++) allCodes[c] = c;

describe('G.711 reference definitions (test-side)', () => {
  it('differ from the ITU reference encoder where measured (Sun: 508 negative inputs, Reese: 127)', () => {
    let sun = 0;
    let sunPositive = 0;
    let reese = 0;
    for (let x = -32768; x < 32768; x++) {
      const ref = ituUlawCompress(x);
      if (sunUlaw(x) !== ref) {
        sun++;
        if (x >= 0) sunPositive++;
      }
      if (reeseUlaw(x) !== ref) reese++;
    }
    expect(sun).toBe(508);
    expect(sunPositive).toBe(0);
    expect(reese).toBe(127);
  });
});

describe.each(backends)('G.711 on the $name backend', (dsp) => {
  it('decodes all 256 μ-law codes like ulaw_expand', () => {
    const out = new Int16Array(256);
    expect(dsp.decodeUlaw(allCodes, out)).toBe(256);
    for (let c = 0; c < 256; c++) expect(out[c]).toBe(ituUlawExpand(c));
    expect([out[0x00], out[0x7f], out[0x80], out[0xff]]).toEqual([-32124, 0, 32124, 0]);
  });

  it('decodes all 256 A-law codes like alaw_expand', () => {
    const out = new Int16Array(256);
    expect(dsp.decodeAlaw(allCodes, out)).toBe(256);
    for (let c = 0; c < 256; c++) expect(out[c]).toBe(ituAlawExpand(c));
    expect([out[0x00], out[0x80], out[0x55], out[0xd5]]).toEqual([-5504, 5504, -8, 8]);
  });

  it('encodes all 65,536 int16 inputs like ulaw_compress (not like audioop)', () => {
    const out = new Uint8Array(65536);
    expect(dsp.encodeUlaw(allInputs, out)).toBe(65536);
    let mismatches = 0;
    for (let i = 0; i < 65536; i++) if (out[i] !== ituUlawCompress(allInputs[i]!)) mismatches++;
    expect(mismatches).toBe(0);
    expect(out[-1 + 32768]).toBe(0x7f); // audioop gives 0x7E here
    expect(out[0 + 32768]).toBe(0xff);
    expect(out[32767 + 32768]).toBe(0x80);
    expect(out[0]).toBe(0x00);
  });

  it('encodes all 65,536 int16 inputs like alaw_compress', () => {
    const out = new Uint8Array(65536);
    expect(dsp.encodeAlaw(allInputs, out)).toBe(65536);
    let mismatches = 0;
    for (let i = 0; i < 65536; i++) if (out[i] !== ituAlawCompress(allInputs[i]!)) mismatches++;
    expect(mismatches).toBe(0);
  });

  it('round-trips every code (μ-law 0x7F, "negative zero", comes back as 0xFF)', () => {
    const pcm = new Int16Array(256);
    const back = new Uint8Array(256);
    dsp.decodeUlaw(allCodes, pcm);
    dsp.encodeUlaw(pcm, back);
    for (let c = 0; c < 256; c++) expect(back[c]).toBe(c === 0x7f ? 0xff : c);
    dsp.decodeAlaw(allCodes, pcm);
    dsp.encodeAlaw(pcm, back);
    expect(Array.from(back)).toEqual(Array.from(allCodes));
  });

  it('writes only src.length entries and leaves the rest of dst alone', () => {
    const dst = new Int16Array(8).fill(7);
    expect(dsp.decodeUlaw(new Uint8Array([0xff, 0x80]), dst)).toBe(2);
    expect(Array.from(dst)).toEqual([0, 32124, 7, 7, 7, 7, 7, 7]);
  });

  it('rejects a short destination with BRIDGE_ERR_DSP_DST_TOO_SMALL and writes nothing', () => {
    const dst = new Int16Array(3).fill(5);
    let err: unknown;
    try {
      dsp.decodeUlaw(new Uint8Array(4), dst);
    } catch (e) {
      err = e;
    }
    expect(isBridgeError(err, 'BRIDGE_ERR_DSP_DST_TOO_SMALL')).toBe(true);
    expect(Array.from(dst)).toEqual([5, 5, 5]);
    expect(() => dsp.encodeUlaw(new Int16Array(10), new Uint8Array(9))).toThrow(/too small|needs/);
  });
});

describe.each(backends)('G.711 argument types on the $name backend', (dsp) => {
  it('rejects the wrong typed-array types with BRIDGE_ERR_DSP_ARGUMENT', () => {
    const bad = () => dsp.decodeUlaw(new Uint8Array(4), new Float32Array(4) as unknown as Int16Array);
    expect(bad).toThrow(expect.objectContaining({ code: 'BRIDGE_ERR_DSP_ARGUMENT' }));
    const bad2 = () => dsp.encodeUlaw(new Uint16Array(4) as unknown as Int16Array, new Uint8Array(4));
    expect(bad2).toThrow(expect.objectContaining({ code: 'BRIDGE_ERR_DSP_ARGUMENT' }));
  });
});
