/**
 * OpenAiRealtimeSession: one phone call's conversation with the OpenAI Realtime API
 * (GA interface, https://platform.openai.com/docs/api-reference/realtime), across as
 * many service sessions as the call needs.
 *
 * ```text
 *   bridge ──sendAudio(μ-law | PCM16 24 kHz)──► input_audio_buffer.append ──► service
 *   bridge ◄──'audio' {responseId} ◄── response.output_audio.delta (audio of dropped responses never passes)
 *          ◄──'interruption' ◄── input_audio_buffer.speech_started (the service cancelled its response
 *                                    itself — interrupt_response — so no response.cancel is sent)
 *   bridge ──interrupt({ heardMs })──► conversation.item.truncate(item, audio_end_ms = heard, clamped)
 *                                      + response.cancel if a response is in progress that the
 *                                        service did not cancel (a barge-in the bridge detected)
 *          ◄──'responseDone' ◄── response.done     ◄──'transcript' ◄── input transcription / output transcript done
 *   bridge ──sendDtmf('5')──► conversation.item.create "The caller pressed 5." (+ response.create when idle)
 *
 *   connection lifecycle (each box a RealtimeConnection = one service session):
 *     connect() ─► [active] ──(sessionMaxMs)──► open [next] ─► wait for a quiet moment (bounded)
 *                     │                         ─► hold caller audio ─► replay the conversation as text items
 *                     │                         ─► release held audio to [next] ─► close [active]; [next] is active
 *                     └─(closed / stopped answering / session_expired)─► hold caller audio ─► new session with
 *                        backoff (bounded attempts) ─► replay ─► release; auth refusal or attempts spent ─► fatal
 * ```
 *
 * Barge-in, and the Twilio sample's bug we do not repeat
 * (twilio-samples/speech-assistant-openai-realtime-api-node, `index.js`): the sample computes
 * `audio_end_ms` from the inbound media clock since the first delta of a response and
 * never resets its start after a response that played to the end, so a later
 * barge-in can truncate past the item's audio (an error, and the model keeps text the
 * caller never heard). Here the heard position comes from the bridge (acknowledged
 * Twilio marks, per response), is mapped onto the items of *that* response in the
 * order their audio arrived, and is clamped to the audio actually received for the
 * item. Every response and item is tracked by id; a response the caller interrupted
 * is dropped by id, so the deltas the service still had queued after the cancel
 * never reach the caller.
 *
 * Events caused by the service come from socket callbacks; events are never emitted
 * re-entrantly from sendAudio()/sendDtmf()/interrupt().
 */
import { anySignal } from '../../any-signal.js';
import { closeReason } from '../../close-reason.js';
import { AgentSession, ULAW_8K, pcm16, type AudioFormat, type ToolResult } from '../agent.js';
import { BridgeError, ErrorCodes } from '../../errors.js';
import { pcm16FromBytes, pcm16ToBytes } from '../../audio/pcm.js';
import { AgentSocket, type HandshakeStep, type LostInfo } from '../shared/agent-socket.js';
import { CallerAudioHold } from '../shared/caller-audio-hold.js';
import { DtmfBatcher, dtmfKey } from '../shared/dtmf.js';
import { RetryPolicy } from '../shared/retry-policy.js';
import type { SocketErrorRules } from '../shared/socket-errors.js';
import type { OpenAiConfig } from './config.js';
import { openaiToolResult } from '../../tools/result-shapes.js';
import {
  REQUEST_INTERRUPT_RESPONSE,
  buildAppend,
  buildCancel,
  buildGreeting,
  buildResponseCreate,
  buildSessionUpdate,
  buildTextItem,
  buildTruncate,
  bytesPerMs,
  decodeBase64,
  parseServerEvent,
  wireFormat,
  type ServerEvent,
  type SessionSettings,
} from './protocol.js';

/**
 * OpenAI's own socket rules on top of the shared table (the beta interface was removed 2026-05-12): a close
 * with 4000 (`beta_api_shape_disabled`) during the handshake is the removed beta
 * interface, a configuration error.
 */
const RULES: SocketErrorRules = {
  provider: 'openai',
  close: (code, reason, phase) => (phase === 'handshake' && (code === 4000 || /beta_api_shape_disabled/.test(reason)) ? ErrorCodes.AGENT_CONFIG : undefined),
};

/** One service session: its socket and what session.updated confirmed. */
interface RealtimeConnection {
  readonly id: number;
  readonly socket: AgentSocket;
  /** The service cancels a response itself on caller speech (turn_detection.interrupt_response), as session.updated confirmed. */
  readonly serverInterrupts: boolean;
}

/**
 * The handshake (https://developers.openai.com/api/docs/guides/realtime-websocket):
 * session.update is sent on open; session.created, then
 * session.updated with the formats we asked for, means ready. An `error` instead is the
 * refusal (auth, a bad setting).
 */
