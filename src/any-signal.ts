/**
 * A signal that aborts when the first of `signals` does, with that signal's reason — what
 * `AbortSignal.any()` promises, without its Node 20 failure.
 *
 * Why not `AbortSignal.any()`: a signal from `AbortSignal.timeout()` is held only weakly by
 * its own timer, and on Node 20 a composite from `AbortSignal.any()` does not hold its
 * sources either. A timeout that nothing else references is collected at the next GC and
 * never fires, so the composite never aborts (nodejs/node#57736; on Node 20.20,
 * `AbortSignal.any([AbortSignal.timeout(100), c.signal])` followed by a GC is still
 * unaborted after 500 ms). For the bridge that meant a connect deadline or a dial timeout
 * that silently did not apply. Here each source gets an `abort` listener, which Node counts
 * as a reason to keep a timeout signal alive until it fires, and the listeners are removed
 * from the other sources once the composite aborts.
 *
 * Listeners on sources that never abort stay until those sources are collected: pass
 * long-lived signals (a session's lifetime) only for bounded work, as every caller here does.
 */
export function anySignal(signals: readonly AbortSignal[]): AbortSignal {
  const ac = new AbortController();
  const unhook: (() => void)[] = [];
  for (const s of signals) {
    if (s.aborted) {
      ac.abort(s.reason);
      break;
    }
    const onAbort = (): void => {
      for (const u of unhook) u();
      ac.abort(s.reason);
    };
    s.addEventListener('abort', onAbort, { once: true });
    unhook.push(() => s.removeEventListener('abort', onAbort));
  }
  if (ac.signal.aborted) for (const u of unhook) u();
  return ac.signal;
}
