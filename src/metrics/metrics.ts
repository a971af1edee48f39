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
import { DROP_REASONS, type EventDeliveryStats } from '../events/event-deliverer.js';
import { TOOL_OUTCOMES, toolOutcome, type ToolResult } from '../tools/run-tool.js';

export const METRIC_PREFIX = 'voice_bridge_';

/** Frame processing time buckets (seconds): 1 µs … 10 ms in 1-2-5 steps. */
export const FRAME_BUCKETS_S = decadeBuckets(1e-6, 1e-2);
/** Barge-in reaction (detection → `clear` sent): 100 µs … 1 s. */
export const BARGE_IN_BUCKETS_S = decadeBuckets(1e-4, 1);
/** Agent connect and first agent audio: 10 ms … 20 s. */
export const AGENT_BUCKETS_S = decadeBuckets(1e-2, 20);
/** Turn response latency: 100 ms … 20 s. */
export const TURN_BUCKETS_S = decadeBuckets(0.1, 20);
/** Tool call duration: 10 ms … 60 s (a tool's timeoutMs is at most 60 s). */
export const TOOL_BUCKETS_S = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** Distinct tool label values kept before new ones become "other" (tool names come from the profiles file). */
export const MAX_TOOL_VALUES = 64;
/** Call duration: 1 s … 2 h. */
export const DURATION_BUCKETS_S = [1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200];

export const BARGE_IN_SOURCES = ['agent-vad', 'bridge-vad', 'api'] as const;

export interface CallStartedInfo {
  callSid: string;
  streamSid: string;
  agent: string | null;
}

/** What the live-call sampler needs from each running call (CallManager#list() fits). */
export type LiveCallStats = Pick<CallSummary, 'jitter' | 'playout'> & Partial<Pick<CallSummary, 'framesIn' | 'framesOut' | 'badInput' | 'callerAudioDroppedMs'>>;

/** Why a call was refused before it became a call (bounded set; anything else counts as "other"). */
export const REFUSAL_REASONS = ['signature', 'rate-limited', 'agent-unavailable', 'profile-unknown', 'option-too-long', 'draining', 'max-calls', 'overloaded', 'pending-streams'] as const;

export interface MetricsOptions {
  /** The DSP backend in use (`dspLoadInfo` from src/dsp/load.ts). */
  dspInfo: () => DspLoadInfo | undefined;
  /** voice_bridge_build_info's labels (default: this package's version and the running Node). */
  build?: { version: string };
  /** The call-record store's counters, read at scrape time (outbox depth, failures). */
  storeStats?: () => { outboxDepth: number; writeFailures: number; outboxWriteFailures: number; written: number } | undefined;
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
  /** A turn's response latency (ms), e.g. from turnLatencyTrace (src/metrics/turns.ts). */
  readonly onTurn: (agent: string, ms: number) => void;
  /** HTTP side: a call refused before it started (voice_bridge_calls_refused_total{stage,reason}). */
  readonly onRefused: (stage: 'webhook' | 'stream', reason: string) => void;
  /** HTTP side: one answered request (voice_bridge_http_responses_total{method,route,code}). */
  readonly onHttpResponse: (method: string, route: string, statusCode: number) => void;
  /** A reload of the profiles file (BRIDGE_PROFILES): voice_bridge_profiles_reloads_total{result}. */
  readonly onProfilesReload: (result: 'ok' | 'error') => void;
  /** The profiles now in force, read at scrape time (voice_bridge_profiles_loaded; 0 until set). Also shows both reload results at 0. */
  setProfilesLoaded(fn: () => number): void;
  /** A tool call's result (src/tools): voice_bridge_tool_calls_total{tool,outcome}, voice_bridge_tool_call_duration_seconds{tool}. Pass as runTool's `observe`. */
  readonly onToolCall: (result: ToolResult) => void;
  /** The event deliverer's counters (src/events), read at scrape time (e.g. `() => deliverer.stats()`). */
  setEventStats(fn: () => EventDeliveryStats | undefined): void;
  /** Stops the event-loop window timer and monitor (the registry stays readable). */
  close(): void;
}

