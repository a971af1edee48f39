/**
 * Prometheus metrics for one bridge process (prom-client, one Registry per
 * process — never the global one, so tests and embedders can run several).
 *
 * Where the numbers come from:
 *   - the call core's CallObserver hooks (synchronous, per frame or per event):
 *     frame processing time each way, barge-ins, agent readiness, first agent audio;
 *   - CallManager events: `callStarted` → onCallStarted, `callEnded` → onCallEnded
 *     (end reasons, durations, jitter-buffer and playout counters, bad input);
 *   - collect-time callbacks (run only when /metrics is scraped): active calls, and
 *     optionally the live calls' jitter/playout counters so those move while calls run;
 *   - the process: prom-client's default metrics (nodejs_eventloop_lag_*, GC, heap,
 *     CPU, RSS…) plus an event-loop delay p99 over a fixed window.
 *
 * The per-frame hooks are O(1) and allocation-free (see fast-histogram.ts);
 * everything else runs per call or per scrape.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { CallRecord } from '../call/call-manager.js';
import type { CallSummary } from '../call/call-session.js';
import type { CallObserver } from '../call/hooks.js';
import type { DspLoadInfo } from '../dsp/load.js';
import { FastHistogram, decadeBuckets, type HistogramSeries } from './fast-histogram.js';
import { BoundedLabel, agentLabel, normaliseEndReason, reasonLabel } from './labels.js';

export const METRIC_PREFIX = 'voice_bridge_';

/** Frame processing time buckets (seconds): 1 µs … 10 ms in 1-2-5 steps. */
export const FRAME_BUCKETS_S = decadeBuckets(1e-6, 1e-2);
/** Barge-in reaction (detection → `clear` sent): 100 µs … 1 s. */
export const BARGE_IN_BUCKETS_S = decadeBuckets(1e-4, 1);
/** Agent connect and first agent audio: 10 ms … 20 s. */
export const AGENT_BUCKETS_S = decadeBuckets(1e-2, 20);
/** Call duration: 1 s … 2 h. */
export const DURATION_BUCKETS_S = [1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200];

export const BARGE_IN_SOURCES = ['agent-vad', 'bridge-vad', 'api'] as const;

export interface CallStartedInfo {
  callSid: string;
  streamSid: string;
  agent: string | null;
}

/** What the live-call sampler needs from each running call (CallManager#list() fits). */
export type LiveCallStats = Pick<CallSummary, 'jitter' | 'playout'>;

export interface MetricsOptions {
  /** The DSP backend in use (`dspLoadInfo` from src/dsp/load.ts). */
  dspInfo: () => DspLoadInfo | undefined;
  /** Agent names allowed as label values (e.g. `() => agents.names()`); others count as "other". Default: any name-shaped value, capped. */
  knownAgents?: () => readonly string[];
  /** prom-client's Node default metrics (default true). */
  defaultMetrics?: boolean;
  /** Window of the event-loop delay p99 gauge (default 10 s). */
  eventLoopWindowMs?: number;
}

export interface Metrics {
  readonly registry: Registry;
  /** The Content-Type of `registry.metrics()` (Prometheus text 0.0.4). */
  readonly contentType: string;
  /** Pass as CallManagerDeps.observer. Every method is synchronous, O(1) and allocation-free on the frame path. */
  readonly observer: CallObserver;
  /** `calls.on('callStarted', metrics.onCallStarted)` (bound). */
  readonly onCallStarted: (info: CallStartedInfo) => void;
  /** `calls.on('callEnded', metrics.onCallEnded)` (bound). */
  readonly onCallEnded: (record: CallRecord) => void;
  /** `calls.on('preconnect', metrics.onPreconnect)` (bound): voice_bridge_preconnect_total{outcome}. */
  readonly onPreconnect: (e: { outcome: 'adopted' | 'missed' | 'expired' | 'refused' }) => void;
  /** The active-call gauge reads this at scrape time, e.g. `() => calls.activeCount`. */
  setActiveCalls(fn: () => number): void;
  /**
   * Optional: the running calls' stats, read at scrape time (e.g. `() => calls.list()`),
   * so jitter/underrun counters include calls still in progress. Counters stay monotonic.
   */
  setLiveCalls(fn: () => readonly LiveCallStats[]): void;
  /** Stops the event-loop window timer and monitor (the registry stays readable). */
  close(): void;
}

