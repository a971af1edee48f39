/**
 * GeminiLiveSession: one call ⇄ one Gemini Live session (https://ai.google.dev/api/live), which may
 * span several WebSocket connections: Google ends each connection after ~10 minutes
 * with a `goAway`, and we resume the same session on a new connection with the last
 * `sessionResumptionUpdate.newHandle` (https://ai.google.dev/gemini-api/docs/live-session),
 * so a 30-minute call survives.
 *
 * ```text
 *          connect()                      setupComplete (caller audio flows)
 *   idle ───────────► connecting ──────────────────────────────► open ◄───────────────┐
 *    ▲                    │ upgrade refused / close / timeout      │                   │ setupComplete on a new
 *    └────────────────────┘ (connect() rejects, typed)             │ goAway: once a handle covers all
 *                                                                  │   the caller said, or at the
 *                                                                  │   deadline (timeLeft − margin)
 *                                                                  │ close 1011/1000/1006…, dead socket
 *                                                                  ▼                   │ connection (resumed with
 *                                                              resuming ───────────────┘ the handle; caller audio
 *                                                                  │                     buffered meanwhile, then
 *                     close 1007/1008, attempts exhausted, auth    │                     delivered in order)
 *   close(reason) from any state ──────────► closed ◄──────────────┘ (fatal 'error', then 'closed')
 * ```
 *
 * Swaps are break-before-make: the old socket is closed before the new one sends its
 * `setup`, because Gemini has rejected a resume with 1011 while the old socket was
 * still open (aicc2025/sip-to-ai#14). Caller audio sent during the gap
 * is kept (bounded by resumeBufferMs) and sent after the new `setupComplete`, so
 * every caller sample goes to the service exactly once, in order.
 *
 * Limits of resumption on the Gemini API (not Vertex): `transparent` mode is not
 * available, so the server never tells us which client messages a handle covers
 * (`lastConsumedClientMessageIndex`). Input the old connection received after the
 * last handle is lost on resumption; we do not resend it (that could duplicate it).
 * So after `goAway` we never switch while the caller is speaking: switching
 * mid-utterance would lose their words. We wait until (1) the caller is quiet — our own
 * energy VAD on the audio we send (EnergyVad, hangover CALLER_HANGOVER_MS) — (2) the
 * service has acted on what they said (a model turn, generationComplete, turnComplete
 * or a finished input transcription after their speech), (3) no model turn is in
 * progress, and (4) a resumable handle arrived after all that, so it covers their
 * words. Only at the deadline (goAway.timeLeft − ROLLOVER_MARGIN_MS) do we switch
 * regardless. Without any handle (very early in a call) we start a new session: the
 * call survives, the conversation so far is lost, and a non-fatal error says so.
 *
 * Barge-in: the service detects caller speech itself (automatic activity detection,
 * START_OF_ACTIVITY_INTERRUPTS) and sends `serverContent.interrupted` → we emit
 * `interruption` and drop the rest of that turn's audio. Gemini has no truncate message;
 * interrupt({ heardMs }) from the bridge records heardMs (stats, the agent transcript),
 * drops the rest of the current turn's audio, and — unless GEMINI_INTERRUPT_NOTE=0 —
 * appends one context note to the conversation: `clientContent` with a turn in the
 * model's role, "[Note from the phone system, not spoken: … heard only the first N ms
 * of this reply …]", and turnComplete false (no reply is asked for), so the model's
 * memory matches what the caller actually heard (the server keeps what
 * it *sent*, which is more than what played). Never `realtimeInput.text`: that is the
 * caller's own input, and the model would take the note for their words. If the
 * service closes with 1007 after a note (a model that refuses clientContent
 * mid-session), notes are switched off for the rest of the call and the session
 * resumes. activityStart/activityEnd are not an option: they are only allowed when
 * automatic activity detection is disabled (https://ai.google.dev/api/live).
 *
 * DTMF: `realtimeInput.text` "[The caller pressed 5 on the phone keypad.]" — the
 * caller's own input, which is what a key press is.
 */
