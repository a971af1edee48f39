/**
 * The Twilio leg's guards for one Media Streams socket, before a message reaches the
 * call (src/call/call-session.ts) — the hostile-peer rules of the Twilio side in one place:
 *
 *   flood     a token bucket: Twilio sends ~50 messages/s per call (one media frame per
 *             20 ms, plus marks and DTMF); 5× that is allowed sustained with a burst of
 *             1,000; the excess is dropped and counted, and a call that keeps flooding ends
 *   size      a message over BRIDGE_MAX_MESSAGE_BYTES is dropped and counted (the call goes on)
 *   backlog   what the bridge has sent and the peer has not read: the playout keeps at most
 *             BRIDGE_PLAYOUT_LEAD_MS (≤ 60 s, ~0.75 MB as media messages) ahead of real time,
 *             so a backlog over 1 MiB — after the kernel's own socket buffers, megabytes on
 *             top — that lasts 5 s is a peer that has stopped reading: the call ends
 *             ('twilio-backpressure') instead of buffering its audio without bound
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
/** Bytes sent and not yet taken by the peer's socket (ws `bufferedAmount`) that, held for SEND_BACKLOG_GRACE_MS, end the call. */
export const SEND_BACKLOG_MAX_BYTES = 1 << 20;
export const SEND_BACKLOG_GRACE_MS = 5000;

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
  /** Since when the send backlog has been over its bound. */
  #backlogSince: number | undefined;

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

  /**
   * The send backlog (ws `bufferedAmount`) at `nowMs`, checked by the watchdog: true once it
   * has stayed over SEND_BACKLOG_MAX_BYTES for SEND_BACKLOG_GRACE_MS — the peer stopped reading.
   */
  backlogged(bufferedBytes: number, nowMs: number): boolean {
    if (bufferedBytes <= SEND_BACKLOG_MAX_BYTES) {
      this.#backlogSince = undefined;
      return false;
    }
    this.#backlogSince ??= nowMs;
    return nowMs - this.#backlogSince >= SEND_BACKLOG_GRACE_MS;
  }

  /** The peer answered (a message or a pong): it is alive. */
  heard(nowMs: number): void {
    this.lastMessageAt = nowMs;
    this.pingedAt = undefined;
  }
}
