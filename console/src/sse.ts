/**
 * A Server-Sent Events parser (the WHATWG "event stream interpretation"), fed whatever
 * chunks the network hands over: a boundary may fall anywhere — inside a field name, a
 * UTF-8 sequence, or between the CR and LF of a line end. Comments (lines starting with
 * ':') are skipped; `data:` lines of one event are joined with '\n'; an event is
 * dispatched at the blank line that ends it (one with no data is dropped, as browsers do).
 *
 * Pure: no DOM, so it is unit-tested under Node (test/console/sse-parser.test.ts).
 */
export interface SseEvent {
  /** The `event:` field, 'message' when absent. */
  event: string;
  data: string;
  /** The last `id:` seen (it persists across events), '' when none. */
  id: string;
}

export class SseParser {
  private buf = '';
  /** The previous chunk ended with CR: an LF starting the next one belongs to that line end. */
  private skipLf = false;
  private event = '';
  private data: string[] = [];
  private lastId = '';
  private first = true;
  private readonly decoder = new TextDecoder('utf-8');

  /** Bytes off the wire (UTF-8, decoded across chunk boundaries). */
  pushBytes(chunk: Uint8Array): SseEvent[] {
    return this.push(this.decoder.decode(chunk, { stream: true }));
  }

  /** Text: returns the events completed by it. */
  push(text: string): SseEvent[] {
    if (this.first && text.length > 0) {
      this.first = false;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    if (this.skipLf && text.startsWith('\n')) text = text.slice(1);
    this.skipLf = false;
    this.buf += text;
    const out: SseEvent[] = [];
    let start = 0;
    for (;;) {
      let i = start;
      const n = this.buf.length;
      while (i < n && this.buf[i] !== '\n' && this.buf[i] !== '\r') i++;
      if (i >= n) break;
      const line = this.buf.slice(start, i);
      if (this.buf[i] === '\r') {
        if (i + 1 < n) start = this.buf[i + 1] === '\n' ? i + 2 : i + 1;
        else {
          start = i + 1;
          this.skipLf = true;
        }
      } else start = i + 1;
      const ev = this.line(line);
      if (ev) out.push(ev);
    }
    this.buf = this.buf.slice(start);
    return out;
  }

  /** The stream ended: an event without its closing blank line is dropped (as browsers do). */
  end(): SseEvent[] {
    const rest = this.decoder.decode();
    const out = rest ? this.push(rest) : [];
    this.buf = '';
    this.event = '';
    this.data = [];
    return out;
  }

  private line(line: string): SseEvent | undefined {
    if (line === '') {
      const data = this.data;
      const event = this.event || 'message';
      this.data = [];
      this.event = '';
      if (data.length === 0) return undefined;
      return { event, data: data.join('\n'), id: this.lastId };
    }
    if (line.startsWith(':')) return undefined;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this.event = value;
    else if (field === 'data') this.data.push(value);
    else if (field === 'id') {
      if (!value.includes('\0')) this.lastId = value;
    }
    // 'retry' and unknown fields: ignored (the console has its own backoff).
    return undefined;
  }
}