import { anySignal } from '../../any-signal.js';
import { AgentSession, pcm16, type AudioFormat, type ToolResult } from '../agent.js';
import { BridgeError, ErrorCodes } from '../../errors.js';
import { EnergyVad } from '../../audio/vad.js';
import { AgentSocket, type LostInfo } from '../shared/agent-socket.js';
import { CallerAudioHold } from '../shared/caller-audio-hold.js';
import { dtmfKey } from '../shared/dtmf.js';
import { RetryPolicy } from '../shared/retry-policy.js';
import { closeCodeOf, toBridgeError, type SocketErrorRules } from '../shared/socket-errors.js';
import type { GeminiCallOptions, GeminiConfig } from './config.js';
import { INPUT_RATE_HZ, OUTPUT_RATE_HZ, buildAudio, buildContextNote, buildGreeting, buildSetup, buildText, buildToolResponse, decodeFrame, parseServerMessage, type ServerContent, type ServerMessage } from './protocol.js';

/** Gemini's own reading of a close (errors come only as close code + reason): 1007 "API key not valid" is a key problem, not a bad message. */
const RULES: SocketErrorRules = {
  provider: 'gemini',
  close: (code, reason) => (code === 1007 && /api key/i.test(reason) ? ErrorCodes.AGENT_AUTH : undefined),
  hint: (status) => (status === 401 || status === 403 ? ' (check GEMINI_API_KEY)' : ''),
};

export type GeminiSessionState = 'idle' | 'connecting' | 'open' | 'resuming' | 'closed';

/** A WebSocket frame larger than this closes the connection (ws maxPayload; we then resume). */
const MAX_FRAME_BYTES = 8 * 1024 * 1024;
/** A message larger than this is dropped as a protocol error (~20 s of 24 kHz audio in one message). */
const MAX_MESSAGE_CHARS = 2 * 1024 * 1024;
/** Roll over at least this long before goAway's deadline (or at half of timeLeft if shorter). */
const ROLLOVER_MARGIN_MS = 1500;
/** goAway without a readable timeLeft: assume this much. */
const DEFAULT_GOAWAY_MS = 5000;
/** Silence after the caller's last voiced frame before we take their utterance as ended (our VAD's hangover). */
const CALLER_HANGOVER_MS = 500;
const MAX_TRANSCRIPT_CHARS = 4000;

export interface GeminiSessionStats {
  /** Connections that reached setupComplete (1 + rollovers + reconnects). */
  connections: number;
  /** Of those, resumed with a handle. */
  resumed: number;
  /** New sessions started without a handle after the first (context lost). */
  freshRestarts: number;
  /** goAway messages received. */
  goAways: number;
  /** Proactive swaps after goAway. */
  rollovers: number;
  /** Of those, made at the deadline because the caller never paused long enough (input after the last handle may be lost). */
  rolloversAtDeadline: number;
  /** Barge-in context notes sent (clientContent). */
  notesSent: number;
  callerMsSent: number;
  callerMsDropped: number;
  agentMsEmitted: number;
  agentMsDropped: number;
  protocolErrors: number;
  audioFormatErrors: number;
  interruptionsFromService: number;
  interruptsFromBridge: number;
  lastHeardMs: number | null;
}

interface Turn {
  responseId: string;
  samples: number;
  /** The service reported the caller talking over this turn. */
  interrupted: boolean;
  /** The bridge interrupted it: the rest of its audio is dropped. */
  dropped: boolean;
  heardMs: number | undefined;
}

type Pending = { pcm: Int16Array; text?: undefined; note?: undefined } | { pcm?: undefined; text: string; note?: undefined } | { pcm?: undefined; text?: undefined; note: string };

export class GeminiLiveSession extends AgentSession {
  readonly inputFormat: AudioFormat = pcm16(INPUT_RATE_HZ);
  readonly outputFormat: AudioFormat = pcm16(OUTPUT_RATE_HZ);
  readonly hasVad = true;

