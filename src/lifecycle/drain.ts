/**
 * Graceful drain (SIGTERM/SIGINT):
 *
 * ```text
 *  signal ─► admission.startDraining()      /readyz 503 'draining'; webhook → <Say>+<Hangup>; upgrade → 503
 *         ─► wait: active calls end by themselves ........ up to BRIDGE_DRAIN_TIMEOUT_MS (a 2nd signal cuts it short)
 *         ─► calls still up: goodbye prompt through the call's own playout, wait (bounded) until
 *            Twilio has acknowledged playing it, close with reason 'drain-timeout'
 *         ─► calls.shutdown() (stragglers: streams that never started, pre-connected agents)
 *         ─► onDrained hooks (call records flushed), each bounded
 *         ─► server closed; the process exits 0
 * ```
 *
 * Nothing here runs on the frame path: the waits poll the call list every 50 ms
 * while draining only.
 */
import type { CallManager } from '../call/call-manager.js';
import type { CallSession } from '../call/call-session.js';
import type { Admission } from './admission.js';

export type DrainHook = () => Promise<void>;

export interface DrainOptions {
  calls: CallManager;
  admission: Admission;
  timeoutMs: number;
  /** 8 kHz μ-law prompt played to calls still up at the timeout (assets/prompts/goodbye.8k-ulaw.wav). */
  goodbye?: Uint8Array | undefined;
  /** Run after the last call has closed, before the server closes (e.g. the call-record store's flush). */
  onDrained?: readonly DrainHook[];
  /** Bound on each onDrained hook. Default 15 s. */
  hookTimeoutMs?: number;
  closeServer: () => Promise<void>;
  /** Aborting it (a second signal) ends the wait for calls at once: straight to the goodbyes. */
  signal?: AbortSignal;
  log?: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
}

export interface DrainReport {
  activeAtStart: number;
  /** Calls that ended by themselves during the drain. */
  endedByThemselves: number;
  /** Calls closed at the timeout (with the goodbye when they were streaming). */
  closedAtTimeout: number;
  goodbyesPlayed: number;
  timedOut: boolean;
  durationMs: number;
  hookFailures: number;
}

const POLL_MS = 50;
/** Beyond the prompt's own length: Twilio's playout lead and the last mark's round trip. */
const GOODBYE_SLACK_MS = 2000;

function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Waits until `cond()` or `ms` elapse or `signal` aborts; resolves to whether `cond()` held. */
async function until(cond: () => boolean, ms: number, signal?: AbortSignal): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (!cond()) {
    const left = deadline - performance.now();
    if (left <= 0 || signal?.aborted) return cond();
    await delay(Math.min(POLL_MS, left), signal);
  }
  return true;
}

/**
 * Plays `prompt` as the call's last words through its playout (after what is already
 * queued), waits — bounded — until Twilio has acknowledged all of it, then closes.
 * Resolves to whether the goodbye was queued.
 *
 * Uses only CallSession's public API (say, summary, close). A dedicated
 * `CallSession.finish(prompt, reason)` — barge-in, queue, await playout.drained(),
 * close — would wait on the playout's own drain promise instead of polling marks.
 */
export async function goodbyeAndClose(session: CallSession, prompt: Uint8Array | undefined, reason: string): Promise<boolean> {
  const before = session.summary().playout;
  const ms = prompt && prompt.length > 0 ? session.say(prompt, 'goodbye') : 0;
  if (ms > 0 && before) {
    const sent0 = before.marksSent;
    const acked0 = before.marksAcked;
    await until(
      () => {
        const p = session.summary().playout;
        if (!p || session.state === 'closed' || session.state === 'closing') return true;
        // Marks come back in order: every mark sent since the goodbye was queued acknowledged = heard.
        return p.queuedMs === 0 && p.marksSent > sent0 && p.marksAcked - acked0 >= p.marksSent - sent0;
      },
      before.queuedMs + ms + GOODBYE_SLACK_MS,
    );
  }
  await session.close(reason);
  return ms > 0;
}

export async function drain(o: DrainOptions): Promise<DrainReport> {
  const t0 = performance.now();
  const log = o.log ?? (() => undefined);
  o.admission.startDraining();
  const activeAtStart = o.calls.activeCount;
  log('info', 'draining: not taking new calls', { activeCalls: activeAtStart, timeoutMs: o.timeoutMs });

  const allEnded = await until(() => o.calls.activeCount === 0, o.timeoutMs, o.signal);
  const remaining = o.calls.activeCount;
  let goodbyesPlayed = 0;
  if (!allEnded) {
    log('warn', 'drain timeout: closing the remaining calls with a goodbye', { activeCalls: remaining });
    const sessions = o.calls
      .list()
      .map((s) => (s.callSid ? o.calls.session(s.callSid) : undefined))
      .filter((s): s is CallSession => s !== undefined);
    const played = await Promise.all(sessions.map((s) => goodbyeAndClose(s, o.goodbye, 'drain-timeout').catch(() => false)));
    goodbyesPlayed = played.filter(Boolean).length;
  }
  // Streams that never started and agents pre-connected at the webhook.
  await o.calls.shutdown('drain-timeout');

  let hookFailures = 0;
  for (const hook of o.onDrained ?? []) {
    const bound = o.hookTimeoutMs ?? 15_000;
    let t: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        hook(),
        new Promise<never>((_, reject) => {
          t = setTimeout(() => reject(new Error(`onDrained hook did not finish within ${bound} ms`)), bound);
        }),
      ]);
    } catch (e) {
      hookFailures++;
      log('error', 'onDrained hook failed', { err: e });
    } finally {
      clearTimeout(t);
    }
  }
  await o.closeServer();
  const report: DrainReport = {
    activeAtStart,
    endedByThemselves: activeAtStart - remaining,
    closedAtTimeout: allEnded ? 0 : remaining,
    goodbyesPlayed,
    timedOut: !allEnded,
    durationMs: Math.round(performance.now() - t0),
    hookFailures,
  };
  log('info', 'drained', { ...report });
  return report;
}
