import { describe, expect, it } from 'vitest';
import { pcm16FromBase64, pcm16FromBytes, pcm16ToBytes } from '../../src/audio/pcm.js';

describe('PCM16 bytes', () => {
  it('round-trips samples through little-endian bytes and base64', () => {
    const pcm = Int16Array.from([0, 1, -1, 32767, -32768, 1234]);
    const bytes = pcm16ToBytes(pcm);
    expect(Array.from(bytes.subarray(0, 6))).toEqual([0, 0, 1, 0, 0xff, 0xff]);
    expect(Array.from(pcm16FromBytes(bytes))).toEqual(Array.from(pcm));
    expect(Array.from(pcm16FromBase64(Buffer.from(bytes).toString('base64')))).toEqual(Array.from(pcm));
  });

  it('reads unaligned bytes correctly (copy instead of a view)', () => {
    const buf = new Uint8Array(7);
    buf.set([0x34, 0x12, 0xff, 0x7f], 1);
    expect(Array.from(pcm16FromBytes(buf.subarray(1, 5)))).toEqual([0x1234, 0x7fff]);
  });

  it('rejects odd byte lengths and non-base64 with stable codes', () => {
    expect(() => pcm16FromBytes(new Uint8Array(3))).toThrow(expect.objectContaining({ code: 'BRIDGE_ERR_DSP_FRAME_SIZE' }));
    expect(() => pcm16FromBase64(Buffer.from([1, 2, 3]).toString('base64'))).toThrow(expect.objectContaining({ code: 'BRIDGE_ERR_DSP_FRAME_SIZE' }));
    expect(() => pcm16FromBase64('not base64!')).toThrow(expect.objectContaining({ code: 'BRIDGE_ERR_DSP_ARGUMENT' }));
  });
});
