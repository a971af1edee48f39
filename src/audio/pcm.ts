/**
 * PCM16 little-endian bytes ⇄ Int16Array, for audio that arrives as bytes (base64 from
 * an AI service, a WAV data chunk). An odd byte length is a truncated sample: a
 * BridgeError (BRIDGE_ERR_DSP_FRAME_SIZE), never a silently shifted stream.
 */
import { BridgeError, ErrorCodes } from '../errors.js';

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** A view when the bytes are 2-byte aligned (no copy), else a copy. */
export function pcm16FromBytes(bytes: Uint8Array): Int16Array {
  if (bytes.length % 2 !== 0) {
    throw new BridgeError(ErrorCodes.DSP_FRAME_SIZE, `PCM16 data of ${bytes.length} bytes: not a whole number of samples`);
  }
  if (LITTLE_ENDIAN && bytes.byteOffset % 2 === 0) return new Int16Array(bytes.buffer, bytes.byteOffset, bytes.length / 2);
  const out = new Int16Array(bytes.length / 2);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  for (let i = 0; i < out.length; i++) out[i] = dv.getInt16(i * 2, true);
  return out;
}

/**
 * A fresh Int16Array of the whole samples in `bytes` (PCM16 little-endian; a trailing odd
 * byte is left out): for audio a listener may keep, one copy and no view of the message.
 */
export function pcm16CopyFromBytes(bytes: Uint8Array): Int16Array {
  const out = new Int16Array(bytes.length >> 1);
  if (LITTLE_ENDIAN) {
    new Uint8Array(out.buffer).set(bytes.subarray(0, out.length * 2));
    return out;
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, out.length * 2);
  for (let i = 0; i < out.length; i++) out[i] = dv.getInt16(i * 2, true);
  return out;
}

/** Decodes base64 PCM16 little-endian; odd byte lengths and non-base64 text are errors. */
export function pcm16FromBase64(b64: string): Int16Array {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 === 1) {
    throw new BridgeError(ErrorCodes.DSP_ARGUMENT, 'audio is not base64');
  }
  return pcm16FromBytes(Buffer.from(b64, 'base64'));
}

/** Little-endian bytes of PCM16 samples (a view on little-endian hosts). */
export function pcm16ToBytes(pcm: Int16Array): Uint8Array {
  if (LITTLE_ENDIAN) return new Uint8Array(pcm.buffer, pcm.byteOffset, pcm.byteLength);
  const out = new Uint8Array(pcm.length * 2);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < pcm.length; i++) dv.setInt16(i * 2, pcm[i]!, true);
  return out;
}

/** Base64 of PCM16 little-endian samples (what JSON agent protocols carry); reads the samples now, keeps nothing. */
export function pcm16ToBase64(pcm: Int16Array): string {
  const bytes = pcm16ToBytes(pcm);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}
