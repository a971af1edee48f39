/**
 * PipecatAgentSession: one call ⇄ one WebSocket to a Pipecat server whose transport
 * uses ProtobufFrameSerializer (pipecat `serializers/protobuf.py`; see protocol.ts for the frames).
 *
 * ```text
 *            connect()                     abnormal close / no pong          reconnected
 *   idle ──────────────► connecting ──► open ───────────────────────► reconnecting ──────► open
 *                            │            │ close 1000/1001 from the server  │ (once per call; PIPECAT_RECONNECT)
 *                            │            │   → 'end' (the bot hung up)      │ failed
 *                            ▼            ▼                                  ▼
 *                         rejected      closed ◄──── close(reason) / fatal error ◄──
 *
 *   bridge → server                              server → bridge
 *   (each connection) → MessageFrame(RTVI client-ready {version 2.2.0})
 *   sendAudio(PCM16)  → AudioRawFrame@in rate    AudioRawFrame   → 'audio' at the frame's own rate (the call resamples; stereo rejected)
 *   interrupt(heard)  → MessageFrame(RTVI client-message t=interruption {heardMs}) + InterruptionFrame
 *   sendDtmf(d)       → MessageFrame(RTVI dtmf {buttons: [d]})
 *                                                InterruptionFrame → 'interruption' (unless it acks ours)
 *                                                MessageFrame RTVI user-transcription (final) → caller transcript
 *                                                MessageFrame RTVI bot-output / bot-tts-text / bot-llm-text
 *                                                                 → agent transcript, one per response
 *                                                MessageFrame RTVI bot-stopped-speaking → 'responseDone'
 *                                                MessageFrame RTVI error → 'error' (fatal if it says so)
 * ```
 *
 * Transcripts. Pipecat's protobuf serializer never sends TextFrame or TranscriptionFrame;
 * the words travel as RTVI transport messages from the pipeline's RTVIObserver. The caller's
 * come as `user-transcription` (only `final: true` ones are kept). The bot's come several
 * ways at once, so per response the best source wins: `bot-output` that is (or will be)
 * spoken — per segment_id when the bot sends progress updates, and for an interrupted
 * response only segments that had started — then `bot-tts-text` (words as spoken), then
 * `bot-transcription`, then unspoken `bot-output`, then `bot-llm-text` (tokens; may hold
 * text never spoken). Bot text arriving while late audio of an interrupted response is
 * discarded belongs to that response and is dropped. TextFrame/TranscriptionFrame are still
 * read (a custom serializer may send them) as the last resort.
 *
 * Responses. The serializer has no response ids and no end-of-response frame. A
 * response starts with the first bot audio after idle and is tagged `pipecat-<n>`;
 * it ends (→ 'responseDone') at whichever comes first: an RTVI `bot-stopped-speaking`
 * message (sent when the pipeline has an RTVIProcessor), or `responseGapMs` (default
 * 350 ms, Pipecat's own bot-stopped-speaking threshold) without bot audio. A Pipecat
 * server paces its output in real time, so a gap means the bot stopped talking.
 *
 * Barge-in. A server InterruptionFrame means Pipecat already dropped its queued
 * audio: the current response ends without 'responseDone' and 'interruption' is
 * emitted. interrupt({heardMs}) from the bridge sends an InterruptionFrame (so the
 * pipeline stops) preceded by an RTVI client message carrying heardMs (Pipecat has
 * no truncation of its own; a custom processor can use it). Until the server shows
 * the old response is over — its InterruptionFrame echo, bot-stopped-speaking, a
 * responseGapMs gap, or at most DISCARD_MAX_MS — late audio of it is discarded.
 *
 * Reconnect. A Pipecat session is not resumable: the conversation lives in the
 * server's pipeline for that one socket. A close 1000 or 1001 is the bot ending the
 * call ('end', after the goodbye it sent): Pipecat's WebSocket server transport closes
 * with 1001 when its pipeline ends, the FastAPI transport with 1000. An abnormal close
 * (1006/1011/1012/1013/1014) or a socket that stops
 * answering pings gets ONE quick reconnect per call (PIPECAT_RECONNECT, default on):
 * the caller gets a fresh bot rather than dead air, reported as a non-fatal
 * AGENT_CLOSED error saying the context is lost. Anything else, or a failed
 * reconnect, is a fatal error and 'closed'.
 */
