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
