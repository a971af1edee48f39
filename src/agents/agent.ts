/**
 * The agent interface: what the call core needs from any AI voice service (or the
 * built-in echo agent). One AgentSession per call. Adapters never import call/,
 * twilio/ or another adapter (design.md §2).
 *
 * ```text
 *   CallSession ──sendAudio(PCM16 @ inputFormat | μ-law frames)──► AgentSession ──► service
 *   CallSession ◄──'audio' (PCM16 @ outputFormat | μ-law) ─────────┘
 *               ◄──'interruption' (caller speech detected by the service's VAD)
 *               ◄──'transcript' / 'end' (hang up after the goodbye) / 'error'
 *   CallSession ──interrupt({ heardMs }) (barge-in: how much of the current response the caller heard)
 * ```
 */
import { EventEmitter } from 'node:events';
import type { BridgeError } from '../errors.js';

/** Audio the agent takes or gives. When both sides are 8 kHz μ-law, no DSP runs. */
export type AudioFormat =
  | { readonly encoding: 'pcm16'; readonly sampleRateHz: number }
  | { readonly encoding: 'ulaw'; readonly sampleRateHz: 8000 };

export const ULAW_8K: AudioFormat = Object.freeze({ encoding: 'ulaw', sampleRateHz: 8000 });
export const pcm16 = (sampleRateHz: number): AudioFormat => Object.freeze({ encoding: 'pcm16', sampleRateHz });

export interface AgentAudio {
  /** PCM16 samples (encoding 'pcm16') or μ-law bytes (encoding 'ulaw'), in outputFormat. */
  readonly data: Int16Array | Uint8Array;
  /** Identifies the response this audio belongs to; audio of an interrupted response is dropped. */
  readonly responseId?: string;
}

export interface Transcript {
  readonly role: 'caller' | 'agent';
  readonly text: string;
  readonly final: boolean;
}

export interface AgentEvents {
  audio: [AgentAudio];
  /** The service detected caller speech over its own output: barge-in. */
  interruption: [];
  /** A response finished (all its audio has been emitted). */
  responseDone: [{ responseId?: string }];
  transcript: [Transcript];
  /** The agent wants the call to end (after its last audio has been heard). */
  end: [{ reason: string }];
  /** A failure; `fatal` means the session cannot continue. */
  error: [BridgeError, { fatal: boolean }];
  /** The session is closed (after close() or a fatal error). */
  closed: [{ reason: string }];
}

export abstract class AgentSession extends EventEmitter<AgentEvents> {
  /** Format the agent takes from the caller. */
  abstract readonly inputFormat: AudioFormat;
  /** Format of the agent's audio. */
  abstract readonly outputFormat: AudioFormat;
  /** Whether the service detects caller speech itself; if not, the bridge's VAD raises barge-in. */
  abstract readonly hasVad: boolean;
  /** Opens the session; rejects (with a BridgeError) on failure or when `signal` aborts. */
  abstract connect(signal: AbortSignal): Promise<void>;
  /** Caller audio in inputFormat, in order, 20 ms or more at a time. Never throws. */
  abstract sendAudio(data: Int16Array | Uint8Array): void;
  /** Barge-in: stop the current response; the caller heard `heardMs` of it. */
  abstract interrupt(info: { heardMs: number }): void;
  /** A DTMF digit from the caller. */
  abstract sendDtmf(digit: string): void;
  /** Idempotent; resolves when the session's resources are released (bounded). */
  abstract close(reason: string): Promise<void>;

  /**
   * Reports a failure to whoever listens. 'error' is EventEmitter's special event — it
   * throws when nobody listens, and adapters report from socket callbacks — so every
   * adapter reports through here, never with emit('error') itself.
   */
  protected reportError(error: BridgeError, fatal: boolean): void {
    if (this.listenerCount('error') > 0) this.emit('error', error, { fatal });
  }
}

export interface AgentContext {
  readonly callSid: string;
  /** Agent options from the voice webhook's query (TwiML <Parameter>s), e.g. { voice: 'Puck' }. */
  readonly parameters: Readonly<Record<string, string>>;
  /** The call's profile (docs/profiles.md), when one answered: `parameters` are then its `options`, as text. */
  readonly profile?: string;
}

export interface AgentFactory {
  /** The name used in ?agent=… */
  readonly name: string;
  /** Whether the configuration allows this agent (keys present). */
  readonly available: boolean;
  create(ctx: AgentContext): AgentSession;
}