function handshakeStep(settings: SessionSettings, text: string, confirmed: { interruptResponse: boolean }): HandshakeStep {
  const r = parseServerEvent(text);
  if (!r.ok) return undefined;
  const ev = r.event;
  if (ev.type === 'session.updated') {
    const want = wireFormat(settings.audioFormat).type;
    for (const [dir, got] of [
      ['output', ev.outputFormatType],
      ['input', ev.inputFormatType],
    ] as const) {
      if (got !== undefined && got !== want) return new BridgeError(ErrorCodes.AGENT_AUDIO_FORMAT, `openai: session.updated has ${dir} format ${got}, we asked for ${want}`);
    }
    if (ev.interruptResponse !== undefined) confirmed.interruptResponse = ev.interruptResponse;
    return true;
  }
  if (ev.type === 'error') {
    const e = ev.error;
    const auth = e.type === 'authentication_error' || e.code === 'invalid_api_key';
    const code = auth ? ErrorCodes.AGENT_AUTH : e.type === 'invalid_request_error' ? ErrorCodes.AGENT_CONFIG : ErrorCodes.AGENT_SERVICE;
    return new BridgeError(code, `openai: session.update refused: ${e.code ?? e.type ?? 'error'}: ${e.message}`);
  }
  return undefined;
}

export interface OpenAiSessionOptions {
  readonly config: OpenAiConfig;
  /** Per-call settings, or the error that rejects connect() (a bad agent parameter). */
  readonly settings: SessionSettings | BridgeError;
  /** Digits pressed within this time are sent as one message; default 600 ms. */
  readonly dtmfDebounceMs?: number;
  /** Caller audio held while no session can take it (swap, reconnect); older audio is dropped. Default 10 000 ms. */
  readonly maxHeldAudioMs?: number;
  /** Conversation text carried into a new session (the most recent entries that fit). Default 12 000 characters. */
  readonly maxCarriedChars?: number;
}

export interface OpenAiSessionStats {
  /** Service sessions opened (1 + rollovers + reconnects). */
  sessions: number;
  rollovers: number;
  reconnects: number;
  protocolErrors: number;
  /** Audio deltas of interrupted responses dropped. */
  droppedDeltas: number;
  truncations: number;
  cancels: number;
  /** Caller audio held during swaps and then delivered, and dropped because the hold was full (ms). */
  heldAudioMs: number;
  droppedHeldAudioMs: number;
  /** Caller audio dropped because the service stopped reading (socket backlog over its limit). */
  congestedAudioMs: number;
}

interface ItemAudio {
  readonly itemId: string;
  bytes: number;
  truncated: boolean;
  entry?: HistoryEntry;
}

interface ResponseState {
  readonly id: string;
  readonly connId: number;
  /** Interrupted: further audio is dropped and no responseDone is emitted. */
  dropped: boolean;
  /** Cancelled: by our response.cancel, or by the service itself (interrupt_response). No cancel is sent again. */
  cancelled: boolean;
  done: boolean;
  readonly items: ItemAudio[];
  emittedMs: number;
  /** Wall time at which its audio starts playing at the caller (estimate, for quiet-moment checks). */
  playStartMs: number;
  /** PCM16: a trailing odd byte kept for the next delta. */
  carry: number;
}

interface HistoryEntry {
  readonly role: 'user' | 'assistant';
  readonly itemId?: string;
  text?: string;
  /** For an interrupted assistant item: the share of its audio the caller heard. */
  heardFraction?: number;
}

const MAX_HISTORY = 200;
const MAX_RESPONSES = 16;
/** After a committed caller turn, how long a response is expected before the moment counts as quiet. */
const AWAIT_RESPONSE_MS = 2000;
/** Added to the estimated end of playout at the caller (the bridge's lead, network). */
const PLAYOUT_SLACK_MS = 300;
/** A swap waits at most this long for the new session to acknowledge the replayed conversation. */
const REPLAY_ACK_TIMEOUT_MS = 2000;
/** After a failed rollover (the current session still alive), the next try. */
const ROLLOVER_RETRY_MS = 30_000;

export class OpenAiRealtimeSession extends AgentSession {
  readonly inputFormat: AudioFormat;
  readonly outputFormat: AudioFormat;
  readonly hasVad = true;

  readonly #cfg: OpenAiConfig;
  readonly #settings: SessionSettings | undefined;
  readonly #settingsError: BridgeError | undefined;
  readonly #bytesPerMs: number;
  readonly #ulaw: boolean;
  readonly #maxCarriedChars: number;
  /** Aborted by close(): every open, backoff and wait ends with it. */
  readonly #lifetime = new AbortController();

  #conn: RealtimeConnection | undefined;
  #connecting = false;
  #closed = false;
  #closePromise: Promise<void> | undefined;
  #replacing: Promise<void> | undefined;
  #capTimer: NodeJS.Timeout | undefined;
  #retryTimer: NodeJS.Timeout | undefined;

  /** Caller audio held (base64 appends) while swapping or reconnecting. */
  #holding = false;
  readonly #held: CallerAudioHold<string>;
  readonly #retry: RetryPolicy;

  // Per-service-session state (reset when a new session becomes active).
  #responses = new Map<string, ResponseState>();
  #current: ResponseState | undefined;
  #speaking = false;
  #awaitingSince = 0;

  /** The response whose audio we emitted last: what the bridge's heardMs refers to. */
  #lastAudio: ResponseState | undefined;
  #playingUntil = 0;
  #quietWaiters: (() => void)[] = [];

