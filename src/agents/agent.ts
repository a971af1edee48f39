/**
 * The agent interface: what the call core needs from any AI voice service (or the
 * built-in echo agent). One AgentSession per call. Adapters never import call/,
 * twilio/ or another adapter.
 *
 * ```text
 *   CallSession ──sendAudio(PCM16 @ inputFormat | μ-law frames)──► AgentSession ──► service
 *   CallSession ◄──'audio' (PCM16 at the rate it carries | μ-law) ─┘
 *               ◄──'interruption' (caller speech detected by the service's VAD)
 *               ◄──'transcript' / 'end' (hang up after the goodbye) / 'error'
 *   CallSession ──interrupt({ heardMs }) (barge-in: how much of the current response the caller heard)
 * ```
 */
import type { BridgeError } from '../errors.js';
import type { ToolDeclaration } from '../tools/declarations.js';

/** Audio the agent takes or gives. When both sides are 8 kHz μ-law, no DSP runs. */
export type AudioFormat =
  | { readonly encoding: 'pcm16'; readonly sampleRateHz: number }
  | { readonly encoding: 'ulaw'; readonly sampleRateHz: 8000 };

export const ULAW_8K: AudioFormat = Object.freeze({ encoding: 'ulaw', sampleRateHz: 8000 });
export const pcm16 = (sampleRateHz: number): AudioFormat => Object.freeze({ encoding: 'pcm16', sampleRateHz });

/** Agent audio: PCM16 samples, or μ-law bytes (always 8 kHz), at the rate it says. */
export interface AgentAudio {
  /** PCM16 samples, or μ-law bytes. */
  readonly data: Int16Array | Uint8Array;
  /**
   * The rate of `data`. It may differ from `outputFormat`'s and change from one chunk
   * to the next (Hume's WAV chunks carry their own): the call's outbound path resamples
   * whatever comes, so no adapter runs DSP of its own.
   */
  readonly sampleRateHz: number;
  /** Identifies the response this audio belongs to; audio of an interrupted response is dropped. */
  readonly responseId?: string;
}

export interface Transcript {
  readonly role: 'caller' | 'agent';
  readonly text: string;
  readonly final: boolean;
}

/**
 * Everything a session tells the call, as one typed union: a listener switches on
 * `type` and the compiler checks every case. (An EventEmitter's 'error' throws when
 * nobody listens, which made every adapter guard its error reports.)
 */
export type AgentEvent =
  | ({ readonly type: 'audio' } & AgentAudio)
  /** The service detected caller speech over its own output: barge-in. */
  | { readonly type: 'interruption' }
  /** A response finished (all its audio has been emitted). */
  | { readonly type: 'responseDone'; readonly responseId?: string }
  | ({ readonly type: 'transcript' } & Transcript)
  /** The agent wants the call to end (after its last audio has been heard). */
  | { readonly type: 'end'; readonly reason: string }
  /** A failure; `fatal` means the session cannot continue. */
  | { readonly type: 'error'; readonly error: BridgeError; readonly fatal: boolean }
  /** The session is closed (after close() or a fatal error). */
  | { readonly type: 'closed'; readonly reason: string }
  /**
   * The agent calls a tool. `arguments` is the provider's JSON text, unparsed (the call
   * core parses it: invalid JSON is an error result to the agent). Answer with
   * sendToolResult(callId, …) — exactly once, unless a 'toolCancel' names it.
   */
  | { readonly type: 'toolCall'; readonly callId: string; readonly name: string; readonly arguments: string }
  /** The service withdrew tool calls still running (Gemini's toolCallCancellation): abort them, answer nothing. */
  | { readonly type: 'toolCancel'; readonly callIds: readonly string[] };

export type AgentEventType = AgentEvent['type'];

/** A tool the agent may call, in the provider-neutral form each adapter maps to its own (src/tools/declarations.ts). */
export type { ToolDeclaration } from '../tools/declarations.js';

