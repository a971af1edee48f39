/**
 * Hume EVI adapter: one EVI chat per phone call, over a WebSocket.
 *
 * NOTE: Hume announced that EVI access ends on 2026-11-13 (https://dev.hume.ai/intro). The
 * adapter keeps to the documented protocol so it keeps working against any
 * Hume-compatible endpoint (HUME_EVI_URL); against api.hume.ai it will be refused.
 *
 * ```text
 *            connect()                        chat_metadata (chat_group_id kept)
 *   idle ─────────────► dialing ─────────────────────────────────────────────► open ◄─────────────┐
 *                       │ open: send session_settings {linear16, HUME_INPUT_RATE, mono}  │          │
 *                       │ error msg / HTTP 4xx-5xx / close / abort → connect() rejects   │          │ chat_metadata
 *                       ▼                                                                │          │
 *                     closed ◄── close(reason) from any state                            │          │
 *                       ▲                                                                ▼          │
 *                       │  attempts used up / auth refused:        unexpected close, or no pong for │
 *                       │  fatal AGENT_CLOSED + closed             2 keepalive intervals:           │
 *                       └──────────────────────────────────── resuming ─────────────────────────────┘
 *                                                              non-fatal AGENT_CLOSED/AGENT_TIMEOUT,
 *                                                              redial ?resumed_chat_group_id=… with
 *                                                              backoff (HUME_RESUME_ATTEMPTS), caller
 *                                                              audio kept (last 5 s) and sent after
 * ```
 *
 * Audio in: PCM16 mono at HUME_INPUT_RATE, base64 in `audio_input`, one message per
 * bridge frame (EVI recommends 20 ms buffers and continuous streaming).
 *
 * Audio out: every `audio_output` is a whole WAV file. Its header is read (the rate
 * is 48 kHz per the SDK doc, 24 kHz per an SDK PR: we trust each header);
 * anything but PCM16 mono, truncated or absurd is BRIDGE_ERR_AGENT_AUDIO_FORMAT and
 * never played. Each chunk goes to the call at its header's rate (the call's outbound
 * path resamples, and follows a change of rate); `outputFormat` (HUME_OUTPUT_RATE,
 * default 24 kHz) is only the rate that path opens at.
 *
 * Responses: EVI has no response id; an assistant turn runs from its first
 * audio_output to `assistant_end`, and we name it `hume-<n>`. `user_interruption`
 * (EVI's own VAD: "stop the current audio playback, clear the audio queue") →
 * 'interruption', the turn is abandoned, and late chunks of its assistant messages
 * (by audio_output.id) are dropped. interrupt({heardMs}) from the bridge: EVI has
 * already stopped server-side (it sent `user_interruption`); EVI has no truncate message, and
 * `pause_assistant_message` would stop it answering at all, so we tell it what the
 * caller actually heard with a temporary `context` in session_settings ("context
 * injection": guides the next reply without triggering one). If the bridge
 * interrupts on its own (no user_interruption), EVI's remaining audio for the turn
 * is dropped until the next final user_message or assistant_end.
 */
import { anySignal } from '../../any-signal.js';
import { AgentSession, pcm16, type AudioFormat, type ToolResult } from '../agent.js';
import { humeToolResult } from '../../tools/result-shapes.js';
import { BridgeError, ErrorCodes, isBridgeError } from '../../errors.js';
import { pcm16FromBytes, pcm16ToBase64 } from '../../audio/pcm.js';
import { AgentSocket, type LostInfo } from '../shared/agent-socket.js';
import { CallerAudioHold } from '../shared/caller-audio-hold.js';
import { dtmfKey } from '../shared/dtmf.js';
import { RetryPolicy } from '../shared/retry-policy.js';
import { abortError, type SocketErrorRules } from '../shared/socket-errors.js';
import type { HumeCallOptions, HumeConfig } from './config.js';
import {
  buildAudioInput,
  buildAssistantInput,
  buildSessionSettings,
  buildToolError,
  buildUserInput,
  dtmfText,
  errorFromServiceMessage,
  heardContextText,
  parseServerMessage,
  readWavChunk,
  type AudioOutputMessage,
  type ServerMessage,
} from './protocol.js';

