/**
 * Whether this process takes a new call, and if not, why — one decision shared by
 * the voice webhook, the Media Streams upgrade and `/readyz`.
 *
 * ```text
 *   voice webhook ──► admitWebhook() ── refused ──► TwiML <Say> + <Hangup> (polite refusal)
 *        │ admitted: reserve(CallSid) — counted until its stream starts, or RESERVATION_TTL_MS
 *        ▼
 *   stream upgrade ──► admitUpgrade(source) ── refused ──► HTTP 503/429 problem+json {code: BRIDGE_ERR_*}
 *        │ accepted: trackStream(session, source) — "pending" until its `start`
 *        ▼
 *   `start` (callStarted) ──► release(CallSid): the call now counts as a started call
 * ```
 *
 * Calls in flight = started calls + reservations (a reservation ends when its stream
 * starts). A socket counts against BRIDGE_MAX_CALLS only from a valid `start`: before
 * that it is unauthenticated and anyone can open one, so pending sockets are bounded
 * on their own — in total and per source — and closed at the start timeout. The
 * webhook refuses when the process is draining, at `BRIDGE_MAX_CALLS`, or overloaded
 * (LoadMonitor). The upgrade refuses when draining, when started calls fill the limit,
 * or when pending sockets do: the load gate is applied where the caller can still be
 * told politely (the webhook); a stream arriving ~1 s after an admitted webhook is not
 * dropped because the load moved meanwhile.
 */
import type { LoadMonitor, LoadSnapshot } from './load-monitor.js';
import { ErrorCodes } from '../errors.js';

export type RefusalReason = 'draining' | 'max-calls' | 'overloaded' | 'pending-streams';

/** Error codes for refusals (src/errors.ts has their HTTP status on the upgrade; the reason is on /readyz). */
export const AdmissionCodes = {
  DRAINING: ErrorCodes.DRAINING,
  AT_CAPACITY: ErrorCodes.AT_CAPACITY,
  OVERLOADED: ErrorCodes.OVERLOADED,
  PENDING_STREAMS: ErrorCodes.PENDING_STREAMS,
} as const;

export interface Refusal {
  reason: RefusalReason;
  code: (typeof AdmissionCodes)[keyof typeof AdmissionCodes];
  message: string;
}

export interface AdmissionStatus {
  ready: boolean;
  /** Why not ready (the first that applies: draining, max-calls, overloaded). */
  reason: RefusalReason | undefined;
  activeCalls: number;
  /** Calls admitted at the webhook whose stream has not started yet. */
  reservedCalls: number;
  maxCalls: number | null;
  load: LoadSnapshot | null;
}

/** The session events admission follows (a CallSession satisfies it). */
export interface TrackedStream {
  once(event: 'started' | 'closed', fn: (...args: never[]) => void): unknown;
}

/** How long a call admitted at the webhook holds its place while Twilio opens the stream. */
export const RESERVATION_TTL_MS = 30_000;
const MAX_RESERVATIONS = 10_000;

export interface AdmissionOptions {
  /** Started calls (CallManager.startedCount): streams past a valid `start`. */
  activeCalls: () => number;
  /** Sockets before `start`, at most, in total and from one source (defaults 200 and 20). */
  maxPendingStreams?: number;
  maxPendingPerSource?: number;
  maxCalls?: number | undefined;
  monitor?: LoadMonitor | undefined;
  now?: () => number;
  /** How long a webhook's reservation holds (the pre-connect TTL); default RESERVATION_TTL_MS. */
  reservationTtlMs?: number;
}

export class Admission {
  readonly maxCalls: number | undefined;
  readonly monitor: LoadMonitor | undefined;
  readonly #active: () => number;
  readonly #now: () => number;
  readonly #ttlMs: number;
  /** CallSid → expiry (ms). */
  readonly #reserved = new Map<string, number>();
  #pendingStreams = 0;
  readonly #pendingBySource = new Map<string, number>();
  readonly #maxPending: number;
  readonly #maxPendingPerSource: number;
  #draining = false;

  constructor(options: AdmissionOptions) {
    this.#active = options.activeCalls;
    this.maxCalls = options.maxCalls;
    this.monitor = options.monitor;
    this.#now = options.now ?? Date.now;
    this.#ttlMs = options.reservationTtlMs ?? RESERVATION_TTL_MS;
    this.#maxPending = options.maxPendingStreams ?? 200;
    this.#maxPendingPerSource = options.maxPendingPerSource ?? 20;
  }

