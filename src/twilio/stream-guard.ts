/**
 * The Twilio leg's guards for one Media Streams socket, before a message reaches the
 * call (src/call/call-session.ts) — the hostile-peer rules of the Twilio side in one place:
 *
 *   flood     a token bucket: Twilio sends ~50 messages/s per call (one media frame per
 *             20 ms, plus marks and DTMF); 5× that is allowed sustained with a burst of
 *             1,000; the excess is dropped and counted, and a call that keeps flooding ends
 *   size      a message over BRIDGE_MAX_MESSAGE_BYTES is dropped and counted (the call goes on)
 *   liveness  when the socket was last heard from, and whether a ping is out: the call
 *             manager's one watchdog pings a started stream that went quiet and closes it
 *             when the ping goes unanswered (src/call/call-manager.ts)
 */
import type { RawData } from 'ws';
import { TwilioInputCodes, type TwilioInputCode } from './messages.js';

export const FLOOD_RATE_PER_S = 250;
export const FLOOD_BURST = 1000;
/** Messages dropped for flooding before the call is ended. */
export const FLOOD_CLOSE_AFTER = 10_000;

/** What becomes of one message from Twilio. */
export type Admission =
  | { kind: 'text'; text: string }
  | { kind: 'binary' }
  | { kind: 'refused'; code: TwilioInputCode; detail: string; close?: 'twilio-flood' };

export class StreamGuard {
  readonly #maxBytes: number;
  #tokens = FLOOD_BURST;
  #last: number;
  #dropped = 0;
  /** When the socket last sent anything (a message or a pong), frame-clock ms. */
  lastMessageAt: number;
  /** When the watchdog's ping went out, until the peer answers. */
  pingedAt: number | undefined;

  constructor(maxBytes: number, nowMs: number) {
    this.#maxBytes = maxBytes;
    this.#last = nowMs;
    this.lastMessageAt = nowMs;
  }

  /** A message arrived at `nowMs`: what the call gets of it. */
  admit(data: RawData, isBinary: boolean, nowMs: number): Admission {
    this.heard(nowMs);
    this.#tokens = Math.min(FLOOD_BURST, this.#tokens + ((nowMs - this.#last) / 1000) * FLOOD_RATE_PER_S);
    this.#last = nowMs;
    if (this.#tokens < 1) {
      return { kind: 'refused', code: TwilioInputCodes.FLOOD, detail: "message rate far above Twilio's", ...(++this.#dropped >= FLOOD_CLOSE_AFTER ? { close: 'twilio-flood' as const } : {}) };
    }
    this.#tokens -= 1;
    const size = Array.isArray(data) ? data.reduce((n, b) => n + b.length, 0) : data.byteLength;
    if (size > this.#maxBytes) return { kind: 'refused', code: TwilioInputCodes.TOO_LARGE, detail: `${size} bytes > BRIDGE_MAX_MESSAGE_BYTES ${this.#maxBytes}` };
    if (isBinary) return { kind: 'binary' };
    return { kind: 'text', text: Array.isArray(data) ? Buffer.concat(data).toString() : data.toString() };
  }

  /** The peer answered (a message or a pong): it is alive. */
  heard(nowMs: number): void {
    this.lastMessageAt = nowMs;
    this.pingedAt = undefined;
  }
}