  #history: HistoryEntry[] = [];
  #byItem = new Map<string, HistoryEntry>();
  #unknownTypes = new Set<string>();
  readonly #dtmf: DtmfBatcher;
  #wrongAudioReported = false;
  /** Tool calls not answered yet: call_id → the response that made it, on which session. */
  #toolCalls = new Map<string, { responseId: string; connId: number }>();
  /** Responses with answered tool calls whose follow-up response.create is still due. */
  #answeredTools = new Set<string>();
  readonly #stats: OpenAiSessionStats = { sessions: 0, rollovers: 0, reconnects: 0, protocolErrors: 0, droppedDeltas: 0, truncations: 0, cancels: 0, heldAudioMs: 0, droppedHeldAudioMs: 0, congestedAudioMs: 0 };

  constructor(o: OpenAiSessionOptions) {
    super();
    this.#cfg = o.config;
    if (o.settings instanceof BridgeError) {
      this.#settingsError = o.settings;
      this.#settings = undefined;
    } else this.#settings = o.settings;
    const format = this.#settings?.audioFormat ?? o.config.defaults.audioFormat;
    this.#ulaw = format === 'pcmu';
    // μ-law passthrough both ways: the bridge runs no DSP. PCM16 is 24 kHz only (the API's only PCM rate).
    this.inputFormat = this.#ulaw ? ULAW_8K : pcm16(24000);
    this.outputFormat = this.inputFormat;
    this.#bytesPerMs = bytesPerMs(format);
    this.#dtmf = new DtmfBatcher({ debounceMs: o.dtmfDebounceMs ?? 600, maxDigits: 32, onDigits: (d) => this.#sendDigits(d) });
    this.#held = new CallerAudioHold({ maxMs: o.maxHeldAudioMs ?? 10_000 });
    this.#retry = new RetryPolicy({ attempts: o.config.reconnectAttempts + 1, baseMs: 200, maxMs: 3000 });
    this.#maxCarriedChars = o.maxCarriedChars ?? 12_000;
  }