/** What a tool gave: its output (any JSON), or an error the agent is told about (with its stable code, when the bridge has one). */
export type ToolResult = { readonly ok: true; readonly output: unknown } | { readonly ok: false; readonly error: string; readonly code?: string };
export type AgentListener = (event: AgentEvent) => void;

/** Events kept for a session nobody listens to yet (a pre-connected agent that spoke first): at most this many. */
const MAX_BACKLOG = 4096;

export abstract class AgentSession {
  #listeners: AgentListener[] = [];
  /**
   * Events emitted before the first listener (an agent pre-connected at the voice webhook
   * that greets at connect, e.g. ElevenLabs' first_message): replayed, in order, to it.
   */
  #backlog: AgentEvent[] | undefined = [];
  /** Format the agent takes from the caller. */
  abstract readonly inputFormat: AudioFormat;
  /**
   * The agent's audio format as configured (encoding, and the usual rate). Each audio
   * event says its own rate, which is the one that counts.
   */
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
   * The answer to a 'toolCall', in the provider's own shape. Agents that declare no
   * tools never emit 'toolCall'; for them this does nothing.
   */
  sendToolResult(_callId: string, _result: ToolResult): void {}
  /**
   * The agent speaks first (the profile's `greeting`), called once the call is streaming:
   * `auto` lets the model greet in its own words, any other text is what it should say.
   * Agents that greet another way (ElevenLabs' first_message, from AgentContext.greeting) or
   * not at all keep this default, which does nothing.
   */
  greet(_greeting: string): void {}
  /**
   * Something the agent should know about the call without answering it (who answered an
   * outbound call: a person or a machine), as each service takes context. Default: nothing.
   */
  note(_text: string): void {}

  /** Every event of this session, in order (the first listener also gets what came before it); returns the function that unsubscribes. */
  onEvent(listener: AgentListener): () => void {
    this.#listeners = [...this.#listeners, listener];
    const backlog = this.#backlog;
    this.#backlog = undefined;
    if (backlog) for (const e of backlog) listener(e);
    return () => {
      this.#listeners = this.#listeners.filter((l) => l !== listener);
    };
  }

  /** Hands an event to every listener; before the first one subscribes, keeps it (bounded) for it. */
  protected emitEvent(event: AgentEvent): void {
    if (this.#backlog) {
      if (this.#backlog.length < MAX_BACKLOG) this.#backlog.push(event);
      return;
    }
    for (const l of this.#listeners) l(event);
  }

  /** A failure, to whoever listens. */
  protected reportError(error: BridgeError, fatal: boolean): void {
    this.emitEvent({ type: 'error', error, fatal });
  }

  #callerAudioDroppedMs = 0;
  /**
   * Caller audio handed to sendAudio() that never reached the service: dropped while its
   * socket was over the send bound (the service not reading), or while reconnecting beyond
   * what the session keeps. The call's record and metrics carry it; 0 when nothing was lost.
   */
  get callerAudioDroppedMs(): number {
    return this.#callerAudioDroppedMs;
  }
  /** For adapters: `ms` of caller audio did not reach the service. */
  protected noteCallerAudioDropped(ms: number): void {
    if (ms > 0 && Number.isFinite(ms)) this.#callerAudioDroppedMs += ms;
  }
}

export interface AgentContext {
  readonly callSid: string;
  /** Agent options from the voice webhook's query (TwiML <Parameter>s), e.g. { voice: 'Puck' }. */
  readonly parameters: Readonly<Record<string, string>>;
  /** The call's profile (docs/profiles.md), when one answered: `parameters` are then its `options`, as text. */
  readonly profile?: string;
  /** Tools the agent may call (the profile's, built-ins included), declared to the service where it takes them from the client. */
  readonly tools?: readonly ToolDeclaration[];
  /** The profile's greeting (`auto`, or the words): for agents that take it at connect; others get greet(). */
  readonly greeting?: string;
}

export interface AgentFactory {
  /** The name used in ?agent=… */
  readonly name: string;
  /** Whether the configuration allows this agent (keys present). */
  readonly available: boolean;
  create(ctx: AgentContext): AgentSession;
}
