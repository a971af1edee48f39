/**
 * The one place that keeps what arrives before the agent is ready (states awaiting-start and
 * connecting): the caller's frames, bounded by BRIDGE_PRESTART_BUFFER_MS (oldest dropped
 * first), the agent's first audio (a greeting sent as its connection opened, bounded), and
 * notes for the agent. `take()` hands it all to streaming, in arrival order; any other next
 * state drops it with the hold.
 */
import type { AgentAudio } from '../agents/agent.js';

export interface HeldFrame {
  payload: Uint8Array;
  chunk: number;
  timestampMs: number;
  /** When it arrived (FrameClock ms): the jitter buffer judges it by that. */
  atMs: number;
}

/** Agent audio kept while the session finishes connecting (about 10 s at 48 kHz). */
export const EARLY_AUDIO_MAX_SAMPLES = 480_000;
const MAX_NOTES = 8;

export interface Held {
  caller: HeldFrame[];
  /** Agent audio chunks and response ends ('done'), in order. */
  agent: (AgentAudio | 'done')[];
  notes: string[];
}

export class EarlyHold {
  #caller: HeldFrame[] = [];
  #streamSid: string | undefined;
  #agent: (AgentAudio | 'done')[] = [];
  #agentSamples = 0;
  #notes: string[] = [];
  /** Caller frames kept, and dropped (over the bound, or of another stream). */
  readonly counts = { buffered: 0, dropped: 0 };

  constructor(readonly maxFrames: number) {}

  /** A caller frame (copied: the caller's buffer is reused). */
  caller(frame: Uint8Array, chunk: number, timestampMs: number, atMs: number, streamSid: string): void {
    if (this.#streamSid === undefined) this.#streamSid = streamSid;
    if (this.#caller.length >= this.maxFrames) {
      this.#caller.shift();
      this.counts.dropped++;
    }
    this.#caller.push({ payload: Uint8Array.from(frame), chunk, timestampMs, atMs });
    this.counts.buffered++;
  }

  /** `start` names the stream: frames that came before it under another streamSid are not this call's. */
  started(streamSid: string): void {
    if (this.#streamSid !== undefined && this.#streamSid !== streamSid) {
      this.counts.dropped += this.#caller.length;
      this.#caller = [];
    }
  }

  /** Agent audio before streaming (copied; beyond the bound it is dropped). */
  agentAudio(a: AgentAudio): void {
    if (this.#agentSamples + a.data.length > EARLY_AUDIO_MAX_SAMPLES) return;
    this.#agent.push({ data: a.data.slice(), sampleRateHz: a.sampleRateHz, responseId: a.responseId });
    this.#agentSamples += a.data.length;
  }

  responseDone(): void {
    this.#agent.push('done');
  }

  /** Context for the agent (who answered the call), told once it is connected. */
  note(text: string): void {
    if (this.#notes.length < MAX_NOTES) this.#notes.push(text);
  }

  /** Everything held, once; the hold is empty after. */
  take(): Held {
    const held = { caller: this.#caller, agent: this.#agent, notes: this.#notes };
    this.#caller = [];
    this.#agent = [];
    this.#agentSamples = 0;
    this.#notes = [];
    return held;
  }
}
