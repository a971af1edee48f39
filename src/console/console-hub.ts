/**
 * What the call console watches (docs/console.md), pushed to each open page as
 * Server-Sent Events:
 *
 *   live list  every live call of every instance sharing the call-record database: this
 *              process's at once when one starts, ends or changes state; the others' from
 *              the store's live rows, read once a second however many pages watch
 *   levels     caller and agent audio levels of this process's calls, five times a second
 *   barge-ins  as they happen, with the heard position
 *   lost audio caller audio the agent's service never received (callerAudioDroppedMs): in
 *              the live list, and on a call's feed as it grows
 *   a call     its timeline (src/call/timeline.ts) from its first event, then live, to its end
 *
 * Nothing runs while no page watches: the timers start with the first watcher and stop
 * with the last. Caller numbers are redacted unless BRIDGE_LOG_PII allows them.
 */
import type { CallManager } from '../call/call-manager.js';
import type { CallSession, CallState } from '../call/call-session.js';
import { FrameClock } from '../call/frame-clock.js';
import type { CallLevels } from '../call/timeline.js';
import type { CallStore } from '../store/call-store.js';
import type { LiveCallRow } from '../store/sql-ops.js';
import type { SseStream } from './sse.js';

export interface LiveCall {
  callSid: string;
  streamSid: string | null;
  agent: string | null;
  profile: string | null;
  from: string | null;
  to: string | null;
  startedAt: string;
  durationMs: number;
  state: CallState;
  instance: string | null;
  worker: number | null;
  local: boolean;
  bargeIns: number;
  /** Caller audio the agent never received, ms; null for another instance's call (its live row does not carry it). */
  callerAudioDroppedMs: number | null;
}

export interface ConsoleHubDeps {
  calls: CallManager;
  store?: CallStore | undefined;
  /** This process's run (its own live rows are not "another instance's"). */
  runId: () => string | undefined;
  instanceId: string;
  worker: number | null;
  /** BRIDGE_LOG_PII: numbers in clear. */
  pii: boolean;
  /** Whether calls are recorded here (BRIDGE_RECORD). */
  recording: boolean;
  log?: (level: 'warn' | 'debug', msg: string, fields?: Record<string, unknown>) => void;
}

const SNAPSHOT_MS = 1000;
const LEVELS_MS = 200;

/** A number as the console may show it: in clear under `pii`, else all but its last two characters masked. */
export function redactNumber(n: string | null, pii: boolean): string | null {
  if (n === null || pii) return n;
  if (!/^\+?\d{3,}$/.test(n)) return '[redacted]';
  return n.slice(0, -2).replace(/\d/g, '•') + n.slice(-2);
}

export class ConsoleHub {
  readonly #d: ConsoleHubDeps;
  readonly #live = new Set<SseStream>();
  #remote: LiveCall[] = [];
  #snapshotTimer: NodeJS.Timeout | undefined;
  #levelsTimer: NodeJS.Timeout | undefined;
  #scheduled = false;
  #reading = false;

