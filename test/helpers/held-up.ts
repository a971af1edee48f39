/**
 * How long this process's event loop was held up while a real-time test ran: another suite on
 * the other core, the machine descheduling us, a GC. A test whose peers share the process (the
 * simulator and a scripted server, the simulator and a bridge) sees every such stall as lateness
 * it did not cause, so its upper timing bounds add `slackMs()` — the exact bound still applies on
 * an idle machine, and a loaded one fails only on lateness the stalls do not explain.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

export interface HeldUp {
  /** The longest single stall so far, ms (0 when there was none). */
  readonly maxMs: number;
  /**
   * Lateness the stalls can explain: twice the longest one (a message can wait once to be sent
   * and once to be read), ms.
   */
  slackMs(): number;
  stop(): void;
}

/** Starts watching; `stop()` when the timed part is over (the figures stay readable). */
export function watchHeldUp(resolutionMs = 5): HeldUp {
  const h: IntervalHistogram = monitorEventLoopDelay({ resolution: resolutionMs });
  h.enable();
  let frozen: number | undefined;
  // The histogram counts the timer's own period in every sample: only what is beyond it is a stall.
  const read = () => frozen ?? Math.max(0, h.max / 1e6 - resolutionMs);
  return {
    get maxMs() {
      return read();
    },
    slackMs: () => 2 * read(),
    stop() {
      if (frozen !== undefined) return;
      frozen = read();
      h.disable();
    },
  };
}