type MetricValue = { value: number; labels: Record<string, string> };

/**
 * A counter whose value is computed at scrape time: what ended calls added, plus
 * what live calls show now; never decreases (a call's final figures are at least
 * what it showed while running, and the clamp covers any edge).
 */
class SampledCounter {
  readonly type = 'counter';
  readonly aggregator = 'sum';
  /** What ended calls added, per label set (the key is the label set as JSON). */
  readonly ended = new Map<string, number>();
  readonly #last = new Map<string, number>();

  constructor(
    readonly name: string,
    readonly help: string,
    /** What the live calls show now, per label set. */
    private readonly live: () => Map<string, number>,
    /** Label sets always exported (0 until something is counted). */
    private readonly always: readonly Record<string, string>[] = [{}],
  ) {}

  add(labels: Record<string, string>, n: number): void {
    const k = JSON.stringify(labels);
    this.ended.set(k, (this.ended.get(k) ?? 0) + n);
  }

  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: MetricValue[] }> {
    const live = this.live();
    const keys = new Set([...this.always.map((l) => JSON.stringify(l)), ...this.ended.keys(), ...live.keys()]);
    const values: MetricValue[] = [];
    for (const k of keys) {
      const v = Math.max(this.#last.get(k) ?? 0, (this.ended.get(k) ?? 0) + (live.get(k) ?? 0));
      this.#last.set(k, v);
      values.push({ value: v, labels: JSON.parse(k) as Record<string, string> });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    this.ended.clear();
    this.#last.clear();
  }
}

const NO_LABELS = JSON.stringify({});
const one = (v: number) => new Map([[NO_LABELS, v]]);

/**
 * Why `auto` fell back to ts, as a label: a short cause without paths or free text
 * (the full reason is on /readyz and in the start-up log).
 */
export function fallbackCause(reason: string | undefined): string {
  if (!reason) return '';
  if (/not built|missing|cannot find|ENOENT/i.test(reason)) return 'addon-missing';
  if (/GLIBC|invalid ELF|wrong ELF|architecture|dlopen|\.node/i.test(reason)) return 'addon-incompatible';
  if (/self-test|mismatch/i.test(reason)) return 'self-test-failed';
  return 'load-error';
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

  if (options.defaultMetrics !== false) {
    collectDefaultMetrics({ register: registry });
    // prom-client's gauges named *_total break Prometheus' naming rule (promtool check metrics);
    // the per-type gauges nodejs_active_{handles,requests,resources} carry the same counts.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) registry.removeSingleMetric(name);
  }

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
  const refused = new Counter({
    name: `${p}calls_refused_total`,
    help: 'Calls refused before they started, by stage (webhook: the voice webhook answered with a refusal or an error status; stream: the Media Streams upgrade was refused) and reason.',
    labelNames: ['stage', 'reason'],
    registers: [registry],
  });
  const refusalReasons = new Set<string>(REFUSAL_REASONS);
  const http = new Counter({
    name: `${p}http_responses_total`,
    help: 'HTTP responses, by method, route (the route pattern, or "unmatched") and status code: 401/403 are refused credentials or signatures, 429 rate limits.',
    labelNames: ['method', 'route', 'code'],
    registers: [registry],
  });
  const routes = new BoundedLabel(64, (v) => v === 'unmatched' || /^\/[A-Za-z0-9_/:.*-]{0,80}$/.test(v));
  const METHODS = new Set(['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS']);

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
  let snapshot: { at: number; late: number; lost: number; concealed: number; underruns: number; framesIn: number; framesOut: number; callerDroppedMs: number; badInput: Map<string, number> } | undefined;
  /** One pass over the live calls per scrape (the four counters share it). */
  const live = (): NonNullable<typeof snapshot> => {
    const now = performance.now();
    if (snapshot && now - snapshot.at < 250) return snapshot;
    const s = { at: now, late: 0, lost: 0, concealed: 0, underruns: 0, framesIn: 0, framesOut: 0, callerDroppedMs: 0, badInput: new Map<string, number>() };
    if (liveCalls) {
      for (const c of liveCalls()) {
        s.late += finiteNonNeg(c.jitter?.late);
        s.lost += finiteNonNeg(c.jitter?.lost);
        s.concealed += finiteNonNeg(c.jitter?.concealed);
        s.underruns += finiteNonNeg(c.playout?.underruns);
        s.framesIn += finiteNonNeg(c.framesIn);
        s.framesOut += finiteNonNeg(c.framesOut);
        s.callerDroppedMs += finiteNonNeg(c.callerAudioDroppedMs);
        for (const [code, n] of Object.entries(c.badInput ?? {})) {
          const k = JSON.stringify({ code: badInputCodes.value(code) });
          s.badInput.set(k, (s.badInput.get(k) ?? 0) + finiteNonNeg(n));
        }
      }
    }
    snapshot = s;
    return s;
  };
  const late = new SampledCounter(`${p}jitter_late_frames_total`, 'Caller frames that arrived after their play-out time (jitter buffer).', () => one(live().late));
  const lost = new SampledCounter(`${p}jitter_lost_frames_total`, 'Caller frames that never arrived (jitter buffer).', () => one(live().lost));
  const concealed = new SampledCounter(`${p}jitter_concealed_frames_total`, 'Caller frames synthesised by packet-loss concealment.', () => one(live().concealed));
  const underruns = new SampledCounter(`${p}playout_underruns_total`, "Playout ticks where agent audio was queued but Twilio's buffer had run dry (audible gaps).", () => one(live().underruns));
  // Counted while calls run (read from the live calls at scrape time), not only when they end.
  const IN = { direction: 'inbound' };
  const OUT = { direction: 'outbound' };
  const frames = new SampledCounter(
    `${p}frames_total`,
    'Media frames: inbound = from the caller, outbound = agent audio sent to Twilio (live calls included).',
    () => {
      const l = live();
      return new Map([
        [JSON.stringify(IN), l.framesIn],
        [JSON.stringify(OUT), l.framesOut],
      ]);
    },
    [IN, OUT],
  );
  const badInput = new SampledCounter(`${p}twilio_bad_input_total`, 'Rejected Twilio messages, by input code (live calls included).', () => live().badInput, []);
  const callerDropped = new SampledCounter(
    `${p}caller_audio_dropped_seconds_total`,
    'Caller audio that never reached the agent service: its socket over the send bound (not reading), or a reconnect outlasting what is kept (live calls included).',
    () => one(live().callerDroppedMs / 1000),
  );
  for (const m of [late, lost, concealed, underruns, frames, badInput, callerDropped]) registry.registerMetric(m as never);

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
  const turnLatency = new Histogram({
    name: `${p}turn_response_seconds`,
    help: "Per turn: the caller stops speaking (the bridge's VAD, or the agent's final caller transcript) → the reply's first audio starts playing at Twilio.",
    labelNames: ['agent'],
    buckets: TURN_BUCKETS_S,
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
    name: `${p}dsp_info`,
    help: 'The DSP core in use (always 1): backend (native or ts), what was requested, the SIMD level, and why auto fell back to ts (a short cause, never a path).',
    labelNames: ['backend', 'requested', 'simd', 'fallback'],
    registers: [registry],
    aggregator: 'max',
    collect() {
      this.reset();
      const info = options.dspInfo();
      if (!info) return;
      this.set({ backend: info.backend, requested: info.requested, simd: info.simd ?? '', fallback: fallbackCause(info.fallbackReason) }, 1);
    },
  });
  new Gauge({
    name: `${p}build_info`,
    help: 'The running build (always 1): the package version and the Node.js version.',
    labelNames: ['version', 'node_version'],
    registers: [registry],
    aggregator: 'max',
  }).set({ version: options.build?.version ?? 'unknown', node_version: process.versions.node }, 1);

  // ── call records ────────────────────────────────────────────────────────────
  const store = () => options.storeStats?.();
  new Gauge({
    name: `${p}record_outbox_depth`,
    help: 'Call records in the outbox (on disk) waiting for the database; grows while the database is unreachable.',
    registers: [registry],
    aggregator: 'sum',
    collect() {
      this.set(finiteNonNeg(store()?.outboxDepth));
    },
  });
  /** A counter read at scrape time from what `source()` reports (0 while it reports nothing). */
  const sampledFrom = <S>(source: () => S | undefined, name: string, help: string, pick: (s: S) => number): void => {
    const read = () => {
      const s = source();
      return one(s ? finiteNonNeg(pick(s)) : 0);
    };
    registry.registerMetric(new SampledCounter(`${p}${name}`, help, read) as never);
  };
  const stored = (name: string, help: string, pick: (st: NonNullable<ReturnType<typeof store>>) => number): void => sampledFrom(store, name, help, pick);
  stored('records_written_total', 'Call records written to the database.', (st) => st.written);
  stored('record_write_failures_total', 'Database writes of call records that failed (the records stay in the outbox and are retried).', (st) => st.writeFailures);
  stored('record_outbox_write_failures_total', 'Outbox writes that failed (disk full or unwritable): records at risk.', (st) => st.outboxWriteFailures);

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

  // ── profiles (BRIDGE_PROFILES, docs/profiles.md) ──────────────────────────────
  const profileReloads = new Counter({
    name: `${p}profiles_reloads_total`,
    help: 'Reloads of the profiles file (on change or SIGHUP), by result: ok (the new profiles are in force) or error (refused: the previous profiles stay, the problems are logged with BRIDGE_ERR_PROFILES).',
    labelNames: ['result'],
    registers: [registry],
  });
  const onProfilesReload = (result: 'ok' | 'error'): void => {
    profileReloads.inc({ result });
  };
  let profilesLoaded: (() => number) | undefined;
  new Gauge({
    name: `${p}profiles_loaded`,
    help: 'Profiles in force from the profiles file (BRIDGE_PROFILES); 0 without one. Max across workers (each loads the file itself).',
    registers: [registry],
    aggregator: 'max',
    collect() {
      this.set(finiteNonNeg(profilesLoaded?.()));
    },
  });

  // ── agent tools and call events (src/tools, src/events) ─────────────────────
  // Tool names come from the profiles file, so the label is bounded by it (and capped, shape-checked).
  const toolNames = new BoundedLabel(MAX_TOOL_VALUES, (v) => /^[A-Za-z_][A-Za-z0-9_-]{0,62}$/.test(v));
  const toolOutcomes = new Set<string>(TOOL_OUTCOMES);
  const toolCalls = new Counter({
    name: `${p}tool_calls_total`,
    help: "Tool calls of the agents, by tool and outcome: ok, or why the agent got an error result (bad-arguments: not a JSON object from the AI service, nothing sent; http-status, timeout, bad-response, too-large, network, aborted; unknown-tool, counted under tool=\"unknown\"; transfer-refused).",
    labelNames: ['tool', 'outcome'],
    registers: [registry],
  });
  const toolDuration = new Histogram({ name: `${p}tool_call_duration_seconds`, help: 'Tool call duration, from the agent asking to its result (any outcome), by tool.', labelNames: ['tool'], buckets: TOOL_BUCKETS_S, registers: [registry] });
  const onToolCall = (r: ToolResult): void => {
    const outcome = toolOutcome(r);
    // An unknown tool's name is the model's invention: never a label value.
    const tool = outcome === 'unknown-tool' ? 'unknown' : toolNames.value(r.tool);
    toolCalls.inc({ tool, outcome: toolOutcomes.has(outcome) ? outcome : 'other' });
    toolDuration.observe({ tool }, finiteNonNeg(r.durationMs) / 1000);
  };
  let eventStats: () => EventDeliveryStats | undefined = () => undefined;
  new Gauge({
    name: `${p}events_pending`,
    help: 'Call events accepted and not yet delivered or dropped (in the events outbox on disk); grows while a receiver is down.',
    registers: [registry],
    aggregator: 'sum',
    collect() {
      this.set(finiteNonNeg(eventStats()?.pending));
    },
  });
  const eventCounter = (name: string, help: string, pick: (s: EventDeliveryStats) => number): void => sampledFrom(() => eventStats(), name, help, pick);
  eventCounter('events_delivered_total', "Call events delivered (a 2xx from the profile's events URL).", (s) => s.delivered);
  eventCounter('event_delivery_failures_total', 'Failed delivery attempts of call events (non-2xx, timeout, unreachable); each is retried.', (s) => s.failedAttempts);
  eventCounter('events_outbox_write_failures_total', 'Writes of the events outbox file that failed (disk full or unwritable): events wait in memory.', (s) => s.writeFailures);
  eventCounter('events_outbox_corrupt_lines_total', 'Lines of the events outbox file that were not events (skipped at start).', (s) => s.corruptLines);
  const DROP_LABELS = DROP_REASONS.map((reason) => ({ reason }));
  registry.registerMetric(
    new SampledCounter(
      `${p}events_dropped_total`,
      'Call events given up undelivered, by reason: expired (older than 24 h), no-target (the profile lost its events URL), queue-full, unserialisable.',
      () => {
        const s = eventStats();
        return new Map(DROP_REASONS.map((reason) => [JSON.stringify({ reason }), finiteNonNeg(s?.dropped[reason])]));
      },
      DROP_LABELS,
    ) as never,
  );

  const onTurn = (agent: string, ms: number): void => {
    turnLatency.observe({ agent: agentOf(agent) }, ms / 1000);
  };
  const onRefused = (stage: 'webhook' | 'stream', reason: string): void => {
    refused.inc({ stage, reason: refusalReasons.has(reason) ? reason : 'other' });
  };
  const onHttpResponse = (method: string, route: string, statusCode: number): void => {
    http.inc({ method: METHODS.has(method) ? method : 'other', route: routes.value(route), code: String(Math.trunc(statusCode)) });
  };

  const onCallStarted = (info: CallStartedInfo): void => {
    started.inc({ agent: agentOf(info.agent) });
  };

  const onCallEnded = (r: CallRecord): void => {
    const agent = agentOf(r.agent);
    ended.inc({ agent, reason: reasons.value(normaliseEndReason(r.endReason)) });
    const d = finiteNonNeg(r.durationMs);
    duration.observe({ agent }, d / 1000);
    frames.add(IN, finiteNonNeg(r.framesIn));
    frames.add(OUT, finiteNonNeg(r.framesOut));
    for (const [code, n] of Object.entries(r.badInput ?? {})) {
      if (finiteNonNeg(n) > 0) badInput.add({ code: badInputCodes.value(code) }, finiteNonNeg(n));
    }
    late.add({}, finiteNonNeg(r.jitter?.late));
    lost.add({}, finiteNonNeg(r.jitter?.lost));
    concealed.add({}, finiteNonNeg(r.jitter?.concealed));
    underruns.add({}, finiteNonNeg(r.playout?.underruns));
    callerDropped.add({}, finiteNonNeg(r.callerAudioDroppedMs) / 1000);
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
    onRefused,
    onHttpResponse,
    onProfilesReload,
    setProfilesLoaded(fn) {
      profilesLoaded = fn;
      for (const result of ['ok', 'error']) profileReloads.inc({ result }, 0);
    },
    onTurn,
    onToolCall,
    setEventStats(fn) {
      eventStats = fn;
    },
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
