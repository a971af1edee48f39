/**
 * The OpenTelemetry side of tracing, imported only when tracing is on
 * (src/telemetry/index.ts): a tracer provider of its own (never registered as the
 * global one: several bridges may share a process), a batch span processor and the
 * OTLP/HTTP exporter for the configured protocol.
 *
 * ```text
 *  call  (SERVER, Twilio `start` → call closed)          twilio.call.sid, twilio.stream.sid, voice_bridge.agent.name, …
 *   ├─ turn 1  (caller stops → reply played out / cut)    voice_bridge.turn.index, .response_latency_ms, .interrupted, .heard_ms
 *   │    └─ tool <name>                                    gen_ai.tool.name, gen_ai.tool.call.id
 *   └─ turn 2 …
 * ```
 *
 * Turns, as the bridge sees them: one opens when the caller stops speaking (the
 * bridge's VAD, or the agent's final caller transcript — whichever the bridge learns
 * first) or, with no caller end seen, when agent audio of a new response arrives (a
 * greeting, an agent that transcribes late: initiator `agent`). The response latency
 * runs from the caller's last stop to the moment Twilio starts playing the reply's
 * first audio. A turn ends when its reply has been heard to the end (every mark
 * echoed), when a barge-in cuts it (with the position heard), when another turn
 * supersedes it, or when the call closes. Nothing stays open: the call's end ends its
 * turn and tool spans, and shutdown ends any call still open before the last flush.
 */
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Span, type Tracer } from '@opentelemetry/api';
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources';
import { AlwaysOffSampler, AlwaysOnSampler, BasicTracerProvider, BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler, type Sampler, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { ATTR_ERROR_TYPE, ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import type { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { performance } from 'node:perf_hooks';
import type { CallTrace, CallTraceInfo } from '../call/hooks.js';
import type { CallSummary } from '../call/call-session.js';
import { DEFAULT_SERVICE_NAME, TRACES_FLUSH_MS, type TracesConfig } from './config.js';
import { registerCallTrace, type ToolCallOptions, type ToolCallSpan, type ToolTracer } from './tools.js';
import type { Telemetry, TelemetryDeps } from './index.js';
import { ErrorCodes } from '../errors.js';

/** Attribute names (docs/operations/observability.md lists them). */
export const Attr = {
  CALL_SID: 'twilio.call.sid',
  STREAM_SID: 'twilio.stream.sid',
  FROM: 'twilio.call.from',
  TO: 'twilio.call.to',
  AGENT: 'voice_bridge.agent.name',
  AGENT_PRECONNECTED: 'voice_bridge.agent.preconnected',
  AGENT_READY_MS: 'voice_bridge.agent.ready_ms',
  INSTANCE: 'voice_bridge.instance.id',
  ROUTE_KEY: 'voice_bridge.route_key',
  WORKER: 'voice_bridge.worker.slot',
  END_REASON: 'voice_bridge.call.end_reason',
  DURATION_MS: 'voice_bridge.call.duration_ms',
  FRAMES_IN: 'voice_bridge.call.frames_in',
  FRAMES_OUT: 'voice_bridge.call.frames_out',
  BARGE_INS: 'voice_bridge.call.barge_ins',
  TURNS: 'voice_bridge.call.turns',
  FIRST_AUDIO_MS: 'voice_bridge.call.first_agent_audio_ms',
  UNDERRUNS: 'voice_bridge.call.playout_underruns',
  APOLOGY: 'voice_bridge.call.apology',
  TURN_INDEX: 'voice_bridge.turn.index',
  TURN_INITIATOR: 'voice_bridge.turn.initiator',
  TURN_CALLER_END: 'voice_bridge.turn.caller_end_source',
  TURN_RESPONSE_ID: 'voice_bridge.turn.response_id',
  TURN_LATENCY_MS: 'voice_bridge.turn.response_latency_ms',
  TURN_INTERRUPTED: 'voice_bridge.turn.interrupted',
  TURN_HEARD_MS: 'voice_bridge.turn.heard_ms',
  TURN_BARGE_IN_SOURCE: 'voice_bridge.turn.barge_in.source',
  TURN_OUTCOME: 'voice_bridge.turn.outcome',
  ERROR_FATAL: 'voice_bridge.error.fatal',
  TOOL_UNFINISHED: 'voice_bridge.tool.unfinished',
  GEN_AI_OPERATION: 'gen_ai.operation.name',
  GEN_AI_TOOL_NAME: 'gen_ai.tool.name',
  GEN_AI_TOOL_CALL_ID: 'gen_ai.tool.call.id',
} as const;

type Log = TelemetryDeps['log'];
type TurnOutcome = 'completed' | 'interrupted' | 'superseded' | 'call-ended';

/** Frame-clock ms (performance.now()) → epoch ms, the time the spans carry. */
const epoch = (ms: number): number => performance.timeOrigin + ms;

/**
 * The BRIDGE_ERR_* code of a call that failed, from its end reason (the agent error
 * seen first takes precedence); undefined for calls that ended normally.
 */
export function failureCode(reason: string | null): string | undefined {
  if (!reason) return undefined;
  const kind = reason.split(':', 1)[0];
  const code = /BRIDGE_ERR_[A-Z0-9_]+/.exec(reason)?.[0];
  switch (kind) {
    case 'agent-connect-timeout':
      return code ?? ErrorCodes.AGENT_TIMEOUT;
    case 'agent-closed':
      return ErrorCodes.AGENT_CLOSED;
    case 'agent-unknown':
      return code ?? ErrorCodes.AGENT_UNKNOWN;
    case 'agent-connect-failed':
    case 'agent-error':
    case 'dsp-failed':
      return code ?? kind;
    default:
      return undefined;
  }
}

/** error.type of a thrown value: its code (BRIDGE_ERR_*), else its name. */
function errorType(e: unknown): string {
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && code !== '') return code.slice(0, 64);
  return e instanceof Error ? e.name : 'error';
}

function markError(span: Span, code: string): void {
  span.setStatus({ code: SpanStatusCode.ERROR, message: code });
  span.setAttribute(ATTR_ERROR_TYPE, code);
}

interface Turn {
  readonly span: Span;
  readonly index: number;
  /** The caller's last stop before the reply (frame-clock ms); undefined for agent-initiated turns. */
  callerStopAt: number | undefined;
  responseId: string | undefined;
  hasAudio: boolean;
  /** Agent audio queued, its first send (the moment it is heard) not seen yet. */
  awaitingHeard: boolean;
}

class OtelCallTrace implements CallTrace, ToolTracer {
  readonly #tracer: Tracer;
  readonly #span: Span;
  readonly #ctx: Context;
  readonly #log: Log;
  readonly #onDone: (t: OtelCallTrace) => void;
  readonly #unregister: () => void;
  #turn: Turn | undefined;
  #turns = 0;
  #lastEndedResponseId: string | undefined;
  #failCode: string | undefined;
  #closing = false;
  #ended = false;
  readonly #tools = new Map<ToolCallSpan, Span>();
  #faulted = false;

  constructor(tracer: Tracer, span: Span, callSid: string, log: Log, onDone: (t: OtelCallTrace) => void) {
    this.#tracer = tracer;
    this.#span = span;
    this.#ctx = trace.setSpan(ROOT_CONTEXT, span);
    this.#log = log;
    this.#onDone = onDone;
    this.#unregister = registerCallTrace(callSid, this);
  }

  /** A bug here must never reach the call: logged once per call, the call goes on. */
  #fault(e: unknown): void {
    if (this.#faulted) return;
    this.#faulted = true;
    this.#log?.('error', 'call tracing failed (the call goes on)', { err: e });
  }

  agentReady(agent: string, ms: number, preconnected: boolean): void {
    try {
      this.#span.setAttributes({ [Attr.AGENT]: agent, [Attr.AGENT_PRECONNECTED]: preconnected, [Attr.AGENT_READY_MS]: Math.round(ms) });
      this.#span.addEvent('agent.ready');
    } catch (e) {
      this.#fault(e);
    }
  }

  callerStopped(source: 'bridge-vad' | 'transcript', atMs: number): void {
    if (this.#closing) return;
    try {
      const t = this.#turn;
      if (t && !t.hasAudio) {
        t.callerStopAt = atMs; // still the caller's turn: the reply is timed from the last stop
        return;
      }
      // While a reply is on its way, a caller stop is a transcript that came late (the
      // reply answers it) or speech over the reply, which a barge-in has already ended.
      if (t) return;
      this.#openTurn(atMs, source);
    } catch (e) {
      this.#fault(e);
    }
  }

  agentAudio(responseId: string | undefined, atMs: number): void {
    if (this.#closing) return;
    // Late audio of a response already cut or played: the playout drops it.
    if (responseId !== undefined && responseId === this.#lastEndedResponseId) return;
    try {
      let t = this.#turn;
      if (t?.hasAudio) {
        if (responseId === t.responseId) return;
        this.#endTurn('superseded', atMs);
        t = undefined;
      }
      t ??= this.#openTurn(atMs, undefined);
      t.hasAudio = true;
      t.awaitingHeard = true;
      t.responseId = responseId;
      if (responseId !== undefined) t.span.setAttribute(Attr.TURN_RESPONSE_ID, responseId.slice(0, 128));
    } catch (e) {
      this.#fault(e);
    }
  }

  audioSent(playAtMs: number): void {
    const t = this.#turn;
    if (!t?.awaitingHeard) return;
    t.awaitingHeard = false;
    try {
      if (t.callerStopAt !== undefined) t.span.setAttribute(Attr.TURN_LATENCY_MS, Math.max(0, Math.round(playAtMs - t.callerStopAt)));
    } catch (e) {
      this.#fault(e);
    }
  }

  responseDone(responseId: string | undefined, played: Promise<void>): void {
    const t = this.#turn;
    if (this.#closing || !t?.hasAudio) return;
    if (responseId !== undefined && t.responseId !== undefined && responseId !== t.responseId) return;
    played.then(
      () => {
        if (this.#turn === t) this.#endTurn('completed', performance.now());
      },
      () => undefined,
    );
  }

  bargeIn(source: 'agent-vad' | 'bridge-vad' | 'api', heardMs: number, _responseId: string | undefined, atMs: number): void {
    const t = this.#turn;
    if (this.#closing || !t?.hasAudio) return;
    try {
      t.span.setAttributes({ [Attr.TURN_HEARD_MS]: Math.round(heardMs), [Attr.TURN_BARGE_IN_SOURCE]: source });
      this.#endTurn('interrupted', atMs);
    } catch (e) {
      this.#fault(e);
    }
  }

  agentError(code: string, fatal: boolean): void {
    try {
      this.#span.addEvent('agent.error', { [ATTR_ERROR_TYPE]: code, [Attr.ERROR_FATAL]: fatal });
      if (!fatal) return;
      this.#failCode ??= code;
      if (this.#turn) {
        markError(this.#turn.span, code);
        this.#turn.awaitingHeard = false; // what plays next is the apology, not the reply
      }
    } catch (e) {
      this.#fault(e);
    }
  }

  closing(reason: string, atMs: number): void {
    if (this.#closing) return;
    this.#closing = true;
    try {
      if (this.#turn) {
        const code = this.#failCode ?? failureCode(reason);
        if (code !== undefined) markError(this.#turn.span, code);
        this.#endTurn('call-ended', atMs);
      }
    } catch (e) {
      this.#fault(e);
    }
  }

  ended(summary: CallSummary): void {
    this.#finish(summary.endReason, () => {
      const a: Attributes = {
        [Attr.DURATION_MS]: summary.durationMs,
        [Attr.FRAMES_IN]: summary.framesIn,
        [Attr.FRAMES_OUT]: summary.framesOut,
        [Attr.BARGE_INS]: summary.bargeIns,
      };
      if (summary.agent !== null) a[Attr.AGENT] = summary.agent;
      if (summary.timeToFirstAgentAudioMs !== null) a[Attr.FIRST_AUDIO_MS] = summary.timeToFirstAgentAudioMs;
      if (summary.playout) a[Attr.UNDERRUNS] = summary.playout.underruns;
      if (summary.apology !== null) a[Attr.APOLOGY] = summary.apology;
      this.#span.setAttributes(a);
    });
  }

  /** The process stops with this call still open (shutdown): end it here rather than never. */
  abandon(reason: string): void {
    this.closing(reason, performance.now());
    this.#finish(reason, () => undefined);
  }

  #finish(reason: string | null, attributes: () => void): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#closing = true;
    // One instant, on the one clock of this trace, ends the open turn, the unfinished tools and
    // the call (a child ended on OTel's Date-anchored clock fell 2.4 ms after its parent in CI).
    const endAt = performance.now();
    try {
      this.#endTurn('call-ended', endAt);
      for (const [handle, span] of this.#tools) {
        this.#tools.delete(handle);
        span.setAttribute(Attr.TOOL_UNFINISHED, true);
        span.end(epoch(endAt));
      }
      attributes();
      this.#span.setAttributes({ [Attr.END_REASON]: reason ?? 'unknown', [Attr.TURNS]: this.#turns });
      const code = this.#failCode ?? failureCode(reason);
      if (code !== undefined) markError(this.#span, code);
    } catch (e) {
      this.#fault(e);
    } finally {
      this.#span.end(epoch(endAt));
      this.#unregister();
      this.#onDone(this);
    }
  }

  #openTurn(atMs: number, callerEnd: 'bridge-vad' | 'transcript' | undefined): Turn {
    const index = ++this.#turns;
    const attributes: Attributes = { [Attr.TURN_INDEX]: index, [Attr.TURN_INITIATOR]: callerEnd ? 'caller' : 'agent' };
    if (callerEnd) attributes[Attr.TURN_CALLER_END] = callerEnd;
    const span = this.#tracer.startSpan('turn', { kind: SpanKind.INTERNAL, startTime: epoch(atMs), attributes }, this.#ctx);
    const t: Turn = { span, index, callerStopAt: callerEnd ? atMs : undefined, responseId: undefined, hasAudio: false, awaitingHeard: false };
    this.#turn = t;
    return t;
  }

  #endTurn(outcome: TurnOutcome, atMs: number): void {
    const t = this.#turn;
    if (!t) return;
    this.#turn = undefined;
    if (t.responseId !== undefined) this.#lastEndedResponseId = t.responseId;
    t.span.setAttributes({ [Attr.TURN_OUTCOME]: outcome, [Attr.TURN_INTERRUPTED]: outcome === 'interrupted' });
    t.span.end(epoch(atMs));
  }

  toolCall(name: string, options: ToolCallOptions): ToolCallSpan {
    if (this.#ended) return { end() {} };
    const toolName = String(name).slice(0, 64);
    const turn = this.#turn;
    const attributes: Attributes = { [Attr.GEN_AI_OPERATION]: 'execute_tool', [Attr.GEN_AI_TOOL_NAME]: toolName };
    if (options.id !== undefined) attributes[Attr.GEN_AI_TOOL_CALL_ID] = String(options.id).slice(0, 128);
    if (turn) attributes[Attr.TURN_INDEX] = turn.index;
    const parent = turn ? trace.setSpan(this.#ctx, turn.span) : this.#ctx;
    // Start and end on the clock the call and its turns use (performance.timeOrigin + now), not
    // OTel's default, which anchors each span to Date.now() and drifts from it by ms a minute.
    const span = this.#tracer.startSpan(`tool ${toolName}`, { kind: SpanKind.INTERNAL, startTime: epoch(performance.now()), attributes }, parent);
    const handle: ToolCallSpan = {
      end: (outcome) => {
        if (!this.#tools.delete(handle)) return;
        try {
          if (outcome?.error !== undefined) markError(span, errorType(outcome.error));
        } finally {
          span.end(epoch(performance.now()));
        }
      },
    };
    this.#tools.set(handle, span);
    return handle;
  }
}

function samplerOf(s: TracesConfig['sampler']): Sampler {
  switch (s.name) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return new TraceIdRatioBasedSampler(s.ratio);
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(s.ratio) });
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
  }
}

/** The exporter, with failed exports logged (at most once a minute) instead of going unseen. */
function loggingExporter(inner: SpanExporter, url: string, log: Log): SpanExporter {
  let lastWarnAt = -Infinity;
  let failedSinceWarn = 0;
  return {
    export(spans, done) {
      inner.export(spans, (result) => {
        if (result.code !== 0) {
          failedSinceWarn += spans.length;
          const now = performance.now();
          if (now - lastWarnAt >= 60_000) {
            lastWarnAt = now;
            log?.('warn', 'OTLP trace export failed; spans dropped', { url, spans: failedSinceWarn, err: result.error ?? null });
            failedSinceWarn = 0;
          }
        }
        done(result);
      });
    },
    shutdown: () => inner.shutdown(),
    forceFlush: () => inner.forceFlush?.() ?? Promise.resolve(),
  };
}

export async function startOtlpTracing(cfg: TracesConfig, deps: TelemetryDeps): Promise<Telemetry> {
  // Only the exporter of the configured protocol is loaded.
  const Exporter: typeof OTLPTraceExporter =
    cfg.protocol === 'http/json' ? (await import('@opentelemetry/exporter-trace-otlp-http')).OTLPTraceExporter : (await import('@opentelemetry/exporter-trace-otlp-proto')).OTLPTraceExporter;
  type ExporterConfig = NonNullable<ConstructorParameters<typeof OTLPTraceExporter>[0]>;
  const inner = new Exporter({
    url: cfg.url,
    headers: { ...cfg.headers },
    timeoutMillis: cfg.timeoutMs,
    ...(cfg.compression !== undefined ? { compression: cfg.compression as ExporterConfig['compression'] } : {}),
  });
  const resource = defaultResource()
    .merge(resourceFromAttributes({ [ATTR_SERVICE_NAME]: DEFAULT_SERVICE_NAME, 'service.instance.id': deps.routeKey, ...(deps.serviceVersion ? { [ATTR_SERVICE_VERSION]: deps.serviceVersion } : {}) }))
    .merge(resourceFromAttributes(cfg.resourceAttributes))
    .merge(resourceFromAttributes({ [ATTR_SERVICE_NAME]: cfg.serviceName }));
  const provider = new BasicTracerProvider({
    resource,
    sampler: samplerOf(cfg.sampler),
    spanProcessors: [new BatchSpanProcessor(loggingExporter(inner, cfg.url, deps.log), cfg.batch)],
  });
  const tracer = provider.getTracer('voice-bridge', deps.serviceVersion);
  const open = new Set<OtelCallTrace>();
  let stopping: Promise<void> | undefined;
  deps.log?.('info', `OpenTelemetry traces on: ${cfg.protocol} to ${cfg.url}`, { url: cfg.url, protocol: cfg.protocol, serviceName: cfg.serviceName, sampler: cfg.sampler.name });

  return {
    url: cfg.url,
    protocol: cfg.protocol,
    traceFor(info: CallTraceInfo): CallTrace | undefined {
      if (stopping) return undefined;
      const attributes: Attributes = {
        [Attr.CALL_SID]: info.callSid,
        [Attr.STREAM_SID]: info.streamSid,
        [Attr.AGENT]: info.agent,
        [Attr.INSTANCE]: deps.instanceId,
        [Attr.ROUTE_KEY]: deps.routeKey,
      };
      if (deps.workerSlot !== undefined) attributes[Attr.WORKER] = deps.workerSlot;
      // Caller data: only where logs may carry it too (BRIDGE_LOG_PII, src/log.ts).
      if (cfg.pii) {
        if (info.from !== null) attributes[Attr.FROM] = info.from;
        if (info.to !== null) attributes[Attr.TO] = info.to;
      }
      const span = tracer.startSpan('call', { kind: SpanKind.SERVER, startTime: epoch(info.startedAtMs), attributes }, ROOT_CONTEXT);
      if (!span.isRecording()) {
        span.end(); // sampled out: nothing to trace for this call
        return undefined;
      }
      const t = new OtelCallTrace(tracer, span, info.callSid, deps.log, (done) => open.delete(done));
      open.add(t);
      return t;
    },
    shutdown(timeoutMs = TRACES_FLUSH_MS): Promise<void> {
      stopping ??= (async () => {
        for (const t of [...open]) t.abandon('shutting-down');
        let timer: NodeJS.Timeout | undefined;
        const outcome = await Promise.race([
          provider.shutdown().then(
            () => 'flushed' as const,
            (e: unknown) => e,
          ),
          new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs))),
        ]);
        clearTimeout(timer);
        if (outcome === 'timeout') deps.log?.('warn', `traces not flushed within ${timeoutMs} ms at shutdown: the rest are dropped`, { url: cfg.url });
        else if (outcome !== 'flushed') deps.log?.('warn', 'traces: exporter shutdown failed', { url: cfg.url, err: outcome });
      })();
      return stopping;
    },
  };
}
