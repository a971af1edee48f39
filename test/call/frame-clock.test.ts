/** The shared 20 ms clock: one timer for all subscribers, no drift, resync after a stall. */
import { describe, expect, it, vi } from 'vitest';
import { FrameClock } from '../../src/call/frame-clock.js';
import { watchHeldUp } from '../helpers/held-up.js';

describe('FrameClock', () => {
  it('drives every subscriber from one tick loop, and stops when the last one leaves', async () => {
    const clock = new FrameClock();
    const a: number[] = [];
    const b: number[] = [];
    const offA = clock.subscribe((t) => a.push(t));
    const offB = clock.subscribe((t) => b.push(t));
    const offC = clock.subscribe(() => undefined);
    await new Promise((r) => setTimeout(r, 200));
    expect(a.length).toBeGreaterThanOrEqual(5);
    // One tick serves all three (a timer per subscriber would count three ticks per period).
    expect(clock.stats().ticks).toBe(a.length);
    expect(b).toEqual(a); // the same ticks, the same times
    offA();
    offB();
    offC();
    expect(clock.stats().subscribers).toBe(0);
    const ticks = clock.stats().ticks;
    await new Promise((r) => setTimeout(r, 80));
    expect(clock.stats().ticks).toBe(ticks); // the timer is gone
  });

  it('is drift-free: next = previous schedule + 20 ms, so lateness never accumulates', async () => {
    const clock = new FrameClock();
    const ticks: number[] = [];
    const held = watchHeldUp(1);
    await new Promise<void>((resolve) => {
      const off = clock.subscribe((t) => {
        ticks.push(t);
        if (ticks.length === 51) {
          off();
          resolve();
        }
      });
    });
    // 50 periods: a timer re-armed from each late callback would drift by the sum of its
    // latenesses; this one's mean period stays 20 ms to within the last tick's lateness / 50.
    // (A loaded machine can hold up the first or the last tick: that lateness, spread over 50 periods, is allowed.)
    held.stop();
    const meanPeriod = (ticks[50]! - ticks[0]!) / 50;
    expect(Math.abs(meanPeriod - 20)).toBeLessThan(0.5 + held.slackMs() / 50);
  });

  it('after a long stall it restarts from now instead of firing a burst of stale ticks', async () => {
    const clock = new FrameClock({ resyncAfterMs: 100 });
    const ticks: number[] = [];
    const off = clock.subscribe((t) => ticks.push(t));
    await new Promise((r) => setTimeout(r, 50));
    const stallEnd = FrameClock.now() + 400;
    while (FrameClock.now() < stallEnd) {
      /* a blocked event loop */
    }
    const atStall = ticks.length;
    await new Promise((r) => setTimeout(r, 100));
    off();
    expect(clock.stats().resyncs).toBeGreaterThanOrEqual(1);
    // ~5 ticks in 100 ms, not the ~20 missed during the stall.
    expect(ticks.length - atStall).toBeLessThanOrEqual(8);
  });

  it('one tick loop when, inside a tick, the last subscriber leaves and another joins (calls go on and off the clock as they have work)', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    try {
      const clock = new FrameClock();
      const b: number[] = [];
      let offB: (() => void) | undefined;
      const offA = clock.subscribe(() => {
        offA(); // the only subscriber leaves…
        offB = clock.subscribe((t) => b.push(t)); // …and another joins, in the same tick
      });
      vi.advanceTimersByTime(20 * 11);
      // Ticks at 20, 40, …, 220 ms; B from the tick it joined in (a Set visits what is added during iteration).
      expect(clock.stats().ticks).toBe(11);
      expect(b).toEqual(Array.from({ length: 11 }, (_, i) => 20 * (i + 1)));
      // One timer armed: the join did not start a second loop beside the one the tick re-arms.
      expect(vi.getTimerCount()).toBe(1);
      offB!();
      expect(vi.getTimerCount()).toBe(0); // and the last one leaving stops it
    } finally {
      vi.useRealTimers();
    }
  });
});
