/**
 * Whether this process takes a new call, and if not, why — one decision shared by
 * the voice webhook, the Media Streams upgrade and `/readyz`.
 *
 * ```text
 *   voice webhook ──► admitWebhook() ── refused ──► TwiML <Say> + <Hangup> (polite refusal)
 *        │ admitted: reserve(CallSid) — counted until its stream starts, or RESERVATION_TTL_MS
 *        ▼
 *   stream upgrade ──► admitUpgrade() ── refused ──► HTTP 503 {error: BRIDGE_ERR_*}
 *        │ accepted: trackStream(session) — counted as "pending" until its `start`
 *        ▼
 *   `start` (callStarted) ──► release(CallSid): the call now counts as an active session
 * ```
 *
 * Calls in flight = active sessions + reservations not yet matched by a pending
 * stream. The webhook refuses when the process is draining, at `BRIDGE_MAX_CALLS`,
 * or overloaded (LoadMonitor). The upgrade refuses only when draining or when the
 * sessions alone are at the limit: the load gate is applied where the caller can
 * still be told politely (the webhook); a stream arriving ~1 s after an admitted
 * webhook is not dropped because the load moved meanwhile.
 */
import type { LoadMonitor, LoadSnapshot } from './load-monitor.js';

export type RefusalReason = 'draining' | 'max-calls' | 'overloaded';

/** Error codes for refusals (HTTP 503 on the upgrade; the reason on /readyz). */
export const AdmissionCodes = {
  /** Shutting down: not taking new calls (already in errors.ts). */
  DRAINING: 'BRIDGE_ERR_DRAINING',
  /** BRIDGE_MAX_CALLS calls are in flight. */
  AT_CAPACITY: 'BRIDGE_ERR_AT_CAPACITY',
  /** Event-loop utilisation over BRIDGE_LOAD_THRESHOLD across BRIDGE_LOAD_WINDOW_MS. */
  OVERLOADED: 'BRIDGE_ERR_OVERLOADED',
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
  /** Active sessions (CallManager.activeCount). */
  activeCalls: () => number;
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
  #draining = false;

  constructor(options: AdmissionOptions) {
    this.#active = options.activeCalls;
    this.maxCalls = options.maxCalls;
    this.monitor = options.monitor;
    this.#now = options.now ?? Date.now;
    this.#ttlMs = options.reservationTtlMs ?? RESERVATION_TTL_MS;
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

  /** Calls in flight: active sessions plus admitted webhooks whose stream has not arrived. */
  get inFlight(): number {
    this.#prune();
    return this.#active() + Math.max(0, this.#reserved.size - this.#pendingStreams);
  }

  #refusal(reason: RefusalReason): Refusal {
    switch (reason) {
      case 'draining':
        return { reason, code: AdmissionCodes.DRAINING, message: 'shutting down: not taking new calls' };
      case 'max-calls':
        return { reason, code: AdmissionCodes.AT_CAPACITY, message: `at BRIDGE_MAX_CALLS (${this.maxCalls})` };
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

  /** The Media Streams upgrade: refused only when draining or when the sessions alone fill the limit. */
  admitUpgrade(): Refusal | undefined {
    if (this.#draining) return this.#refusal('draining');
    if (this.maxCalls !== undefined && this.#active() >= this.maxCalls) return this.#refusal('max-calls');
    return undefined;
  }

  /** An accepted stream: it holds a reservation's place until its `start` (or close). */
  trackStream(stream: TrackedStream): void {
    this.#pendingStreams++;
    let done = false;
    const settle = () => {
      if (done) return;
      done = true;
      this.#pendingStreams--;
    };
    stream.once('started', settle);
    stream.once('closed', settle);
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