/**
 * A counter whose value is computed at scrape time: what ended calls added, plus
 * what live calls show now; never decreases (a call's final figures are at least
 * what it showed while running, and the clamp covers any edge).
 */
class SampledCounter {
  readonly type = 'counter';
  readonly aggregator = 'sum';
  ended = 0;
  #last = 0;

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly live: () => number,
  ) {}

  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: { value: number; labels: Record<string, string> }[] }> {
    const v = Math.max(this.#last, this.ended + this.live());
    this.#last = v;
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: [{ value: v, labels: {} }] };
  }

  reset(): void {
    this.ended = 0;
    this.#last = 0;
  }
}

function finiteNonNeg(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : 0;
}

export function createMetrics(options: MetricsOptions): Metrics {
  const registry = new Registry();
  const p = METRIC_PREFIX;
  const agents = agentLabel(options.knownAgents);
  const reasons = reasonLabel();
  const badInputCodes = new BoundedLabel(32, (v) => /^[A-Za-z0-9_.-]{1,64}$/.test(v));
  const agentOf = (a: string | null | undefined): string => (a ? agents.value(a) : 'none');

  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry });

  // ── calls ───────────────────────────────────────────────────────────────────
  let activeCalls: () => number = () => 0;
  new Gauge({
    name: `${p}active_calls`,
    help: 'Calls with a live Media Streams socket in this process (summed across workers).',
    registers: [registry],
    aggregator: 'sum',
    collect() {
      this.set(finiteNonNeg(activeCalls()));
    },
  });
  const started = new Counter({ name: `${p}calls_started_total`, help: 'Streams started (Twilio `start`), by agent.', labelNames: ['agent'], registers: [registry] });
  const ended = new Counter({
    name: `${p}calls_ended_total`,
    help: 'Calls ended, by agent and end reason (reason kind plus BRIDGE_ERR_* code when there is one).',
    labelNames: ['agent', 'reason'],
    registers: [registry],
  });
  const duration = new Histogram({ name: `${p}call_duration_seconds`, help: 'Call duration (stream socket accepted → closed), by agent.', labelNames: ['agent'], buckets: DURATION_BUCKETS_S, registers: [registry] });
  const frames = new Counter({ name: `${p}frames_total`, help: 'Media frames of ended calls: in = from the caller, out = agent audio sent to Twilio.', labelNames: ['direction'], registers: [registry] });
  const badInput = new Counter({ name: `${p}twilio_bad_input_total`, help: 'Rejected Twilio messages of ended calls, by input code.', labelNames: ['code'], registers: [registry] });

  // ── frame path ──────────────────────────────────────────────────────────────
  const frameHist = new FastHistogram(
    `${p}frame_processing_seconds`,
    'Per-frame processing time: inbound = one Twilio media message to the agent hand-off; outbound = one playout tick that sent audio.',
    FRAME_BUCKETS_S,
  );
  registry.registerMetric(frameHist as never);
  const inbound = frameHist.series({ direction: 'inbound' });
  const outbound = frameHist.series({ direction: 'outbound' });

  // ── jitter buffer and playout ───────────────────────────────────────────────
  let liveCalls: (() => readonly LiveCallStats[]) | undefined;
  let snapshot: { at: number; late: number; lost: number; concealed: number; underruns: number } | undefined;
  /** One pass over the live calls per scrape (the four counters share it). */
  const live = (): NonNullable<typeof snapshot> => {
    const now = performance.now();
    if (snapshot && now - snapshot.at < 250) return snapshot;
    const s = { at: now, late: 0, lost: 0, concealed: 0, underruns: 0 };
    if (liveCalls) {
      for (const c of liveCalls()) {
        s.late += finiteNonNeg(c.jitter?.late);
        s.lost += finiteNonNeg(c.jitter?.lost);
        s.concealed += finiteNonNeg(c.jitter?.concealed);
        s.underruns += finiteNonNeg(c.playout?.underruns);
      }
    }
    snapshot = s;
    return s;
  };
  const late = new SampledCounter(`${p}jitter_late_frames_total`, 'Caller frames that arrived after their play-out time (jitter buffer).', () => live().late);
  const lost = new SampledCounter(`${p}jitter_lost_frames_total`, 'Caller frames that never arrived (jitter buffer).', () => live().lost);
  const concealed = new SampledCounter(`${p}jitter_concealed_frames_total`, 'Caller frames synthesised by packet-loss concealment.', () => live().concealed);
  const underruns = new SampledCounter(`${p}playout_underruns_total`, "Playout ticks where agent audio was queued but Twilio's buffer had run dry (audible gaps).", () => live().underruns);
  for (const m of [late, lost, concealed, underruns]) registry.registerMetric(m as never);

  // ── barge-in ────────────────────────────────────────────────────────────────
  const bargeIns = new Counter({ name: `${p}barge_ins_total`, help: 'Barge-ins, by what detected them.', labelNames: ['source'], registers: [registry] });
  const bargeHist = new FastHistogram(`${p}barge_in_reaction_seconds`, 'Barge-in detection → Twilio `clear` sent.', BARGE_IN_BUCKETS_S);
  registry.registerMetric(bargeHist as never);
  const bargeSeries = new Map<string, HistogramSeries>(BARGE_IN_SOURCES.map((s) => [s, bargeHist.series({ source: s })]));
  let bargeOther: HistogramSeries | undefined;

  // ── agents ──────────────────────────────────────────────────────────────────
  const agentConnect = new Histogram({
    name: `${p}agent_connect_seconds`,
    help: "Stream start → agent ready (0 when pre-connected at the voice webhook and ready before the stream).",
    labelNames: ['agent', 'preconnected'],
    buckets: [0, ...AGENT_BUCKETS_S],
    registers: [registry],
  });
  const firstAudio = new Histogram({ name: `${p}first_agent_audio_seconds`, help: "Stream start → the agent's first audio sent to the caller.", labelNames: ['agent'], buckets: AGENT_BUCKETS_S, registers: [registry] });

  // ── process ─────────────────────────────────────────────────────────────────
  // monitorEventLoopDelay records the whole interval between its timer's runs, so an
  // idle loop reads about the resolution; the gauge reports the delay beyond it
  // (prom-client's nodejs_eventloop_lag_p99_seconds keeps the raw figure).
  const LOOP_RESOLUTION_MS = 10;
  const loop: IntervalHistogram = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  loop.enable();
  const loopP99S = (): number => (loop.count > 0 ? Math.max(0, loop.percentile(99) / 1e9 - LOOP_RESOLUTION_MS / 1000) : 0);
  let lastWindowP99S: number | undefined;
  const windowMs = options.eventLoopWindowMs ?? 10_000;
  const loopTimer = setInterval(() => {
    lastWindowP99S = loopP99S();
    loop.reset();
  }, windowMs);
  loopTimer.unref();
  new Gauge({
    name: `${p}eventloop_delay_p99_seconds`,
    help: `Event-loop delay p99 beyond the ${LOOP_RESOLUTION_MS} ms sampling interval, over the last ${windowMs / 1000} s window (the current one until the first completes); max across workers.`,
    registers: [registry],
    aggregator: 'max',
    collect() {
      this.set(lastWindowP99S ?? loopP99S());
    },
  });
  new Gauge({
    name: `${p}dsp_backend`,
    help: 'The DSP backend in use (always 1; the labels say which, its SIMD level and why it fell back, if it did).',
    labelNames: ['backend', 'requested', 'simd', 'fallback'],
    registers: [registry],
    aggregator: 'max',
    collect() {
      this.reset();
      const info = options.dspInfo();
      if (!info) return;
      this.set({ backend: info.backend, requested: info.requested, simd: info.simd ?? '', fallback: (info.fallbackReason ?? '').slice(0, 160) }, 1);
    },
  });

  const observer: CallObserver = {
    inboundFrame(ms: number): void {
      inbound.observe(ms * 1e-3);
    },
    outboundTick(ms: number): void {
      outbound.observe(ms * 1e-3);
    },
    bargeIn(source, reactionMs): void {
      let s = bargeSeries.get(source);
      const label = s ? source : 'other';
      if (!s) s = bargeOther ??= bargeHist.series({ source: 'other' });
      s.observe(reactionMs * 1e-3);
      bargeIns.inc({ source: label });
    },
    agentReady(agent, ms, preconnected): void {
      if (!(ms >= 0) || ms === Infinity) return;
      agentConnect.observe({ agent: agentOf(agent), preconnected: preconnected ? 'true' : 'false' }, ms / 1000);
    },
    firstAgentAudio(agent, ms): void {
      if (!(ms >= 0) || ms === Infinity) return;
      firstAudio.observe({ agent: agentOf(agent) }, ms / 1000);
    },
  };

  const preconnect = new Counter({
    name: `${p}preconnect_total`,
    help: 'Agents pre-connected at the voice webhook, by outcome: adopted by their stream; missed (a stream with nothing prepared on this process: it went elsewhere, or no webhook); expired (no stream within BRIDGE_PRECONNECT_TTL_MS, closed); refused (not attempted: agent unavailable, shutting down, table full).',
    labelNames: ['outcome'],
    registers: [registry],
  });
  for (const outcome of ['adopted', 'missed', 'expired', 'refused']) preconnect.inc({ outcome }, 0);
  const onPreconnect = (e: { outcome: 'adopted' | 'missed' | 'expired' | 'refused' }): void => {
    preconnect.inc({ outcome: e.outcome });
  };

  const onCallStarted = (info: CallStartedInfo): void => {
    started.inc({ agent: agentOf(info.agent) });
  };

  const onCallEnded = (r: CallRecord): void => {
    const agent = agentOf(r.agent);
    ended.inc({ agent, reason: reasons.value(normaliseEndReason(r.endReason)) });
    const d = finiteNonNeg(r.durationMs);
    duration.observe({ agent }, d / 1000);
    frames.inc({ direction: 'in' }, finiteNonNeg(r.framesIn));
    frames.inc({ direction: 'out' }, finiteNonNeg(r.framesOut));
    for (const [code, n] of Object.entries(r.badInput ?? {})) {
      if (finiteNonNeg(n) > 0) badInput.inc({ code: badInputCodes.value(code) }, finiteNonNeg(n));
    }
    late.ended += finiteNonNeg(r.jitter?.late);
    lost.ended += finiteNonNeg(r.jitter?.lost);
    concealed.ended += finiteNonNeg(r.jitter?.concealed);
    underruns.ended += finiteNonNeg(r.playout?.underruns);
    // The call just left the live list: a cached live snapshot would count it twice.
    snapshot = undefined;
  };

  return {
    registry,
    contentType: registry.contentType,
    observer,
    onCallStarted,
    onCallEnded,
    onPreconnect,
    setActiveCalls(fn) {
      activeCalls = fn;
    },
    setLiveCalls(fn) {
      liveCalls = fn;
      snapshot = undefined;
    },
    close() {
      clearInterval(loopTimer);
      loop.disable();
    },
  };
}
