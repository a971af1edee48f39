/**
 * One phone call: Twilio Media Streams socket ⇄ DSP pipelines ⇄ agent session.
 *
 * ```text
 *             start                agent connected            Twilio stop / socket close / hang-up
 * awaiting-start ──► connecting ───────────────► streaming ──────────────────────────────► closing ──► closed
 *        │ (start timeout)   │                     │ end_call / transfer / agent 'end'      ▲
 *        │                   │                     ▼                                        │
 *        │                   │                  draining: the goodbye plays out ────────────┤
 *        │                   └─(agent failed)─► draining: the apology plays out ───────────┤
 *        └──────────────────────────────────────────────────────────────────────────────────┘  close(reason)
 * ```
 *
 * Each state owns what it needs and a change of state disposes what the next one does not
 * carry (the `Phase` union below): awaiting-start and connecting own the early hold (caller
 * frames, agent audio and notes kept until the agent is ready), handed over to streaming
 * or dropped; streaming and a goodbye draining own the call's media (frame paths, VAD),
 * closed on leaving them; `draining` says why (`goodbye`: the agent's last words, which
 * barge-in may still cut short; `apology`: the agent is gone, nothing goes to it);
 * `closing` releases the clock, timers, playout, recording and agent.
 *
 * - Inbound: Twilio frames are decoded into one reused buffer (no per-frame
 *   allocation), then run through the inbound pipeline (jitter buffer, PLC,
 *   resampling to the agent's rate) — or passed through when the agent takes μ-law.
 *   The call's media (call-media.ts, owned by streaming and a goodbye draining) runs the
 *   frame paths (dsp/frame-paths.ts), plain calls that return their output: push(frame)
 *   → PCM for the agent, push(pcm) → μ-law frames for Playout. With the DSP worker pool
 *   (BRIDGE_DSP_POOL) the same work goes through the pool's own batched interface instead,
 *   and its results reach the agent / Playout a batch later.
 *   Until the agent is connected, frames are kept in the early hold (early-hold.ts, bounded
 *   by prestartBufferMs) and delivered in order once it is: the caller's first words are
 *   never lost.
 * - Outbound: see playout.ts. Barge-in is one method, bargeIn().
 * - The shared 20 ms clock (frame-clock.ts) ticks a call only while it has work for it:
 *   agent audio queued beyond the playout lead, or a caller frame the jitter buffer holds
 *   for a gap. A silent agent and in-order caller frames cost no tick (#wake, #sleep).
 * - close(reason) is the one exit: idempotent, the first reason wins, every wait
 *   is bounded, and everything the session owns is released.
 */
import { STREAM_TOKEN_PARAM } from '../twilio/stream-token.js';
import { closeReason } from '../close-reason.js';
import { EventEmitter } from 'node:events';
import type { DspBackend, JitterStats } from '../dsp/backend.js';
import type { DspPool } from '../dsp/pool/dsp-pool.js';
import type { AgentAudio, AgentSession, Transcript } from '../agents/agent.js';
import type { Config } from '../config.js';
import { FRAME_PAYLOAD_B64_LENGTH, TwilioInputCodes, parseTwilioMessage, type StartMessage, type TwilioInputCode } from '../twilio/messages.js';
import { FrameClock } from './frame-clock.js';
import { Playout, type PlayoutStats } from './playout.js';
import { CallMedia } from './call-media.js';
import { EarlyHold } from './early-hold.js';
import { bothTraces, type CallAudioTap, type CallObserver, type CallTrace, type CallTraceInfo } from './hooks.js';
import { CallTimeline, type CallAction, type CallActionName, type TimelineEvent } from './timeline.js';
import { performance } from 'node:perf_hooks';
import { callerDataErr } from '../log.js';
import { BridgeError, ErrorCodes } from '../errors.js';
import { CallTools } from './call-tools.js';
import { unknownToolResult } from '../tools/dispatch.js';
import type { AppTool } from '../tools/app-tools.js';
import type { Profile } from '../profiles/schema.js';
import type { ToolResult } from '../tools/run-tool.js';
import { IDENTITY_PARAMS } from '../twilio/stream-twiml.js';
import { WriteHold, corkableUnder } from '../net/write-batch.js';

export type CallState = 'awaiting-start' | 'connecting' | 'streaming' | 'draining' | 'closing' | 'closed';
/** Why a call is draining: the agent's goodbye (end_call, transfer_call, the agent ending it) or an apology for an agent that failed. */
export type DrainCause = 'goodbye' | 'apology';

/**
 * The call's state with what it owns. Before the agent is ready the hold keeps what arrives;
 * streaming and a goodbye draining own the call's media (frame paths, VAD); an apology has
 * no agent to talk to and owns neither. A change of state disposes what the next one does
 * not carry (see #transition).
 */
type Phase =
  | { state: 'awaiting-start' | 'connecting'; hold: EarlyHold }
  | { state: 'streaming'; media: CallMedia }
  | { state: 'draining'; cause: 'goodbye'; media: CallMedia }
  | { state: 'draining'; cause: 'apology' }
  | { state: 'closing' | 'closed' };

/** The socket side the session needs (a ws WebSocket satisfies it). */
export interface StreamSocket {
  send(data: string): void;
  close(code?: number, reason?: string): void;
  readonly bufferedAmount: number;
}

