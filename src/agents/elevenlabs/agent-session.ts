/**
 * ElevenLabs Agents (Conversational AI) adapter: one conversation WebSocket per call
 * (https://elevenlabs.io/docs/agents-platform/api-reference/agents-platform/websocket;
 * wire shapes in agent-protocol.ts).
 *
 * ```text
 *            connect(signal)                         metadata ok               1000 close / end_call tool
 *   idle ──► [API key? GET signed URL] ──► WS open ──► client data ──► open ─────────────────────────► 'end' … closed
 *             (≤ 5 s, xi-api-key)          (≤ 10 s)    ◄─ metadata       │ abnormal close, no data for
 *                                                      (formats checked) │ idleTimeoutMs, bad metadata
 *                                                                        └──► fatal 'error' ──► closed
 * ```
 *
 * Formats: the agent's audio formats are its dashboard configuration, announced in
 * `conversation_initiation_metadata`. ELEVENLABS_AUDIO_FORMAT says what we expect
 * (default ulaw_8000 both ways: Twilio's μ-law passes through with no DSP). When the
 * service announces another raw format (any pcm_N or ulaw_8000) we adopt it — the
 * bridge's pipelines convert — and report a non-fatal BRIDGE_ERR_AGENT_AUDIO_FORMAT
 * so the mismatch is visible; anything else (mp3, opus…) rejects connect(). Each audio
 * chunk is checked (base64, whole PCM samples, no container header) before it is
 * played; a bad chunk is dropped and counted, never played.
 *
 * Responses: ElevenLabs audio carries `event_id`s but no response id and no
 * end-of-response event, so the adapter draws the boundaries itself:
 *   - a response starts with the first audio after the previous one ended;
 *   - it ends (→ 'responseDone') when no audio has come for `responseGapMs` after its
 *     `agent_response` text was seen (the service sends that text with the first
 *     chunk or after the last), or for 4 × responseGapMs when no text was seen;
 *   - a `user_transcript` (a new caller turn) ends it at once;
 *   - an `interruption` discards it (no responseDone), and every later audio event
 *     with `event_id` ≤ the interruption's is dropped (the service still sends some).
 * A pause inside one reply longer than the gap therefore splits it in two responses;
 * the bridge then measures heardMs from the second part (harmless, documented).
 *
 * Barge-in: the service detects caller speech (hasVad) and sends `interruption`,
 * re-emitted as 'interruption'. interrupt({heardMs}) from the bridge drops the rest
 * of the current response locally, sends `user_activity` (the agent holds off
 * speaking for a moment) and, unless ELEVENLABS_REPORT_HEARD=0, a non-interrupting
 * `contextual_update` saying how many ms the caller heard — with the words heard
 * when the service sent character alignment — so the agent's memory matches what
 * the caller actually heard. The service has no truncate API.
 *
 * End of call: a `client_tool_call` named in ELEVENLABS_END_CALL_TOOLS (default
 * end_call) is answered with a `client_tool_result` and ends the call; so does an
 * `agent_tool_response` for such a tool (the system end_call tool; sent only when the
 * agent's client_events include it, as client_tool_call must be), an `error` event with
 * code 1000, and a normal (1000) close by the service (the agent's end_call, or the
 * agent's max_duration_seconds). 'end' is emitted once the reply being spoken has
 * ended (bounded), so the bridge hangs up after the goodbye, not in the middle.
 *
 * No reconnect: the conversation lives on the service and cannot be resumed; a new
 * one would greet the caller again. A failed socket is a fatal error.
 *
 * Service errors: an `error` event comes when the service is closing the conversation
 * (AsyncAPI contract). Its `code` is the close code that follows: 1000 (e.g.
 * max_duration_exceeded) is a normal end, handled like the 1000 close ('end' after the
 * goodbye); any other code (1002, 1008, 1011) is a fatal error with a stable code from its `error_type`
 * (serviceError()), and the service's message; before the conversation started it
 * rejects connect() with it (an `override_error` is then BRIDGE_ERR_AGENT_CONFIG, not the
 * bare close 1008). An error without a code is reported as non-fatal and the call goes on.
 * `context_usage` is accepted and not used.
 *
 * Liveness: the service pings (`ping` → `pong` with its event_id, sent at once: the
 * service estimates `ping_ms` from these round trips, so a delayed pong would inflate
 * it); we also send WebSocket pings every idleTimeoutMs/3, and no data at all for
 * idleTimeoutMs is fatal (BRIDGE_ERR_AGENT_TIMEOUT).
 */
