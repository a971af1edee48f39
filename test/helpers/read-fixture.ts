/**
 * Reads a μ-law WAV fixture from test/fixtures/. A tiny RIFF walk (no dependency):
 * chunks are <4-byte id><u32le size><data, padded to even>; `fmt ` must say
 * format 7 (G.711 μ-law), mono, 8 bits; `data` holds the codes.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ULAW_DECODE } from '../../src/dsp/ts/g711.js';

export interface UlawFixture {
  readonly sampleRateHz: number;
  /** The μ-law codes as stored. */
  readonly ulaw: Uint8Array;
  /** The codes decoded to PCM16 (G.711 table). */
  readonly pcm: Int16Array;
}

export function readUlawFixture(name: string): UlawFixture {
  const path = fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url));
  const buf = readFileSync(path);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const id = (at: number) => buf.toString('latin1', at, at + 4);
  if (buf.length < 12 || id(0) !== 'RIFF' || id(8) !== 'WAVE') throw new Error(`${name}: not a RIFF/WAVE file`);
  let sampleRateHz: number | undefined;
  let data: Uint8Array | undefined;
  let at = 12;
  while (at + 8 <= buf.length) {
    const chunk = id(at);
    const size = view.getUint32(at + 4, true);
    const body = at + 8;
    if (body + size > buf.length) throw new Error(`${name}: chunk '${chunk}' runs past the end of the file`);
    if (chunk === 'fmt ') {
      const format = view.getUint16(body, true);
      const channels = view.getUint16(body + 2, true);
      const bits = view.getUint16(body + 14, true);
      if (format !== 7) throw new Error(`${name}: WAVE format ${format}, expected 7 (μ-law)`);
      if (channels !== 1 || bits !== 8) throw new Error(`${name}: ${channels} channels × ${bits} bits, expected mono 8-bit`);
      sampleRateHz = view.getUint32(body + 4, true);
    } else if (chunk === 'data') {
      data = new Uint8Array(buf.subarray(body, body + size));
    }
    at = body + size + (size & 1);
  }
  if (sampleRateHz === undefined) throw new Error(`${name}: no 'fmt ' chunk`);
  if (data === undefined) throw new Error(`${name}: no 'data' chunk`);
  const pcm = new Int16Array(data.length);
  for (let i = 0; i < data.length; i++) pcm[i] = ULAW_DECODE[data[i]!]!;
  return { sampleRateHz, ulaw: data, pcm };
}