export interface CallSessionDeps {
  config: Config;
  /**
   * Whether this `start` may become a call (the stream token of its webhook, src/twilio/stream-token.ts):
   * a problem string refuses it — the socket is closed before any agent or record.
   */
  admitStart?(m: StartMessage): string | undefined;
  dsp: DspBackend;
  /** BRIDGE_DSP_POOL mode: the call's DSP runs on this worker pool instead of inline on `dsp`. */
  pool?: DspPool;
  clock: FrameClock;
  /**
   * Opens the agent for a call: adopts the session pre-connected at the voice webhook
   * for this CallSid, or creates one and starts connecting. `ready` settles within the
   * connect timeout (rejecting with a BridgeError). Throws for an unknown agent.
   */
  openAgent(callSid: string, parameters: Record<string, string>): OpenedAgent;
  /** Ends the call through Twilio's REST API when configured (resolves false if not configured). */
  endCallViaRest?(callSid: string): Promise<boolean>;
  /** Redirects the call to a spoken apology + hang-up through the REST API (false if not configured). */
  apologizeViaRest?(callSid: string): Promise<boolean>;
  /** Redirects the live call to <Dial> `to` (caller ID: `callerId`, the called number) through the REST API; absent: no REST credentials. */
  transferViaRest?(callSid: string, to: string, callerId: string | null): Promise<void>;
  /** Sees every tool call's result (metrics, the tool.called event). */
  onToolResult?(r: ToolResult, call: { callSid: string; profile: string }): void;
  /** The bundled apology prompt (8 kHz μ-law) played when REST is not configured. */
  apologyPrompt?: Uint8Array;
  /** Metrics sink (src/call/hooks.ts). */
  observer?: CallObserver;
  /** A recording tap for this call, if recording is on (created at `start`). */
  tapFor?(info: { callSid: string; streamSid: string }): CallAudioTap | undefined;
  /** A trace for this call, if tracing is on (created at `start`; src/telemetry). */
  traceFor?(info: Pick<CallTraceInfo, 'callSid' | 'streamSid' | 'startedAtMs'> & { customParameters: Record<string, string> }): CallTrace | undefined;
  log?: (level: 'info' | 'warn' | 'error' | 'debug', msg: string, fields?: Record<string, unknown>) => void;
}

export interface OpenedAgent {
  name: string;
  session: AgentSession;
  ready: Promise<void>;
  /** Whether it was connected ahead of the stream, at the voice webhook. */
  preconnected: boolean;
  /** The call's profile (a snapshot: reloads do not change a live call), when one answered. */
  profile?: Profile;
  /** Tools of the embedding app this call gets beside its profile's. */
  appTools?: readonly AppTool[];
}

export interface CallSummary {
  callSid: string | null;
  streamSid: string | null;
  agent: string | null;
  state: CallState;
  startedAt: string;
  durationMs: number;
  endReason: string | null;
  framesIn: number;
  /** Audio chunks handed to the agent (one per released run of frames). */
  chunksToAgent: number;
  /**
   * Caller audio (ms) handed to the agent that never reached its service: its socket was over
   * the send bound (the service not reading), or a reconnect outlasted what is kept. Absent in
   * records written before it existed.
   */
  callerAudioDroppedMs?: number;
  framesOut: number;
  prestartFramesBuffered: number;
  prestartFramesDropped: number;
  badInput: Partial<Record<TwilioInputCode, number>>;
  jitter: JitterStats | null;
  playout: PlayoutStats | null;
  bargeIns: number;
  lastHeardMs: number | null;
  dtmf: number;
  marksEchoed: number;
  transcripts: Transcript[];
  timeToFirstAgentAudioMs: number | null;
  /** Whether the agent was connected ahead of the stream (at the voice webhook). */
  agentPreconnected: boolean;
  /** Time from the stream's start to the agent being ready (0 when it was ready before). */
  agentReadyMs: number | null;
  /** How the caller was told when the agent failed: 'rest-say', 'prompt', or null. */
  apology: 'rest-say' | 'prompt' | null;
  /** The stereo WAV of the call (caller left, agent right), when recording is on. */
  recordingPath: string | null;
  /** When the call ended (ISO), null while it runs. */
  endedAt: string | null;
  /** Custom parameters from TwiML (agent options; may carry caller data: PII). */
  customParameters: Record<string, string>;
  /** The call as it happened: speech, transcript turns, tools, barge-ins, actions, the end (src/call/timeline.ts) — in the summary once the call has ended. Absent in records from before. */
  timeline?: TimelineEvent[];
  /** What operators did to the call through the admin API (say, hangup, transfer). Absent in records from before. */
  actions?: CallAction[];
}

interface SessionEvents {
  state: [CallState, CallState];
  started: [StartMessage];
  closed: [string];
  badInput: [TwilioInputCode, string];
}

const FRAME_BYTES = 160;
const MAX_TRANSCRIPTS = 200;