import { anySignal } from '../../any-signal.js';
import { AgentSession, type AgentContext, type AudioFormat, type ToolResult } from '../agent.js';
import { elevenlabsToolResult } from '../../tools/result-shapes.js';
import { BridgeError, ErrorCodes, type ErrorCode } from '../../errors.js';
import { pcm16FromBytes, pcm16ToBytes } from '../../audio/pcm.js';
import { AgentSocket, type LostInfo } from '../shared/agent-socket.js';
import { DtmfBatcher, dtmfKey } from '../shared/dtmf.js';
import { abortError, sanitize, upgradeError, type SocketErrorRules } from '../shared/socket-errors.js';
import {
  MAX_MESSAGE_CHARS,
  buildClientToolResult,
  buildContextualUpdate,
  buildInitiation,
  buildPong,
  buildUserActivity,
  buildUserAudioChunk,
  buildUserMessage,
  isElevenLabsAudioFormat,
  parseServerMessage,
  toAudioFormat,
  type Alignment,
  type ElevenLabsAudioFormat,
  type ServerEvent,
} from './agent-protocol.js';
import { parseCallOptions, type ElevenLabsAgentConfig } from './config.js';

/** ElevenLabs' socket rules: the shared table, with hints that name the settings to check. */
const RULES: SocketErrorRules = {
  provider: 'elevenlabs agent',
  hint: (status) =>
    status === 401 || status === 403
      ? "; check ELEVENLABS_API_KEY and the agent's access settings"
      : status === 404
        ? ': agent not found; check ELEVENLABS_AGENT_ID'
        : status === 429
          ? ': rate or concurrency limit'
          : '',
};

/** Bound of the signed-URL request. */
const SIGNED_URL_TIMEOUT_MS = 5000;
/** Bound of WebSocket open + conversation_initiation_metadata. */
const HANDSHAKE_TIMEOUT_MS = 10_000;
/** Largest signed-URL response body read. */
const MAX_REST_BODY_BYTES = 64 * 1024;
/** Hard cap of one WebSocket message (ws closes with 1009 above it); the soft cap is MAX_MESSAGE_CHARS. */
const MAX_PAYLOAD_BYTES = 8 * 1024 * 1024;
/** Caller audio is dropped while this much is waiting in the socket (~16 s of μ-law as base64 JSON). */
const MAX_SEND_BUFFERED_BYTES = 256 * 1024;
/** Longest 'end' waits for the goodbye being spoken to finish. */
const MAX_END_WAIT_MS = 10_000;
/** Keypad digits pressed within this time are sent together (a PIN is one message, not four turns). */
const DTMF_BATCH_MS = 600;
const MAX_DTMF_BATCH = 16;
/** Characters of alignment kept per response (for the heard-words report). */
const MAX_ALIGNMENT_CHARS = 4000;

type State = 'idle' | 'connecting' | 'open' | 'closed';

interface Reply {
  readonly id: string;
  /** Ms of audio received for it. */
  audioMs: number;
  /** Its agent_response text has been seen. */
  textSeen: boolean;
  /** The bridge interrupted it: its remaining audio is dropped. */
  dropped: boolean;
  /** Alignment characters and their start times in the response (ms). */
  chars: string[];
  charMs: number[];
}

export interface ElevenLabsAgentStats {
  audioChunksIn: number;
  /** Audio events dropped because they belong to an interrupted response (event_id ≤ interruption, or interrupted locally). */
  staleAudioDropped: number;
  /** Audio chunks dropped as undecodable or in the wrong format. */
  badAudioDropped: number;
  protocolErrors: number;
  pongsSent: number;
  /** `error` events from the service. */
  serviceErrors: number;
  callerChunksSent: number;
  callerChunksDropped: number;
}

export class ElevenLabsAgentSession extends AgentSession {
  readonly hasVad = true;

  readonly #cfg: ElevenLabsAgentConfig;
  readonly #ctx: AgentContext;
  #state: State = 'idle';
  #ws: AgentSocket | undefined;
  #inFmt: ElevenLabsAudioFormat;
  #outFmt: ElevenLabsAudioFormat;
  #inputFormat: AudioFormat;
  #outputFormat: AudioFormat;
  #outBytesPerMs: number;
  #conversationId: string | undefined;

  #lastInterruptId = -1;
  #responseSeq = 0;
  #resp: Reply | undefined;
  /** The most recent response that had audio (what the caller may be hearing). */
  #lastResp: Reply | undefined;
  /** agent_response text arrived before the response's first audio. */
  #textPending = false;
  #gapTimer: NodeJS.Timeout | undefined;
  #gapMs = 0;

  readonly #dtmf: DtmfBatcher;
  #endReason: string | undefined;
  #endEmitted = false;
  #endTimer: NodeJS.Timeout | undefined;
  #endGraceTimer: NodeJS.Timeout | undefined;
  #lastHeardMs: number | undefined;
  #sendBlocked = false;
  readonly #errorCounts = new Map<ErrorCode, number>();
  readonly #unknownTypes = new Set<string>();
  readonly #stats: ElevenLabsAgentStats = { audioChunksIn: 0, staleAudioDropped: 0, badAudioDropped: 0, protocolErrors: 0, pongsSent: 0, serviceErrors: 0, callerChunksSent: 0, callerChunksDropped: 0 };
  #closePromise: Promise<void> | undefined;
  readonly #closing = new AbortController();

