/**
 * Minimal RIFF/WAVE reader for test fixtures: PCM16 (format 1), μ-law (7) and
 * A-law (6), any channel count. Walks the chunks (fmt, fact, LIST, data…) and
 * returns the raw data bytes; decoding G.711 is left to src/dsp/ts/g711.ts.
 */
import { readFileSync } from 'node:fs';

export const WAVE_FORMAT_PCM = 1;
export const WAVE_FORMAT_ALAW = 6;
export const WAVE_FORMAT_MULAW = 7;

export interface WavFile {
  /** WAVE format tag: 1 PCM, 6 A-law, 7 μ-law. */
  format: number;
  channels: number;
  sampleRateHz: number;
  bitsPerSample: number;
  /** The data chunk's bytes (a view into the file). */
  data: Uint8Array;
}

export function parseWav(bytes: Uint8Array): WavFile {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tag = (at: number): string => String.fromCharCode(bytes[at]!, bytes[at + 1]!, bytes[at + 2]!, bytes[at + 3]!);
  if (bytes.length < 12 || tag(0) !== 'RIFF' || tag(8) !== 'WAVE') throw new Error('not a RIFF/WAVE file');
  let fmt: Omit<WavFile, 'data'> | undefined;
  let data: Uint8Array | undefined;
  let at = 12;
  while (at + 8 <= bytes.length) {
    const id = tag(at);
    const size = dv.getUint32(at + 4, true);
    const body = at + 8;
    if (body + size > bytes.length) throw new Error(`chunk ${id} runs past the end of the file`);
    if (id === 'fmt ') {
      fmt = {
        format: dv.getUint16(body, true),
        channels: dv.getUint16(body + 2, true),
        sampleRateHz: dv.getUint32(body + 4, true),
        bitsPerSample: dv.getUint16(body + 14, true),
      };
    } else if (id === 'data') {
      data = bytes.subarray(body, body + size);
    }
    at = body + size + (size & 1); // chunks are word-aligned
  }
  if (fmt === undefined || data === undefined) throw new Error('WAVE file without fmt or data chunk');
  return { ...fmt, data };
}

export function readWav(path: string): WavFile {
  return parseWav(new Uint8Array(readFileSync(path)));
}

/** The samples of a PCM16 WAV (little-endian on disk, copied so alignment does not matter). */
export function pcm16Samples(wav: WavFile): Int16Array {
  if (wav.format !== WAVE_FORMAT_PCM || wav.bitsPerSample !== 16) throw new Error('not PCM16');
  const out = new Int16Array(wav.data.length >> 1);
  const dv = new DataView(wav.data.buffer, wav.data.byteOffset, wav.data.byteLength);
  for (let i = 0; i < out.length; i++) out[i] = dv.getInt16(2 * i, true);
  return out;
}
