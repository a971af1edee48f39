/**
 * Stream tokens: a stream is bound to the webhook that asked for it.
 *
 * Twilio signs the Media Streams upgrade over the stream URL, which is the same for
 * every call, so one observed `X-Twilio-Signature` would open any number of streams
 * naming any CallSid. The voice webhook therefore puts a per-call token in a stream
 * `<Parameter>` (Twilio returns it in `start.customParameters`):
 *
 *   vb_token = <expiryMs>.<mac>            mac = base64url(HMAC-SHA256(key, "<CallSid>.<expiryMs>"))
 *   vb_token = <expiryMs>.o<nonce>.<mac>   an outbound call (POST /calls: the CallSid is not known
 *                                          when its TwiML is written): mac over "o<nonce>.<expiryMs>"
 *
 * With signature checks on, a `start` whose token is missing, malformed, expired,
 * for another CallSid or already used is refused: the stream is closed before any
 * agent is connected or any record is written. The key is derived from
 * TWILIO_AUTH_TOKEN (HMAC(authToken, "voice-bridge stream token v1")), so every
 * instance sharing the Twilio account accepts every other's tokens — a stream may
 * land on another instance than its webhook — with nothing more to configure.
 * One use per token is enforced per process (a replay to another instance within
 * the expiry is not detected; its CallSid must still match the token).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const STREAM_TOKEN_PARAM = 'vb_token';
/** How long a token stays valid: Twilio dials the stream within about a second of the webhook. */
export const STREAM_TOKEN_TTL_MS = 120_000;

export type StreamTokenProblem = 'missing' | 'malformed' | 'expired' | 'mismatch' | 'reused';

export function streamTokenKey(authToken: string): Buffer {
  return createHmac('sha256', authToken).update('voice-bridge stream token v1').digest();
}

function mac(key: Buffer, subject: string, expiry: number): Buffer {
  return createHmac('sha256', key).update(`${subject}.${expiry}`).digest();
}

/** A token for one call's stream (inbound: bound to its CallSid). */
export function mintStreamToken(key: Buffer, callSid: string, nowMs = Date.now(), ttlMs = STREAM_TOKEN_TTL_MS): string {
  const expiry = nowMs + ttlMs;
  return `${expiry}.${mac(key, callSid, expiry).toString('base64url')}`;
}

/** A token for an outbound call's stream, whose CallSid is not known yet: bound to a nonce, good once. */
export function mintOutboundStreamToken(key: Buffer, nowMs = Date.now(), ttlMs = STREAM_TOKEN_TTL_MS): string {
  const expiry = nowMs + ttlMs;
  const subject = `o${randomBytes(12).toString('base64url')}`;
  return `${expiry}.${subject}.${mac(key, subject, expiry).toString('base64url')}`;
}

const TOKEN_RE = /^(\d{13})\.(?:(o[A-Za-z0-9_-]{16})\.)?([A-Za-z0-9_-]{43})$/;

/** Checks a token against the stream's CallSid; undefined when valid. Does not mark it used (see StreamTokenGuard). */
export function checkStreamToken(key: Buffer, token: string | undefined, callSid: string, nowMs = Date.now()): StreamTokenProblem | undefined {
  if (token === undefined || token === '') return 'missing';
  const m = TOKEN_RE.exec(token);
  if (!m) return 'malformed';
  const expiry = Number(m[1]);
  const want = mac(key, m[2] ?? callSid, expiry);
  const got = Buffer.from(m[3]!, 'base64url');
  if (got.length !== want.length || !timingSafeEqual(got, want)) return 'mismatch';
  if (expiry < nowMs) return 'expired';
  return undefined;
}

/** Remembers used tokens until they expire: a token opens one stream per process. */
export class StreamTokenGuard {
  readonly #key: Buffer;
  readonly #used = new Map<string, number>();
  readonly #now: () => number;

  constructor(authToken: string, now: () => number = Date.now) {
    this.#key = streamTokenKey(authToken);
    this.#now = now;
  }

  get key(): Buffer {
    return this.#key;
  }

  mint(callSid: string): string {
    return mintStreamToken(this.#key, callSid, this.#now());
  }

  mintOutbound(): string {
    return mintOutboundStreamToken(this.#key, this.#now());
  }

  /** Validates and consumes the token; undefined when the stream may go on. */
  admit(token: string | undefined, callSid: string): StreamTokenProblem | undefined {
    const now = this.#now();
    const problem = checkStreamToken(this.#key, token, callSid, now);
    if (problem) return problem;
    for (const [t, exp] of this.#used) {
      if (exp >= now) break; // insertion order ≈ expiry order (one TTL)
      this.#used.delete(t);
    }
    if (this.#used.has(token!)) return 'reused';
    this.#used.set(token!, Number(token!.slice(0, 13)));
    return undefined;
  }
}