  constructor(d: ConsoleHubDeps) {
    this.#d = d;
    d.calls.on('callStarted', ({ callSid }) => {
      this.#schedule();
      const session = d.calls.session(callSid);
      if (!session) return;
      session.on('state', () => this.#schedule());
      session.timeline?.listen((e) => {
        if (e.type === 'bargeIn') this.#broadcast('bargeIn', { callSid, t: e.t, heardMs: e.heardMs, source: e.source });
      });
    });
    d.calls.on('callEnded', () => this.#schedule());
  }

  /** A page watching the live list: a snapshot now, then every change. */
  watchLive(sse: SseStream): void {
    this.#live.add(sse);
    if (this.#live.size === 1) this.#start();
    sse.send('calls', { at: new Date().toISOString(), calls: this.#snapshot() });
    void sse.closed.then(() => {
      this.#live.delete(sse);
      if (this.#live.size === 0) this.#stop();
    });
  }

  /** A page watching one call of this process: what happened so far, then each event as it comes, to the end. */
  watchCall(session: CallSession, sse: SseStream): void {
    const sendEnded = () => {
      const s = session.summary();
      sse.send('ended', { endReason: s.endReason, durationMs: s.durationMs, callerAudioDroppedMs: s.callerAudioDroppedMs ?? 0 });
      sse.end();
    };
    const view = this.#view(this.#d.calls.live().find((c) => c.session === session) ?? { session, from: null, to: null, profile: null });
    sse.send('call', { call: { ...view, transferTo: session.transferTargets, recording: this.#d.recording } });
    const timeline = session.timeline;
    for (const e of timeline?.events ?? []) sse.send('timeline', e);
    if (session.state === 'closed') return sendEnded();
    const unlisten = timeline?.listen((e) => sse.send('timeline', e));
    // Lost caller audio goes out when it grows (the 'call' event carried it so far).
    let lostMs = view.callerAudioDroppedMs;
    const levels = setInterval(() => {
      if (timeline) sse.send('levels', timeline.levels(FrameClock.now()));
      const lost = session.callerAudioDroppedMs;
      if (lost !== lostMs) sse.send('audio', { callerAudioDroppedMs: (lostMs = lost) });
    }, LEVELS_MS);
    const onClosed = () => sendEnded();
    session.once('closed', onClosed);
    void sse.closed.then(() => {
      clearInterval(levels);
      unlisten?.();
      session.off('closed', onClosed);
    });
  }

  #start(): void {
    this.#snapshotTimer = setInterval(() => void this.#refresh(), SNAPSHOT_MS);
    this.#levelsTimer = setInterval(() => this.#sendLevels(), LEVELS_MS);
    void this.#refresh();
  }

  #stop(): void {
    clearInterval(this.#snapshotTimer);
    clearInterval(this.#levelsTimer);
    this.#snapshotTimer = undefined;
    this.#levelsTimer = undefined;
  }

  /** Reads the other instances' live calls (once at a time), then pushes the list. */
  async #refresh(): Promise<void> {
    const store = this.#d.store;
    if (store && store.stats().backend !== 'off' && !this.#reading) {
      this.#reading = true;
      try {
        const mine = this.#d.runId();
        const rows = await store.liveCalls();
        this.#remote = rows.filter((r) => r.ownerRun !== mine).map((r) => this.#remoteView(r));
      } catch (e) {
        this.#d.log?.('warn', 'console: the live calls of other instances could not be read', { err: e });
      } finally {
        this.#reading = false;
      }
    }
    this.#broadcast('calls', { at: new Date().toISOString(), calls: this.#snapshot() });
  }

  /** A change here: the list goes out once, after the current stretch of work. */
  #schedule(): void {
    if (this.#scheduled || this.#live.size === 0) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#broadcast('calls', { at: new Date().toISOString(), calls: this.#snapshot() });
    });
  }

  #sendLevels(): void {
    const now = FrameClock.now();
    const levels: Record<string, CallLevels> = {};
    for (const { session } of this.#d.calls.live()) {
      if (session.timeline && session.callSid) levels[session.callSid] = session.timeline.levels(now);
    }
    this.#broadcast('levels', { at: new Date().toISOString(), levels });
  }

  #broadcast(event: string, data: unknown): void {
    for (const sse of this.#live) sse.send(event, data);
  }

  #snapshot(): LiveCall[] {
    const local = this.#d.calls.live().map((c) => this.#view(c));
    const seen = new Set(local.map((c) => c.callSid));
    return [...local, ...this.#remote.filter((c) => !seen.has(c.callSid)).map((c) => ({ ...c, durationMs: Math.max(0, Date.now() - Date.parse(c.startedAt)) }))];
  }

  #view(c: { session: CallSession; from: string | null; to: string | null; profile: string | null }): LiveCall {
    const s = c.session;
    const pii = this.#d.pii;
    return {
      callSid: s.callSid ?? '',
      streamSid: s.streamSid ?? null,
      agent: s.agentName,
      profile: c.profile,
      from: redactNumber(c.from, pii),
      to: redactNumber(c.to, pii),
      startedAt: new Date(s.startedAtEpochMs).toISOString(),
      durationMs: Date.now() - s.startedAtEpochMs,
      state: s.state,
      instance: this.#d.instanceId,
      worker: this.#d.worker,
      local: true,
      bargeIns: s.bargeInCount,
      callerAudioDroppedMs: s.callerAudioDroppedMs,
    };
  }

  #remoteView(r: LiveCallRow): LiveCall {
    const pii = this.#d.pii;
    const row = r as LiveCallRow & { profile?: string | null; ownerInstance?: string | null; ownerWorker?: number | null };
    return {
      callSid: r.callSid,
      streamSid: r.streamSid,
      agent: r.agent,
      profile: row.profile ?? null,
      from: redactNumber(r.from, pii),
      to: redactNumber(r.to, pii),
      startedAt: r.startedAt,
      durationMs: 0,
      state: 'streaming',
      instance: row.ownerInstance ?? null,
      worker: row.ownerWorker !== undefined && row.ownerWorker !== null && row.ownerWorker >= 0 ? row.ownerWorker : null,
      local: false,
      bargeIns: r.bargeIns,
      callerAudioDroppedMs: null,
    };
  }
}
