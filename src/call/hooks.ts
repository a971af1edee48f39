/**
 * Narrow hooks out of the call core, so metrics, call records and recordings are
 * built beside it without touching the frame path's logic. All are optional; each
 * call is synchronous and must be cheap (metrics) or copy what it keeps (taps).
 */

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