import { anySignal } from '../../any-signal.js';
import { AgentSession, pcm16, type AudioFormat } from '../agent.js';
import { BridgeError, ErrorCodes, type ErrorCode } from '../../errors.js';
import { AgentSocket, redactUrl, type LostInfo } from '../shared/agent-socket.js';
import type { SocketErrorRules } from '../shared/socket-errors.js';
import type { PipecatConfig } from './config.js';
import { ratesFromParameters } from './config.js';
import {
  AudioFrameEncoder,
  INTERRUPTION_FRAME,
  RTVI_DTMF_KEYS,
  buildClientMessage,
  buildClientReady,
  buildDtmf,
  parseFrame,
  pcmFromBytes,
  rtviData,
  rtviError,
  rtviType,
  type PipecatFrame,
} from './protocol.js';

/** Largest server message we look at (1 s of 48 kHz stereo is 192 kB); larger ones are dropped. */
export const MAX_MESSAGE_BYTES = 512 * 1024;
/** Caller audio queued in the socket beyond this (~16 s at 16 kHz) is dropped, not buffered. */
const MAX_BUFFERED_BYTES = 512 * 1024;
/** After interrupt(), late audio of the old response is discarded at most this long. */
export const DISCARD_MAX_MS = 3000;
/** An InterruptionFrame this soon after ours, before new bot audio, is the server acknowledging it. */
const ACK_WINDOW_MS = 2000;
/** Text messages in a row (no valid binary frame between) after which the server is taken to use the wrong serializer. */
const TEXT_STREAK_FATAL = 20;
/** Non-fatal errors emitted per second at most (the rest are only counted). */
const ERRORS_PER_SECOND = 20;
/** Agent text kept per response for the transcript. */
const MAX_AGENT_TEXT = 4000;
/** Close codes after which one reconnect is tried (abnormal, server error, restart, try again later, bad gateway). 1000/1001 are the bot hanging up. */
const RECONNECTABLE = new Set([1006, 1011, 1012, 1013, 1014]);
/** Close codes with which Pipecat's transports end a session when the pipeline ends (FastAPI: 1000; WebSocket server: 1001). */
const BOT_ENDED = new Set([1000, 1001]);

/** One `bot-output` segment. */
interface OutputSegment {
  text: string;
  /** true: spoken or will be; false: text only; undefined: the bot does not say. */
  spoken: boolean | undefined;
  /** RTVI 2.x spoken_status; 'new' = not started playing yet. */
  status: string | undefined;
}

/** The agent's text of one response, by source (see the file comment on transcripts). */
interface BotText {
  outputs: Map<string, OutputSegment>;
  tts: string;
  transcription: string;
  llm: string;
  frames: string;
}

const emptyBotText = (): BotText => ({ outputs: new Map(), tts: '', transcription: '', llm: '', frames: '' });

