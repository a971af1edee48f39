/** The console's SSE parser (console/src/sse.ts): chunk boundaries anywhere, comments, multi-line data. */
import { describe, expect, it } from 'vitest';
import { SseParser, type SseEvent } from '../../console/src/sse.js';

const STREAM =
  ': keep-alive\n\n' +
  'event: calls\ndata: {"at":"2026-01-01T00:00:00Z","calls":[]}\n\n' +
  ':another comment\r\n' +
  'event: levels\r\ndata: {"levels":{}}\r\n\r\n' +
  'data: first line\ndata:second line\ndata:  third with a space\n\n' +
  'event: bargeIn\rdata: {"callSid":"CA1","t":1200,"heardMs":340,"source":"vad","text":"héllo — ✓"}\r\r' +
  'id: 7\nevent: ended\ndata\n\n' +
  'event: empty\n\n' +
  'event: incomplete\ndata: never dispatched';

const WANT: SseEvent[] = [
  { event: 'calls', data: '{"at":"2026-01-01T00:00:00Z","calls":[]}', id: '' },
  { event: 'levels', data: '{"levels":{}}', id: '' },
  { event: 'message', data: 'first line\nsecond line\n third with a space', id: '' },
  { event: 'bargeIn', data: '{"callSid":"CA1","t":1200,"heardMs":340,"source":"vad","text":"héllo — ✓"}', id: '' },
  { event: 'ended', data: '', id: '7' },
];

function parseChunks(chunks: string[]): SseEvent[] {
  const p = new SseParser();
  const out: SseEvent[] = [];
  for (const c of chunks) out.push(...p.push(c));
  out.push(...p.end());
  return out;
}

describe('console SSE parser', () => {
  it('parses a whole stream: named events, comments skipped, data lines joined, CR/LF/CRLF line ends', () => {
    expect(parseChunks([STREAM])).toEqual(WANT);
  });

  it('gives the same events whatever the split of the text (one cut and every pair of cuts)', () => {
    for (let i = 0; i <= STREAM.length; i++) expect(parseChunks([STREAM.slice(0, i), STREAM.slice(i)])).toEqual(WANT);
    for (let i = 0; i <= STREAM.length; i += 3) for (let j = i; j <= STREAM.length; j += 5) expect(parseChunks([STREAM.slice(0, i), STREAM.slice(i, j), STREAM.slice(j)])).toEqual(WANT);
    expect(parseChunks([...STREAM])).toEqual(WANT); // one character at a time
  });

  it('decodes UTF-8 split inside a character (bytes off the wire)', () => {
    const bytes = new TextEncoder().encode(STREAM);
    for (let i = 0; i <= bytes.length; i++) {
      const p = new SseParser();
      const out = [...p.pushBytes(bytes.slice(0, i)), ...p.pushBytes(bytes.slice(i)), ...p.end()];
      expect(out).toEqual(WANT);
    }
    const p = new SseParser();
    const out: SseEvent[] = [];
    for (const b of bytes) out.push(...p.pushBytes(Uint8Array.of(b)));
    expect([...out, ...p.end()]).toEqual(WANT);
  });

  it('drops a leading BOM, keeps an id across events, and dispatches nothing for comment-only input', () => {
    expect(parseChunks(['\uFEFFevent: a\ndata: 1\n\n'])).toEqual([{ event: 'a', data: '1', id: '' }]);
    expect(parseChunks(['id: 3\ndata: x\n\ndata: y\n\n'])).toEqual([
      { event: 'message', data: 'x', id: '3' },
      { event: 'message', data: 'y', id: '3' },
    ]);
    expect(parseChunks([':a\n:b\n\n:c\n'])).toEqual([]);
  });
});