  /** client_tool_call ids handed to the call core and not answered yet. */
  readonly #toolCalls = new Set<string>();

  constructor(config: ElevenLabsAgentConfig, ctx: AgentContext) {
    super();
    this.#cfg = config;
    this.#ctx = ctx;
    this.#dtmf = new DtmfBatcher({ debounceMs: DTMF_BATCH_MS, maxDigits: MAX_DTMF_BATCH, flushOnHash: true, onDigits: (d) => this.#sendDigits(d) });
    this.#inFmt = config.audioFormat;
    this.#outFmt = config.audioFormat;
    this.#inputFormat = toAudioFormat(this.#inFmt);
    this.#outputFormat = toAudioFormat(this.#outFmt);
    this.#outBytesPerMs = this.#outputFormat.encoding === 'ulaw' ? 8 : (this.#outputFormat.sampleRateHz * 2) / 1000;
  }

  /** The agent's input format (as announced by the service once connected). */
  get inputFormat(): AudioFormat {
    return this.#inputFormat;
  }
  /** The agent's output format (as announced by the service once connected). */
  get outputFormat(): AudioFormat {
    return this.#outputFormat;
  }
  get conversationId(): string | undefined {
    return this.#conversationId;
  }
  /** heardMs of the last interrupt() from the bridge. */
  get lastHeardMs(): number | undefined {
    return this.#lastHeardMs;
  }
  get stats(): Readonly<ElevenLabsAgentStats> {
    return { ...this.#stats };
  }

  // --- connect ---------------------------------------------------------------------

  connect(signal: AbortSignal): Promise<void> {
    if (this.#state !== 'idle') return Promise.reject(new BridgeError(ErrorCodes.AGENT_CLOSED, `elevenlabs agent: connect() in state ${this.#state}`));
    if (signal.aborted) return Promise.reject(abortError(RULES, signal));
    let options;
    try {
      options = parseCallOptions(this.#ctx.parameters);
    } catch (e) {
      return Promise.reject(e);
    }
    this.#state = 'connecting';
    // The profile's greeting is the conversation's first_message (the agent's own setting wins for `auto`,
    // and an explicit first_message option wins over both); it needs overrides enabled for first_message at ElevenLabs.
    const greeting = this.#ctx.greeting;
    const overrides = greeting !== undefined && greeting !== 'auto' && options.overrides.firstMessage === undefined ? { ...options.overrides, firstMessage: greeting } : options.overrides;
    const initiation = buildInitiation(overrides, options.dynamicVariables);
    // close() while connecting aborts the signed-URL request and the handshake too.
    return this.#open(initiation, anySignal([signal, this.#closing.signal])).catch((e: unknown) => {
      this.#teardown();
      if (this.#state !== 'closed') this.#state = 'closed';
      throw e instanceof BridgeError ? e : new BridgeError(ErrorCodes.AGENT_CONNECT, `elevenlabs agent: ${(e as Error).message}`, { cause: e });
    });
  }

  async #open(initiation: string, signal: AbortSignal): Promise<void> {
    const cfg = this.#cfg;
    const url = cfg.apiKey !== undefined ? await this.#signedUrl(cfg.apiKey, signal) : `${cfg.convaiUrl}?agent_id=${encodeURIComponent(cfg.agentId)}`;
    if (this.#state !== 'connecting') throw new BridgeError(ErrorCodes.AGENT_CLOSED, 'elevenlabs agent: closed while connecting');
    const ws = await AgentSocket.open({
      rules: RULES,
      url,
      timeoutMs: HANDSHAKE_TIMEOUT_MS,
      signal,
      awaiting: 'conversation_initiation_metadata',
      onOpen: (sock) => sock.send(initiation),
      handshake: (data, isBinary, sock) => {
        const ev = this.#parse(data, isBinary);
        if (ev === undefined) return undefined;
        if (ev.kind === 'metadata') return this.#acceptMetadata(ev) ?? true;
        // At once, whatever ping_ms says: the service estimates the round trip from these pongs.
        if (ev.kind === 'ping') {
          if (sock.send(buildPong(ev.eventId)) === 'sent') this.#stats.pongsSent++;
          return undefined;
        }
        // The service refuses the conversation (an override it does not accept, a missing variable…).
        if (ev.kind === 'error') return serviceError(ev.code, ev.errorType, ev.message, 'before the conversation started');
        this.#protocolError(`${ev.kind} before conversation_initiation_metadata (ignored)`);
        return undefined;
      },
      // Liveness: WebSocket pings every third of the idle timeout; no data at all for idleTimeoutMs is fatal.
      pingIntervalMs: Math.max(250, Math.floor(cfg.idleTimeoutMs / 3)),
      silenceLimitMs: cfg.idleTimeoutMs,
      maxPayloadBytes: MAX_PAYLOAD_BYTES,
      maxBufferedBytes: MAX_SEND_BUFFERED_BYTES,
    });
    if (this.#state !== 'connecting') {
      ws.terminate();
      throw new BridgeError(ErrorCodes.AGENT_CLOSED, 'elevenlabs agent: closed while connecting');
    }
    this.#ws = ws;
    this.#state = 'open';
    // Frames of the handshake's read come one macrotask later (AgentSocket): the caller of connect() has its listeners by then.
    ws.on('message', (data, isBinary) => {
      const ev = this.#state === 'open' ? this.#parse(data, isBinary) : undefined;
      if (ev !== undefined) this.#onEvent(ev);
    });
    ws.on('lost', (error, info) => this.#onLost(error, info));
  }

  /** A frame as a service event; a bad or unknown one is counted (and reported) and undefined. */
  #parse(data: Buffer, isBinary: boolean): ServerEvent | undefined {
    if (data.length > MAX_MESSAGE_CHARS * 4) {
      this.#protocolError(`message of ${data.length} bytes ignored (too large)`);
      return undefined;
    }
    const r = parseServerMessage(data.toString('utf8'));
    if (r.ok) return r.event;
    if (r.unknownType !== undefined) {
      // Newer servers add event types: report each unknown type once, count all.
      this.#stats.protocolErrors++;
      if (this.#unknownTypes.has(r.unknownType) || this.#unknownTypes.size > 64) return undefined;
      this.#unknownTypes.add(r.unknownType);
      this.#warn(new BridgeError(ErrorCodes.AGENT_PROTOCOL, `elevenlabs agent: ${r.detail} (ignored)`));
      return undefined;
    }
    this.#protocolError(`${isBinary ? 'binary frame: ' : ''}${r.detail}`);
    return undefined;
  }

  /** GET /v1/convai/conversation/get-signed-url?agent_id=… with xi-api-key → { signed_url }. */
  async #signedUrl(apiKey: string, signal: AbortSignal): Promise<string> {
    const endpoint = `${this.#cfg.apiUrl}/v1/convai/conversation/get-signed-url?agent_id=${encodeURIComponent(this.#cfg.agentId)}`;
    const timeout = AbortSignal.timeout(SIGNED_URL_TIMEOUT_MS);
    let res: Response;
    try {
      res = await fetch(endpoint, { headers: { 'xi-api-key': apiKey, accept: 'application/json' }, signal: anySignal([signal, timeout]) });
    } catch (e) {
      if (signal.aborted) throw abortError(RULES, signal);
      if (timeout.aborted) throw new BridgeError(ErrorCodes.AGENT_TIMEOUT, `elevenlabs agent: signed URL request took over ${SIGNED_URL_TIMEOUT_MS} ms`, { cause: e });
      throw new BridgeError(ErrorCodes.AGENT_CONNECT, `elevenlabs agent: cannot reach ${this.#cfg.apiUrl} (${(e as Error).message})`, { cause: e });
    }
    let body: string;
    try {
      body = await readBounded(res, MAX_REST_BODY_BYTES);
    } catch (e) {
      if (signal.aborted) throw abortError(RULES, signal);
      throw new BridgeError(timeout.aborted ? ErrorCodes.AGENT_TIMEOUT : ErrorCodes.AGENT_PROTOCOL, `elevenlabs agent: signed URL response: ${(e as Error).message}`, { cause: e });
    }
    if (!res.ok) {
      const detail = serviceDetail(body);
      throw upgradeError({ ...RULES, hint: (st) => `${RULES.hint!(st)}${detail ? `: ${detail}` : ''}` }, res.status, 'the signed URL request');
    }
    let signed: unknown;
    try {
      signed = (JSON.parse(body) as Record<string, unknown>)['signed_url'];
    } catch {
      signed = undefined;
    }
    if (typeof signed !== 'string' || !/^wss?:\/\//.test(signed)) throw new BridgeError(ErrorCodes.AGENT_PROTOCOL, 'elevenlabs agent: the signed URL response has no ws(s):// signed_url');
    return signed;
  }

  /** Checks the announced formats; returns the error that fails connect(), if any. */
  #acceptMetadata(m: Extract<ServerEvent, { kind: 'metadata' }>): BridgeError | undefined {
    this.#conversationId = m.conversationId || undefined;
    const expected = this.#cfg.audioFormat;
    // An older server may not announce formats: then we assume the configured one.
    const out = m.agentOutputFormat ?? expected;
    const inp = m.userInputFormat ?? expected;
    for (const [what, f] of [
      ['agent_output_audio_format', out],
      ['user_input_audio_format', inp],
    ] as const) {
      if (!isElevenLabsAudioFormat(f)) {
        return new BridgeError(
          ErrorCodes.AGENT_AUDIO_FORMAT,
          `elevenlabs agent: the agent's ${what} is ${JSON.stringify(f.slice(0, 40))}, which the bridge cannot stream; set it to ulaw_8000 (or a pcm_ format) in the agent's settings`,
        );
      }
    }
    this.#inFmt = inp as ElevenLabsAudioFormat;
    this.#outFmt = out as ElevenLabsAudioFormat;
    this.#inputFormat = toAudioFormat(this.#inFmt);
    this.#outputFormat = toAudioFormat(this.#outFmt);
    this.#outBytesPerMs = this.#outputFormat.encoding === 'ulaw' ? 8 : (this.#outputFormat.sampleRateHz * 2) / 1000;
    if (inp !== expected || out !== expected) {
      // Not fatal: any raw format works (the bridge's pipelines convert), but the configuration disagrees with the agent.
      this.#warn(
        new BridgeError(ErrorCodes.AGENT_AUDIO_FORMAT, `elevenlabs agent: the agent uses input ${inp} / output ${out}, not ELEVENLABS_AUDIO_FORMAT=${expected}; using the agent's formats${out === 'ulaw_8000' && inp === 'ulaw_8000' ? '' : ' (the bridge resamples)'}`),
      );
    }
    return undefined;
  }

  // --- service events --------------------------------------------------------------

  #onEvent(e: ServerEvent): void {
    switch (e.kind) {
      case 'audio':
        this.#onAudio(e.eventId, e.audioBase64, e.alignment);
        return;
      case 'interruption':
        this.#onInterruption(e.eventId);
        return;
      case 'agent_response':
        this.#onAgentText();
        if (e.text.trim() !== '') this.emitEvent({ type: 'transcript', role: 'agent', text: e.text.trim(), final: true });
        return;
      case 'agent_response_correction':
        // After an interruption the service truncates its reply to what it thinks was said.
        if (e.corrected.trim() !== '') this.emitEvent({ type: 'transcript', role: 'agent', text: e.corrected.trim(), final: true });
        return;
      case 'user_transcript':
        // A new caller turn: whatever the agent said before it is over.
        this.#finishResponse();
        this.#textPending = false;
        if (e.text.trim() !== '') this.emitEvent({ type: 'transcript', role: 'caller', text: e.text.trim(), final: true });
        return;
      case 'ping':
        // At once, whatever ping_ms says: it is the service's estimate of the round trip, made from these pongs.
        if (this.#send(buildPong(e.eventId))) this.#stats.pongsSent++;
        return;
      case 'error':
        this.#onServiceError(e.code, e.errorType, e.message);
        return;
      case 'client_tool_call':
        this.#onClientToolCall(e.toolName, e.toolCallId, e.parameters);
        return;
      case 'agent_tool_response':
        if (!e.isError && this.#cfg.endCallTools.includes(e.toolName)) this.#requestEnd(`agent used ${e.toolName}`);
        return;
      case 'metadata':
        this.#protocolError('a second conversation_initiation_metadata (ignored)');
        return;
      case 'ignored':
        return;
    }
  }

  #onAudio(eventId: number, b64: string, alignment: Alignment | undefined): void {
    this.#stats.audioChunksIn++;
    if (eventId <= this.#lastInterruptId) {
      // The service keeps sending a little audio of an interrupted reply (events with event_id ≤ the interruption's).
      this.#stats.staleAudioDropped++;
      return;
    }
    if (b64.length === 0) return;
    const bytes = Buffer.from(b64, 'base64');
    const problem = this.#checkAudio(bytes);
    if (problem !== undefined) {
      this.#stats.badAudioDropped++;
      this.#warn(new BridgeError(ErrorCodes.AGENT_AUDIO_FORMAT, `elevenlabs agent: audio event ${eventId} dropped: ${problem}`));
      return;
    }
    let r = this.#resp;
    if (r === undefined) {
      r = { id: `el-${++this.#responseSeq}`, audioMs: 0, textSeen: this.#textPending, dropped: false, chars: [], charMs: [] };
      this.#textPending = false;
      this.#resp = r;
    }
    this.#lastResp = r;
    const startMs = r.audioMs;
    r.audioMs += bytes.length / this.#outBytesPerMs;
    if (alignment !== undefined && r.chars.length < MAX_ALIGNMENT_CHARS) {
      for (let i = 0; i < alignment.chars.length && r.chars.length < MAX_ALIGNMENT_CHARS; i++) {
        r.chars.push(alignment.chars[i]!);
        r.charMs.push(startMs + alignment.charStartTimesMs[i]!);
      }
    }
    this.#armGap(r);
    if (r.dropped) {
      this.#stats.staleAudioDropped++;
      return;
    }
    this.emitEvent({ type: 'audio', data: this.#toSamples(bytes), sampleRateHz: this.#outputFormat.sampleRateHz, responseId: r.id });
  }

  /** Why a decoded chunk cannot be played, or undefined. */
  #checkAudio(bytes: Buffer): string | undefined {
    if (bytes.length === 0) return 'empty after base64 decoding';
    // A container header inside raw audio would be played as noise (twilio-labs/call-gpt#33).
    if (bytes.length >= 12 && bytes.toString('latin1', 0, 4) === 'RIFF' && bytes.toString('latin1', 8, 12) === 'WAVE') return 'a WAV header in raw audio';
    if (bytes.length >= 5 && bytes.toString('latin1', 0, 3) === 'ID3' && bytes[3]! <= 4 && bytes[4] === 0) return 'an MP3 (ID3) header in raw audio';
    if (bytes.length >= 5 && bytes.toString('latin1', 0, 4) === 'OggS' && bytes[4] === 0) return 'an Ogg header in raw audio';
    if (this.#outputFormat.encoding === 'pcm16' && bytes.length % 2 !== 0) return `${bytes.length} bytes is not whole 16-bit samples`;
    return undefined;
  }

  /** Decoded bytes as our output type: μ-law bytes, or PCM16 samples (little-endian on the wire). */
  #toSamples(bytes: Buffer): Uint8Array | Int16Array {
    if (this.#outputFormat.encoding === 'ulaw') return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
    return pcm16FromBytes(bytes);
  }

  #armGap(r: Reply): void {
    const ms = r.textSeen ? this.#cfg.responseGapMs : this.#cfg.responseGapMs * 4;
    if (this.#gapTimer !== undefined && this.#gapMs === ms) {
      this.#gapTimer.refresh();
      return;
    }
    if (this.#gapTimer !== undefined) clearTimeout(this.#gapTimer);
    this.#gapMs = ms;
    this.#gapTimer = setTimeout(this.#onGap, ms);
  }

  readonly #onGap = (): void => {
    this.#gapTimer = undefined;
    this.#finishResponse();
  };

  /** The current response is complete: responseDone (unless it was interrupted). */
  #finishResponse(): void {
    if (this.#gapTimer !== undefined) clearTimeout(this.#gapTimer);
    this.#gapTimer = undefined;
    const r = this.#resp;
    this.#resp = undefined;
    if (r !== undefined && !r.dropped && this.#state === 'open') this.emitEvent({ type: 'responseDone', responseId: r.id });
    if (this.#endReason !== undefined) this.#emitEnd();
  }

  #onAgentText(): void {
    const r = this.#resp;
    if (r === undefined) {
      this.#textPending = true;
      return;
    }
    if (!r.textSeen) {
      r.textSeen = true;
      this.#armGap(r);
    }
  }

  #onInterruption(eventId: number): void {
    if (eventId > this.#lastInterruptId) this.#lastInterruptId = eventId;
    if (this.#gapTimer !== undefined) clearTimeout(this.#gapTimer);
    this.#gapTimer = undefined;
    this.#resp = undefined; // discarded: no responseDone
    this.#textPending = false;
    this.emitEvent({ type: 'interruption' });
    if (this.#endReason !== undefined) this.#emitEnd();
  }

  /**
   * An `error` event: the service is closing the conversation. Code 1000 is a normal end
   * (max duration): 'end' once the reply being spoken is over, as for the 1000 close that
   * follows. Other codes are fatal. Without a code (not what the contract says) it is
   * reported and the call goes on: a close, if one follows, ends it.
   */
  #onServiceError(code: number | undefined, errorType: string | undefined, message: string): void {
    this.#stats.serviceErrors++;
    if (code === 1000) {
      this.#requestEnd(`service ended the conversation: ${errorType ?? 'normal closure'}${message ? ` (${sanitize(message)})` : ''}`);
      return;
    }
    const err = serviceError(code, errorType, message, 'mid-call');
    if (code === undefined) this.#warn(err);
    else this.#fail(err);
  }

  #onClientToolCall(toolName: string, toolCallId: string, parameters: Record<string, unknown>): void {
    if (this.#cfg.endCallTools.includes(toolName)) {
      this.#send(buildClientToolResult(toolCallId, 'The call will end after your last words have played.', false));
      this.#requestEnd(`agent called ${toolName}`);
      return;
    }
    // A tool of the call's profile (declared at ElevenLabs as a client tool of the same name): the call core runs it.
    if (this.#ctx.tools?.some((t) => t.name === toolName) && !this.#toolCalls.has(toolCallId)) {
      this.#toolCalls.add(toolCallId);
      this.emitEvent({ type: 'toolCall', callId: toolCallId, name: toolName, arguments: JSON.stringify(parameters) });
      return;
    }
    // The agent would wait for a result: answer at once so the conversation goes on.
    this.#send(buildClientToolResult(toolCallId, `The tool ${toolName} is not available on this phone line.`, true));
    this.#warn(new BridgeError(ErrorCodes.AGENT_PROTOCOL, `elevenlabs agent: client tool ${JSON.stringify(toolName.slice(0, 64))} is not handled by the bridge (answered with an error result)`));
  }

  /** Context for the agent: a non-interrupting `contextual_update`. */
  override note(text: string): void {
    if (this.#state === 'open') this.#send(buildContextualUpdate(text));
  }

  /** `client_tool_result` for a call this session handed out: `result` the output text, or the error with `is_error: true`. */
  override sendToolResult(callId: string, result: ToolResult): void {
    if (!this.#toolCalls.delete(callId) || this.#state !== 'open') return;
    this.#send(JSON.stringify(elevenlabsToolResult(callId, result)));
  }

  /** The agent wants to hang up: 'end' once the reply being spoken is complete (bounded by MAX_END_WAIT_MS). */
  #requestEnd(reason: string): void {
    if (this.#endReason !== undefined || this.#state !== 'open') return;
    this.#endReason = reason;
    this.#endTimer = setTimeout(() => {
      this.#endTimer = undefined;
      this.#finishResponse();
      this.#emitEnd(true);
    }, MAX_END_WAIT_MS);
    // No reply in progress: the goodbye may be about to start, give it one gap to begin.
    if (this.#resp === undefined) this.#endGraceTimer = setTimeout(() => {
      this.#endGraceTimer = undefined;
      this.#emitEnd();
    }, this.#cfg.responseGapMs);
  }

  /** Emits 'end' once, when no reply is in progress (or when forced by the bound). */
  #emitEnd(force = false): void {
    if (this.#endEmitted || this.#endReason === undefined || this.#state === 'closed') return;
    if (!force && (this.#resp !== undefined || this.#endGraceTimer !== undefined)) return;
    this.#endEmitted = true;
    for (const t of [this.#endTimer, this.#endGraceTimer]) if (t !== undefined) clearTimeout(t);
    this.#endTimer = this.#endGraceTimer = undefined;
    this.emitEvent({ type: 'end', reason: this.#endReason });
  }

  #onLost(error: BridgeError, { code, reason }: LostInfo): void {
    if (this.#state === 'closed') return;
    if (code === 1000) {
      // The service ended the conversation (end_call, max duration): the goodbye has been sent.
      this.#finishResponse();
      if (this.#endReason === undefined) this.#endReason = `service ended the conversation${reason ? `: ${sanitize(reason)}` : ''}`;
      this.#emitEnd(true);
      this.#shutdown(`service closed (1000)`);
      return;
    }
    // No reconnect: the conversation lives on the service and cannot be resumed.
    this.#fail(error);
  }

  // --- bridge → service --------------------------------------------------------------

  sendAudio(data: Int16Array | Uint8Array): void {
    if (this.#state !== 'open') return;
    const ws = this.#ws!;
    const ulaw = this.#inputFormat.encoding === 'ulaw';
    if (ulaw ? !(data instanceof Uint8Array) : !(data instanceof Int16Array)) {
      this.#stats.callerChunksDropped++;
      this.#warn(new BridgeError(ErrorCodes.DSP_ARGUMENT, `elevenlabs agent: expected ${ulaw ? 'Uint8Array (μ-law)' : 'Int16Array (PCM16)'} caller audio`));
      return;
    }
    const bytes = data instanceof Int16Array ? pcm16ToBytes(data) : data;
    const b64 = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
    const sent = ws.send(buildUserAudioChunk(b64), 'media');
    if (sent === 'sent') {
      this.#sendBlocked = false;
      this.#stats.callerChunksSent++;
      return;
    }
    // The service is not reading: dropped rather than queued without bound (the liveness rule decides if it is dead).
    this.#stats.callerChunksDropped++;
    this.noteCallerAudioDropped((data.length * 1000) / this.#inputFormat.sampleRateHz);
    if (sent === 'dropped' && !this.#sendBlocked) {
      this.#sendBlocked = true;
      this.#warn(new BridgeError(ErrorCodes.AGENT_TIMEOUT, `elevenlabs agent: over ${MAX_SEND_BUFFERED_BYTES} bytes unsent; dropping caller audio until the socket drains`));
    }
  }

  interrupt(info: { heardMs: number }): void {
    if (this.#state !== 'open') return;
    const heardMs = Number.isFinite(info.heardMs) && info.heardMs >= 0 ? Math.round(info.heardMs) : 0;
    this.#lastHeardMs = heardMs;
    // The service decides about interruptions itself; we stop playing the rest of this reply.
    if (this.#resp !== undefined) this.#resp.dropped = true;
    this.#send(buildUserActivity());
    if (!this.#cfg.reportHeard) return;
    const r = this.#lastResp;
    let heardText = '';
    if (r !== undefined && r.chars.length > 0) {
      let n = 0;
      while (n < r.chars.length && r.charMs[n]! < heardMs) n++;
      heardText = r.chars.slice(0, n).join('').trim();
    }
    const words = r !== undefined && r.chars.length > 0 ? (heardText === '' ? ' They heard none of its words.' : ` They heard only: "${heardText.slice(-500)}".`) : '';
    this.#send(buildContextualUpdate(`The caller interrupted your last reply after hearing ${heardMs} ms of its audio.${words}`));
  }

  sendDtmf(digit: string): void {
    if (this.#state !== 'open' || this.#cfg.dtmfMode === 'off') return;
    const key = dtmfKey(digit);
    if (key !== undefined) this.#dtmf.push(key);
  }

  #sendDigits(digits: string[]): void {
    if (this.#state !== 'open') return;
    const text = `The caller pressed ${digits.length === 1 ? 'the key' : 'the keys'} ${digits.join(' ')} on their phone keypad.`;
    this.#send(this.#cfg.dtmfMode === 'contextual_update' ? buildContextualUpdate(text) : buildUserMessage(text));
  }

  // --- lifecycle ---------------------------------------------------------------------

  #send(text: string): boolean {
    return this.#ws?.send(text) === 'sent';
  }

  #protocolError(detail: string): void {
    this.#stats.protocolErrors++;
    this.#warn(new BridgeError(ErrorCodes.AGENT_PROTOCOL, `elevenlabs agent: ${detail}`));
  }

  /** A non-fatal error: counted; emitted (the first 20 per code, then every 100th) when someone listens. */
  #warn(e: BridgeError): void {
    const n = (this.#errorCounts.get(e.code) ?? 0) + 1;
    this.#errorCounts.set(e.code, n);
    if (n > 20 && n % 100 !== 0) return;
    this.reportError(e, false);
  }

  /** A failure for good: fatal error, then closed. */
  #fail(e: BridgeError): void {
    if (this.#state === 'closed') return;
    this.reportError(e, true);
    this.#shutdown(e.code);
  }

  /** Releases everything and emits 'closed' once. */
  #shutdown(reason: string): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#teardown();
    this.emitEvent({ type: 'closed', reason });
  }

  #teardown(): void {
    if (!this.#closing.signal.aborted) this.#closing.abort(new Error('session closed'));
    for (const t of [this.#gapTimer, this.#endTimer, this.#endGraceTimer]) if (t !== undefined) clearTimeout(t);
    this.#gapTimer = this.#endTimer = this.#endGraceTimer = undefined;
    this.#dtmf.clear();
    this.#socketClosed = this.#ws?.close(1000, 'bridge closed the call') ?? Promise.resolve();
  }

  close(reason: string): Promise<void> {
    this.#shutdown(reason);
    this.#closePromise ??= this.#socketClosed;
    return this.#closePromise;
  }
  #socketClosed: Promise<void> = Promise.resolve();
}

/** error_type values (AsyncAPI `ErrorType`) that say the agent's configuration or our overrides are wrong. */
const CONFIG_ERROR_TYPES = new Set(['override_error', 'missing_dynamic_variable', 'missing_dynamic_variable_transfer', 'missing_fields', 'telephony_agent_error', 'mcp_tool_error', 'mcp_https_error']);
/** error_type values that are a bound running out. */
const TIMEOUT_ERROR_TYPES = new Set(['llm_timeout', 'transport_receive_timeout', 'asyncio_timeout', 'redis_timeout_error']);

/**
 * The BridgeError for a service `error` event: its code from the error_type when it says
 * enough, else from the close code (1008 input/contract → CONFIG, others → SERVICE).
 */
function serviceError(code: number | undefined, errorType: string | undefined, message: string, when: string): BridgeError {
  let ec: ErrorCode;
  if (errorType !== undefined && CONFIG_ERROR_TYPES.has(errorType)) ec = ErrorCodes.AGENT_CONFIG;
  else if (errorType !== undefined && TIMEOUT_ERROR_TYPES.has(errorType)) ec = ErrorCodes.AGENT_TIMEOUT;
  else if (errorType === 'invalid_message' || errorType === 'value_error') ec = ErrorCodes.AGENT_PROTOCOL;
  else if (code === 1008) ec = ErrorCodes.AGENT_CONFIG;
  else if (code === 1000) ec = ErrorCodes.AGENT_CLOSED;
  else ec = ErrorCodes.AGENT_SERVICE;
  const what = [errorType, code !== undefined ? `code ${code}` : undefined].filter((x) => x !== undefined).join(', ');
  return new BridgeError(ec, `elevenlabs agent: service error ${when}${what ? ` (${sanitize(what)})` : ''}: ${sanitize(message)}`);
}

function serviceDetail(body: string): string {
  try {
    const j = JSON.parse(body) as { detail?: unknown };
    const d = j.detail;
    if (typeof d === 'string') return sanitize(d);
    if (typeof d === 'object' && d !== null && typeof (d as { message?: unknown }).message === 'string') return sanitize((d as { message: string }).message);
  } catch {
    /* not JSON */
  }
  return '';
}

async function readBounded(res: Response, maxBytes: number): Promise<string> {
  if (res.body === null) return '';
  const reader = res.body.getReader();
  const parts: Uint8Array[] = [];
  let n = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    n += value.length;
    if (n > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw new Error(`body larger than ${maxBytes} bytes`);
    }
    parts.push(value);
  }
  return Buffer.concat(parts).toString('utf8');
}