  get draining(): boolean {
    return this.#draining;
  }

  /** From now on every new call is refused ('draining'). Idempotent. */
  startDraining(): void {
    this.#draining = true;
  }

  #prune(): void {
    const now = this.#now();
    for (const [sid, exp] of this.#reserved) {
      if (exp > now) break; // insertion order = expiry order (same TTL)
      this.#reserved.delete(sid);
    }
  }

  /** Calls in flight: started calls plus admitted webhooks whose stream has not started. */
  get inFlight(): number {
    this.#prune();
    return this.#active() + this.#reserved.size;
  }

  #refusal(reason: RefusalReason): Refusal {
    switch (reason) {
      case 'draining':
        return { reason, code: AdmissionCodes.DRAINING, message: 'shutting down: not taking new calls' };
      case 'max-calls':
        return { reason, code: AdmissionCodes.AT_CAPACITY, message: `at BRIDGE_MAX_CALLS (${this.maxCalls})` };
      case 'pending-streams':
        return { reason, code: AdmissionCodes.PENDING_STREAMS, message: `too many streams waiting for their start (at most ${this.#maxPending} in total, ${this.#maxPendingPerSource} per source)` };
      case 'overloaded': {
        const s = this.monitor?.snapshot();
        return { reason, code: AdmissionCodes.OVERLOADED, message: `event-loop load ${s?.load ?? '?'} over the ${s?.threshold ?? '?'} threshold` };
      }
    }
  }

  /** The voice webhook: admit (and reserve a place for the CallSid) or refuse. */
  admitWebhook(callSid: string | undefined): Refusal | undefined {
    const why = this.#webhookRefusal();
    if (why) return this.#refusal(why);
    if (callSid !== undefined && !this.#reserved.has(callSid)) {
      this.#reserved.set(callSid, this.#now() + this.#ttlMs);
      if (this.#reserved.size > MAX_RESERVATIONS) this.#reserved.delete(this.#reserved.keys().next().value!);
    }
    return undefined;
  }

  #webhookRefusal(): RefusalReason | undefined {
    if (this.#draining) return 'draining';
    if (this.maxCalls !== undefined && this.inFlight >= this.maxCalls) return 'max-calls';
    if (this.monitor?.overloaded) return 'overloaded';
    return undefined;
  }

  /** The Media Streams upgrade: refused when draining, when started calls fill the limit, or when pending sockets do. */
  admitUpgrade(source = ''): Refusal | undefined {
    if (this.#draining) return this.#refusal('draining');
    if (this.maxCalls !== undefined && this.#active() >= this.maxCalls) return this.#refusal('max-calls');
    if (this.#pendingStreams >= this.#maxPending || (this.#pendingBySource.get(source) ?? 0) >= this.#maxPendingPerSource) return this.#refusal('pending-streams');
    return undefined;
  }

  /** An accepted stream: pending (bounded, counted per source) until its `start` or close. */
  trackStream(stream: TrackedStream, source = ''): void {
    this.#pendingStreams++;
    this.#pendingBySource.set(source, (this.#pendingBySource.get(source) ?? 0) + 1);
    let done = false;
    const settle = () => {
      if (done) return;
      done = true;
      this.#pendingStreams--;
      const n = (this.#pendingBySource.get(source) ?? 1) - 1;
      if (n <= 0) this.#pendingBySource.delete(source);
      else this.#pendingBySource.set(source, n);
    };
    stream.once('started', settle);
    stream.once('closed', settle);
  }

  /** Sockets accepted and not yet started. */
  get pendingStreams(): number {
    return this.#pendingStreams;
  }

  /**
   * The call's stream started here (its reservation is now an active session), or
   * its pre-connect expired (the stream went to another process, or never came).
   */
  release(callSid: string): void {
    this.#reserved.delete(callSid);
  }

  /** For /readyz: not ready when draining, at the call limit, or overloaded. */
  status(): AdmissionStatus {
    const reason = this.#webhookRefusal();
    return {
      ready: reason === undefined,
      reason,
      activeCalls: this.#active(),
      reservedCalls: (this.#prune(), this.#reserved.size),
      maxCalls: this.maxCalls ?? null,
      load: this.monitor?.snapshot() ?? null,
    };
  }
}
