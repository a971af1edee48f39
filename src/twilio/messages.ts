/**
 * Twilio Media Streams messages (https://www.twilio.com/docs/voice/media-streams/websocket-messages):
 * parsed and validated once, at the edge. Numbers arrive as strings ("sequenceNumber",
 * "chunk", "timestamp").
 * A message that fails validation yields a stable code and never throws.
 */
import { ErrorCodes } from '../errors.js';

/** Twilio SIDs: a two-letter prefix and 32 hex digits (https://www.twilio.com/docs/glossary/what-is-a-sid). */
export function isSid(prefix: 'CA' | 'MZ' | 'AC', s: string): boolean {
  return s.length === 34 && s.startsWith(prefix) && /^[0-9a-fA-F]{32}$/.test(s.slice(2));
}

export interface ConnectedMessage {
  event: 'connected';
}
export interface StartMessage {
  event: 'start';
  sequenceNumber: number;
  streamSid: string;
  accountSid: string;
  callSid: string;
  tracks: string[];
  customParameters: Record<string, string>;
  mediaFormat: { encoding: string; sampleRate: number; channels: number };
}
export interface MediaMessage {
  event: 'media';
  sequenceNumber: number;
  streamSid: string;
  track: string;
  chunk: number;
  timestampMs: number;
  /** Base64 payload, not yet decoded (decoded by the call into a reused buffer). */
  payload: string;
}
export interface DtmfMessage {
  event: 'dtmf';
  sequenceNumber: number;
  streamSid: string;
  digit: string;
}
export interface MarkMessage {
  event: 'mark';
  sequenceNumber: number;
  streamSid: string;
  name: string;
}
export interface StopMessage {
  event: 'stop';
  sequenceNumber: number;
  streamSid: string;
  callSid: string;
}

export type TwilioMessage = ConnectedMessage | StartMessage | MediaMessage | DtmfMessage | MarkMessage | StopMessage;

/** Stable codes for bad input from Twilio's side (declared in src/errors.ts). */
export const TwilioInputCodes = {
  JSON: ErrorCodes.TWILIO_JSON,
  UNKNOWN_EVENT: ErrorCodes.TWILIO_UNKNOWN_EVENT,
  INVALID: ErrorCodes.TWILIO_INVALID_MESSAGE,
  BINARY: ErrorCodes.TWILIO_BINARY_FRAME,
  TOO_LARGE: ErrorCodes.TWILIO_MESSAGE_TOO_LARGE,
  PAYLOAD: ErrorCodes.TWILIO_PAYLOAD,
  STREAM_SID: ErrorCodes.TWILIO_STREAM_SID,
  MEDIA_BEFORE_START: ErrorCodes.TWILIO_MEDIA_BEFORE_START,
  FLOOD: ErrorCodes.TWILIO_FLOOD,
} as const;
export type TwilioInputCode = (typeof TwilioInputCodes)[keyof typeof TwilioInputCodes];

export type ParseResult = { ok: true; message: TwilioMessage } | { ok: false; code: TwilioInputCode; detail: string };

const fail = (code: TwilioInputCode, detail: string): ParseResult => ({ ok: false, code, detail });

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Twilio sends integers as decimal strings; accept numbers too. Returns NaN when invalid.
 * At most 2^32 - 1: the jitter buffer takes `chunk` and `timestamp` as unsigned 32-bit
 * (DspBackend contract) and its TS backend throws beyond that — a throw in the socket's
 * message handler would crash the process (found by test/hardening/fuzz.test.ts). A real
 * stream stays far below: 2^32 ms is 49 days, one chunk per 20 ms is 2.7 years.
 */
const U32_MAX = 0xffff_ffff;
function intField(v: unknown): number {
  if (typeof v === 'number') return Number.isInteger(v) && v >= 0 && v <= U32_MAX ? v : Number.NaN;
  if (typeof v !== 'string' || v.length === 0 || v.length > 10) return Number.NaN;
  // Digits only (Twilio sends them as strings, on every media message): a loop, not a pattern.
  let n = 0;
  for (let i = 0; i < v.length; i++) {
    const d = v.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return Number.NaN;
    n = n * 10 + d;
  }
  return n <= U32_MAX ? n : Number.NaN;
}

function str(v: unknown, max = 256): string | undefined {
  return typeof v === 'string' && v.length > 0 && v.length <= max ? v : undefined;
}

/**
 * Twilio's messages nest three levels deep. JSON.parse's cost grows steeply with nesting
 * (V8, measured here: ~2 ms for 3,000 levels, ~10 ms for a 64 KiB message of brackets —
 * 100× its cost per byte on flat JSON), so one signed socket could spend seconds of CPU
 * per second within the flood guard's 250 messages/s (found by the fuzz test, whose
 * nested messages stalled the real calls' playout). Texts long enough to nest deeply are
 * scanned first and refused above MAX_DEPTH; shorter ones (every media message: ~370
 * chars) are not scanned at all, so the frame path pays nothing.
 */