/** Joins word- or sentence-sized fragments: TTS words and sentences carry no spaces of their own, LLM tokens do. */
function glue(prev: string, text: string): string {
  if (prev.length >= MAX_AGENT_TEXT) return prev;
  const sep = prev.length > 0 && !/\s$/.test(prev) && !/^[\s.,!?;:'")\]]/.test(text) ? ' ' : '';
  return (prev + sep + text).slice(0, MAX_AGENT_TEXT);
}

type Phase = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface PipecatSessionStats {
  /** AudioRawFrames sent (one per sendAudio call). */
  framesSent: number;
  /** Caller audio dropped: socket backed up, or while reconnecting. */
  callerFramesDropped: number;
  /** Binary messages received. */
  framesReceived: number;
  /** Bot audio frames discarded after an interrupt (late audio of the interrupted response). */
  agentFramesDiscarded: number;
  /** Text (non-protobuf) WebSocket messages received. */
  textMessages: number;
  /** Non-fatal errors (emitted or suppressed by the rate limit). */
  errors: number;
  errorsSuppressed: number;
  reconnects: number;
  responses: number;
  interruptionsFromServer: number;
  interruptsSent: number;
}

export interface PipecatSessionOptions {
  readonly config: PipecatConfig;
  readonly parameters: Readonly<Record<string, string>>;
  readonly callSid: string;
}

export class PipecatAgentSession extends AgentSession {
  readonly inputFormat: AudioFormat;
  readonly outputFormat: AudioFormat;
  readonly hasVad = true;

  readonly #cfg: PipecatConfig;
  readonly #o: PipecatSessionOptions;
  readonly #configError: BridgeError | undefined;
  readonly #encoder: AudioFrameEncoder;
  readonly #lifetime = new AbortController();
  readonly #safeUrl: string;
  readonly #rules: SocketErrorRules;

  #phase: Phase = 'idle';
  #ws: AgentSocket | undefined;
  #reconnectUsed = false;
  #closePromise: Promise<void> | undefined;

  /** The response being received, if any. */
  #responseId: string | undefined;
  #responseSeq = 0;
  #gapTimer: NodeJS.Timeout | undefined;
  #botText: BotText = emptyBotText();
  #outputSeq = 0;
  /** The bot sends RTVI user-transcription: TranscriptionFrames (if any) would repeat them. */
  #rtviUserText = false;
  /** Late audio of an interrupted response is being discarded since this time (ms), or -1. */
  #discardSince = -1;
  #ackUntil = 0;
  #msgSeq = 0;
  #textStreak = 0;
  #errorWindowStart = 0;
  #errorsInWindow = 0;
  #lastHeardMs: number | undefined;
  readonly #stats: PipecatSessionStats = {
    framesSent: 0,
    callerFramesDropped: 0,
    framesReceived: 0,
    agentFramesDiscarded: 0,
    textMessages: 0,
    errors: 0,
    errorsSuppressed: 0,
    reconnects: 0,
    responses: 0,
    interruptionsFromServer: 0,
    interruptsSent: 0,
  };

  constructor(options: PipecatSessionOptions) {
    super();
    this.#o = options;
    this.#cfg = options.config;
    this.#safeUrl = redactUrl(options.config.url);
    const { origin, authToken } = options.config;
    this.#rules = {
      provider: 'pipecat agent',
      // The hint names the settings, never their values (the token is a secret).
      hint: (status) =>
        status === 403
          ? ` (a bot with PIPECAT_ALLOWED_ORIGINS refuses connections without an allowed Origin: set PIPECAT_ORIGIN${origin !== undefined ? ', now ' + JSON.stringify(origin) : ''}; or check PIPECAT_AUTH_TOKEN)`
          : status === 401
            ? ` (check PIPECAT_AUTH_TOKEN${authToken === undefined ? ', which is not set' : ''})`
            : '',
    };
    let rates = { inHz: options.config.sampleRateHz, outHz: options.config.outputSampleRateHz ?? options.config.sampleRateHz };
    try {
      rates = ratesFromParameters(options.parameters, options.config);
    } catch (e) {
      // Reported by connect(): create() must not throw for a bad webhook option.
      this.#configError = e as BridgeError;
    }
    this.inputFormat = pcm16(rates.inHz);
    this.outputFormat = pcm16(rates.outHz);
    this.#encoder = new AudioFrameEncoder(rates.inHz);
  }

  get stats(): Readonly<PipecatSessionStats> {
    return { ...this.#stats };
  }
  /** heardMs of the last interrupt() from the bridge. */
  get lastHeardMs(): number | undefined {
    return this.#lastHeardMs;
  }
  get closed(): boolean {
    return this.#phase === 'closed';
  }
  /** Whether late audio of an interrupted response is being discarded. */
  get discarding(): boolean {
    return this.#discardSince >= 0;
  }

  // --- connect -------------------------------------------------------------------

  async connect(signal: AbortSignal): Promise<void> {
    if (this.#configError) throw this.#configError;
    if (this.#phase === 'closed') throw new BridgeError(ErrorCodes.AGENT_CLOSED, 'pipecat agent: session is closed');
    if (this.#phase !== 'idle') throw new BridgeError(ErrorCodes.AGENT_CONNECT, 'pipecat agent: connect() was already called');
    this.#phase = 'connecting';
    const both = anySignal([signal, this.#lifetime.signal]);
    const ws = await this.#open(both).catch((e: unknown) => {
      if (this.#phase === 'connecting') this.#phase = 'idle';
      throw e;
    });
    if (this.#phase !== 'connecting') {
      ws.terminate();
      throw new BridgeError(ErrorCodes.AGENT_CLOSED, 'pipecat agent: closed while connecting');
    }
    this.#attach(ws);
    this.#phase = 'open';
  }

  /** Opens one WebSocket; rejects with a typed error. Bounded by connectTimeoutMs and `signal`. */
  #open(signal: AbortSignal): Promise<AgentSocket> {
    const c = this.#cfg;
    return AgentSocket.open({
      rules: this.#rules,
      url: c.url,
      safeUrl: this.#safeUrl,
      headers: c.authToken !== undefined ? { Authorization: `Bearer ${c.authToken}` } : {},
      ...(c.origin !== undefined ? { origin: c.origin } : {}),
      timeoutMs: c.connectTimeoutMs,
      signal,
      // RTVI handshake: declares the message shapes we speak; the bot answers bot-ready
      // (ignored), and bots that hold caller audio until the client is ready start listening.
      onOpen: (sock) => sock.send(buildClientReady(this.#nextMsgId('ready'))),
      pingIntervalMs: c.pingIntervalMs,
      maxBufferedBytes: MAX_BUFFERED_BYTES,
      // AudioFrameEncoder reuses its frame buffer: ws must copy it (a random mask makes it).
      reusesBinaryBuffers: true,
    });
  }

  #attach(ws: AgentSocket): void {
    this.#ws = ws;
    this.#textStreak = 0;
    ws.on('message', (data, isBinary) => this.#onMessage(ws, data, isBinary));
    ws.on('lost', (error, info) => this.#onSocketLost(ws, error, info));
  }

  // --- caller → server -----------------------------------------------------------

  sendAudio(data: Int16Array | Uint8Array): void {
    if (this.#phase !== 'open') {
      if (this.#phase === 'reconnecting') {
        this.#stats.callerFramesDropped++;
        this.noteCallerAudioDropped((data.length * 1000) / this.inputFormat.sampleRateHz);
      }
      return;
    }
    if (!(data instanceof Int16Array)) {
      this.#nonFatal(ErrorCodes.DSP_ARGUMENT, 'pipecat agent: expected Int16Array (PCM16) caller audio');
      return;
    }
    if (this.#ws?.send(this.#encoder.encode(data), 'media') === 'sent') this.#stats.framesSent++;
    else {
      this.#stats.callerFramesDropped++;
      this.noteCallerAudioDropped((data.length * 1000) / this.inputFormat.sampleRateHz);
    }
  }

  interrupt(info: { heardMs: number }): void {
    if (this.#phase === 'closed') return;
    const heardMs = Number.isFinite(info.heardMs) && info.heardMs > 0 ? Math.round(info.heardMs) : 0;
    this.#lastHeardMs = heardMs;
    const responseId = this.#responseId;
    if (responseId !== undefined) {
      // The rest of this response may still be on its way: discard it (see file comment).
      this.#endResponse(false);
      this.#discardSince = Date.now();
    }
    this.#ackUntil = Date.now() + ACK_WINDOW_MS;
    if (this.#phase !== 'open') return;
    this.#stats.interruptsSent++;
    this.#send(buildClientMessage(this.#nextMsgId('interruption'), 'interruption', { heardMs, ...(responseId ? { responseId } : {}) }));
    this.#send(INTERRUPTION_FRAME);
  }

  sendDtmf(digit: string): void {
    if (this.#phase !== 'open') return;
    if (typeof digit !== 'string' || !RTVI_DTMF_KEYS.test(digit)) {
      this.#nonFatal(ErrorCodes.DSP_ARGUMENT, `pipecat agent: ${JSON.stringify(String(digit).slice(0, 8))} is not a key RTVI's dtmf message carries (0-9, *, #)`);
      return;
    }
    this.#send(buildDtmf(this.#nextMsgId('dtmf'), [digit]));
  }

  #nextMsgId(kind: string): string {
    return `vb-${kind}-${++this.#msgSeq}`;
  }

  #send(bytes: Uint8Array): void {
    this.#ws?.send(bytes);
  }

  // --- server → bridge -----------------------------------------------------------

  #onMessage(ws: AgentSocket, data: Buffer, isBinary: boolean): void {
    if (ws !== this.#ws || this.#phase === 'closed') return;
    if (!isBinary) {
      this.#onText(data);
      return;
    }
    this.#stats.framesReceived++;
    if (data.length > MAX_MESSAGE_BYTES) {
      this.#nonFatal(ErrorCodes.AGENT_PROTOCOL, `pipecat agent: dropped a ${data.length}-byte message (limit ${MAX_MESSAGE_BYTES})`);
      return;
    }
    const r = parseFrame(data);
    if (!r.ok) {
      this.#nonFatal(r.problem === 'audio-format' ? ErrorCodes.AGENT_AUDIO_FORMAT : ErrorCodes.AGENT_PROTOCOL, `pipecat agent: ${r.detail}`);
      return;
    }
    this.#textStreak = 0;
    this.#onFrame(r.frame);
  }

  #onText(data: Buffer): void {
    this.#stats.textMessages++;
    this.#textStreak++;
    let hint = 'a JSON serializer?';
    const head = data.subarray(0, 200).toString('utf8');
    if (/"event"\s*:\s*"(media|clear|mark)"/.test(head)) hint = 'it looks like TwilioFrameSerializer: point Twilio at that server directly, or give this transport ProtobufFrameSerializer()';
    const msg = `pipecat agent: the server sent a text WebSocket message (${data.length} bytes; ${hint}); the bridge needs binary frames from ProtobufFrameSerializer — set serializer=ProtobufFrameSerializer() in the server's transport params (its default is None since pipecat 0.0.68)`;
    if (this.#textStreak >= TEXT_STREAK_FATAL) {
      this.#fatal(new BridgeError(ErrorCodes.AGENT_PROTOCOL, `${msg}; ${this.#textStreak} text messages in a row`));
      return;
    }
    this.#nonFatal(ErrorCodes.AGENT_PROTOCOL, msg);
  }

  #onFrame(f: PipecatFrame): void {
    switch (f.kind) {
      case 'audio':
        this.#onAudio(f.audio, f.sampleRateHz, f.numChannels);
        return;
      case 'text':
        // Not sent by Pipecat's serializer; kept as the last-resort source for custom ones.
        if (f.text.length > 0) this.#addBotText('frames', f.text);
        this.#armGap();
        return;
      case 'transcription':
        if (!this.#rtviUserText && f.text.trim().length > 0) this.emitEvent({ type: 'transcript', role: 'caller', text: f.text.trim().slice(0, MAX_AGENT_TEXT), final: true });
        return;
      case 'interruption':
        this.#onServerInterruption();
        return;
      case 'message':
        this.#onMessageFrame(f.data);
        return;
    }
  }

  #onAudio(bytes: Uint8Array, rateHz: number, channels: number): void {
    if (channels !== 1) {
      // Pipecat's output transports are mono; mixing down a stray stereo frame would hide a misconfiguration.
      this.#nonFatal(ErrorCodes.AGENT_AUDIO_FORMAT, `pipecat agent: AudioRawFrame with ${channels} channels dropped: the bridge takes mono bot audio only`);
      return;
    }
    if (bytes.length === 0) return;
    this.#armGap();
    if (this.#discardSince >= 0) {
      if (Date.now() - this.#discardSince < DISCARD_MAX_MS) {
        this.#stats.agentFramesDiscarded++;
        return;
      }
      this.#discardSince = -1; // the server went on talking: take it as a new response
    }
    const pcm = pcmFromBytes(bytes);
    if (this.#responseId === undefined) {
      this.#responseId = `pipecat-${++this.#responseSeq}`;
      this.#stats.responses++;
      this.#ackUntil = 0; // a new response: a later InterruptionFrame is a real barge-in
    }
    // At the frame's own rate: the call's outbound path resamples whatever rate comes.
    if (pcm.length > 0) this.emitEvent({ type: 'audio', data: pcm, sampleRateHz: rateHz, responseId: this.#responseId });
  }

  #onServerInterruption(): void {
    if (Date.now() < this.#ackUntil && this.#responseId === undefined) {
      // The server acknowledging our interrupt(): the old response is over; nothing to report.
      this.#ackUntil = 0;
      this.#discardSince = -1;
      return;
    }
    this.#stats.interruptionsFromServer++;
    // Pipecat has dropped its queued audio; whatever comes next is a new response.
    this.#endResponse(false);
    this.#discardSince = -1;
    this.emitEvent({ type: 'interruption' });
  }

  #onMessageFrame(data: unknown): void {
    switch (rtviType(data)) {
      case 'bot-stopped-speaking':
        if (this.#discardSince >= 0) this.#discardSince = -1;
        else this.#endResponse(true);
        return;
      case 'user-transcription': {
        const d = rtviData(data);
        this.#rtviUserText = true;
        const text = typeof d['text'] === 'string' ? d['text'].trim() : '';
        if (d['final'] === true && text !== '') this.emitEvent({ type: 'transcript', role: 'caller', text: text.slice(0, MAX_AGENT_TEXT), final: true });
        return;
      }
      case 'bot-output':
        this.#onBotOutput(rtviData(data));
        return;
      case 'bot-tts-text':
      case 'bot-transcription':
      case 'bot-llm-text': {
        const text = rtviData(data)['text'];
        const kind = rtviType(data) === 'bot-tts-text' ? 'tts' : rtviType(data) === 'bot-llm-text' ? 'llm' : 'transcription';
        if (typeof text === 'string' && text !== '') this.#addBotText(kind, text);
        return;
      }
      case 'error': {
        const { error, fatal } = rtviError(data);
        const err = new BridgeError(ErrorCodes.AGENT_SERVICE, `pipecat agent: the server's pipeline reported an error${fatal ? ' (fatal)' : ''}: ${error}`);
        if (fatal) this.#fatal(err);
        else this.#nonFatal(err.code, err.message);
        return;
      }
      default:
        // Other RTVI messages (bot-ready, metrics, bot-started-speaking — which may arrive
        // after the first audio frame, so it cannot mark a start — …) and app messages: not ours.
        return;
    }
  }

  // --- responses -------------------------------------------------------------------

  #armGap(): void {
    if (this.#gapTimer === undefined) this.#gapTimer = setTimeout(this.#onGap, this.#cfg.responseGapMs);
    else this.#gapTimer.refresh();
  }

  readonly #onGap = (): void => {
    this.#gapTimer = undefined;
    if (this.#phase === 'closed') return;
    if (this.#discardSince >= 0) {
      this.#discardSince = -1; // the interrupted response has stopped arriving
      return;
    }
    this.#endResponse(true);
  };

  /** Bot text of the current (or next) response; text of an interrupted response being discarded is dropped. */
  #addBotText(kind: 'tts' | 'transcription' | 'llm' | 'frames', text: string): void {
    if (this.#discardSince >= 0) return;
    const b = this.#botText;
    if (kind === 'llm') b.llm = b.llm.length >= MAX_AGENT_TEXT ? b.llm : (b.llm + text).slice(0, MAX_AGENT_TEXT); // tokens carry their own spaces
    else b[kind] = glue(b[kind], text);
  }

  #onBotOutput(d: Record<string, unknown>): void {
    if (this.#discardSince >= 0) return;
    const text = typeof d['text'] === 'string' ? d['text'] : '';
    const status = typeof d['spoken_status'] === 'string' ? d['spoken_status'] : undefined;
    const progress = d['spoken_progress'] as { accumulated_text?: unknown } | undefined;
    const heard = status === 'in-progress' && typeof progress?.accumulated_text === 'string' ? progress.accumulated_text : text;
    const flag = d['will_be_spoken'] ?? d['spoken'];
    const spoken = flag === true ? true : flag === false ? false : undefined;
    const key = typeof d['segment_id'] === 'number' ? `seg-${d['segment_id']}` : `out-${++this.#outputSeq}`;
    const outputs = this.#botText.outputs;
    if (!outputs.has(key) && outputs.size >= 500) return; // bounded
    outputs.set(key, { text: heard.slice(0, MAX_AGENT_TEXT), spoken, status });
  }

  /** The response's transcript from the best source (file comment); '' if none. */
  #agentTranscript(done: boolean): string {
    const b = this.#botText;
    const join = (parts: string[]) => parts.reduce((acc, t) => (t.trim() === '' ? acc : glue(acc, t.trim())), '');
    // An interrupted response: segments still 'new' never started playing.
    const outs = [...b.outputs.values()].filter((o) => done || o.status !== 'new');
    const spoken = join(outs.filter((o) => o.spoken !== false).map((o) => o.text));
    for (const t of [spoken, b.tts, b.transcription, join(outs.filter((o) => o.spoken === false).map((o) => o.text)), b.llm, b.frames]) {
      if (t.trim() !== '') return t.trim();
    }
    return '';
  }

  /** Ends the current response: done=true → transcript, 'responseDone'; false → dropped (interrupted). */
  #endResponse(done: boolean): void {
    const responseId = this.#responseId;
    this.#responseId = undefined;
    const text = this.#agentTranscript(done);
    this.#botText = emptyBotText();
    if (text !== '') this.emitEvent({ type: 'transcript', role: 'agent', text: done ? text : `${text} [interrupted]`, final: true });
    if (done && responseId !== undefined && this.#phase !== 'closed') this.emitEvent({ type: 'responseDone', responseId });
  }

  // --- socket end, reconnect, errors ---------------------------------------------------

  #onSocketLost(ws: AgentSocket, error: BridgeError, { code, reason }: LostInfo): void {
    if (ws !== this.#ws) return;
    this.#ws = undefined;
    if (this.#phase === 'closed') return;
    // code undefined: we dropped the socket (it stopped answering, or sent an oversized frame).
    const dead = code === undefined;
    if (this.#gapTimer) clearTimeout(this.#gapTimer);
    this.#gapTimer = undefined;
    this.#discardSince = -1;
    this.#endResponse(true); // what arrived of it is all there will be
    if ((this.#phase as Phase) === 'closed') return; // a listener closed us
    if (!dead && BOT_ENDED.has(code)) {
      // The pipeline ended (EndFrame → the transport closes: 1000 FastAPI, 1001 WebSocket server): the bot hung up.
      this.emitEvent({ type: 'end', reason: `pipecat server ended the session${reason ? `: ${reason}` : ''}` });
      void this.close('server-ended');
      return;
    }
    const what = error.message.replace(/^pipecat agent: /, '');
    if (code === 1008) {
      this.#fatal(new BridgeError(ErrorCodes.AGENT_AUTH, `pipecat agent: ${what}: policy violation (authentication?)`));
      return;
    }
    if (this.#cfg.reconnect && !this.#reconnectUsed && (dead || RECONNECTABLE.has(code))) {
      void this.#reconnect(what);
      return;
    }
    this.#fatal(dead ? error : new BridgeError(ErrorCodes.AGENT_CLOSED, `pipecat agent: ${what}; a Pipecat session cannot be resumed`));
  }

  async #reconnect(what: string): Promise<void> {
    this.#reconnectUsed = true;
    this.#phase = 'reconnecting';
    this.#stats.reconnects++;
    let ws: AgentSocket;
    try {
      ws = await this.#open(this.#lifetime.signal);
    } catch (e) {
      if (this.#phase !== 'reconnecting') return;
      this.#fatal(new BridgeError(ErrorCodes.AGENT_CLOSED, `pipecat agent: ${what}; the one reconnect attempt failed: ${(e as Error).message}`, { cause: e }));
      return;
    }
    if (this.#phase !== 'reconnecting') {
      ws.terminate();
      return;
    }
    this.#attach(ws);
    this.#phase = 'open';
    this.#nonFatal(ErrorCodes.AGENT_CLOSED, `pipecat agent: ${what}; reconnected to a NEW Pipecat session (the conversation's context on the server is lost; no further reconnects this call)`);
  }

  /** A non-fatal error: counted; emitted (rate-limited) when someone listens ('error' without a listener throws). */
  #nonFatal(code: ErrorCode, message: string): void {
    this.#stats.errors++;
    const now = Date.now();
    if (now - this.#errorWindowStart >= 1000) {
      this.#errorWindowStart = now;
      this.#errorsInWindow = 0;
    }
    if (++this.#errorsInWindow > ERRORS_PER_SECOND) {
      this.#stats.errorsSuppressed++;
      return;
    }
    this.reportError(new BridgeError(code, message), false);
  }

  #fatal(err: BridgeError): void {
    if (this.#phase === 'closed') return;
    this.reportError(err, true);
    void this.close(`error:${err.code}`);
  }

  // --- close ---------------------------------------------------------------------------

  close(reason: string): Promise<void> {
    if (!this.#closePromise) this.#closePromise = this.#doClose(reason);
    return this.#closePromise;
  }

  async #doClose(reason: string): Promise<void> {
    this.#phase = 'closed';
    this.#lifetime.abort(new Error(`closed: ${reason}`));
    if (this.#gapTimer) clearTimeout(this.#gapTimer);
    this.#gapTimer = undefined;
    const ws = this.#ws;
    this.#ws = undefined;
    await ws?.close(1000, 'bridge closed the call');
    this.emitEvent({ type: 'closed', reason });
  }
}
