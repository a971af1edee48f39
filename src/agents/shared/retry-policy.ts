/**
 * RetryPolicy: how an adapter gets a session back after its socket was lost — one
 * backoff and one quick-failure rule for every provider that resumes (OpenAI, Gemini,
 * Hume, Pipecat); what "resume" means stays with the adapter.
 *
 * - Attempts: the first right away, then after baseMs, 2·baseMs, … up to maxMs
 *   (exponential backoff; the first retry is immediate because most drops are one-off).
 * - Only retryable errors are retried (BridgeError.retryable: 429, 5xx, network,
 *   timeouts, abnormal closes); auth and configuration refusals end at once.
 * - Quick failures: a service that accepts the resume and drops again at once would
 *   loop forever. A loss within stableMs of the last recovery counts against the same
 *   budget; after `attempts` such losses in a row the session gives up.
 */
import { BridgeError } from '../../errors.js';
import { toBridgeError } from './socket-errors.js';

export interface RetryPolicyOptions {
  /** Attempts per recovery (and quick losses in a row tolerated). 0: never retry. */
  readonly attempts: number;
  readonly baseMs?: number;
  readonly maxMs?: number;
  /** A session that lasted this long after a recovery counts as stable. Default 10 s. */
  readonly stableMs?: number;
}

export type RetryOutcome<T> = { ok: true; value: T } | { ok: false; error: BridgeError; attempts: number; aborted: boolean };

export class RetryPolicy {
  readonly attempts: number;
  readonly #baseMs: number;
  readonly #maxMs: number;
  readonly #stableMs: number;
  #recoveredAt: number | undefined;
  #quickLosses = 0;

  constructor(o: RetryPolicyOptions) {
    this.attempts = o.attempts;
    this.#baseMs = o.baseMs ?? 250;
    this.#maxMs = o.maxMs ?? 2000;
    this.#stableMs = o.stableMs ?? 10_000;
  }

  /** Wait before attempt `n` (1-based). */
  delayMs(n: number): number {
    return n <= 1 ? 0 : Math.min(this.#maxMs, this.#baseMs * 2 ** (n - 2));
  }

  /**
   * A session was lost: whether to try to recover. False when retries are off, or after
   * `attempts` losses in a row each within stableMs of the recovery before it.
   */
  lost(): boolean {
    const quick = this.#recoveredAt !== undefined && Date.now() - this.#recoveredAt < this.#stableMs;
    this.#quickLosses = quick ? this.#quickLosses + 1 : 0;
    return this.attempts > 0 && this.#quickLosses < this.attempts;
  }

  /** Quick losses in a row so far (for messages). */
  get quickLosses(): number {
    return this.#quickLosses;
  }

  /** A session is back (resumed, reconnected). */
  recovered(): void {
    this.#recoveredAt = Date.now();
  }

  /**
   * Runs `attempt` until it succeeds, a non-retryable error, `attempts` tries, or `signal`
   * aborts; `onRetry` sees each retryable failure before the next wait.
   */
  async run<T>(attempt: (n: number) => Promise<T>, signal: AbortSignal, onRetry?: (error: BridgeError, n: number) => void): Promise<RetryOutcome<T>> {
    let last: BridgeError | undefined;
    for (let n = 1; n <= Math.max(1, this.attempts); n++) {
      if (!(await sleep(this.delayMs(n), signal))) return { ok: false, error: last ?? toBridgeError('retry', signal.reason), attempts: n - 1, aborted: true };
      try {
        return { ok: true, value: await attempt(n) };
      } catch (e) {
        last = toBridgeError('retry', e);
        if (signal.aborted) return { ok: false, error: last, attempts: n, aborted: true };
        if (!last.retryable || n >= this.attempts) return { ok: false, error: last, attempts: n, aborted: false };
        onRetry?.(last, n);
      }
    }
    return { ok: false, error: last!, attempts: this.attempts, aborted: false };
  }
}

/** Resolves true after `ms`, false at once when `signal` aborts (before or during the wait). */
export function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  if (ms <= 0) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      resolve(false);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
