/**
 * Seeded generators of hostile Twilio Media Streams input for the fuzz test:
 * valid messages (as Twilio documents them) mutated in structure, type, size and order,
 * plus text that is not JSON, binary frames and oversized frames. Everything is
 * drawn from one seeded PRNG (sfc32), so a failing run is reproduced by its seed.
 *
 * Each generated item says what it is, so the test can check the bridge's counters
 * for the classes whose outcome does not depend on our own parser: a binary frame
 * (BRIDGE_ERR_TWILIO_BINARY_FRAME), a text over BRIDGE_MAX_MESSAGE_BYTES
 * (…_MESSAGE_TOO_LARGE) and a text that JSON.parse rejects (…_JSON). JSON-valid
 * mutations are classified by the bridge; the test only checks their codes are stable.
 */

/** sfc32 (PractRand's small fast counter): 128-bit state, good enough statistics, tiny. */
export class Prng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;
  constructor(readonly seed: number) {
    this.#a = 0x9e3779b9;
    this.#b = 0x243f6a88;
    this.#c = 0xb7e15162;
    this.#d = seed >>> 0;
    for (let i = 0; i < 15; i++) this.u32();
  }
  u32(): number {
    const t = (((this.#a + this.#b) | 0) + this.#d) | 0;
    this.#d = (this.#d + 1) | 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) | 0;
    this.#c = (this.#c << 21) | (this.#c >>> 11);
    this.#c = (this.#c + t) | 0;
    return t >>> 0;
  }
  /** [0, 1) */
  next(): number {
    return this.u32() / 4294967296;
  }
  int(lo: number, hiExclusive: number): number {
    return lo + Math.floor(this.next() * (hiExclusive - lo));
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(0, xs.length)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = this.u32() & 0xff;
    return b;
  }
}

export const hex32 = (rng: Prng): string => {
  let s = '';
  for (let i = 0; i < 32; i++) s += '0123456789abcdef'[rng.int(0, 16)];
  return s;
};

export interface StreamIds {
  streamSid: string;
  callSid: string;
  accountSid: string;
}

export function newIds(rng: Prng): StreamIds {
  return { streamSid: 'MZ' + hex32(rng), callSid: 'CA' + hex32(rng), accountSid: 'AC' + hex32(rng) };
}

const FRAME_B64 = (rng: Prng, n = 160) => rng.bytes(n).toString('base64');

export function validConnected(): Record<string, unknown> {
  return { event: 'connected', protocol: 'Call', version: '1.0.0' };
}
/** `streamToken`: the webhook's per-call token (src/twilio/stream-token.ts), needed when signatures are checked. */
export function validStart(ids: StreamIds, seq: number, streamToken?: string): Record<string, unknown> {
  return {
    event: 'start',
    sequenceNumber: String(seq),
    start: {
      accountSid: ids.accountSid,
      streamSid: ids.streamSid,
      callSid: ids.callSid,
      tracks: ['inbound'],
      customParameters: { agent: 'echo', caller: '+15551230000', ...(streamToken ? { vb_token: streamToken } : {}) },
      mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
    },
    streamSid: ids.streamSid,
  };
}
export function validMedia(ids: StreamIds, seq: number, chunk: number, rng: Prng): Record<string, unknown> {
  return { event: 'media', sequenceNumber: String(seq), media: { track: 'inbound', chunk: String(chunk), timestamp: String(chunk * 20), payload: FRAME_B64(rng) }, streamSid: ids.streamSid };
}
export function validMark(ids: StreamIds, seq: number, rng: Prng): Record<string, unknown> {
  return { event: 'mark', sequenceNumber: String(seq), streamSid: ids.streamSid, mark: { name: `r${rng.int(0, 9)}.${rng.int(0, 99999)}.${rng.int(0, 99)}` } };
}
export function validDtmf(ids: StreamIds, seq: number, rng: Prng): Record<string, unknown> {
  return { event: 'dtmf', streamSid: ids.streamSid, sequenceNumber: String(seq), dtmf: { track: 'inbound_track', digit: rng.pick('0123456789*#ABCD'.split('')) } };
}
export function validStop(ids: StreamIds, seq: number): Record<string, unknown> {
  return { event: 'stop', sequenceNumber: String(seq), stop: { accountSid: ids.accountSid, callSid: ids.callSid }, streamSid: ids.streamSid };
}

// ── value pools ─────────────────────────────────────────────────────────────

const HUGE_NUMBERS: unknown[] = [
  1e308, -1e308, -1, -0, 2 ** 53, 2 ** 53 + 2, Number.MAX_SAFE_INTEGER, 1.5, 4294967296, 0xffffffff,
  '99999999999999999999', '-1', '1e9', '0x10', ' 1', '1 ', '', '١٢٣', '9007199254740993', '00000000000000001',
];
const UNICODE: string[] = [
  '\u0000', '\ud800', '\udfff', '\u202e', '😀'.repeat(40), 'Ω≈ç√∫', '\uFEFF', 'e\u0301', '\u2028\u2029', 'ＭＺ',
  'A'.repeat(300), '𝕏'.repeat(200), '\\', '"', '</script>', '${x}', '%s%n',
];
const EVENTS = ['media', 'start', 'stop', 'mark', 'dtmf', 'connected', 'Media', 'MEDIA', 'clear', 'media ', '', 'teleport', '__proto__', 'constructor'];

function randomScalar(rng: Prng): unknown {
  switch (rng.int(0, 9)) {
    case 0:
      return null;
    case 1:
      return rng.chance(0.5);
    case 2:
      return rng.pick(HUGE_NUMBERS);
    case 3:
      return rng.pick(UNICODE);
    case 4:
      return [];
    case 5:
      return {};
    case 6:
      return rng.int(-1000, 1000);
    case 7:
      return rng.bytes(rng.int(0, 24)).toString('latin1');
    default:
      return String(rng.int(0, 1e6));
  }
}

/**
 * Deep nesting is spliced into the JSON text after stringify (a placeholder marks the
 * spot): building it as an object would make our own generator recurse that deep.
 */
const DEEP = '\u0001deep\u0001';
function deepText(rng: Prng, depth: number): string {
  const open = rng.chance(0.5) ? '[' : '{"a":';
  const close = open === '[' ? ']' : '}';
  return open.repeat(depth) + '1' + close.repeat(depth);
}

/** base64 payloads of wrong sizes and alphabets (a valid 160-byte frame is 216 chars). */
function badPayload(rng: Prng): unknown {
  switch (rng.int(0, 10)) {
    case 0:
      return FRAME_B64(rng, rng.int(0, 160));
    case 1:
      return FRAME_B64(rng, rng.int(161, 2000));
    case 2:
      return FRAME_B64(rng, 159) + '='; // 216 chars, decodes short
    case 3:
      return FRAME_B64(rng).replace(/[A-Za-z]/g, (c) => (rng.chance(0.05) ? '-' : c)); // url-safe alphabet
    case 4:
      return '!'.repeat(216);
    case 5:
      return FRAME_B64(rng).slice(0, 215) + '\u00e9';
    case 6:
      return ' ' + FRAME_B64(rng).slice(1);
    case 7:
      return FRAME_B64(rng, 162).slice(0, 216); // right length, no padding, 162-byte prefix
    case 8:
      return rng.bytes(160).toString('latin1');
    default:
      return '';
  }
}

type Obj = Record<string, unknown>;

function paths(o: unknown, prefix: string[] = [], out: string[][] = []): string[][] {
  if (typeof o !== 'object' || o === null || prefix.length >= 4) return out;
  for (const k of Object.keys(o)) {
    const p = [...prefix, k];
    out.push(p);
    paths((o as Obj)[k], p, out);
  }
  return out;
}

function setAt(o: Obj, path: string[], v: unknown, del = false): void {
  let cur: Obj = o;
  for (let i = 0; i < path.length - 1; i++) {
    const next = cur[path[i]!];
    if (typeof next !== 'object' || next === null) return;
    cur = next as Obj;
  }
  const last = path[path.length - 1]!;
  if (del) delete cur[last];
  else cur[last] = v;
}

/** One structural mutation of a (cloned) valid message; may be applied several times. */
function mutateObject(o: Obj, rng: Prng, ids: StreamIds): void {
  const ps = paths(o);
  const p = ps.length > 0 ? rng.pick(ps) : ['event'];
  switch (rng.int(0, 12)) {
    case 0:
      setAt(o, p, undefined, true); // delete a field
      return;
    case 1:
      setAt(o, p, randomScalar(rng)); // wrong type / odd value
      return;
    case 2:
      setAt(o, p, rng.pick(HUGE_NUMBERS));
      return;
    case 3:
      setAt(o, p, rng.pick(UNICODE));
      return;
    case 4:
      setAt(o, p, DEEP);
      return;
    case 5:
      if (o.media && typeof o.media === 'object') (o.media as Obj).payload = badPayload(rng);
      else o.event = 'media';
      return;
    case 6:
      o.event = rng.pick(EVENTS);
      return;
    case 7:
      o.streamSid = rng.pick(['MZ' + '0'.repeat(32), '', 'MZ', ids.callSid, 'MZ' + ids.streamSid.slice(2).toUpperCase(), ids.streamSid + ' ', 7]); // a different streamSid
      return;
    case 8:
      // prototype-pollution shaped keys; JSON.parse makes them own properties
      Object.defineProperty(o, '__proto__', { value: { polluted: true, event: 'stop' }, enumerable: true, configurable: true, writable: true });
      (o as Obj)['constructor'] = { prototype: { polluted: true } };
      return;
    case 9:
      if (o.media && typeof o.media === 'object') {
        const m = o.media as Obj;
        m.chunk = String(rng.pick([0, 1, 2 ** 31, Number.MAX_SAFE_INTEGER, rng.int(0, 100)]));
        m.timestamp = String(rng.pick([0, 2 ** 40, Number.MAX_SAFE_INTEGER, rng.int(0, 1e7)]));
      } else o.sequenceNumber = rng.pick(HUGE_NUMBERS);
      return;
    case 10:
      setAt(o, p, Array.from({ length: rng.int(1, 200) }, () => randomScalar(rng)));
      return;
    default:
      o[rng.pick(['extra', 'media', 'start', 'mark', 'dtmf', 'stop', 'sequenceNumber'])] = randomScalar(rng);
  }
}

export type FuzzItem =
  | {
      kind: 'text';
      text: string;
      /** JSON.parse fails (the bridge must count BRIDGE_ERR_TWILIO_JSON) */
      notJson: boolean;
      /** Parses as a message that ends the stream: a stop, or DTMF '#' (the echo agent hangs up). */
      endsCall: boolean;
    }
  | { kind: 'binary'; data: Buffer }
  | { kind: 'oversize'; text: string }
  /** A text frame whose bytes are not UTF-8 (the WebSocket layer closes with 1007). */
  | { kind: 'bad-utf8'; data: Buffer }
  /** Larger than the socket's maxPayload (the WebSocket layer closes with 1009). */
  | { kind: 'over-max-payload'; text: string };

export interface GenState {
  ids: StreamIds;
  seq: number;
  chunk: number;
}

/** One JSON.parse per item: whether it is JSON at all, and whether it would end the stream. */
function textItem(text: string): FuzzItem {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return { kind: 'text', text, notJson: true, endsCall: false };
  }
  const m = (typeof v === 'object' && v !== null ? v : {}) as { event?: unknown; dtmf?: { digit?: unknown } };
  return { kind: 'text', text, notJson: false, endsCall: m.event === 'stop' || (m.event === 'dtmf' && typeof m.dtmf === 'object' && m.dtmf !== null && m.dtmf.digit === '#') };
}

/** A valid message of a random kind, as the stream would carry it (possibly out of order). */
function validAny(st: GenState, rng: Prng): Obj {
  const { ids } = st;
  switch (rng.int(0, 10)) {
    case 0:
      return validStart(rng.chance(0.5) ? ids : newIds(rng), ++st.seq); // duplicate start / another stream's
    case 1:
      return validConnected();
    case 2:
      return validMark(ids, ++st.seq, rng);
    case 3:
      return validDtmf(ids, ++st.seq, rng);
    case 4:
      return validStop(ids, ++st.seq);
    case 5:
      return validMedia(ids, ++st.seq, rng.int(0, st.chunk + 100), rng); // out of order / a gap / a duplicate
    default:
      return validMedia(ids, ++st.seq, ++st.chunk, rng);
  }
}

export interface GenOptions {
  maxMessageBytes: number;
  /** Allow items that make the WebSocket layer close the socket (bad UTF-8, over maxPayload). */
  socketKillers: boolean;
  maxPayloadBytes: number;
}

/** The next hostile (or, sometimes, valid) item for one stream. */
export function nextItem(st: GenState, rng: Prng, o: GenOptions): FuzzItem {
  const r = rng.next();
  if (r < 0.04) return { kind: 'binary', data: rng.bytes(rng.pick([0, 1, 2, 160, 161, 1024, rng.int(0, 8192)])) };
  if (r < 0.042) {
    // over BRIDGE_MAX_MESSAGE_BYTES but under maxPayload: counted, dropped, the call goes on
    const n = rng.int(o.maxMessageBytes + 1, o.maxMessageBytes + 8192);
    const base = JSON.stringify(validMedia(st.ids, ++st.seq, ++st.chunk, rng));
    return { kind: 'oversize', text: base.slice(0, -2) + `,"pad":"${'x'.repeat(Math.max(0, n - base.length - 10))}"}}` };
  }
  if (o.socketKillers && r < 0.045) {
    return rng.chance(0.5)
      ? { kind: 'bad-utf8', data: Buffer.concat([Buffer.from('{"event":"media","x":"'), Buffer.from([0xc3, 0x28, 0xff, 0xfe]), Buffer.from('"}')]) }
      : { kind: 'over-max-payload', text: 'y'.repeat(o.maxPayloadBytes + rng.int(1, 4096)) };
  }
  if (r < 0.15) {
    // text that is not JSON: truncated JSON, random bytes, JSON-ish junk
    const base = JSON.stringify(validAny(st, rng));
    const cut = base.slice(0, rng.int(0, base.length - 1));
    const pick = rng.int(0, 4);
    const text = pick === 0 ? cut : pick === 1 ? rng.bytes(rng.int(1, 300)).toString('latin1') : pick === 2 ? base.replace('"', "'") : base + '}';
    return textItem(text);
  }
  if (r < 0.25) {
    // a byte-level mutation of a valid message's text (may or may not stay JSON)
    const base = Buffer.from(JSON.stringify(validAny(st, rng)));
    for (let i = rng.int(1, 4); i > 0; i--) base[rng.int(0, base.length)] = rng.u32() & 0x7f;
    return textItem(base.toString('utf8'));
  }
  if (r < 0.35) {
    // a valid message, possibly in the wrong order (duplicate start, early stop, stale media …)
    return textItem(JSON.stringify(validAny(st, rng)));
  }
  // structural mutations of a valid message
  const msg = validAny(st, rng); // a fresh object each time: mutate in place
  for (let i = rng.int(1, 4); i > 0; i--) mutateObject(msg, rng, st.ids);
  let text = JSON.stringify(msg);
  if (text.includes(JSON.stringify(DEEP))) text = text.replace(JSON.stringify(DEEP), deepText(rng, rng.int(10, 3000)));
  if (Buffer.byteLength(text) > o.maxMessageBytes) text = text.slice(0, 1000); // keep this class under the size cap
  return textItem(text);
}

/**
 * Malformed HTTP upgrade requests for GET /twilio/stream, as raw bytes on a TCP socket.
 * `expectRefusal` is false only for the control (a correct, signed upgrade).
 */
export function upgradeRequest(rng: Prng, host: string, signature: string): { name: string; raw: Buffer; expectStatus?: number } {
  const key = rng.bytes(16).toString('base64');
  const base = (lines: string[], start = 'GET /twilio/stream HTTP/1.1') => Buffer.from([start, `Host: ${host}`, ...lines, '', ''].join('\r\n'));
  const std = ['Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Key: ${key}`, 'Sec-WebSocket-Version: 13', 'X-Forwarded-Proto: https'];
  const variants: (() => { name: string; raw: Buffer; expectStatus?: number })[] = [
    () => ({ name: 'random-bytes', raw: rng.bytes(rng.int(1, 2048)) }),
    () => ({ name: 'no-signature', raw: base(std), expectStatus: 403 }),
    () => ({ name: 'bad-signature', raw: base([...std, `X-Twilio-Signature: ${rng.bytes(20).toString('base64')}`]), expectStatus: 403 }),
    () => ({ name: 'signature-empty', raw: base([...std, 'X-Twilio-Signature: ']), expectStatus: 403 }),
    () => ({ name: 'signature-other-url', raw: base([...std, `X-Twilio-Signature: ${signature}`], 'GET /twilio/stream?x=1 HTTP/1.1'), expectStatus: 403 }),
    () => ({ name: 'wrong-version', raw: base([...std.filter((l) => !l.startsWith('Sec-WebSocket-Version')), `Sec-WebSocket-Version: ${rng.pick(['12', '99', 'x', ''])}`, `X-Twilio-Signature: ${signature}`]) }),
    () => ({ name: 'missing-key', raw: base([...std.filter((l) => !l.startsWith('Sec-WebSocket-Key')), `X-Twilio-Signature: ${signature}`]) }),
    () => ({ name: 'bad-key', raw: base([...std.filter((l) => !l.startsWith('Sec-WebSocket-Key')), `Sec-WebSocket-Key: ${rng.pick(['short', '', '!!!!', 'a'.repeat(200)])}`, `X-Twilio-Signature: ${signature}`]) }),
    () => ({ name: 'no-upgrade-header', raw: base([...std.filter((l) => !l.startsWith('Upgrade')), `X-Twilio-Signature: ${signature}`]) }),
    () => ({ name: 'post-upgrade', raw: base([...std, `X-Twilio-Signature: ${signature}`, 'Content-Length: 0'], 'POST /twilio/stream HTTP/1.1') }),
    // HTTP/1.0 is unsigned here: ws itself accepts a well-formed, signed HTTP/1.0 upgrade (RFC 6455 asks for 1.1), which is harmless.
    () => ({ name: 'http-1.0-unsigned', raw: base(std, 'GET /twilio/stream HTTP/1.0'), expectStatus: 403 }),
    () => ({ name: 'bad-http-version', raw: base(std, `GET /twilio/stream HTTP/${rng.pick(['9.9', '1', 'x', '1.1.1'])}`) }),
    () => ({ name: 'huge-header', raw: base([...std, `X-Junk: ${'j'.repeat(rng.int(17_000, 70_000))}`]), expectStatus: 431 }),
    () => ({ name: 'many-headers', raw: base([...std, ...Array.from({ length: 3000 }, (_, i) => `X-H${i}: ${i}`)]) }),
    () => ({ name: 'path-junk', raw: base(std, `GET /twilio/stream${rng.pick(['/..', '%00', '?%zz', '#frag', '/../../etc/passwd', '?' + 'q'.repeat(5000)])} HTTP/1.1`) }),
    () => ({ name: 'truncated', raw: base([...std, `X-Twilio-Signature: ${signature}`]).subarray(0, rng.int(1, 120)) }),
    () => ({ name: 'header-injection', raw: base([...std, `X-Twilio-Signature: ${signature}\u0000\r\nX: y`]) }),
    () => ({ name: 'unicode-header', raw: Buffer.concat([base(std).subarray(0, 30), Buffer.from('X-Ü: 😀\r\n', 'utf8'), base(std).subarray(30)]) }),
  ];
  return rng.pick(variants)();
}