  readonly #cfg: GeminiConfig;
  readonly #opts: GeminiCallOptions | BridgeError;
  #state: GeminiSessionState = 'idle';
  /** The live connection (only in 'open'). */
  #ws: AgentSocket | undefined;
  readonly #retry: RetryPolicy;
  /** Sockets being closed (rollover, retired); close() waits for them too (bounded). */
  readonly #retiring = new Set<Promise<void>>();
  /** Aborted by close(): ends connect attempts and backoff waits. */
  readonly #lifetime = new AbortController();

  /** Latest resumable handle; never logged. */
  #handle: string | undefined;
  /** The latest handle can be switched to: it arrived after the caller's speech was acted on, and no model turn started since. */
  #handleFresh = false;
  /** Function calls not answered yet: id → name (the toolResponse repeats both). */
  #toolCalls = new Map<string, string>();
  #rollover: { timer: NodeJS.Timeout } | undefined;
  /** Caller activity on the audio we send: a switch waits while they speak. */
  readonly #callerVad = new EnergyVad({ sampleRateHz: INPUT_RATE_HZ, silenceMs: CALLER_HANGOVER_MS });
  /** The caller spoke, and the service has not yet shown it acted on it (no handle can be trusted to cover it). */
  #callerUncovered = false;
  /** A 1007 after a note: this model refuses clientContent mid-session. */
  #notesDisabled = false;
  /** A note was sent on the current connection (a 1007 on it is then taken as the refusal). */
  #noteSentOnLink = false;

  /** Caller audio / text kept while not open (connect, resumption), bounded by resumeBufferMs. */
  readonly #pending: CallerAudioHold<Pending>;
  #overflowReported = false;

  #turn: Turn | undefined;
  #responseSeq = 0;
  #callerText = '';
  #agentText = '';

