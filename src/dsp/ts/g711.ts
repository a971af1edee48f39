/**
 * G.711 μ-law and A-law in TypeScript, following the ITU-T G.191 STL reference
 * definitions (openitu/STL `src/g711/g711.c`), like native/dsp-core/src/g711.rs. The encoders match
 * `ulaw_compress`/`alaw_compress` for every int16 input (one's complement for
 * negatives: −1 encodes like 0); decoders match the tables for all 256 codes.
 * Encoding is a table lookup: μ-law depends only on x >> 2, A-law on x >> 4.
 */
import { BridgeError, ErrorCodes } from '../../errors.js';

/** ITU `ulaw_compress` for one sample (the definition the table is built from). */
export function ulawCompress(x: number): number {
  let absno = x < 0 ? (~x >> 2) + 33 : (x >> 2) + 33;
  if (absno > 0x1fff) absno = 0x1fff;
  let i = absno >> 6;
  let segno = 1;
  while (i !== 0) {
    segno++;
    i >>= 1;
  }
  const high = 0x0008 - segno;
  const low = 0x000f - ((absno >> segno) & 0x000f);
  let out = (high << 4) | low;
  if (x >= 0) out |= 0x0080;
  return out;
}

/** ITU `ulaw_expand` for one code. */
export function ulawExpand(code: number): number {
  const sign = code < 0x80 ? -1 : 1;
  const inv = ~code & 0xff;
  const exponent = (inv >> 4) & 0x07;
  const mantissa = inv & 0x0f;
  const step = 4 << (exponent + 1);
  return sign * ((0x0080 << exponent) + step * mantissa + step / 2 - 4 * 33);
}

/** ITU `alaw_compress` for one sample. */
export function alawCompress(x: number): number {
  let ix = x < 0 ? ~x >> 4 : x >> 4;
  if (ix > 15) {
    let iexp = 1;
    while (ix > 16 + 15) {
      ix >>= 1;
      iexp++;
    }
    ix -= 16;
    ix += iexp << 4;
  }
  if (x >= 0) ix |= 0x0080;
  return (ix ^ 0x0055) & 0xff;
}

/** ITU `alaw_expand` for one code. */
export function alawExpand(code: number): number {
  const ix = (code ^ 0x55) & 0x7f;
  const iexp = ix >> 4;
  let mant = ix & 0x0f;
  if (iexp > 0) mant += 16;
  mant = (mant << 4) + 0x0008;
  if (iexp > 1) mant <<= iexp - 1;
  return code > 127 ? mant : -mant;
}

export const ULAW_DECODE = new Int16Array(256);
export const ALAW_DECODE = new Int16Array(256);
/** Indexed by (x >> 2) + 8192. */
const ULAW_ENCODE = new Uint8Array(16384);
/** Indexed by (x >> 4) + 2048. */
const ALAW_ENCODE = new Uint8Array(4096);
for (let c = 0; c < 256; c++) {
  ULAW_DECODE[c] = ulawExpand(c);
  ALAW_DECODE[c] = alawExpand(c);
}
for (let i = 0; i < 16384; i++) ULAW_ENCODE[i] = ulawCompress((i - 8192) << 2);
for (let i = 0; i < 4096; i++) ALAW_ENCODE[i] = alawCompress((i - 2048) << 4);

export const ULAW_SILENCE = 0xff;
export const ALAW_SILENCE = 0xd5;

export function encodeUlawSample(x: number): number {
  return ULAW_ENCODE[(x >> 2) + 8192]!;
}
export function encodeAlawSample(x: number): number {
  return ALAW_ENCODE[(x >> 4) + 2048]!;
}

function checkArgs(src: unknown, srcType: typeof Uint8Array | typeof Int16Array, dst: unknown, dstType: typeof Uint8Array | typeof Int16Array): void {
  if (!(src instanceof srcType) || !(dst instanceof dstType)) {
    throw new BridgeError(ErrorCodes.DSP_ARGUMENT, `expected (${srcType.name}, ${dstType.name})`);
  }
}

function checkLengths(srcLen: number, dstLen: number): void {
  if (dstLen < srcLen) {
    throw new BridgeError(ErrorCodes.DSP_DST_TOO_SMALL, `destination holds ${dstLen}, needs ${srcLen}`);
  }
}

export function decodeUlaw(src: Uint8Array, dst: Int16Array): number {
  checkArgs(src, Uint8Array, dst, Int16Array);
  checkLengths(src.length, dst.length);
  const n = src.length;
  for (let i = 0; i < n; i++) dst[i] = ULAW_DECODE[src[i]!]!;
  return n;
}
export function encodeUlaw(src: Int16Array, dst: Uint8Array): number {
  checkArgs(src, Int16Array, dst, Uint8Array);
  checkLengths(src.length, dst.length);
  const n = src.length;
  for (let i = 0; i < n; i++) dst[i] = ULAW_ENCODE[(src[i]! >> 2) + 8192]!;
  return n;
}
export function decodeAlaw(src: Uint8Array, dst: Int16Array): number {
  checkArgs(src, Uint8Array, dst, Int16Array);
  checkLengths(src.length, dst.length);
  const n = src.length;
  for (let i = 0; i < n; i++) dst[i] = ALAW_DECODE[src[i]!]!;
  return n;
}
export function encodeAlaw(src: Int16Array, dst: Uint8Array): number {
  checkArgs(src, Int16Array, dst, Uint8Array);
  checkLengths(src.length, dst.length);
  const n = src.length;
  for (let i = 0; i < n; i++) dst[i] = ALAW_ENCODE[(src[i]! >> 4) + 2048]!;
  return n;
}