const MAX_DEPTH = 16;
const SCAN_FROM_CHARS = 512;
function nestedTooDeep(text: string): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped char
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > MAX_DEPTH) return true;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return false;
}

/*
 * The fast path for the message a call receives fifty times a second. Twilio sends media as
 *   {"event":"media","sequenceNumber":"3","media":{"track":"inbound","chunk":"1","timestamp":"5","payload":"…"},"streamSid":"MZ…"}
 * (https://www.twilio.com/docs/voice/media-streams/websocket-messages#media-message). A text
 * that is exactly this template — 1 to 10 digits where numbers go, base64 characters in the
 * payload, letters, digits and '_' in the track and streamSid, nothing else anywhere — is read
 * with one regular expression (compiled to native code: ~0.4 µs against JSON.parse's ~1.2 µs
 * for this message, which also builds an object tree) and gives what the general path would.
 * Anything else (other key order, whitespace, escapes, numbers as JSON numbers) takes the
 * general path, so no input is judged differently.
 */
const MEDIA_TEMPLATE = /^\{"event":"media","sequenceNumber":"(\d{1,10})","media":\{"track":"(\w*)","chunk":"(\d{1,10})","timestamp":"(\d{1,10})","payload":"([A-Za-z0-9+/=]*)"\},"streamSid":"(\w{1,256})"\}$/;

/** The fast path alone (exported for its equivalence test): undefined when the text is not exactly the template. */
export function fastMedia(text: string): ParseResult | undefined {
  const m = MEDIA_TEMPLATE.exec(text);
  if (m === null) return undefined;
  const sequenceNumber = intField(m[1]);
  const chunk = intField(m[3]);
  const timestampMs = intField(m[4]);
  if (Number.isNaN(sequenceNumber) || Number.isNaN(chunk) || Number.isNaN(timestampMs)) return undefined; // over 2^32 − 1: the general path says so
  return { ok: true, message: { event: 'media', sequenceNumber, streamSid: m[6]!, track: m[2]!, chunk, timestampMs, payload: m[5]! } };
}

