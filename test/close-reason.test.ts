/** closeReason(): a WebSocket close reason within RFC 6455's 123 bytes, never a character cut in half. */
import { describe, expect, it } from 'vitest';
import { closeReason } from '../src/close-reason.js';

describe('closeReason', () => {
  it('keeps short reasons; cuts long ones by UTF-8 bytes on character boundaries', () => {
    expect(closeReason('twilio-stop')).toBe('twilio-stop');
    expect(closeReason('a'.repeat(123))).toBe('a'.repeat(123));
    expect(closeReason('a'.repeat(200))).toBe('a'.repeat(123));
    // 2-byte characters: 61 fit (122 bytes), the 62nd would make 124.
    expect(closeReason('é'.repeat(100))).toBe('é'.repeat(61));
    // 3-byte: 41 fit (123 bytes). 4-byte (an emoji, a surrogate pair in JS): 30 fit (120).
    expect(closeReason('語'.repeat(100))).toBe('語'.repeat(41));
    expect(closeReason('🚚'.repeat(40))).toBe('🚚'.repeat(30));
    for (const s of ['x' + 'é'.repeat(100), 'ab' + '語'.repeat(100), 'abc' + '🚚'.repeat(100), '\ud800'.repeat(100)]) {
      const out = closeReason(s);
      expect(Buffer.byteLength(out, 'utf8')).toBeLessThanOrEqual(123);
      expect(s.startsWith(out)).toBe(true);
    }
  });
});
