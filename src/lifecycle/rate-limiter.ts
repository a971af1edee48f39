/**
 * A token bucket per source address for the voice webhook: `ratePerMin` tokens a
 * minute, bursts up to `burst` (default: 10 seconds' worth, at least 10). The source
 * is fastify's `req.ip`, which honours X-Forwarded-For only from peers that
 * `trustProxy` (BRIDGE_TRUST_PROXY) trusts — a client on the Internet cannot pick
 * its own bucket by sending the header.
 *
 * Memory is bounded: at most `maxSources` buckets, least recently seen dropped
 * first (a dropped bucket comes back full, which only errs towards admitting).
 */

import { ErrorCodes } from '../errors.js';

/** Too many voice-webhook requests from one source (HTTP 429, Retry-After; src/errors.ts). */
export const RateLimitCodes = {
  RATE_LIMITED: ErrorCodes.RATE_LIMITED,
} as const;

export interface RateLimiterOptions {
  ratePerMin: number;
  burst?: number;
  maxSources?: number;
  now?: () => number;
}

interface Bucket {
  tokens: number;
  atMs: number;
}

export class RateLimiter {
  readonly ratePerMin: number;
  readonly burst: number;
  readonly #maxSources: number;
  readonly #now: () => number;
  readonly #buckets = new Map<string, Bucket>();
  #limited = 0;

  constructor(options: RateLimiterOptions) {
    this.ratePerMin = options.ratePerMin;
    this.burst = options.burst ?? Math.max(10, Math.ceil(options.ratePerMin / 6));
    this.#maxSources = options.maxSources ?? 10_000;
    this.#now = options.now ?? Date.now;
  }

  /** Requests refused so far. */
  get limitedCount(): number {
    return this.#limited;
  }

  /** Takes a token for `source`: 0 when allowed, else the seconds until one is available (Retry-After). */
  take(source: string): number {
    const now = this.#now();
    const perMs = this.ratePerMin / 60_000;
    let b = this.#buckets.get(source);
    if (b) {
      this.#buckets.delete(source); // re-inserted below: Map order = least recently seen first
      b.tokens = Math.min(this.burst, b.tokens + (now - b.atMs) * perMs);
      b.atMs = now;
    } else {
      b = { tokens: this.burst, atMs: now };
      if (this.#buckets.size >= this.#maxSources) this.#buckets.delete(this.#buckets.keys().next().value!);
    }
    this.#buckets.set(source, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    this.#limited++;
    return Math.max(1, Math.ceil((1 - b.tokens) / perMs / 1000));
  }
}