export function parseTwilioMessage(text: string): ParseResult {
  const fast = fastMedia(text);
  if (fast) return fast;
  if (text.length > SCAN_FROM_CHARS && nestedTooDeep(text)) return fail(TwilioInputCodes.INVALID, `nested deeper than ${MAX_DEPTH} levels`);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return fail(TwilioInputCodes.JSON, 'not valid JSON');
  }
  if (!isObj(raw)) return fail(TwilioInputCodes.INVALID, 'not a JSON object');
  const event = raw.event;
  switch (event) {
    case 'media': {
      const media = raw.media;
      if (!isObj(media)) return fail(TwilioInputCodes.INVALID, 'media without "media" object');
      const streamSid = str(raw.streamSid);
      if (!streamSid) return fail(TwilioInputCodes.STREAM_SID, 'media without streamSid');
      const payload = media.payload;
      if (typeof payload !== 'string') return fail(TwilioInputCodes.PAYLOAD, 'media.payload is not a string');
      const chunk = intField(media.chunk);
      const timestampMs = intField(media.timestamp);
      const sequenceNumber = raw.sequenceNumber === undefined ? 0 : intField(raw.sequenceNumber);
      if (Number.isNaN(chunk) || Number.isNaN(timestampMs) || Number.isNaN(sequenceNumber)) {
        return fail(TwilioInputCodes.INVALID, 'media.chunk/timestamp/sequenceNumber must be non-negative integers');
      }
      const track = typeof media.track === 'string' ? media.track : 'inbound';
      return { ok: true, message: { event, sequenceNumber, streamSid, track, chunk, timestampMs, payload } };
    }
    case 'connected':
      return { ok: true, message: { event } };
    case 'start': {
      const start = raw.start;
      if (!isObj(start)) return fail(TwilioInputCodes.INVALID, 'start without "start" object');
      const streamSid = str(start.streamSid) ?? str(raw.streamSid);
      if (!streamSid) return fail(TwilioInputCodes.STREAM_SID, 'start without streamSid');
      // Twilio's SIDs are a two-letter prefix and 32 hex digits; anything else is not Twilio
      // (and would become a call record keyed by whatever a client chose).
      if (!isSid('MZ', streamSid)) return fail(TwilioInputCodes.STREAM_SID, 'start.streamSid is not MZ + 32 hex digits');
      const callSid = str(start.callSid);
      if (!callSid) return fail(TwilioInputCodes.INVALID, 'start without callSid');
      if (!isSid('CA', callSid)) return fail(TwilioInputCodes.INVALID, 'start.callSid is not CA + 32 hex digits');
      const accountSid = str(start.accountSid) ?? '';
      if (accountSid !== '' && !isSid('AC', accountSid)) return fail(TwilioInputCodes.INVALID, 'start.accountSid is not AC + 32 hex digits');
      const tracks = Array.isArray(start.tracks) ? start.tracks.filter((t): t is string => typeof t === 'string') : ['inbound'];
      const customParameters: Record<string, string> = {};
      if (start.customParameters !== undefined) {
        if (!isObj(start.customParameters)) return fail(TwilioInputCodes.INVALID, 'start.customParameters is not an object');
        for (const [k, v] of Object.entries(start.customParameters)) {
          if (typeof v === 'string') customParameters[k] = v;
          else if (typeof v === 'number' || typeof v === 'boolean') customParameters[k] = String(v);
        }
      }
      const mf = isObj(start.mediaFormat) ? start.mediaFormat : {};
      const mediaFormat = {
        encoding: typeof mf.encoding === 'string' ? mf.encoding : 'audio/x-mulaw',
        sampleRate: typeof mf.sampleRate === 'number' ? mf.sampleRate : 8000,
        channels: typeof mf.channels === 'number' ? mf.channels : 1,
      };
      if (mediaFormat.encoding !== 'audio/x-mulaw' || mediaFormat.sampleRate !== 8000 || mediaFormat.channels !== 1) {
        return fail(TwilioInputCodes.INVALID, `unsupported media format ${mediaFormat.encoding}/${mediaFormat.sampleRate}/${mediaFormat.channels}`);
      }
      const sequenceNumber = raw.sequenceNumber === undefined ? 0 : intField(raw.sequenceNumber);
      if (Number.isNaN(sequenceNumber)) return fail(TwilioInputCodes.INVALID, 'bad sequenceNumber');
      return { ok: true, message: { event, sequenceNumber, streamSid, accountSid, callSid, tracks, customParameters, mediaFormat } };
    }
    case 'dtmf': {
      const streamSid = str(raw.streamSid);
      if (!streamSid) return fail(TwilioInputCodes.STREAM_SID, 'dtmf without streamSid');
      const dtmf = raw.dtmf;
      const digit = isObj(dtmf) ? dtmf.digit : undefined;
      if (typeof digit !== 'string' || !/^[0-9A-D*#w]$/.test(digit)) return fail(TwilioInputCodes.INVALID, 'dtmf.digit must be one of 0-9 A-D * # w');
      const sequenceNumber = raw.sequenceNumber === undefined ? 0 : intField(raw.sequenceNumber);
      if (Number.isNaN(sequenceNumber)) return fail(TwilioInputCodes.INVALID, 'bad sequenceNumber');
      return { ok: true, message: { event, sequenceNumber, streamSid, digit } };
    }
    case 'mark': {
      const streamSid = str(raw.streamSid);
      if (!streamSid) return fail(TwilioInputCodes.STREAM_SID, 'mark without streamSid');
      const mark = raw.mark;
      const name = isObj(mark) ? str(mark.name, 1024) : undefined;
      if (!name) return fail(TwilioInputCodes.INVALID, 'mark without mark.name');
      const sequenceNumber = raw.sequenceNumber === undefined ? 0 : intField(raw.sequenceNumber);
      if (Number.isNaN(sequenceNumber)) return fail(TwilioInputCodes.INVALID, 'bad sequenceNumber');
      return { ok: true, message: { event, sequenceNumber, streamSid, name } };
    }
    case 'stop': {
      const streamSid = str(raw.streamSid);
      if (!streamSid) return fail(TwilioInputCodes.STREAM_SID, 'stop without streamSid');
      const stop = isObj(raw.stop) ? raw.stop : {};
      const sequenceNumber = raw.sequenceNumber === undefined ? 0 : intField(raw.sequenceNumber);
      if (Number.isNaN(sequenceNumber)) return fail(TwilioInputCodes.INVALID, 'bad sequenceNumber');
      return { ok: true, message: { event, sequenceNumber, streamSid, callSid: str(stop.callSid) ?? '' } };
    }
    default:
      // Never String() an arbitrary value here: a deeply nested array recurses in
      // Array#join and overflows the stack (found by the fuzz test).
      return fail(TwilioInputCodes.UNKNOWN_EVENT, `unknown event ${typeof event === 'string' ? JSON.stringify(event.slice(0, 40)) : `of type ${event === null ? 'null' : Array.isArray(event) ? 'array' : typeof event}`}`);
  }
}

/** base64 of a 160-byte frame is exactly 216 characters. */
export const FRAME_PAYLOAD_B64_LENGTH = 216;

// Outbound messages (no sequenceNumber, as in Twilio's examples). streamSid is validated at start
// (Twilio's are "MZ" + 32 hex), so it needs no JSON escaping; JSON.stringify keeps it safe anyway.
export function buildMedia(streamSid: string, payloadB64: string): string {
  return `{"event":"media","streamSid":${JSON.stringify(streamSid)},"media":{"payload":"${payloadB64}"}}`;
}
export function buildMark(streamSid: string, name: string): string {
  return `{"event":"mark","streamSid":${JSON.stringify(streamSid)},"mark":{"name":${JSON.stringify(name)}}}`;
}
export function buildClear(streamSid: string): string {
  return `{"event":"clear","streamSid":${JSON.stringify(streamSid)}}`;
}
