/**
 * Per-turn response latency for metrics: from the moment the caller stops speaking (as
 * the bridge learns it: its own VAD, or the agent's final caller transcript) to when the
 * reply's first audio starts playing at Twilio. One small CallTrace per call, beside the
 * OpenTelemetry one (src/telemetry), so the histogram exists whether or not traces do.
 */
import type { CallTrace, CallTraceInfo } from '../call/hooks.js';

/** A CallTrace that measures each turn's response latency and hands it to `observe` (ms). */
export function turnLatencyTrace(info: Pick<CallTraceInfo, 'agent'>, observe: (agent: string, ms: number) => void): CallTrace {
  let agent = info.agent;
  /** When the caller last stopped speaking; undefined once that turn's reply was heard. */
  let stoppedAt: number | undefined;
  return {
    agentReady(name) {
      agent = name;
    },
    callerStopped(_source, atMs) {
      // A later stop (the caller went on, or the transcript came after the VAD) moves the turn's start.
      stoppedAt = atMs;
    },
    agentAudio() {},
    audioSent(playAtMs) {
      if (stoppedAt === undefined) return;
      const ms = playAtMs - stoppedAt;
      stoppedAt = undefined;
      if (ms >= 0 && Number.isFinite(ms)) observe(agent, ms);
    },
    responseDone() {},
    bargeIn() {},
    agentError() {},
    closing() {},
    ended() {},
  };
}

/** Both traces told everything (the metrics one and, when tracing is on, the OpenTelemetry one). */
export function bothTraces(a: CallTrace, b: CallTrace | undefined): CallTrace {
  if (!b) return a;
  return {
    agentReady: (...x) => (a.agentReady(...x), b.agentReady(...x)),
    callerStopped: (...x) => (a.callerStopped(...x), b.callerStopped(...x)),
    agentAudio: (...x) => (a.agentAudio(...x), b.agentAudio(...x)),
    audioSent: (...x) => (a.audioSent(...x), b.audioSent(...x)),
    responseDone: (...x) => (a.responseDone(...x), b.responseDone(...x)),
    bargeIn: (...x) => (a.bargeIn(...x), b.bargeIn(...x)),
    agentError: (...x) => (a.agentError(...x), b.agentError(...x)),
    closing: (...x) => (a.closing(...x), b.closing(...x)),
    ended: (...x) => (a.ended(...x), b.ended(...x)),
  };
}