  get stats(): Readonly<OpenAiSessionStats> {
    return { ...this.#stats };
  }
  get closed(): boolean {
    return this.#closed;
  }

  // --- AgentSession ----------------------------------------------------------------

  async connect(signal: AbortSignal): Promise<void> {
    if (this.#closed) throw new BridgeError(ErrorCodes.AGENT_CLOSED, 'openai: session is closed');
    if (this.#settingsError) throw this.#settingsError;
    if (this.#conn || this.#connecting) throw new BridgeError(ErrorCodes.AGENT_PROTOCOL, 'openai: connect() called twice');
    this.#connecting = true;
    try {
      const conn = await this.#open(anySignal([signal, this.#lifetime.signal]));
      if (this.#closed) {
        await conn.socket.close(1000, 'closed');
        throw new BridgeError(ErrorCodes.AGENT_CLOSED, 'openai: session closed while connecting');
      }
      this.#activate(conn);
    } finally {
      this.#connecting = false;
    }
  }

  sendAudio(data: Int16Array | Uint8Array): void {
    if (this.#closed) return;
    const ok = this.#ulaw ? data instanceof Uint8Array : data instanceof Int16Array;
    if (!ok) {
      this.#rejectAudio();
      return;
    }
    if (data.byteLength === 0) return;
    const bytes = data instanceof Int16Array ? pcm16ToBytes(data) : data;
    // A view into the bridge's reused buffer: encoded now, never kept.
    const b64 = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
    const ms = data.byteLength / this.#bytesPerMs;
    const conn = this.#conn;
    if (conn && !this.#holding) {
      const sent = conn.socket.send(buildAppend(b64), 'media');
      if (sent === 'sent') return;
      if (sent === 'dropped') {
        this.#stats.congestedAudioMs += ms;
        this.noteCallerAudioDropped(ms);
        return;
      }
    }
    const overflow = this.#held.audio(b64, ms);
    this.#stats.droppedHeldAudioMs += overflow;
    this.noteCallerAudioDropped(overflow);
  }

  interrupt(info: { heardMs: number }): void {
    if (this.#closed) return;
    const conn = this.#conn;
    const heardMs = Number.isFinite(info.heardMs) && info.heardMs > 0 ? Math.floor(info.heardMs) : 0;
    const r = this.#lastAudio;
    if (r) {
      r.dropped = true;
      if (conn && r.connId === conn.id) this.#truncate(conn, r, heardMs);
      else this.#noteHeard(r, heardMs);
    }
    this.#cancelCurrent();
    this.#playingUntil = 0;
  }

  /** Context for the model: a system message item (no response is asked for). */
  override note(text: string): void {
    if (this.#closed || !this.#conn) return;
    this.#conn.socket.send(JSON.stringify({ type: 'conversation.item.create', item: { type: 'message', role: 'system', content: [{ type: 'input_text', text }] } }));
  }

  /** The agent speaks first (response.create), unless the caller already spoke or a reply is running. */
  override greet(greeting: string): void {
    const conn = this.#conn;
    if (this.#closed || !conn || this.#current || this.#speaking) return;
    conn.socket.send(buildGreeting(greeting));
  }

  /**
   * A tool's answer: a `function_call_output` item at once; then, once the response that
   * made the call is done and all its calls are answered, one `response.create` (the
   * service refuses a second active response) — unless the caller is talking or a
   * response is already running (a barge-in while the tool ran: the answer is in the
   * conversation, and the reply to the caller's new turn uses it).
   */
  override sendToolResult(callId: string, result: ToolResult): void {
    const call = this.#toolCalls.get(callId);
    if (this.#closed || !call) return; // unknown, answered, or of a session since replaced
    this.#toolCalls.delete(callId);
    const conn = this.#conn;
    if (!conn || conn.id !== call.connId) return; // the session that knew this call is gone
    conn.socket.send(JSON.stringify(openaiToolResult(callId, result)));
    this.#answeredTools.add(call.responseId);
    this.#respondAfterTools(conn, call.responseId);
  }

  /** The follow-up response.create, when `responseId` is done and every call it made is answered. */
  #respondAfterTools(conn: RealtimeConnection, responseId: string): void {
    if (!this.#responses.get(responseId)?.done) return;
    for (const c of this.#toolCalls.values()) if (c.responseId === responseId) return;
    if (!this.#answeredTools.delete(responseId)) return;
    if (!this.#current && !this.#speaking) conn.socket.send(buildResponseCreate());
  }

  sendDtmf(digit: string): void {
    if (this.#closed) return;
    const d = dtmfKey(digit);
    if (d !== undefined) this.#dtmf.push(d);
  }

  close(reason: string): Promise<void> {
    this.#closePromise ??= this.#doClose(reason);
    return this.#closePromise;
  }

  async #doClose(reason: string): Promise<void> {
    this.#closed = true;
    this.#lifetime.abort(new Error(reason));
    for (const t of [this.#capTimer, this.#retryTimer]) if (t) clearTimeout(t);
    this.#capTimer = this.#retryTimer = undefined;
    this.#dtmf.clear();
    this.#releaseQuietWaiters();
    this.#held.clear();
    const conn = this.#conn;
    this.#conn = undefined;
    if (conn) await conn.socket.close(1000, closeReason(reason));
    this.emitEvent({ type: 'closed', reason });
  }

  // --- connections ------------------------------------------------------------------

  /** One service session: upgrade (Authorization: Bearer; GA, so no OpenAI-Beta header), session.update, session.updated. */
  async #open(signal: AbortSignal): Promise<RealtimeConnection> {
    const c = this.#cfg;
    const settings = this.#settings!;
    this.#stats.sessions++;
    const u = new URL(c.url);
    if (!u.searchParams.has('model')) u.searchParams.set('model', settings.model);
    const confirmed = { interruptResponse: REQUEST_INTERRUPT_RESPONSE };
    const socket = await AgentSocket.open({
      rules: RULES,
      url: u,
      headers: { Authorization: `Bearer ${c.apiKey}` },
      timeoutMs: c.handshakeTimeoutMs,
      signal,
      awaiting: 'session.updated',
      // Sent at once rather than after session.created: the server reads events in order.
      onOpen: (sock) => sock.send(buildSessionUpdate(settings)),
      handshake: (data, isBinary) => (isBinary ? undefined : handshakeStep(settings, data.toString(), confirmed)),
      pingIntervalMs: c.pingIntervalMs,
      maxPayloadBytes: 16 * 1024 * 1024,
    });
    const conn: RealtimeConnection = { id: socket.id, socket, serverInterrupts: confirmed.interruptResponse };
    socket.on('message', (data, isBinary) => this.#onMessage(conn, isBinary ? `binary frame of ${data.length} bytes` : data.toString(), isBinary));
    socket.on('lost', (err, info) => this.#onLost(conn, err, info));
    return conn;
  }

  /** Makes `conn` the session that takes caller audio and whose events count; arms the rollover. */
  #activate(conn: RealtimeConnection): void {
    this.#conn = conn;
    this.#responses.clear();
    this.#current = undefined;
    this.#speaking = false;
    this.#awaitingSince = 0;
    if (this.#capTimer) clearTimeout(this.#capTimer);
    this.#capTimer = setTimeout(() => {
      this.#capTimer = undefined;
      this.#stats.rollovers++;
      void this.#replace('rollover');
    }, this.#cfg.sessionMaxMs);
  }

  #onLost(conn: RealtimeConnection, err: BridgeError, info: LostInfo): void {
    if (this.#closed || conn !== this.#conn) return; // a session being prepared or already replaced
    this.#conn = undefined;
    this.#endInterruptedAudio();
    this.#releaseQuietWaiters();
    if (!info.resumable) {
      this.#fail(err);
      return;
    }
    if (!this.#retry.lost()) {
      this.#fail(new BridgeError(err.code, `${err.message} (again, ${this.#retry.quickLosses} times right after a new session)`, { cause: err }));
      return;
    }
    this.reportError(err, false);
    if (this.#replacing) return; // a rollover in progress takes over (it no longer waits for quiet)
    this.#stats.reconnects++;
    void this.#replace('reconnect');
  }

  /**
   * Opens a new service session and moves the call onto it: for a rollover once the
   * current one is quiet (bounded), for a reconnect at once. Attempts are bounded,
   * with backoff; a permanent refusal, or attempts spent with no live session left,
   * is fatal. One replacement runs at a time.
   */
  #replace(kind: 'rollover' | 'reconnect'): Promise<void> {
    if (this.#replacing || this.#closed) return this.#replacing ?? Promise.resolve();
    const run = async (): Promise<void> => {
      for (;;) {
        const next = await this.#openWithRetries();
        if (!next) return;
        if (this.#conn && kind === 'rollover') await this.#waitQuiet(this.#cfg.rolloverWaitMs);
        if (this.#closed) {
          await next.socket.close(1000, 'closed');
          return;
        }
        if (next.socket.isOpen) {
          await this.#swapTo(next);
          // Lost again during the switch: go on until a session holds or attempts run out.
          if (this.#conn || this.#closed) return;
          this.#stats.reconnects++;
          continue;
        }
        // The new session died before the switch: with the old one still there, try again
        // later as a rollover; without it, open another one now.
        if (this.#conn) {
          this.#retryRolloverLater();
          return;
        }
      }
    };
    this.#replacing = run()
      .catch((e: unknown) => this.#fail(new BridgeError(ErrorCodes.AGENT_SERVICE, `openai: session replacement failed: ${(e as Error).message}`, { cause: e })))
      .finally(() => {
        this.#replacing = undefined;
      });
    return this.#replacing;
  }

  /** A new service session, with bounded attempts and backoff; undefined when it failed (already handled). */
  async #openWithRetries(): Promise<RealtimeConnection | undefined> {
    if (this.#closed) return undefined;
    const r = await this.#retry.run((_n) => this.#open(this.#lifetime.signal), this.#lifetime.signal, (err) => this.reportError(err, false));
    if (r.ok) return r.value;
    if (this.#closed || r.aborted) return undefined;
    const err = r.error;
    if (!err.retryable) this.#fail(err);
    else if (this.#conn) {
      // The current session still works: report, and try the rollover again later.
      this.reportError(new BridgeError(err.code, `openai: rollover failed after ${r.attempts} attempts (${err.message})`, { cause: err }), false);
      this.#retryRolloverLater();
    } else {
      this.#fail(new BridgeError(ErrorCodes.AGENT_CLOSED, `openai: could not open a new session after ${r.attempts} attempts: ${err.message}`, { cause: err }));
    }
    return undefined;
  }

  #retryRolloverLater(): void {
    if (this.#retryTimer || this.#closed) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      if (this.#conn) void this.#replace('rollover');
    }, ROLLOVER_RETRY_MS);
  }

  /**
   * The switch: hold caller audio, make `next` active, carry the conversation over as
   * text items, wait (bounded) for the service to take them, release the held audio in
   * order, then close the old session.
   */
  async #swapTo(next: RealtimeConnection): Promise<void> {
    this.#holding = true;
    const old = this.#conn;
    this.#endInterruptedAudio();
    this.#activate(next);
    const items = this.#carriedItems();
    const acked = this.#countItemAcks(next, items.length);
    for (const item of items) next.socket.send(item);
    await acked;
    if (this.#closed) {
      if (old) await old.socket.close(1000, 'closed');
      return;
    }
    this.#holding = false;
    if (this.#conn === next) {
      this.#retry.recovered();
      this.#releaseHeld(next);
    }
    if (old) void old.socket.close(1000, 'rollover');
  }

  /** Resolves when the new session acknowledged `n` items (or after a bounded wait). */
  #countItemAcks(conn: RealtimeConnection, n: number): Promise<void> {
    if (n === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const seen = new Set<string>();
      let t: NodeJS.Timeout | undefined;
      const done = () => {
        clearTimeout(t);
        this.#ackWatchers.delete(watch);
        this.#lifetime.signal.removeEventListener('abort', done);
        resolve();
      };
      const watch = (c: RealtimeConnection, ev: ServerEvent) => {
        if (c !== conn) return;
        if ((ev.type === 'conversation.item.added' || ev.type === 'conversation.item.created' || ev.type === 'conversation.item.done') && ev.itemId) seen.add(ev.itemId);
        if (seen.size >= n || ev.type === 'error') done();
      };
      this.#ackWatchers.add(watch);
      t = setTimeout(done, REPLAY_ACK_TIMEOUT_MS);
      this.#lifetime.signal.addEventListener('abort', done, { once: true });
    });
  }
  #ackWatchers = new Set<(c: RealtimeConnection, ev: ServerEvent) => void>();

  /** The conversation so far, newest last, as text items that fit the carry budget. */
  #carriedItems(): string[] {
    const out: string[] = [];
    let chars = 0;
    for (let i = this.#history.length - 1; i >= 0; i--) {
      const e = this.#history[i]!;
      let text = e.text?.trim();
      if (!text) continue;
      if (e.heardFraction !== undefined) text = heardPart(text, e.heardFraction);
      if (!text) continue;
      chars += text.length;
      if (chars > this.#maxCarriedChars) break;
      out.push(buildTextItem(e.role, text));
    }
    return out.reverse();
  }

  #releaseHeld(conn: RealtimeConnection): void {
    const held = this.#held.take();
    for (let i = 0; i < held.length; i++) {
      const { item, ms } = held[i]!;
      if (conn.socket.send(buildAppend(item)) !== 'sent') {
        // The new session died already: keep the rest for the next one.
        for (let k = i; k < held.length; k++) this.#held.audio(held[k]!.item, held[k]!.ms!);
        return;
      }
      this.#stats.heldAudioMs += ms!;
    }
  }

  // --- quiet moments ------------------------------------------------------------------

  /** No response in progress, the caller not talking or awaiting an answer, our last audio played out. */
  #isQuiet(): boolean {
    const now = Date.now();
    if (this.#current && !this.#current.done) return false;
    if (this.#speaking) return false;
    if (this.#awaitingSince > 0 && now - this.#awaitingSince < AWAIT_RESPONSE_MS) return false;
    return now >= this.#playingUntil;
  }

  /** Resolves at a quiet moment, when the active session is lost, on close, or after maxMs. */
  #waitQuiet(maxMs: number): Promise<void> {
    if (!this.#conn || this.#isQuiet()) return Promise.resolve();
    return new Promise((resolve) => {
      const finish = () => {
        clearTimeout(cap);
        clearInterval(poll);
        const i = this.#quietWaiters.indexOf(finish);
        if (i >= 0) this.#quietWaiters.splice(i, 1);
        resolve();
      };
      const cap = setTimeout(finish, maxMs);
      // Playout ends with time, not with an event: look again every 50 ms.
      const poll = setInterval(() => {
        if (!this.#conn || this.#isQuiet()) finish();
      }, 50);
      this.#quietWaiters.push(finish);
    });
  }

  #checkQuiet(): void {
    if (this.#quietWaiters.length > 0 && this.#isQuiet()) this.#releaseQuietWaiters();
  }

  #releaseQuietWaiters(): void {
    for (const w of [...this.#quietWaiters]) w();
  }

  // --- service events -----------------------------------------------------------------

  #onMessage(conn: RealtimeConnection, text: string, binary: boolean): void {
    if (this.#closed) return;
    const r = binary ? ({ ok: false, kind: 'shape', detail: text } as const) : parseServerEvent(text);
    if (!r.ok) {
      if (r.kind === 'unknown-type') {
        // New event types appear as the API grows: reported once per type, counted always.
        this.#stats.protocolErrors++;
        if (this.#unknownTypes.size < 64 && !this.#unknownTypes.has(r.detail)) {
          this.#unknownTypes.add(r.detail);
          this.reportError(new BridgeError(ErrorCodes.AGENT_PROTOCOL, `openai: ${r.detail}`), false);
        }
        return;
      }
      this.#protocolError(r.detail);
      return;
    }
    const ev = r.event;
    for (const w of this.#ackWatchers) w(conn, ev);
    if (conn !== this.#conn) return; // an old session after a switch, or one being prepared
    this.#onEvent(conn, ev);
    this.#checkQuiet();
  }

  #onEvent(conn: RealtimeConnection, ev: ServerEvent): void {
    switch (ev.type) {
      case 'input_audio_buffer.speech_started': {
        this.#speaking = true;
        // With interrupt_response the service has cancelled its response itself: a cancel
        // from us would only earn response_cancel_not_active. Without it, we cancel. Either
        // way the response's remaining audio is dropped from now on.
        if (conn.serverInterrupts) this.#cancelledByService();
        else this.#cancelCurrent();
        if (ev.itemId) this.#entry('user', ev.itemId);
        this.emitEvent({ type: 'interruption' });
        return;
      }
      case 'input_audio_buffer.speech_stopped':
        this.#speaking = false;
        this.#awaitingSince = Date.now();
        return;
      case 'input_audio_buffer.committed':
        this.#awaitingSince = Date.now();
        if (ev.itemId) this.#entry('user', ev.itemId);
        return;
      case 'response.created':
        this.#awaitingSince = 0;
        this.#current = this.#response(conn, ev.responseId);
        return;
      case 'response.output_item.added': {
        if (ev.itemType !== undefined && ev.itemType !== 'message') return;
        const r = this.#response(conn, ev.responseId);
        const item = this.#item(r, ev.itemId);
        item.entry = this.#entry('assistant', ev.itemId);
        return;
      }
      case 'response.output_audio.delta':
        this.#onAudioDelta(conn, ev.responseId, ev.itemId, ev.delta);
        return;
      case 'response.output_audio_transcript.done': {
        const e = this.#entry('assistant', ev.itemId);
        e.text = ev.transcript;
        if (ev.transcript.trim()) this.emitEvent({ type: 'transcript', role: 'agent', text: ev.transcript, final: true });
        return;
      }
      case 'conversation.item.input_audio_transcription.completed': {
        const e = this.#entry('user', ev.itemId);
        e.text = ev.transcript;
        if (ev.transcript.trim()) this.emitEvent({ type: 'transcript', role: 'caller', text: ev.transcript, final: true });
        return;
      }
      case 'response.output_item.done':
        if (ev.call) {
          this.#toolCalls.set(ev.call.callId, { responseId: ev.responseId, connId: conn.id });
          this.emitEvent({ type: 'toolCall', callId: ev.call.callId, name: ev.call.name, arguments: ev.call.arguments });
        }
        return;
      case 'response.done': {
        const r = this.#responses.get(ev.responseId);
        if (this.#current?.id === ev.responseId) this.#current = undefined;
        if (!r) {
          this.emitEvent({ type: 'responseDone', responseId: ev.responseId });
          return;
        }
        if (r.done) return;
        r.done = true;
        if (ev.status === 'cancelled') r.dropped = true;
        if (!r.dropped) this.emitEvent({ type: 'responseDone', responseId: r.id });
        // Its tool calls may all be answered already (fast tools): the follow-up is due now.
        this.#respondAfterTools(conn, r.id);
        return;
      }
      case 'error':
        this.#onServiceError(conn, ev.error);
        return;
      default:
        return; // session.*, conversation.item.*, and the ignored kinds
    }
  }

  #onAudioDelta(conn: RealtimeConnection, responseId: string, itemId: string, delta: string): void {
    const r = this.#response(conn, responseId);
    if (r.dropped || r.done) {
      // The service's queued deltas after a cancel (or after response.done): never played.
      this.#stats.droppedDeltas++;
      return;
    }
    const bytes = decodeBase64(delta);
    if (!bytes) {
      this.reportError(new BridgeError(ErrorCodes.AGENT_AUDIO_FORMAT, `openai: audio delta for ${responseId} is not base64 (${delta.length} chars); dropped`), false);
      return;
    }
    if (bytes.length === 0) return;
    const item = this.#item(r, itemId);
    item.bytes += bytes.length;
    let data: Uint8Array | Int16Array;
    if (this.#ulaw) {
      data = new Uint8Array(bytes);
    } else {
      // PCM16 LE; an odd byte count (a sample split between deltas) carries one byte over.
      const hasCarry = r.carry >= 0 ? 1 : 0;
      const total = bytes.length + hasCarry;
      const samples = total >> 1;
      const raw = new Uint8Array(samples * 2);
      if (hasCarry) raw[0] = r.carry;
      raw.set(bytes.subarray(0, samples * 2 - hasCarry), hasCarry);
      r.carry = total % 2 === 1 ? bytes[bytes.length - 1]! : -1;
      if (samples === 0) return;
      data = pcm16FromBytes(raw);
    }
    const ms = data.length / (this.#ulaw ? 8 : 24);
    const now = Date.now();
    if (r.emittedMs === 0) r.playStartMs = Math.max(now, this.#playingUntil - PLAYOUT_SLACK_MS);
    r.emittedMs += ms;
    this.#playingUntil = Math.max(this.#playingUntil, r.playStartMs + r.emittedMs + PLAYOUT_SLACK_MS);
    this.#lastAudio = r;
    this.emitEvent({ type: 'audio', data, sampleRateHz: this.outputFormat.sampleRateHz, responseId: r.id });
  }

  #onServiceError(conn: RealtimeConnection, e: { type?: string; code?: string; message: string }): void {
    const what = `${e.type ?? 'error'}${e.code ? `/${e.code}` : ''}: ${e.message}`;
    // Cancelling a response the service already finished or cancelled (our cancel races its VAD): harmless.
    if (e.code === 'response_cancel_not_active') return;
    if (e.type === 'authentication_error' || e.code === 'invalid_api_key') {
      this.#fail(new BridgeError(ErrorCodes.AGENT_AUTH, `openai: ${what}`));
      return;
    }
    if (e.code === 'session_expired') {
      // The 60-minute cap arrived before our rollover (error `session_expired`): carry on in a new session.
      conn.socket.fail(new BridgeError(ErrorCodes.AGENT_SERVICE, `openai: ${what}`));
      return;
    }
    const rate = e.type === 'rate_limit_error' || e.code === 'rate_limit_exceeded' || e.code === 'insufficient_quota';
    this.reportError(new BridgeError(rate ? ErrorCodes.AGENT_RATE_LIMIT : ErrorCodes.AGENT_SERVICE, `openai: ${what}`), false);
  }

  // --- responses, items, history -------------------------------------------------------

  #response(conn: RealtimeConnection, id: string): ResponseState {
    let r = this.#responses.get(id);
    if (!r) {
      r = { id, connId: conn.id, dropped: false, cancelled: false, done: false, items: [], emittedMs: 0, playStartMs: 0, carry: -1 };
      this.#responses.set(id, r);
      if (this.#responses.size > MAX_RESPONSES) this.#responses.delete(this.#responses.keys().next().value!);
    }
    return r;
  }

  #item(r: ResponseState, itemId: string): ItemAudio {
    let item = r.items.find((i) => i.itemId === itemId);
    if (!item) {
      item = { itemId, bytes: 0, truncated: false };
      r.items.push(item);
    }
    return item;
  }

  #entry(role: 'user' | 'assistant', itemId: string): HistoryEntry {
    let e = this.#byItem.get(itemId);
    if (!e) {
      e = { role, itemId };
      this.#addHistory(e);
    }
    return e;
  }

  #addHistory(e: HistoryEntry): void {
    this.#history.push(e);
    if (e.itemId) this.#byItem.set(e.itemId, e);
    if (this.#history.length > MAX_HISTORY) {
      const old = this.#history.shift()!;
      if (old.itemId) this.#byItem.delete(old.itemId);
    }
  }

  /**
   * conversation.item.truncate for the response the caller was hearing: heardMs is a
   * position in that response's audio (acknowledged by Twilio marks), mapped onto its
   * items in arrival order; each audio_end_ms is clamped to the item's received audio,
   * and items after the heard one are truncated at 0 (never heard at all).
   */
  #truncate(conn: RealtimeConnection, r: ResponseState, heardMs: number): void {
    const items = r.items.filter((i) => i.bytes > 0 && !i.truncated);
    let remaining = heardMs;
    let cut = false;
    for (let k = 0; k < items.length; k++) {
      const item = items[k]!;
      const itemMs = Math.floor(item.bytes / this.#bytesPerMs);
      // An earlier item heard in full needs no truncate; the last one always gets one.
      if (!cut && remaining >= itemMs && k < items.length - 1) {
        remaining -= itemMs;
        continue;
      }
      const endMs = cut ? 0 : Math.min(remaining, itemMs);
      cut = true;
      item.truncated = true;
      if (item.entry) item.entry.heardFraction = itemMs > 0 ? endMs / itemMs : 0;
      conn.socket.send(buildTruncate(item.itemId, endMs));
      this.#stats.truncations++;
    }
  }

  /** The response lived in a session we have left: its text there is gone; keep the heard share for later carries. */
  #noteHeard(r: ResponseState, heardMs: number): void {
    let remaining = heardMs;
    for (const item of r.items) {
      const itemMs = item.bytes / this.#bytesPerMs;
      if (item.entry && remaining < itemMs) item.entry.heardFraction = itemMs > 0 ? Math.max(0, remaining) / itemMs : 0;
      remaining -= itemMs;
    }
  }

  /**
   * Cancels the response in progress (once) and drops the rest of its audio. Used when
   * the service did not cancel it: a barge-in the bridge detected (interrupt() with no
   * speech_started before it), or a session without interrupt_response.
   */
  #cancelCurrent(): void {
    const cur = this.#current;
    if (!cur || cur.done) return;
    cur.dropped = true;
    if (cur.cancelled) return;
    cur.cancelled = true;
    const conn = this.#conn;
    if (conn && cur.connId === conn.id && conn.socket.send(buildCancel(cur.id)) === 'sent') this.#stats.cancels++;
  }

  /** The service cancelled the response in progress on caller speech (interrupt_response): drop its audio, send no cancel. */
  #cancelledByService(): void {
    const cur = this.#current;
    if (!cur || cur.done) return;
    cur.dropped = true;
    cur.cancelled = true;
  }

  /** A response whose audio we emitted will never finish (its session is gone): let the bridge flush it. */
  #endInterruptedAudio(): void {
    const cur = this.#current;
    this.#current = undefined;
    if (cur && !cur.done && !cur.dropped && cur.emittedMs > 0) {
      cur.done = true;
      this.emitEvent({ type: 'responseDone', responseId: cur.id });
    }
  }

  #sendDigits(digits: string[]): void {
    if (this.#closed) return;
    // The Realtime API has no DTMF input: the digits become a user text message.
    const text = `The caller pressed ${digits.join(', ')} on the phone keypad.`;
    this.#addHistory({ role: 'user', text });
    const conn = this.#conn;
    if (!conn || this.#holding) return; // carried into the next session with the history
    conn.socket.send(buildTextItem('user', text));
    // Answer it now unless a response is already coming or the caller is talking.
    if (!this.#current && !this.#speaking) conn.socket.send(buildResponseCreate());
  }

  // --- errors ----------------------------------------------------------------------------

  #protocolError(detail: string): void {
    this.#stats.protocolErrors++;
    this.reportError(new BridgeError(ErrorCodes.AGENT_PROTOCOL, `openai: ${detail}`), false);
  }

  #fail(err: BridgeError): void {
    if (this.#closed) return;
    this.reportError(err, true);
    void this.close(`error:${err.code}`);
  }

  #rejectAudio(): void {
    if (this.#wrongAudioReported) return;
    this.#wrongAudioReported = true;
    const err = new BridgeError(ErrorCodes.DSP_ARGUMENT, `openai agent: expected ${this.#ulaw ? 'Uint8Array (μ-law)' : 'Int16Array (PCM16 24 kHz)'} audio`);
    queueMicrotask(() => this.reportError(err, false));
  }
}

/** The first `fraction` of a text, cut at a word boundary, marked as cut off. */
export function heardPart(text: string, fraction: number): string {
  if (fraction >= 1) return text;
  if (fraction <= 0) return '';
  let n = Math.round(text.length * fraction);
  const space = text.lastIndexOf(' ', n);
  if (space > 0) n = space;
  const part = text.slice(0, n).trim();
  return part ? `${part}…` : '';
}