export interface HumeSessionOptions {
  readonly config: HumeConfig;
  /** Per-call options, or the BridgeError (AGENT_CONFIG) that connect() must reject with. */
  readonly call: HumeCallOptions | BridgeError;
  /** Bound of each resume dial (connect() itself is bounded by its signal). Default 5000 ms. */
  readonly dialTimeoutMs?: number;
}

export interface HumeSessionStats {
  /** Caller audio sent to EVI (ms, at inputRateHz). */
  audioSentMs: number;
  /** Caller audio lost: dropped during a resume past the 5 s buffer, or when the socket backed up. */
  audioDroppedMs: number;
  audioChunksReceived: number;
  /** audio_output chunks dropped because they belonged to an interrupted turn. */
  audioChunksDropped: number;
  /** Chunks whose header rate is not HUME_OUTPUT_RATE (played at their own rate). */
  audioChunksOffRate: number;
  protocolErrors: number;
  audioFormatErrors: number;
  serviceErrors: number;
  resumes: number;
}

/** Largest message we take from EVI (a WAV chunk is ~1 s of audio; 8 MiB is far beyond that). */
const MAX_MESSAGE_BYTES = 8 * 1024 * 1024;
/** Caller audio kept while the socket is being resumed. */
const RESUME_BUFFER_MS = 5000;
/** DTMF texts kept while resuming. */
const MAX_PENDING_TEXTS = 16;
/** Ids of interrupted assistant messages remembered (their late chunks are dropped). */
const MAX_DROPPED_IDS = 64;
/** Assistant messages remembered per turn (for the heard-text estimate). */
const MAX_TURN_MESSAGES = 64;

type State = 'idle' | 'dialing' | 'open' | 'resuming' | 'closed';

interface TurnMessage {
  id: string;
  text: string;
  /** Ms of audio received for it. */
  ms: number;
}

/**
 * Hume's own socket rules: close 4001/4003 during the handshake are
 * taken as auth failures (Hume's close codes are unconfirmed); a refused upgrade may be
 * EVI's end of access.
 */
const RULES: SocketErrorRules = {
  provider: 'hume',
  close: (code, _reason, phase) => (phase === 'handshake' && (code === 4001 || code === 4003) ? ErrorCodes.AGENT_AUTH : undefined),
  hint: (status) => (status === 401 || status === 403 ? ' (check HUME_API_KEY)' : status >= 400 && status < 500 && status !== 429 ? ' (EVI access ended 2026-11-13 on api.hume.ai)' : ''),
};

export class HumeSession extends AgentSession {
  readonly inputFormat: AudioFormat;
  readonly outputFormat: AudioFormat;
  readonly hasVad = true;

  readonly #cfg: HumeConfig;
  readonly #call: HumeCallOptions | BridgeError;
  readonly #dialTimeoutMs: number;
  readonly #inRate: number;
  readonly #outRate: number;

  #state: State = 'idle';
  #ws: AgentSocket | undefined;
  #chatGroupId: string | undefined;
  #chatId: string | undefined;
  /** Aborted by close(): cancels dials and resume back-offs. */
  readonly #life = new AbortController();
  #closePromise: Promise<void> | undefined;

  /** Current assistant turn (response) and its messages. */
  #responseSeq = 0;
  #responseId: string | undefined;
  #turn: TurnMessage[] = [];
  /** The last finished turn: its audio may still be playing at the caller (EVI sends faster than real time). */
  #lastTurn: TurnMessage[] = [];
  /** The last abandoned turn, kept until the bridge's interrupt() tells us what was heard. */
  #interruptedTurn: TurnMessage[] | undefined;
  /** Message ids of interrupted turns (their late audio_output chunks are dropped). */
  #droppedIds: string[] = [];
  /** After a bridge-side interrupt EVI did not announce: drop audio until a user turn or assistant_end. */
  #dropping = false;
  /** tool_call ids handed to the call core and not answered yet: id → tool name. */
  #toolCalls = new Map<string, string>();
  #lastHeardMs: number | undefined;