export class CallSession extends EventEmitter<SessionEvents> {
  readonly #d: CallSessionDeps;
  readonly #socket: StreamSocket;
  #phase: Phase;
  readonly #startedAt = Date.now();
  readonly #t0 = FrameClock.now();
  #endReason: string | null = null;
  #start: StartMessage | undefined;
  #agentName: string | null = null;
  #agent: AgentSession | undefined;
  /** From `start` to closing: agent frames, prompts and TTS to Twilio, marks, the heard position. */
  #playout: Playout | undefined;
  /** Whether this call is on the shared clock: only while its playout or jitter buffer has work (see #onTick). */
  #ticking = false;
  #timers = new Set<NodeJS.Timeout>();
  readonly #frame = Buffer.alloc(FRAME_BYTES);
  #counters = { framesIn: 0, framesToAgent: 0, bargeIns: 0, dtmf: 0, marksEchoed: 0 };
  /** The hold's counts of caller frames kept and dropped before the agent was ready (they outlive it). */
  readonly #prestart: EarlyHold['counts'];
  #badInput: Partial<Record<TwilioInputCode, number>> = {};
  #transcripts: Transcript[] = [];
  #lastHeardMs: number | null = null;
  #firstAgentAudioAt: number | null = null;

  constructor(socket: StreamSocket, deps: CallSessionDeps) {
    super();
    this.#socket = socket;
    this.#writes = new WriteHold(corkableUnder(socket));
    this.#d = deps;
    const hold = new EarlyHold(Math.max(1, Math.ceil(deps.config.prestartBufferMs / 20)));
    this.#prestart = hold.counts;
    this.#phase = { state: 'awaiting-start', hold };
    this.#after(deps.config.startTimeoutMs, () => {
      if (this.#phase.state === 'awaiting-start') void this.close('start-timeout');
    });
  }

  get state(): CallState {
    return this.#phase.state;
  }
  get callSid(): string | undefined {
    return this.#start?.callSid;
  }
  get streamSid(): string | undefined {
    return this.#start?.streamSid;
  }
  /** The stream's custom parameters (after `start`; may carry caller data). */
  get customParameters(): Readonly<Record<string, string>> {
    return this.#start?.customParameters ?? {};
  }
  /** The agent answering the call (after `start`, once it is opened). */
  get agentName(): string | null {
    return this.#agentName;
  }
  /** Barge-ins so far. */
  get bargeInCount(): number {
    return this.#counters.bargeIns;
  }
  /** Caller audio the agent's service never received so far (ms, rounded): see AgentSession.callerAudioDroppedMs. */
  get callerAudioDroppedMs(): number {
    return Math.round(this.#agent?.callerAudioDroppedMs ?? 0);
  }
  /** When the session began (ms since the epoch). */
  get startedAtEpochMs(): number {
    return this.#startedAt;
  }

  #log(level: 'info' | 'warn' | 'error' | 'debug', msg: string, fields: Record<string, unknown> = {}): void {
    this.#d.log?.(level, msg, { callSid: this.#start?.callSid, streamSid: this.#start?.streamSid, ...fields });
  }

  /**
   * The one way the state changes. What the previous state owned and the next one does not
   * carry is disposed here: the hold (what came before the agent was ready: streaming takes
   * it first, any other state drops it) and the media (closed unless the next state keeps
   * the same one). A draining call that changes cause (a goodbye whose agent then fails)
   * is a change too.
   */
  #transition(next: Phase): void {
    const prev = this.#phase;
    if (prev.state === next.state && (prev.state !== 'draining' || (next as typeof prev).cause === prev.cause)) return;
    this.#phase = next;
    if ('media' in prev && (!('media' in next) || next.media !== prev.media)) {
      prev.media.close();
      this.#finalJitter = prev.media.jitter();
    }
    this.emit('state', next.state, prev.state);
  }

  /** The media while audio flows both ways: streaming, or the agent's goodbye draining (the caller may still barge in). */
  get #media(): CallMedia | undefined {
    return 'media' in this.#phase ? this.#phase.media : undefined;
  }

  /** What is kept until the agent is ready (awaiting-start, connecting). */
  get #hold(): EarlyHold | undefined {
    return 'hold' in this.#phase ? this.#phase.hold : undefined;
  }

  /** Why the call is draining (undefined in any other state). */
  get drainCause(): DrainCause | undefined {
    return this.#phase.state === 'draining' ? this.#phase.cause : undefined;
  }

  #after(ms: number, fn: () => void): NodeJS.Timeout {
    const t = setTimeout(() => {
      this.#timers.delete(t);
      fn();
    }, ms);
    this.#timers.add(t);
    return t;
  }

  /** Bad input found outside the parser (oversize, flood): counted like any other. */
  reportBadInput(code: TwilioInputCode, detail: string): void {
    this.#countBad(code, detail);
  }

  #countBad(code: TwilioInputCode, detail: string): void {
    this.#badInput[code] = (this.#badInput[code] ?? 0) + 1;
    this.emit('badInput', code, detail);
    this.#log('debug', 'bad input from Twilio', { code, detail });
  }

  /** A text message from Twilio. Never throws. */
  onText(text: string): void {
    if (this.#phase.state === 'closed') return;
    const r = parseTwilioMessage(text);
    if (!r.ok) {
      this.#countBad(r.code, r.detail);
      return;
    }
    const m = r.message;
    if (m.event !== 'connected' && m.event !== 'start' && this.#start && m.streamSid !== this.#start.streamSid) {
      this.#countBad(TwilioInputCodes.STREAM_SID, `streamSid ${m.streamSid} is not this call's`);
      return;
    }
    switch (m.event) {
      case 'connected':
        return;
      case 'start':
        if (this.#start) {
          this.#countBad(TwilioInputCodes.INVALID, 'second start on one stream');
          return;
        }
        this.#onStart(m);
        return;
      case 'media':
        this.#onMedia(m.payload, m.chunk, m.timestampMs, m.streamSid);
        return;
      case 'mark':
        this.#counters.marksEchoed++;
        this.#playout?.onMark(m.name, FrameClock.now());
        return;
      case 'dtmf':
        this.#counters.dtmf++;
        this.#agent?.sendDtmf(m.digit);
        return;
      case 'stop':
        void this.close('twilio-stop');
        return;
    }
  }

  /** A binary frame: Twilio never sends one. */
  onBinary(): void {
    this.#countBad(TwilioInputCodes.BINARY, 'binary frame');
  }

  #onMedia(payloadB64: string, chunk: number, timestampMs: number, streamSid: string): void {
    if (payloadB64.length !== FRAME_PAYLOAD_B64_LENGTH) {
      this.#countBad(TwilioInputCodes.PAYLOAD, `payload of ${payloadB64.length} base64 chars, expected ${FRAME_PAYLOAD_B64_LENGTH} (160 bytes)`);
      return;
    }
    // 216 characters ending in '==' are exactly 160 bytes of base64; the decoder skips
    // anything outside the alphabet (and stops at a '=' mid-string), so junk comes out short
    // — checked by length, not by a pattern over every character of every frame.
    const n = payloadB64.charCodeAt(FRAME_PAYLOAD_B64_LENGTH - 1) === 61 && payloadB64.charCodeAt(FRAME_PAYLOAD_B64_LENGTH - 2) === 61 ? this.#frame.write(payloadB64, 0, 'base64') : 0;
    if (n !== FRAME_BYTES) {
      this.#countBad(TwilioInputCodes.PAYLOAD, 'payload is not base64 of 160 bytes');
      return;
    }
    this.#counters.framesIn++;
    const now = FrameClock.now();
    this.#tap?.caller(this.#frame, timestampMs);
    this.#timeline?.caller(this.#frame, timestampMs);
    const media = this.#media;
    if (media) {
      media.caller(this.#frame, chunk, timestampMs, now);
      this.#d.observer?.inboundFrame(performance.now() - now);
      return;
    }
    if (!this.#start) this.#countBad(TwilioInputCodes.MEDIA_BEFORE_START, 'media before start (kept until start)');
    this.#hold?.caller(this.#frame, chunk, timestampMs, now, streamSid);
  }
  #tap: CallAudioTap | undefined;
  /** Where the recording went (set when the tap closes). */
  #recordingPath: string | null = null;

  /** Caller audio in the agent's format, from the call's media (pool mode: a batch later). */
  #toAgent = (audio: Int16Array | Uint8Array): void => {
    if (!this.#media) return;
    this.#counters.framesToAgent++;
    this.#agent!.sendAudio(audio);
  };

  /** The bridge's VAD (agents without their own): the caller speaking over the agent is a barge-in. */
  #onSpeech = (ev: 'speechStart' | 'speechEnd'): void => {
    if (ev === 'speechStart') {
      if (this.#playout?.active) this.bargeIn('bridge-vad');
    } else this.#trace?.callerStopped('bridge-vad', FrameClock.now());
  };

  #onStart(m: StartMessage): void {
    // Only a call still awaiting its start becomes one (a start that arrives as the session
    // closes — say after the start timeout — opens nothing).
    const phase = this.#phase;
    if (phase.state !== 'awaiting-start') return;
    const hold = phase.hold;
    const refused = this.#d.admitStart?.(m);
    if (refused !== undefined) {
      // Not a call: no 'started', no agent, no record (the session never gets a CallSid).
      this.#log('warn', 'stream refused at start', { reason: refused });
      void this.close(refused);
      return;
    }
    // The stream token has done its job: kept out of the agent's options and the record.
    if (STREAM_TOKEN_PARAM in m.customParameters) {
      const { [STREAM_TOKEN_PARAM]: _token, ...rest } = m.customParameters;
      m = { ...m, customParameters: rest };
    }
    this.#start = m;
    this.#startAt = FrameClock.now();
    // Before 'started': whoever learns of the call from it can watch it from its first event.
    this.#timeline = new CallTimeline(this.#startAt);
    hold.started(m.streamSid);
    this.emit('started', m);
    // Playout exists from the start (μ-law until the agent's format is known), so an
    // apology can be played even when the agent never connects.
    try {
      this.#tap = this.#d.tapFor?.({ callSid: m.callSid, streamSid: m.streamSid });
    } catch (e) {
      this.#log('warn', 'recording could not start', { err: e });
    }
    const timeline = this.#timeline!;
    let external: CallTrace | undefined;
    try {
      external = this.#d.traceFor?.({ callSid: m.callSid, streamSid: m.streamSid, startedAtMs: this.#startAt, customParameters: m.customParameters });
    } catch (e) {
      this.#log('warn', 'tracing could not start', { err: e });
    }
    this.#trace = bothTraces(timeline, external);
    const origin = this.#startAt;
    const tap = this.#tap;
    const trace = this.#trace;
    this.#playout = new Playout({
      streamSid: m.streamSid,
      send: (t) => this.#send(t),
      leadMs: this.#d.config.playoutLeadMs,
      now: FrameClock.now,
      onSent: (ulaw, playAtMs) => {
        tap?.agent(ulaw, playAtMs - origin);
        timeline.agent(ulaw, playAtMs);
        trace.audioSent(playAtMs);
      },
      onQueued: this.#wake,
    });
    let opened: OpenedAgent;
    try {
      opened = this.#d.openAgent(m.callSid, m.customParameters);
    } catch (e) {
      // The message may quote the call's options (caller data): only under `pii`.
      this.#log('warn', 'no agent for call', { code: (e as { code?: string }).code ?? null, ...callerDataErr(e) });
      this.#trace?.agentError((e as { code?: string }).code ?? 'unknown', true);
      void this.#fail('agent-unknown');
      return;
    }
    this.#agentName = opened.name;
    this.#preconnected = opened.preconnected;
    const agent = opened.session;
    this.#agent = agent;
    if (opened.profile && ((opened.profile.tools?.length ?? 0) > 0 || (opened.appTools?.length ?? 0) > 0)) this.#tools = this.#toolsFor(opened.profile, opened.appTools ?? [], agent, m);
    this.#greeting = opened.profile?.greeting;
    this.#profile = opened.profile;
    this.#transition({ state: 'connecting', hold });
    this.#wireAgent(agent);
    opened.ready.then(
      () => {
        if (this.#phase.state !== 'connecting') return;
        this.#agentReadyMs = Math.round(FrameClock.now() - this.#startAt);
        this.#d.observer?.agentReady(opened.name, this.#agentReadyMs, opened.preconnected);
        this.#trace?.agentReady(opened.name, this.#agentReadyMs, opened.preconnected);
        this.#onAgentConnected(agent);
      },
      (e: unknown) => {
        const code = (e as { code?: string }).code ?? 'unknown';
        // A provider's words, or the call's options quoted back: the message only under `pii`.
        this.#log('warn', 'agent connect failed', { code, ...callerDataErr(e) });
        this.#trace?.agentError(code, true);
        void this.#fail(code === ErrorCodes.AGENT_TIMEOUT ? 'agent-connect-timeout' : `agent-connect-failed:${code}`);
      },
    );
  }
  #startAt = 0;
  #trace: CallTrace | undefined;
  #timeline: CallTimeline | undefined;
  #preconnected = false;
  #agentReadyMs: number | null = null;
  #apology: 'rest-say' | 'prompt' | null = null;

  /**
   * The agent cannot serve this call (unreachable, failed for good, unknown): the caller
   * hears a short apology — a <Say> through a call update when REST is configured, else
   * the bundled prompt through our own playout — then the call ends with the reason.
   */
  async #fail(reason: string): Promise<void> {
    if (this.drainCause === 'apology' || this.#closePromise) return;
    this.#transition({ state: 'draining', cause: 'apology' });
    this.#log('warn', 'agent failed; apologising and ending the call', { reason });
    const callSid = this.#start?.callSid;
    if (callSid && this.#d.apologizeViaRest) {
      try {
        if (await this.#d.apologizeViaRest(callSid)) {
          this.#apology = 'rest-say';
          return void (await this.close(reason));
        }
      } catch (e) {
        this.#log('warn', 'REST apology failed; playing the bundled prompt', { err: e });
      }
    }
    const playout = this.#playout;
    const prompt = this.#d.apologyPrompt;
    if (playout && prompt && prompt.length > 0) {
      this.#apology = 'prompt';
      // What already reached Twilio plays on (the caller hears the reply the agent got out),
      // what had not is dropped; the apology follows it.
      playout.discardUnsent();
      playout.enqueue(prompt, 'apology');
      playout.endResponse();
      await new Promise<void>((resolve) => {
        const t = this.#after(Math.ceil(prompt.length / 8) + 3000, resolve);
        void playout.drained().then(() => {
          clearTimeout(t);
          this.#timers.delete(t);
          resolve();
        });
      });
    }
    await this.close(reason);
  }

  #onAgentConnected(agent: AgentSession): void {
    const cfg = this.#d.config;
    const hold = this.#hold!;
    let media: CallMedia;
    try {
      media = new CallMedia({
        dsp: this.#d.dsp,
        pool: this.#d.pool,
        quality: cfg.resamplerQuality,
        agentIn: agent.inputFormat,
        agentOut: agent.outputFormat,
        vad: agent.hasVad ? undefined : { thresholdDbfs: cfg.echo.vadThresholdDbfs, silenceMs: cfg.echo.silenceMs },
        playout: this.#playout!,
        toAgent: this.#toAgent,
        onSpeech: this.#onSpeech,
        onPoolFailure: (reason) => void this.#fail(`dsp-failed:${reason}`),
        onHeld: this.#wake,
      });
    } catch (e) {
      // A format the DSP refuses, or a pool already closed: this call fails, the process does not.
      this.#log('error', 'could not create the DSP pipelines', { err: e });
      void this.#fail(`dsp-failed:${(e as { code?: string }).code ?? 'unknown'}`);
      return;
    }
    // What connecting kept is handed over to streaming (the transition drops it otherwise).
    const held = hold.take();
    this.#transition({ state: 'streaming', media });
    for (const n of held.notes) agent.note(n);
    if (this.#greeting !== undefined) agent.greet(this.#greeting);
    // The agent's first words, if it spoke before we were streaming.
    for (const a of held.agent) {
      if (a === 'done') this.#endResponse(this.#playout!.currentResponseId);
      else this.#playAgentAudio(a);
    }
    // The caller's first words: everything kept while connecting, in order.
    for (const p of held.caller) media.caller(p.payload, p.chunk, p.timestampMs, p.atMs);
  }

  /** The call's tool calls (src/call/call-tools.ts): HTTP tools, end_call and transfer_call. */
  #toolsFor(profile: Profile, appTools: readonly AppTool[], agent: AgentSession, m: StartMessage): CallTools {
    const p = m.customParameters;
    return new CallTools({
      profile,
      appTools,
      agent,
      call: () => ({ callSid: m.callSid, streamSid: m.streamSid, from: p[IDENTITY_PARAMS.from] ?? null, to: p[IDENTITY_PARAMS.to] ?? null }),
      observe: (r, { callId }) => {
        this.#timeline?.toolResult(callId, r, FrameClock.now());
        this.#d.onToolResult?.(r, { callSid: m.callSid, profile: profile.name });
      },
      endCall: (reason) => void this.#endAfterGoodbye(reason),
      transfer: this.#d.transferViaRest
        ? (to) => {
            void this.#transferAfterGoodbye(to, p[IDENTITY_PARAMS.to] ?? null);
            return true;
          }
        : undefined,
      log: (level, msg, fields) => this.#log(level, msg, fields),
    });
  }
  #tools: CallTools | undefined;
  #profile: Profile | undefined;
  /** The profile's greeting: the agent speaks first, once the call streams. */
  #greeting: string | undefined;

  /** Tells the agent something about the call (who answered it), now or once it is connected. */
  noteToAgent(text: string): void {
    if (this.#closePromise) return;
    if (this.#phase.state === 'streaming' && this.#agent) this.#agent.note(text);
    else this.#hold?.note(text);
  }

  #wireAgent(agent: AgentSession): void {
    agent.onEvent((e) => {
      switch (e.type) {
        case 'toolCall':
          this.#timeline?.toolCall(e.callId, e.name, e.arguments, FrameClock.now());
          if (this.#tools) this.#tools.onToolCall(e.callId, e.name, e.arguments);
          else agent.sendToolResult(e.callId, unknownToolResult(e.name)); // no tools on this call
          return;
        case 'toolCancel':
          this.#tools?.onToolCancel(e.callIds);
          return;
        case 'audio':
          return this.#onAgentAudio(e);
        case 'responseDone':
          if (this.#phase.state === 'connecting') this.#phase.hold.responseDone();
          else this.#endResponse(e.responseId);
          return;
        case 'interruption':
          return this.bargeIn('agent-vad');
        case 'transcript':
          if (e.role === 'caller' && e.final) this.#trace?.callerStopped('transcript', FrameClock.now());
          if (e.final) this.#timeline?.transcript(e.role, e.text, FrameClock.now());
          this.#transcripts.push({ role: e.role, text: e.text, final: e.final });
          if (this.#transcripts.length > MAX_TRANSCRIPTS) this.#transcripts.shift();
          return;
        case 'end':
          return void this.#endAfterGoodbye(e.reason);
        case 'error':
          this.#trace?.agentError(e.error.code, e.fatal);
          this.#log(e.fatal ? 'error' : 'warn', 'agent error', { code: e.error.code, ...callerDataErr(e.error) });
          if (e.fatal) void this.#fail(`agent-error:${e.error.code}`);
          return;
        case 'closed':
          // While the goodbye drains, the agent may already have closed its side: let it play out.
          if (this.#phase.state === 'draining') return;
          if (this.#phase.state === 'streaming' || this.#phase.state === 'connecting') void this.#fail(`agent-closed:${e.reason}`);
          return;
      }
    });
  }

  #onAgentAudio(a: AgentAudio): void {
    // Audio emitted as connect() resolves (a greeting sent right after the service's
    // ready message) arrives before this session has switched to streaming: held (bounded)
    // and played once the media exists.
    if (this.#phase.state === 'connecting') return this.#phase.hold.agentAudio(a);
    // After 'end' the goodbye may still be arriving: keep accepting until close.
    if (this.#media) this.#playAgentAudio(a);
  }

  /** Agent audio into the call's media, at its own rate (the outbound path follows a change of rate). */
  #playAgentAudio(a: AgentAudio): void {
    if (this.#firstAgentAudioAt === null) {
      this.#firstAgentAudioAt = FrameClock.now();
      this.#d.observer?.firstAgentAudio(this.#agentName ?? 'unknown', this.#firstAgentAudioAt - this.#startAt);
    }
    this.#trace?.agentAudio(a.responseId, FrameClock.now());
    try {
      this.#media!.agent(a.data, a.sampleRateHz, a.responseId);
    } catch (e) {
      // A rate the DSP refuses: this chunk is dropped, the call goes on at the old rate.
      this.#log('warn', 'agent audio at a rate the DSP refuses; dropped', { code: (e as { code?: string }).code, sampleRateHz: a.sampleRateHz });
    }
  }

  /** The response's tail goes out and Playout finishes it; resolves once it has (pool mode: after the last batch). */
  #finishResponse(): Promise<void> {
    const media = this.#media;
    if (media) return media.finishResponse();
    this.#playout?.endResponse();
    return Promise.resolve();
  }

  /** The agent's response is complete: its tail goes out; the trace learns when it has been heard. */
  #endResponse(responseId: string | undefined): void {
    const playout = this.#playout;
    if (!playout) return;
    const finished = this.#finishResponse();
    this.#trace?.responseDone(responseId, finished.then(() => playout.drained()));
  }

  #onTick = (nowMs: number): void => {
    const p = this.#playout;
    if (p) {
      const observer = this.#d.observer;
      if (observer) {
        const sentBefore = p.framesSent;
        const t0 = performance.now();
        p.tick(nowMs);
        if (p.framesSent !== sentBefore) observer.outboundTick(performance.now() - t0);
      } else {
        p.tick(nowMs);
      }
    }
    // Frames held by the jitter buffer waiting for a gap are released on their deadline.
    const media = this.#media;
    media?.poll(nowMs);
    // Nothing left for the clock: off it until audio is queued or a frame is held again
    // (#wake). A call whose agent is silent and whose caller's frames arrive in order
    // then costs nothing per tick — most of a call, and the tick's cache misses scale
    // with the number of calls.
    if (!p?.hasQueued && !media?.needsPoll) this.#sleep();
  };

  /** Work for the clock (frames queued, a frame held): on it from the next tick. */
  readonly #wake = (): void => {
    if (this.#ticking || this.#phase.state === 'closing' || this.#phase.state === 'closed') return;
    this.#ticking = true;
    this.#d.clock.subscribe(this.#onTick);
  };

  #sleep(): void {
    if (!this.#ticking) return;
    this.#ticking = false;
    this.#d.clock.unsubscribe(this.#onTick);
  }

  /**
   * One message to Twilio. Messages sent in one turn of the event loop (a media message and
   * its mark; a tick's messages) leave in one write, with the other sockets' writes of that
   * turn, at the end of its I/O batch (src/net/write-batch.ts): a syscall saved per extra
   * message (each ws message is otherwise its own writev), and the peer woken once.
   */
  #send(text: string): void {
    this.#writes.hold();
    try {
      this.#socket.send(text);
    } catch (e) {
      this.#log('warn', 'send to Twilio failed', { err: e });
    }
  }
  readonly #writes: WriteHold;

  /**
   * Speaks prepared 8 kHz μ-law audio (TTS, a greeting) into the call as its own
   * response, queued after what is already playing; barge-in clears it like agent audio.
   * Returns the ms queued, or 0 when the call is not streaming.
   */
  say(ulaw: Uint8Array, label = 'say'): number {
    if (this.#phase.state !== 'streaming' || !this.#playout) return 0;
    this.#playout.enqueue(ulaw, `${label}-${++this.#says}`);
    this.#playout.endResponse();
    return Math.round(ulaw.length / 8);
  }
  #says = 0;
  #bargeInDetectedAt: number | undefined;

  /** Barge-in: stop playout, clear Twilio's buffer, drop the response's late audio, tell the agent what was heard. */
  bargeIn(source: 'agent-vad' | 'bridge-vad' | 'api', detectedAtMs?: number): void {
    this.#bargeInDetectedAt = detectedAtMs;
    const media = this.#media;
    if (!this.#playout || !media) return;
    const r = this.#playout.bargeIn();
    media.resetOutbound();
    if (!r.cleared) return;
    this.#counters.bargeIns++;
    this.#lastHeardMs = r.heardMs;
    const now = FrameClock.now();
    this.#tap?.cleared(now - this.#startAt);
    this.#d.observer?.bargeIn(source, now - (this.#bargeInDetectedAt ?? now));
    this.#trace?.bargeIn(source, r.heardMs, r.responseId, now);
    this.#log('info', 'barge-in', { source, heardMs: r.heardMs, responseId: r.responseId });
    this.#agent?.interrupt({ heardMs: r.heardMs });
  }

  /** The agent ended the call: wait (bounded) until its goodbye has been heard, then hang up. */
  /** The agent's last words are heard (bounded by hangupDrainTimeoutMs); false when the call is already ending. */
  async #drainGoodbye(): Promise<boolean> {
    if (this.#phase.state !== 'streaming') return false;
    this.#transition({ state: 'draining', cause: 'goodbye', media: this.#phase.media });
    const playout = this.#playout!;
    const finished = this.#finishResponse();
    // The clock sends what is still queued; the wait is bounded by hangupDrainTimeoutMs.
    await new Promise<void>((resolve) => {
      const t = this.#after(this.#d.config.hangupDrainTimeoutMs, resolve);
      void finished.then(() => playout.drained()).then(() => {
        clearTimeout(t);
        this.#timers.delete(t);
        resolve();
      });
    });
    return true;
  }

  /** transfer_call: after the agent's last words, the live call is redirected to <Dial>; the stream ends. */
  async #transferAfterGoodbye(to: string, callerId: string | null): Promise<void> {
    if (!(await this.#drainGoodbye())) return;
    const callSid = this.#start?.callSid;
    try {
      await this.#d.transferViaRest!(callSid!, to, callerId);
    } catch (e) {
      this.#log('warn', 'REST transfer failed; ending the call', { err: e });
      return void (await this.close('transfer-failed'));
    }
    await this.close(`transferred:${to}`);
  }

  async #endAfterGoodbye(reason: string): Promise<void> {
    if (!(await this.#drainGoodbye())) return;
    const callSid = this.#start?.callSid;
    let viaRest = false;
    if (callSid && this.#d.endCallViaRest) {
      try {
        viaRest = await this.#d.endCallViaRest(callSid);
      } catch (e) {
        this.#log('warn', 'REST hang-up failed; closing the stream', { err: e });
      }
    }
    await this.close(`agent-ended:${reason}${viaRest ? ' (rest)' : ''}`);
  }

  /** The one exit. Idempotent: the first reason wins; later calls return the same promise. */
  close(reason: string): Promise<void> {
    if (!this.#closePromise) {
      this.#endReason = reason;
      this.#closePromise = this.#doClose(reason);
    }
    return this.#closePromise;
  }
  #closePromise: Promise<void> | undefined;

  async #doClose(reason: string): Promise<void> {
    this.#transition({ state: 'closing' });
    this.#tools?.close();
    this.#trace?.closing(reason, FrameClock.now());
    this.#sleep();
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    // Agent audio sent ahead and not yet played never will be: the recording ends with what was heard.
    if (this.#playout?.active) this.#tap?.cleared(FrameClock.now() - this.#startAt);
    this.#playout?.close();
    try {
      this.#socket.close(1000, closeReason(reason));
    } catch {
      /* already closed */
    }
    if (this.#tap) {
      let t: NodeJS.Timeout | undefined;
      const path = await Promise.race([this.#tap.close().catch(() => undefined), new Promise<undefined>((r) => (t = setTimeout(() => r(undefined), 5000)))]);
      clearTimeout(t);
      this.#recordingPath = path ?? null;
    }
    const agent = this.#agent;
    if (agent) {
      let t: NodeJS.Timeout | undefined;
      await Promise.race([agent.close(reason).catch(() => undefined), new Promise<void>((r) => (t = setTimeout(r, 2000)))]);
      clearTimeout(t);
    }
    this.#endedAt = Date.now();
    this.#endedPerf = FrameClock.now();
    this.#transition({ state: 'closed' });
    this.#trace?.ended(this.summary());
    this.emit('closed', reason);
    this.#log('info', 'call closed', { reason });
  }
  #finalJitter: JitterStats | null = null;
  #endedAt: number | null = null;
  #endedPerf: number | null = null;

  summary(): CallSummary {
    return {
      callSid: this.#start?.callSid ?? null,
      streamSid: this.#start?.streamSid ?? null,
      agent: this.#agentName,
      state: this.#phase.state,
      startedAt: new Date(this.#startedAt).toISOString(),
      durationMs: Math.round((this.#endedPerf ?? FrameClock.now()) - this.#t0),
      endReason: this.#endReason,
      framesIn: this.#counters.framesIn,
      chunksToAgent: this.#counters.framesToAgent,
      callerAudioDroppedMs: this.callerAudioDroppedMs,
      framesOut: this.#playout?.stats.framesSent ?? 0,
      prestartFramesBuffered: this.#prestart.buffered,
      prestartFramesDropped: this.#prestart.dropped,
      badInput: { ...this.#badInput },
      jitter: this.#media?.jitter() ?? this.#finalJitter,
      playout: this.#playout?.stats ?? null,
      bargeIns: this.#counters.bargeIns,
      lastHeardMs: this.#lastHeardMs,
      dtmf: this.#counters.dtmf,
      marksEchoed: this.#counters.marksEchoed,
      transcripts: [...this.#transcripts],
      // From the stream's start (Twilio `start`), like the first_agent_audio_seconds metric.
      timeToFirstAgentAudioMs: this.#firstAgentAudioAt === null ? null : Math.round(this.#firstAgentAudioAt - this.#startAt),
      agentPreconnected: this.#preconnected,
      agentReadyMs: this.#agentReadyMs,
      apology: this.#apology,
      recordingPath: this.#recordingPath,
      endedAt: this.#endedAt === null ? null : new Date(this.#endedAt).toISOString(),
      customParameters: { ...(this.#start?.customParameters ?? {}) },
      // In the record once the call has ended; while it runs, watchers read it live (`timeline`), so
      // the live list and every metrics scrape do not copy it.
      ...(this.#phase.state === 'closed' ? { timeline: this.#timeline?.events ?? [] } : {}),
      actions: this.#timeline?.actions ?? [],
    };
  }

  /** The call as it happens (after `start`), for watchers: the console. */
  get timeline(): CallTimeline | undefined {
    return this.#timeline;
  }

  /** Where an operator may transfer this call: its profile's transfer_call destinations (none without one). */
  get transferTargets(): readonly string[] {
    for (const t of this.#profile?.tools ?? []) if ('builtin' in t && t.builtin === 'transfer_call') return t.to;
    return [];
  }

  /**
   * An operator's transfer (admin API): the live call is redirected to <Dial> `to` at once —
   * no goodbye to wait for, the operator decided — and the stream ends as `transferred:<to>`.
   * Throws when transfers cannot be made here (no REST credentials) or the call is ending.
   */
  async transfer(to: string): Promise<void> {
    const callSid = this.#start?.callSid;
    if (!this.#d.transferViaRest) throw new BridgeError(ErrorCodes.TWILIO_NOT_CONFIGURED, 'transfers need the Twilio REST API: set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN');
    if (!callSid || this.#closePromise || this.#phase.state !== 'streaming') throw new BridgeError(ErrorCodes.CALL_NOT_STREAMING, 'the call is not streaming');
    if (this.#transferring) throw new BridgeError(ErrorCodes.CALL_NOT_STREAMING, 'a transfer of this call is under way');
    this.#transferring = true;
    try {
      await this.#d.transferViaRest(callSid, to, this.#start?.customParameters[IDENTITY_PARAMS.to] ?? null);
    } finally {
      this.#transferring = false;
    }
    await this.close(`transferred:${to}`);
  }

  #transferring = false;

  /** An operator acted on the call through the admin API: kept in its timeline and record. */
  audit(action: CallActionName, detail?: string): void {
    this.#timeline?.action(action, FrameClock.now(), detail);
  }
}