  #closePromise: Promise<void> | undefined;
  readonly #stats: GeminiSessionStats = {
    connections: 0,
    resumed: 0,
    freshRestarts: 0,
    goAways: 0,
    rollovers: 0,
    rolloversAtDeadline: 0,
    notesSent: 0,
    callerMsSent: 0,
    callerMsDropped: 0,
    agentMsEmitted: 0,
    agentMsDropped: 0,
    protocolErrors: 0,
    audioFormatErrors: 0,
    interruptionsFromService: 0,
    interruptsFromBridge: 0,
    lastHeardMs: null,
  };

  /** `options` is a BridgeError when the call's parameters were invalid: connect() rejects with it. */
  constructor(config: GeminiConfig, options: GeminiCallOptions | BridgeError) {
    super();
    this.#cfg = config;
    this.#opts = options;
    this.#pending = new CallerAudioHold({ maxMs: config.resumeBufferMs });
    this.#retry = new RetryPolicy({ attempts: config.maxReconnects, baseMs: 250, maxMs: 2000 });
  }

  get state(): GeminiSessionState {
    return this.#state;
  }
  get stats(): Readonly<GeminiSessionStats> {
    return { ...this.#stats };
  }
  /** Whether a resumption handle is held (the handle itself is a credential-like secret and is not exposed). */
  get resumable(): boolean {
    return this.#handle !== undefined;
  }

  // --- AgentSession ------------------------------------------------------------------

  async connect(signal: AbortSignal): Promise<void> {
    if (this.#opts instanceof BridgeError) throw this.#opts;
    if (this.#state === 'closed') throw new BridgeError(ErrorCodes.AGENT_CLOSED, 'gemini: the session is closed');
    if (this.#state !== 'idle') throw new BridgeError(ErrorCodes.AGENT_CONNECT, `gemini: connect() while ${this.#state}`);
    this.#state = 'connecting';
    const both = anySignal([signal, this.#lifetime.signal]);
    try {
      await this.#openLink(undefined, both);
    } catch (e) {
      if (this.#state === 'connecting') this.#state = 'idle';
      throw e;
    }
  }

  sendAudio(data: Int16Array | Uint8Array): void {
    if (this.#state === 'closed') return;
    if (!(data instanceof Int16Array)) {
      this.#deferError(new BridgeError(ErrorCodes.DSP_ARGUMENT, 'gemini: sendAudio expects PCM16 (Int16Array) at 16 kHz'));
      return;
    }
    if (data.length === 0) return;
    this.#trackCaller(data);
    const ws = this.#ws;
    if (this.#state === 'open' && ws !== undefined) {
      if (ws.send(buildAudio(data), 'media') === 'sent') this.#stats.callerMsSent += (data.length * 1000) / INPUT_RATE_HZ;
      else {
        this.#stats.callerMsDropped += (data.length * 1000) / INPUT_RATE_HZ;
        this.noteCallerAudioDropped((data.length * 1000) / INPUT_RATE_HZ);
      }
      return;
    }
    // Not open (connecting / resuming): keep a copy — the bridge reuses its buffer.
    this.#keep({ pcm: data.slice() });
  }

  interrupt(info: { heardMs: number }): void {
    if (this.#state === 'closed') return;
    const heardMs = Number.isFinite(info.heardMs) && info.heardMs >= 0 ? Math.round(info.heardMs) : undefined;
    this.#stats.interruptsFromBridge++;
    if (heardMs !== undefined) this.#stats.lastHeardMs = heardMs;
    const turn = this.#turn;
    if (turn !== undefined) {
      turn.dropped = true;
      turn.heardMs = heardMs;
    }
    if (this.#cfg.interruptNote && !this.#notesDisabled && heardMs !== undefined) {
      this.#sendNote(
        `[Note from the phone system, not spoken: the caller interrupted you and heard only the first ${heardMs} ms of this reply; the rest of it was cut off and never played. Do not assume they heard it.]`,
      );
    }
  }

  /** Context for the model: a client turn without turnComplete (no answer is asked for). */
  override note(text: string): void {
    if (this.#state === 'closed') return;
    this.#ws?.send(JSON.stringify({ clientContent: { turns: [{ role: 'user', parts: [{ text: `[call information, not said by the caller] ${text}` }] }], turnComplete: false } }));
  }

  /** The agent speaks first: a client turn asking for the greeting (unless the model is already talking). */
  override greet(greeting: string): void {
    if (this.#state === 'closed' || this.#turn !== undefined) return;
    this.#ws?.send(buildGreeting(greeting));
  }

  /** One toolResponse per answer (`response: {output}` or `{error}`), for a call this link made and nobody withdrew. */
  override sendToolResult(callId: string, result: ToolResult): void {
    const name = this.#toolCalls.get(callId);
    if (name === undefined || this.#state === 'closed') return;
    this.#toolCalls.delete(callId);
    this.#ws?.send(buildToolResponse(callId, name, result));
  }

  sendDtmf(digit: string): void {
    if (this.#state === 'closed') return;
    const d = dtmfKey(digit);
    if (d === undefined) return;
    this.#sendText(`[The caller pressed ${d} on the phone keypad.]`);
  }

  close(reason: string): Promise<void> {
    if (this.#closePromise) return this.#closePromise;
    this.#state = 'closed';
    this.#lifetime.abort(new Error(`gemini session closed: ${reason}`));
    this.#clearRollover();
    this.#pending.clear();
    const ws = this.#ws;
    this.#ws = undefined;
    if (ws !== undefined) this.#retire(ws, 'call ended');
    this.#closePromise = Promise.all([...this.#retiring]).then(() => {
      this.emitEvent({ type: 'closed', reason });
    });
    return this.#closePromise;
  }

  // --- connections -------------------------------------------------------------------

  /**
   * One connection: upgrade (key in the `x-goog-api-key` header, as Google's SDKs send it — the URL, which
   * error messages name, never has it), `setup`, wait for `setupComplete`, one bound over
   * both (connectTimeoutMs) and `signal`.
   */
  async #openLink(handle: string | undefined, signal: AbortSignal): Promise<void> {
    const opts = this.#opts as GeminiCallOptions;
    // A new link does not know the old one's calls (no handle is issued while a call is open):
    // the call core stops them, and nothing is sent for them.
    if (this.#toolCalls.size > 0) {
      const ids = [...this.#toolCalls.keys()];
      this.#toolCalls.clear();
      this.emitEvent({ type: 'toolCancel', callIds: ids });
    }
    let first: ServerMessage | undefined;
    const ws = await AgentSocket.open({
      rules: RULES,
      url: this.#cfg.url,
      headers: { 'x-goog-api-key': this.#cfg.apiKey },
      timeoutMs: this.#cfg.connectTimeoutMs,
      signal,
      awaiting: 'setupComplete',
      onOpen: (sock) => sock.send(buildSetup({ ...opts, handle })),
      handshake: (data, isBinary) => {
        const m = this.#parseFrame(data, isBinary);
        if (m === undefined) return undefined;
        // Clients must wait for setupComplete before anything else (Live API reference); anything earlier is out of order.
        if (!m.setupComplete) this.#protocolError('a message before setupComplete');
        else first = m;
        return m.setupComplete ? true : undefined;
      },
      pingIntervalMs: this.#cfg.pingIntervalMs,
      silenceLimitMs: this.#cfg.idleTimeoutMs,
      maxPayloadBytes: MAX_FRAME_BYTES,
    });
    if (this.#state === 'closed') {
      void ws.close(1000, 'call ended');
      throw new BridgeError(ErrorCodes.AGENT_CLOSED, 'gemini: the session was closed while connecting');
    }
    this.#adopt(ws, handle);
    // The rest of the setupComplete message (rare) is handled like any other.
    if (first && (first.serverContent || first.goAway || first.sessionResumptionUpdate)) this.#onMessage({ ...first, setupComplete: false, problems: [] });
  }

  #adopt(ws: AgentSocket, handle: string | undefined): void {
    const first = this.#stats.connections === 0;
    this.#stats.connections++;
    if (handle !== undefined) this.#stats.resumed++;
    else if (!first) this.#stats.freshRestarts++;
    this.#ws = ws;
    this.#state = 'open';
    this.#handleFresh = false;
    this.#noteSentOnLink = false;
    ws.on('message', (data, isBinary) => {
      if (ws !== this.#ws) return;
      const m = this.#parseFrame(data, isBinary);
      if (m !== undefined) this.#onMessage(m);
    });
    ws.on('lost', (error, info) => {
      if (ws === this.#ws) this.#linkLost(error, info);
    });
    this.#flushPending(ws);
  }

  /** Closes a socket we no longer use (bounded); close() waits for it. */
  #retire(ws: AgentSocket, reason: string): void {
    if (this.#ws === ws) this.#ws = undefined;
    const done = ws.close(1000, reason);
    this.#retiring.add(done);
    void done.then(() => this.#retiring.delete(done));
  }

  /** The live connection ended without our asking. */
  #linkLost(error: BridgeError, info: LostInfo): void {
    this.#retire(this.#ws!, 'reconnecting');
    if (info.code === 1007 && this.#noteSentOnLink && error.code === ErrorCodes.AGENT_PROTOCOL) {
      // The model refused our clientContent note (some Live models take clientContent only
      // before the first model turn). Not worth the call: no more notes, and resume.
      this.#notesDisabled = true;
      error = new BridgeError(ErrorCodes.AGENT_PROTOCOL, `gemini: the service refused a barge-in note (close 1007${info.reason ? `: ${info.reason.slice(0, 120)}` : ''}); notes are off for the rest of this call`);
    } else if (!info.resumable) {
      this.#fatal(error);
      return;
    }
    if (!this.#retry.lost()) {
      this.#fatal(new BridgeError(error.code, `${error.message} (again, ${this.#retry.quickLosses} times right after resuming)`, { cause: error }));
      return;
    }
    this.reportError(error, false);
    this.#startResume();
  }

  // --- resumption --------------------------------------------------------------------

  #startResume(): void {
    if (this.#state === 'closed' || this.#state === 'resuming') return;
    this.#endTurn(true);
    if (this.#closed()) return; // a listener of the events above closed us
    this.#clearRollover();
    this.#state = 'resuming';
    this.#overflowReported = false;
    if (this.#cfg.maxReconnects === 0) {
      this.#fatal(new BridgeError(ErrorCodes.AGENT_CLOSED, 'gemini: the connection ended and reconnecting is disabled (GEMINI_MAX_RECONNECTS=0)'));
      return;
    }
    void this.#resumeLoop().catch((e: unknown) => this.#fatal(toBridgeError('gemini', e)));
  }

  async #resumeLoop(): Promise<void> {
    const r = await this.#retry.run(
      async () => {
        const handle = this.#handle;
        let fresh = handle === undefined;
        try {
          await this.#openLink(handle, this.#lifetime.signal);
        } catch (e) {
          const err = e as BridgeError;
          // A close after our setup (not an upgrade refusal) with AUTH/PROTOCOL: the handle was
          // refused (expired or unknown; we assume no particular validity period). A key problem would
          // fail the fresh session too, and that one counts.
          if (handle === undefined || closeCodeOf(err) === undefined || (err.code !== ErrorCodes.AGENT_AUTH && err.code !== ErrorCodes.AGENT_PROTOCOL)) throw err;
          if (this.#state !== 'resuming') return;
          this.reportError(new BridgeError(err.code, `gemini: resuming was refused (${err.message}); starting a new session`), false);
          this.#handle = undefined;
          fresh = true;
          await this.#openLink(undefined, this.#lifetime.signal);
        }
        if (fresh) {
          this.reportError(new BridgeError(ErrorCodes.AGENT_SERVICE, 'gemini: no resumption handle: a new session was started, the conversation so far is lost'), false);
        }
      },
      this.#lifetime.signal,
      (err) => {
        if (this.#state === 'resuming') this.reportError(err, false);
      },
    );
    if (this.#state !== 'resuming' && this.#state !== 'open') return;
    if (r.ok) this.#retry.recovered();
    else if (!r.aborted) this.#fatal(new BridgeError(r.error.code, `gemini: reconnecting failed after ${r.attempts} attempt(s): ${r.error.message}`, { cause: r.error }));
  }

  /** goAway (sent before Google ends a connection): roll over once a handle covers all the caller said (see the file comment), or at the deadline. */
  #onGoAway(timeLeftMs: number | undefined): void {
    this.#stats.goAways++;
    if (this.#rollover !== undefined || this.#state !== 'open') return;
    const left = timeLeftMs ?? DEFAULT_GOAWAY_MS;
    const deadline = Math.max(0, left - Math.min(ROLLOVER_MARGIN_MS, left / 2));
    this.#rollover = { timer: setTimeout(() => this.#rollNow(true), deadline) };
    this.#maybeRoll();
  }

  /** Whether switching now loses nothing the caller said: quiet, acted on, no model turn, and a handle since. */
  #safeToSwitch(): boolean {
    return this.#turn === undefined && this.#handleFresh && !this.#callerUncovered && !this.#callerVad.speaking;
  }

  #maybeRoll(): void {
    if (this.#rollover !== undefined && this.#state === 'open' && this.#safeToSwitch()) this.#rollNow(false);
  }

  #rollNow(atDeadline: boolean): void {
    this.#clearRollover();
    const ws = this.#ws;
    if (this.#state !== 'open' || ws === undefined) return;
    this.#stats.rollovers++;
    if (atDeadline) this.#stats.rolloversAtDeadline++;
    this.#retire(ws, 'rolling over after goAway');
    this.#startResume();
  }

  #clearRollover(): void {
    if (this.#rollover !== undefined) clearTimeout(this.#rollover.timer);
    this.#rollover = undefined;
  }

  // --- server messages ---------------------------------------------------------------

  #parseFrame(data: Buffer, isBinary: boolean): ServerMessage | undefined {
    const text = decodeFrame(data, isBinary);
    if (text === undefined) {
      this.#protocolError('a binary frame that is not UTF-8 text');
      return undefined;
    }
    if (text.length > MAX_MESSAGE_CHARS) {
      this.#protocolError(`a message of ${text.length} characters (limit ${MAX_MESSAGE_CHARS})`);
      return undefined;
    }
    const r = parseServerMessage(text);
    if (!r.ok) {
      this.#protocolError(r.detail);
      return undefined;
    }
    for (const p of r.message.problems) this.#protocolError(p);
    return r.message;
  }

  #onMessage(m: ServerMessage): void {
    if (m.setupComplete) this.#protocolError('a second setupComplete');
    if (m.sessionResumptionUpdate) {
      const u = m.sessionResumptionUpdate;
      // Keep only handles the server says can resume (resumable is false mid-generation / tool calls).
      if (u.resumable && u.newHandle !== undefined) {
        this.#handle = u.newHandle;
        // Only a handle issued after the caller's speech was acted on can be trusted to cover it.
        this.#handleFresh = !this.#callerUncovered && !this.#callerVad.speaking && this.#turn === undefined;
      }
    }
    if (m.toolCall) {
      for (const c of m.toolCall.calls) {
        this.#toolCalls.set(c.id, c.name);
        this.emitEvent({ type: 'toolCall', callId: c.id, name: c.name, arguments: c.args });
      }
    }
    if (m.toolCallCancellation) {
      // The service withdrew them (the caller interrupted): nothing is sent for them.
      const ids = m.toolCallCancellation.ids.filter((id) => this.#toolCalls.delete(id));
      if (ids.length > 0) this.emitEvent({ type: 'toolCancel', callIds: ids });
    }
    if (m.serverContent) this.#onServerContent(m.serverContent);
    if (m.goAway) this.#onGoAway(m.goAway.timeLeftMs);
    this.#maybeRoll();
  }

  #onServerContent(c: ServerContent): void {
    if ((c.hasModelTurn || c.generationComplete || c.turnComplete || c.inputTranscription?.finished === true) && !this.#callerVad.speaking) {
      // The service has acted on the caller's last words (it answered, or ended their turn).
      this.#callerUncovered = false;
    }
    if (c.inputTranscription) {
      this.#callerText = (this.#callerText + c.inputTranscription.text).slice(0, MAX_TRANSCRIPT_CHARS);
      if (c.inputTranscription.finished) this.#flushCallerText();
    }
    if (c.outputTranscription) this.#agentText = (this.#agentText + c.outputTranscription.text).slice(0, MAX_TRANSCRIPT_CHARS);
    for (const why of c.badAudio) {
      this.#stats.audioFormatErrors++;
      this.reportError(new BridgeError(ErrorCodes.AGENT_AUDIO_FORMAT, `gemini: ${why}`), false);
    }
    if (c.audio.length > 0) {
      let turn = this.#turn;
      if (turn === undefined) {
        this.#flushCallerText(); // the model answers: the caller's turn is over
        turn = this.#turn = { responseId: `gemini-${++this.#responseSeq}`, samples: 0, interrupted: false, dropped: false, heardMs: undefined };
        this.#handleFresh = false;
      }
      for (const pcm of c.audio) {
        if (turn.interrupted || turn.dropped) {
          this.#stats.agentMsDropped += (pcm.length * 1000) / OUTPUT_RATE_HZ;
          continue;
        }
        turn.samples += pcm.length;
        this.#stats.agentMsEmitted += (pcm.length * 1000) / OUTPUT_RATE_HZ;
        this.emitEvent({ type: 'audio', data: pcm, sampleRateHz: OUTPUT_RATE_HZ, responseId: turn.responseId });
        if (this.#closed() || this.#turn !== turn) return; // a listener closed us
      }
    }
    if (c.interrupted) {
      // serverContent.interrupted: the caller spoke over the model; it stopped. Drop whatever of the turn still arrives.
      this.#stats.interruptionsFromService++;
      if (this.#turn !== undefined) this.#turn.interrupted = true;
      this.emitEvent({ type: 'interruption' });
      if (this.#state === 'closed') return;
    }
    if (c.turnComplete) this.#endTurn(false);
  }

  /** Ends the current model turn: responseDone if it finished normally, and the agent transcript. */
  #endTurn(cut: boolean): void {
    const turn = this.#turn;
    this.#turn = undefined;
    if (turn !== undefined && !turn.interrupted && !turn.dropped && turn.samples > 0) {
      // Also when cut by a reconnect: all of its audio that will ever come has been emitted.
      this.emitEvent({ type: 'responseDone', responseId: turn.responseId });
    }
    this.#flushCallerText();
    let text = this.#agentText.trim();
    this.#agentText = '';
    if (turn !== undefined && (turn.interrupted || turn.dropped)) {
      text += turn.heardMs !== undefined ? ` [interrupted: the caller heard about ${turn.heardMs} ms]` : ' [interrupted]';
    } else if (turn !== undefined && cut) text += ' [cut by a reconnect]';
    text = text.trim();
    if (text !== '' && this.#state !== 'closed') this.emitEvent({ type: 'transcript', role: 'agent', text, final: true });
  }

  #flushCallerText(): void {
    const text = this.#callerText.trim();
    this.#callerText = '';
    if (text !== '' && this.#state !== 'closed') this.emitEvent({ type: 'transcript', role: 'caller', text, final: true });
  }

  // --- sending -----------------------------------------------------------------------

  #sendText(text: string): void {
    const ws = this.#ws;
    if (this.#state === 'open' && ws !== undefined) ws.send(buildText(text));
    else this.#pending.other({ text });
  }

  #sendNote(note: string): void {
    const ws = this.#ws;
    if (this.#state === 'open' && ws !== undefined) this.#sendNoteOn(ws, note);
    else this.#pending.other({ note });
  }

  #sendNoteOn(ws: AgentSocket, note: string): void {
    if (this.#notesDisabled) return;
    this.#noteSentOnLink = true;
    this.#stats.notesSent++;
    ws.send(buildContextNote(note));
  }

  /** Follows the caller's activity on the audio we send (see #safeToSwitch). */
  #trackCaller(pcm: Int16Array): void {
    this.#callerVad.process(pcm);
    if (this.#callerVad.speaking) {
      this.#callerUncovered = true;
      this.#handleFresh = false;
    }
  }

  /** Keeps caller audio for the next connection; the oldest goes first when over resumeBufferMs. */
  #keep(p: Pending & { pcm: Int16Array }): void {
    const droppedMs = this.#pending.audio(p, (p.pcm.length * 1000) / INPUT_RATE_HZ);
    if (droppedMs === 0) return;
    this.#stats.callerMsDropped += droppedMs;
    this.noteCallerAudioDropped(droppedMs);
    if (!this.#overflowReported) {
      this.#overflowReported = true;
      this.#deferError(new BridgeError(ErrorCodes.AGENT_TIMEOUT, `gemini: more than ${this.#cfg.resumeBufferMs} ms of caller audio while reconnecting; the oldest is dropped`));
    }
  }

  #flushPending(ws: AgentSocket): void {
    for (const { item: p } of this.#pending.take()) {
      if (p.pcm !== undefined) {
        ws.send(buildAudio(p.pcm));
        this.#stats.callerMsSent += (p.pcm.length * 1000) / INPUT_RATE_HZ;
      } else if (p.text !== undefined) ws.send(buildText(p.text));
      else this.#sendNoteOn(ws, p.note);
    }
  }

  // --- errors ------------------------------------------------------------------------

  /** Re-reads the state after emitting (listeners may close us; TS would keep the narrowed type). */
  #closed(): boolean {
    return this.#state === 'closed';
  }

  #protocolError(detail: string): void {
    this.#stats.protocolErrors++;
    this.reportError(new BridgeError(ErrorCodes.AGENT_PROTOCOL, `gemini: ${detail}`), false);
  }

  /** From inside sendAudio: never re-entrant. */
  #deferError(err: BridgeError): void {
    queueMicrotask(() => {
      if (this.#state !== 'closed') this.reportError(err, false);
    });
  }

  #fatal(err: BridgeError): void {
    if (this.#state === 'closed') return;
    this.reportError(err, true);
    void this.close(`error:${err.code}`);
  }
}
