/**
 * Narrow hooks out of the call core, so metrics, call records and recordings are
 * built beside it without touching the frame path's logic. All are optional; each
 * call is synchronous and must be cheap (metrics) or copy what it keeps (taps).
 */
import type { CallSummary } from './call-session.js';

/** Per-call measurements for metrics (prom-client histograms and counters). */
export interface CallObserver {
  /** Handling one inbound Twilio media message: parse, decode, DSP, hand-off to the agent (ms). */
  inboundFrame(ms: number): void;
  /** One playout tick that sent audio: re-framing, pacing, media + mark messages (ms). */
  outboundTick(ms: number): void;
  /** A barge-in: what detected it, and ms from the detection to `clear` being sent. */
  bargeIn(source: 'agent-vad' | 'bridge-vad' | 'api', reactionMs: number): void;
  /** The agent became ready: ms from the stream's start (0 when pre-connected and ready before it). */
  agentReady(agent: string, ms: number, preconnected: boolean): void;
  /** First agent audio of the call: ms from the stream's start. */
  firstAgentAudio(agent: string, ms: number): void;
}

/**
 * The call's audio as the two parties had it, for recordings. Times are ms since
 * the stream's start (Twilio's media timestamps use the same origin).
 */
export interface CallAudioTap {
  /** A caller frame as received (8 kHz μ-law, 160 bytes; the view is reused: copy it). */
  caller(ulaw: Uint8Array, timestampMs: number): void;
  /** Agent audio as sent to Twilio (8 kHz μ-law, whole frames; copy it) and when Twilio starts playing it. */
  agent(ulaw: Uint8Array, playAtMs: number): void;
  /** Barge-in at `atMs`: agent audio sent for later than that was dropped by Twilio and never played. */
  cleared(atMs: number): void;
  /** The call ended; flush and close (bounded). Resolves to the recording's path, if any. */
  close(): Promise<string | undefined>;
}

/** What a call's trace starts from (CallSessionDeps.traceFor, called once at `start`). */
export interface CallTraceInfo {
  callSid: string;
  streamSid: string;
  /** The agent the stream asks for (`agent` parameter, else the default). */
  agent: string;
  /** Frame-clock time (performance.now() ms) of the stream's `start`. */
  startedAtMs: number;
  /** Caller and callee from the voice webhook (PII: traced only under BRIDGE_LOG_PII). */
  from: string | null;
  to: string | null;
}

/**
 * One call's trace (src/telemetry): told, once per event and never per frame, what
 * happens in the call — its turns (the caller stops, the agent's reply is heard, played
 * out or cut by a barge-in), failures and its end. Times are frame-clock ms
 * (performance.now()). Every method is synchronous, cheap, and must not throw.
 */
export interface CallTrace {
  /** The agent connected: ms from the stream's start (0 when pre-connected and ready before it). */
  agentReady(agent: string, ms: number, preconnected: boolean): void;
  /** The caller stopped speaking, as the bridge learns it: its own VAD's speech end, or the agent's final caller transcript. */
  callerStopped(source: 'bridge-vad' | 'transcript', atMs: number): void;
  /** Agent audio of a response reached the playout (once per chunk the agent emits). */
  agentAudio(responseId: string | undefined, atMs: number): void;
  /** Audio went to Twilio, which starts playing it at `playAtMs` (the first after agentAudio is the reply first heard). */
  audioSent(playAtMs: number): void;
  /** The agent finished emitting a response; `played` resolves once the caller has heard all of it (or it was cleared). */
  responseDone(responseId: string | undefined, played: Promise<void>): void;
  /** A barge-in cut the response at `heardMs` of it. */
  bargeIn(source: 'agent-vad' | 'bridge-vad' | 'api', heardMs: number, responseId: string | undefined, atMs: number): void;
  /** An agent error (a BRIDGE_ERR_* code); `fatal`: the call fails with it. */
  agentError(code: string, fatal: boolean): void;
  /** The call is closing for `reason` (the first close wins): whatever turn is open ends here. */
  closing(reason: string, atMs: number): void;
  /** The call closed: its final summary (the span ends; nothing of the trace stays open). */
  ended(summary: CallSummary): void;
}

/** Both traces told everything (e.g. the metrics one and, when tracing is on, the OpenTelemetry one). */
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