  /** Caller audio (copies) and DTMF texts kept while resuming. */
  readonly #gap = new CallerAudioHold<Int16Array | string>({ maxMs: RESUME_BUFFER_MS, maxOther: 16 });
  readonly #retry: RetryPolicy;

  readonly #stats: HumeSessionStats = {
    audioSentMs: 0,
    audioDroppedMs: 0,
    audioChunksReceived: 0,
    audioChunksDropped: 0,
    audioChunksOffRate: 0,
    protocolErrors: 0,
    audioFormatErrors: 0,
    serviceErrors: 0,
    resumes: 0,
  };

  constructor(options: HumeSessionOptions) {
    super();
    this.#cfg = options.config;
    this.#call = options.call;
    this.#dialTimeoutMs = options.dialTimeoutMs ?? 5000;
    this.#inRate = options.config.inputRateHz;
    this.#outRate = options.config.outputRateHz;
    this.inputFormat = pcm16(this.#inRate);
    this.outputFormat = pcm16(this.#outRate);
    this.#retry = new RetryPolicy({ attempts: options.config.resumeAttempts, baseMs: 250, maxMs: 2000 });
  }

  get stats(): Readonly<HumeSessionStats> {
    return { ...this.#stats };
  }
  /** The EVI chat group (resumable conversation) of this call, once connected. */
  get chatGroupId(): string | undefined {
    return this.#chatGroupId;
  }
  get chatId(): string | undefined {
    return this.#chatId;
  }
  /** heardMs of the bridge's last interrupt(). */
  get lastHeardMs(): number | undefined {
    return this.#lastHeardMs;
  }
  get state(): State {
    return this.#state;
  }

  // --- lifecycle -------------------------------------------------------------------

  async connect(signal: AbortSignal): Promise<void> {
    if (this.#state === 'closed') throw new BridgeError(ErrorCodes.AGENT_CLOSED, 'hume: session is closed');
    if (this.#state !== 'idle') throw new BridgeError(ErrorCodes.AGENT_PROTOCOL, 'hume: connect() called twice');
    if (this.#call instanceof BridgeError) throw this.#call;
    if (signal.aborted) throw abortError(RULES, signal);
    this.#state = 'dialing';
    try {
      await this.#dial(undefined, signal);
    } catch (e) {
      if ((this.#state as State) !== 'closed') {
        this.#state = 'closed';
        this.#life.abort();
        this.#dispose();
      }
      throw isBridgeError(e) ? e : new BridgeError(ErrorCodes.AGENT_CONNECT, `hume: ${(e as Error).message}`, { cause: e });
    }
    if ((this.#state as State) === 'closed') throw new BridgeError(ErrorCodes.AGENT_CLOSED, 'hume: closed while connecting');
    this.#state = 'open';
  }

  close(reason: string): Promise<void> {
    if (this.#closePromise) return this.#closePromise;
    this.#closePromise = this.#doClose(reason);
    return this.#closePromise;
  }

  async #doClose(reason: string): Promise<void> {
    this.#state = 'closed';
    this.#life.abort();
    const ws = this.#ws;
    this.#ws = undefined;
    this.#dispose();
    await ws?.close(1000, 'call ended');
    this.emitEvent({ type: 'closed', reason });
  }

  #dispose(): void {
    this.#gap.clear();
  }

  /** A failure for good: fatal error, then closed. */
  #fail(error: BridgeError): void {
    if (this.#state === 'closed') return;
    this.#emitError(error, true);
    void this.close(`fatal:${error.code}`);
  }

  #emitError(error: BridgeError, fatal: boolean): void {
    if (error.code === ErrorCodes.AGENT_PROTOCOL) this.#stats.protocolErrors++;
    else if (error.code === ErrorCodes.AGENT_AUDIO_FORMAT) this.#stats.audioFormatErrors++;
    else if (error.code === ErrorCodes.AGENT_SERVICE || error.code === ErrorCodes.AGENT_RATE_LIMIT || error.code === ErrorCodes.AGENT_AUTH) this.#stats.serviceErrors++;
    this.reportError(error, fatal);
  }

  /** Waits for `p`, rejecting when `signal` aborts first (no bare await on anything remote). */
  #bounded<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => reject(abortError(RULES, signal));
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      p.then(
        (v) => {
          signal.removeEventListener('abort', onAbort);
          resolve(v);
        },
        (e: unknown) => {
          signal.removeEventListener('abort', onAbort);
          reject(e);
        },
      );
    });
  }

  // --- the socket ------------------------------------------------------------------

  #url(resumeChatGroupId: string | undefined): string {
    const u = new URL(this.#cfg.url);
    // api_key query parameter (the SDK's way) and the X-Hume-Api-Key header; both, so
    // either kind of endpoint accepts us. The URL is never logged.
    u.searchParams.set('api_key', this.#cfg.apiKey);
    const call = this.#call as HumeCallOptions;
    const configId = call.configId ?? this.#cfg.configId;
    if (configId !== undefined) u.searchParams.set('config_id', configId);
    if (resumeChatGroupId !== undefined) u.searchParams.set('resumed_chat_group_id', resumeChatGroupId);
    return u.toString();
  }

  #settings(context?: { text: string; type: 'temporary' | 'persistent' }): string {
    const call = this.#call as HumeCallOptions;
    return buildSessionSettings({ sampleRateHz: this.#inRate, systemPrompt: call.systemPrompt, voiceId: call.voiceId, context, tools: call.tools });
  }

  /** Opens a socket, sends session_settings, resolves on chat_metadata (an EVI `error` instead refuses the chat). */
  async #dial(resumeChatGroupId: string | undefined, signal: AbortSignal): Promise<void> {
    const ws = await AgentSocket.open({
      rules: RULES,
      url: this.#url(resumeChatGroupId),
      headers: { 'X-Hume-Api-Key': this.#cfg.apiKey },
      timeoutMs: this.#dialTimeoutMs,
      signal,
      awaiting: 'chat_metadata',
      onOpen: (sock) => sock.send(this.#settings()),
      handshake: (data) => {
        const msg = this.#parse(data);
        if (msg?.type === 'chat_metadata') {
          this.#chatGroupId = msg.chatGroupId;
          this.#chatId = msg.chatId;
          return true;
        }
        if (msg?.type !== 'error') return undefined;
        this.#stats.serviceErrors++;
        return errorFromServiceMessage(msg);
      },
      pingIntervalMs: this.#cfg.keepaliveMs,
      maxPayloadBytes: MAX_MESSAGE_BYTES,
    });
    if (this.#state === 'closed') {
      void ws.close(1000, 'call ended');
      throw new BridgeError(ErrorCodes.AGENT_CLOSED, 'hume: closed while connecting');
    }
    this.#ws = ws;
    ws.on('message', (data) => this.#onFrame(ws, data));
    ws.on('lost', (error, info) => {
      if (this.#ws !== ws) return;
      this.#ws = undefined;
      if (this.#state === 'open') this.#onDrop(error, info);
    });
  }

  // --- resume after an unexpected close ---------------------------------------------

  #onDrop(cause: BridgeError, info: LostInfo): void {
    // The turn in progress will not get the rest of its audio: it ends here.
    this.#finishResponse();
    const groupId = this.#chatGroupId;
    // A service that accepts the resume and drops again at once would loop forever (RetryPolicy).
    const again = this.#retry.lost();
    if (groupId === undefined || !info.resumable || !again) {
      this.#fail(!again && this.#retry.quickLosses > 0 ? new BridgeError(cause.code, `${cause.message} (again, ${this.#retry.quickLosses} times right after resuming)`, { cause }) : cause);
      return;
    }
    this.#state = 'resuming';
    this.#emitError(new BridgeError(cause.code, `${cause.message}; resuming chat group`, { cause }), false);
    void this.#resume(groupId, cause);
  }

  /** Context for EVI: session_settings `context` (persistent: it holds for the rest of the chat). */
  override note(text: string): void {
    if (this.#state === 'closed') return;
    this.#sendText(this.#settings({ type: 'persistent', text }));
  }

  /**
   * The agent speaks first: the greeting's words as `assistant_input` (spoken verbatim).
   * `auto` sends nothing: EVI's own config decides whether and how it greets.
   */
  override greet(greeting: string): void {
    if (greeting === 'auto' || this.#state === 'closed') return;
    this.#sendText(buildAssistantInput(greeting));
  }

  /** `tool_response` with the output, or `tool_error` (level warn: the chat goes on), for a call this chat made. */
  override sendToolResult(callId: string, result: ToolResult): void {
    const name = this.#toolCalls.get(callId);
    if (name === undefined || this.#state === 'closed') return;
    this.#toolCalls.delete(callId);
    this.#sendText(JSON.stringify(humeToolResult(callId, result, name)));
  }

  async #resume(groupId: string, cause: BridgeError): Promise<void> {
    // The resumed chat does not wait on the old socket's tool calls: the call core stops them.
    if (this.#toolCalls.size > 0) {
      const ids = [...this.#toolCalls.keys()];
      this.#toolCalls.clear();
      this.emitEvent({ type: 'toolCancel', callIds: ids });
    }
    const r = await this.#retry.run(() => this.#dial(groupId, anySignal([this.#life.signal, AbortSignal.timeout(this.#dialTimeoutMs)])), this.#life.signal);
    if (this.#state !== 'resuming') return;
    if (!r.ok) {
      this.#fail(new BridgeError(ErrorCodes.AGENT_CLOSED, `hume: could not resume the chat after it dropped (${cause.message}); last attempt: ${r.error.message}`, { cause: r.error }));
      return;
    }
    this.#state = 'open';
    this.#stats.resumes++;
    this.#retry.recovered();
    this.#flushGap();
  }

  // --- caller → EVI ---------------------------------------------------------------

  sendAudio(data: Int16Array | Uint8Array): void {
    if (!(data instanceof Int16Array)) {
      if (this.#state !== 'closed') this.#emitError(new BridgeError(ErrorCodes.DSP_ARGUMENT, 'hume: expected Int16Array (PCM16) caller audio'), false);
      return;
    }
    if (this.#state === 'open') {
      this.#sendPcm(data);
    } else if (this.#state === 'resuming' && data.length > 0) {
      // The view is reused by the caller: copied.
      const overflow = this.#gap.audio(data.slice(), (data.length * 1000) / this.#inRate);
      this.#stats.audioDroppedMs += overflow;
      this.noteCallerAudioDropped(overflow);
    }
  }

  #sendPcm(data: Int16Array): void {
    const ws = this.#ws;
    if (!ws || data.length === 0) return;
    const ms = (data.length * 1000) / this.#inRate;
    // A socket backed up past its limit (EVI not reading): dropped rather than queued without bound.
    if (ws.send(buildAudioInput(pcm16ToBase64(data)), 'media') === 'sent') this.#stats.audioSentMs += ms;
    else {
      this.#stats.audioDroppedMs += ms;
      this.noteCallerAudioDropped(ms);
    }
  }

  /** After a resume: what was said and pressed during the gap, in order. */
  #flushGap(): void {
    for (const { item } of this.#gap.take()) {
      if (typeof item === 'string') this.#sendText(item);
      else this.#sendPcm(item);
    }
  }

  #sendText(message: string): void {
    if (this.#state === 'resuming') {
      this.#gap.other(message);
      return;
    }
    if (this.#state === 'open') this.#ws?.send(message);
  }

  sendDtmf(digit: string): void {
    if (this.#state === 'closed') return;
    const key = dtmfKey(digit);
    if (key !== undefined) this.#sendText(buildUserInput(dtmfText(key)));
  }

  interrupt(info: { heardMs: number }): void {
    if (this.#state === 'closed') return;
    const heardMs = Number.isFinite(info.heardMs) && info.heardMs > 0 ? info.heardMs : 0;
    this.#lastHeardMs = heardMs;
    let turn = this.#interruptedTurn;
    if (turn === undefined) {
      // The bridge interrupted on its own: EVI does not know; drop what it still sends for this turn.
      turn = this.#responseId !== undefined ? this.#turn : this.#lastTurn;
      if (this.#responseId !== undefined) this.#dropping = true;
      this.#abandonResponse();
    }
    this.#interruptedTurn = undefined;
    this.#sendText(this.#settings({ type: 'temporary', text: heardContextText(heardMs, heardText(turn, heardMs)) }));
  }

  // --- EVI → caller ---------------------------------------------------------------

  /** A frame as an EVI message; a bad one is reported (non-fatal) and undefined. */
  #parse(data: Buffer): ServerMessage | undefined {
    // EVI sends JSON text frames; a binary frame is decoded as UTF-8 JSON all the same
    // (some proxies re-frame text as binary) and rejected if it is not.
    try {
      return parseServerMessage(data.toString('utf8'));
    } catch (e) {
      this.#emitError(isBridgeError(e) ? e : new BridgeError(ErrorCodes.AGENT_PROTOCOL, `hume: ${(e as Error).message}`), false);
      return undefined;
    }
  }

  #onFrame(ws: AgentSocket, data: Buffer): void {
    if (this.#ws !== ws || this.#state === 'closed') return;
    const msg = this.#parse(data);
    if (msg === undefined) return;
    try {
      this.#onMessage(msg);
    } catch (e) {
      // Our own handling failed (e.g. the resampler): never out of a socket callback.
      this.#emitError(isBridgeError(e) ? e : new BridgeError(ErrorCodes.AGENT_PROTOCOL, `hume: could not handle ${msg.type}: ${(e as Error).message}`), false);
    }
  }

  #onMessage(msg: ServerMessage): void {
    switch (msg.type) {
      case 'chat_metadata':
        this.#chatGroupId = msg.chatGroupId;
        this.#chatId = msg.chatId;
        return;
      case 'error':
        this.#emitError(errorFromServiceMessage(msg), false);
        return;
      case 'audio_output':
        this.#onAudio(msg);
        return;
      case 'assistant_message':
        this.#dropIfAbandoned(msg.id);
        if (msg.id !== undefined && !this.#dropping && !this.#droppedIds.includes(msg.id)) {
          const known = this.#turn.find((m) => m.id === msg.id); // its audio may have come first
          if (known) known.text = msg.text;
          else if (this.#turn.length < MAX_TURN_MESSAGES) this.#turn.push({ id: msg.id, text: msg.text, ms: 0 });
        }
        if (msg.text !== '' && !this.#dropping) this.emitEvent({ type: 'transcript', role: 'agent', text: msg.text, final: true });
        return;
      case 'user_message':
        if (!msg.interim) this.#dropping = false; // a new user turn: what follows is a new reply
        if (msg.text !== '') this.emitEvent({ type: 'transcript', role: 'caller', text: msg.text, final: !msg.interim });
        return;
      case 'user_interruption':
        // The reply being heard: the one still arriving, or else the last one (it may still be playing).
        this.#interruptedTurn = this.#responseId !== undefined ? this.#turn : this.#lastTurn;
        this.#abandonResponse();
        this.emitEvent({ type: 'interruption' });
        return;
      case 'assistant_end':
        this.#dropping = false;
        this.#finishResponse();
        this.#turn = [];
        return;
      case 'tool_call': {
        if (msg.toolType === 'builtin') return; // EVI runs its own (web search, hang_up)
        const ours = (this.#call as HumeCallOptions).tools?.some((t) => t.name === msg.name) === true;
        if (ours && msg.responseRequired && !this.#toolCalls.has(msg.toolCallId)) {
          this.#toolCalls.set(msg.toolCallId, msg.name);
          this.emitEvent({ type: 'toolCall', callId: msg.toolCallId, name: msg.name, arguments: msg.parameters });
        } else if (msg.responseRequired) {
          // A function tool of the EVI config that this call does not have: an error, so the chat goes on.
          this.#sendText(buildToolError(msg.toolCallId, `tool ${msg.name || '?'} is not available on this phone bridge`));
        }
        return;
      }
      case 'ignored':
        return;
    }
  }

  /** An assistant message that arrives for an interrupted turn is noted so its audio is dropped. */
  #dropIfAbandoned(id: string | undefined): void {
    if (id !== undefined && this.#dropping && !this.#droppedIds.includes(id)) this.#rememberDropped(id);
  }

  #rememberDropped(id: string): void {
    this.#droppedIds.push(id);
    if (this.#droppedIds.length > MAX_DROPPED_IDS) this.#droppedIds.shift();
  }

  #onAudio(msg: AudioOutputMessage): void {
    this.#stats.audioChunksReceived++;
    if (this.#dropping || (msg.id !== '' && this.#droppedIds.includes(msg.id))) {
      if (msg.id !== '' && !this.#droppedIds.includes(msg.id)) this.#rememberDropped(msg.id);
      this.#stats.audioChunksDropped++;
      return;
    }
    const wav = Buffer.from(msg.data, 'base64');
    let info;
    try {
      info = readWavChunk(wav);
    } catch (e) {
      this.#emitError(e as BridgeError, false);
      return;
    }
    if (info.samples === 0) return;
    if (this.#responseId === undefined) {
      this.#responseId = `hume-${++this.#responseSeq}`;
      this.#interruptedTurn = undefined; // a new reply: an interrupt() from now on is about this one
      this.#turn = this.#turn.filter((m) => !this.#droppedIds.includes(m.id));
    }
    const responseId = this.#responseId;
    const turnMsg = msg.id !== '' ? this.#turn.find((m) => m.id === msg.id) : undefined;
    const chunkMs = (info.samples * 1000) / info.sampleRateHz;
    if (turnMsg) turnMsg.ms += chunkMs;
    else if (msg.id !== '' && this.#turn.length < MAX_TURN_MESSAGES) this.#turn.push({ id: msg.id, text: '', ms: chunkMs });

    if (info.sampleRateHz !== this.#outRate) this.#stats.audioChunksOffRate++;
    const src = this.#samples(wav, info.dataOffset, info.samples);
    this.emitEvent({ type: 'audio', data: src.slice(), sampleRateHz: info.sampleRateHz, responseId });
  }

  /** The PCM16 samples of a decoded WAV (a view when aligned on a little-endian host, else a copy). */
  #samples(wav: Buffer, offset: number, count: number): Int16Array {
    return pcm16FromBytes(wav.subarray(offset, offset + count * 2));
  }

  /** End of the turn's audio (assistant_end, or the socket dropped), then responseDone. */
  #finishResponse(): void {
    const responseId = this.#responseId;
    if (responseId === undefined) return;
    this.#responseId = undefined;
    this.#lastTurn = this.#turn;
    this.#turn = [];
    this.emitEvent({ type: 'responseDone', responseId });
  }

  /** Barge-in: the turn's remaining audio is dropped, by message id. */
  #abandonResponse(): void {
    for (const m of this.#turn) if (!this.#droppedIds.includes(m.id)) this.#rememberDropped(m.id);
    this.#responseId = undefined;
    this.#turn = [];
  }
}

/** The words of `turn` the caller heard in `heardMs`, assuming speech is spread evenly over each message's audio. */
function heardText(turn: readonly TurnMessage[], heardMs: number): string | undefined {
  if (turn.length === 0 || turn.every((m) => m.text === '')) return undefined;
  const words: string[] = [];
  let left = heardMs;
  for (const m of turn) {
    if (left <= 0) break;
    const w = m.text.split(/\s+/).filter((x) => x !== '');
    if (m.ms <= left) {
      words.push(...w);
      left -= m.ms;
    } else {
      words.push(...w.slice(0, Math.floor((w.length * left) / m.ms)));
      left = 0;
    }
  }
  return words.join(' ');
}
