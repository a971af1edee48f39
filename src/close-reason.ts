/**
 * A WebSocket close reason must fit in 123 bytes of UTF-8 (RFC 6455 §5.5: a control
 * frame's payload is at most 125 bytes, 2 of them the code), and `ws` throws on a
 * longer one — which, inside a try/catch, silently leaves the socket open. Reasons
 * carry text from outside (an agent's error message, in any language), so they are
 * cut by bytes, never in the middle of a character.
 */
export const MAX_CLOSE_REASON_BYTES = 123;

export function closeReason(text: string, maxBytes = MAX_CLOSE_REASON_BYTES): string {
  if (Buffer.byteLength(text, 'utf8') <= maxBytes) return text;
  let bytes = 0;
  let out = '';
  for (const ch of text) {
    // A lone surrogate is written as U+FFFD (3 bytes), like Buffer.byteLength counts it.
    const n = Buffer.byteLength(ch, 'utf8');
    if (bytes + n > maxBytes) break;
    bytes += n;
    out += ch;
  }
  return out;
}
