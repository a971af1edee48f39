/**
 * One shared, drift-free 20 ms clock for all calls (after @discordjs/voice's
 * audio cycle): `next += 20` from a fixed origin, never a timer per call.
 * Subscribers get the current time on each tick; they work from elapsed time, so a
 * late tick is caught up by the next one (nothing assumes exactly 20 ms passed).
 * After a stall longer than `resyncAfterMs` (a suspended VM, a debugger) the
 * schedule restarts from now instead of firing a burst of stale ticks.
 */
// The global performance (the same object as node:perf_hooks'), so a test's fake timers can drive it.

export type TickFn = (nowMs: number) => void;

export interface FrameClockStats {
  ticks: number;
  subscribers: number;
  /** Largest lateness of a tick versus its schedule, in ms. */
  maxLateMs: number;
  resyncs: number;
}

export class FrameClock {
  readonly periodMs: number;
  readonly #subs = new Set<TickFn>();
  #timer: NodeJS.Timeout | undefined;
  /** Inside a tick: its end re-arms the timer or drops it (a join or leave then arms or clears nothing). */
  #inTick = false;
  #next = 0;
  #stats: FrameClockStats = { ticks: 0, subscribers: 0, maxLateMs: 0, resyncs: 0 };
  readonly #resyncAfterMs: number;
  readonly #onError: (e: unknown) => void;

  constructor(options: { periodMs?: number; resyncAfterMs?: number; onError?: (e: unknown) => void } = {}) {
    this.periodMs = options.periodMs ?? 20;
    this.#resyncAfterMs = options.resyncAfterMs ?? 1000;
    this.#onError = options.onError ?? ((e) => process.emitWarning(`frame clock subscriber threw: ${String(e)}`));
  }

  static now(): number {
    return performance.now();
  }

  subscribe(fn: TickFn): () => void {
    this.#subs.add(fn);
    if (this.#timer === undefined && !this.#inTick) {
      this.#next = performance.now() + this.periodMs;
      this.#schedule();
    }
    return () => this.unsubscribe(fn);
  }

  unsubscribe(fn: TickFn): void {
    this.#subs.delete(fn);
    if (this.#subs.size === 0 && this.#timer !== undefined && !this.#inTick) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
  }

  stats(): FrameClockStats {
    return { ...this.#stats, subscribers: this.#subs.size };
  }

  #schedule(): void {
    const delay = Math.max(0, this.#next - performance.now());
    this.#timer = setTimeout(this.#tick, delay);
  }

  #tick = (): void => {
    const now = performance.now();
    const late = now - this.#next;
    if (late > this.#stats.maxLateMs) this.#stats.maxLateMs = late;
    this.#stats.ticks++;
    this.#inTick = true;
    for (const fn of this.#subs) {
      try {
        fn(now);
      } catch (e) {
        this.#onError(e);
      }
    }
    this.#inTick = false;
    this.#next += this.periodMs;
    if (now - this.#next > this.#resyncAfterMs) {
      this.#next = now + this.periodMs;
      this.#stats.resyncs++;
    }
    if (this.#subs.size > 0) this.#schedule();
    else this.#timer = undefined;
  };
}
