/**
 * A call simulator that plays Twilio's side of a bidirectional Media Stream
 * (`<Connect><Stream>`, https://www.twilio.com/docs/voice/media-streams/websocket-messages)
 * against the bridge, on a real WebSocket, so the CLI and end-to-end tests can
 * measure what a caller hears.
 *
 *   simulator (Twilio)                                  bridge
 *   ── upgrade GET [X-Twilio-Signature over wss://…] ──►
 *   ── connected ─────────────────────────────────────►
 *   ── start {streamSid, callSid, customParameters} ──►
 *   ── media ×N, every 20 ms (160 μ-law bytes) ──────►   ◄── media {payload}  → playout buffer
 *   ── dtmf (at scripted times) ──────────────────────►   ◄── mark {name}      → echoed when played
 *   ── mark {name} (echo) ◄─ playout ─────────────────    ◄── clear            → buffer dropped,
 *   ── stop ──────────────────────────────────────────►                          pending marks echoed
 *   ── close 1000
 *
 * Caller side: the caller audio (optionally switched to a second clip at
 * `bargeInAtMs`, then `tailMs` of silence) goes out as 160-byte frames driven
 * by one drift-free timer (`next += 20`, catching up in a burst after a stall,
 * as a network would deliver); frame k (`timestamp` 20k) leaves at 20(k+1), once
 * its audio has been "spoken". DTMF resolution is one frame. `fast: true` sends the caller's main clip as fast
 * as the socket takes it on a virtual clock (20 ms per frame); from the end of
 * that clip (or the barge-in moment, if earlier) the simulator runs in real time,
 * because the agent answers in real time and a barge-in only means something
 * while the agent is speaking.
 *
 * Twilio side of the playout (media, mark and clear semantics), modelled exactly rather than by
 * polling: audio that arrives at time t starts at max(t, end of what is
 * buffered) and plays at 8 samples per ms; a mark is echoed once the audio
 * queued before it has played (at once if nothing is buffered), checked on each
 * 20 ms tick and on every message; `clear` drops everything not yet played and
 * echoes every pending mark immediately. What was played is written into a μ-law
 * timeline (silence 0xFF elsewhere), so tests can check what the caller heard and
 * when. The buffer running dry between two pieces of agent audio less than
 * `maxGapMs` apart (default 500 ms; longer silences are turn boundaries) and not
 * after a `clear` counts as an underrun gap.
 *
 * runSimulatedCall() rejects only for invalid options; every other outcome
 * (refused upgrade, server close, timeout, abort) resolves with a result.
 */
import { randomBytes } from 'node:crypto';
import { STREAM_TOKEN_PARAM, mintStreamToken, streamTokenKey } from '../twilio/stream-token.js';
import WebSocket from 'ws';
import { computeSignature, toWebSocketUrl } from '../twilio/signature.js';

export interface DtmfPress {
  /** 0-9, *, #, A-D */
  digit: string;
  /** Call time at which Twilio sends the `dtmf` event. */
  atMs: number;
}

export interface SimulatedCallOptions {
  /** The bridge's Media Streams URL, e.g. ws://127.0.0.1:8080/twilio/stream. */
  url: string;
  /** Caller audio: G.711 μ-law, 8 kHz mono, no header. */
  audio: Uint8Array;
  /** Sign the upgrade: X-Twilio-Signature = base64(HMAC-SHA1(authToken, signatureUrl)), params {}. */
  authToken?: string;
  /** URL to sign; default: `url` in its wss:// form (what Twilio dials). */
  signatureUrl?: string;
  /** Extra upgrade headers. When signing a ws:// URL, `X-Forwarded-Proto: https` is added by default (Twilio always dials wss through a TLS proxy), unless set here. */
  headers?: Record<string, string>;
  /** start.customParameters (`<Parameter>` children). */
  customParameters?: Record<string, string>;
  callSid?: string;
  streamSid?: string;
  accountSid?: string;
  /** Send the main clip without waiting (see the file comment). Default false. */
  fast?: boolean;
  /** Call time at which the caller starts talking over the agent: the caller audio switches to `bargeInAudio`. */
  bargeInAtMs?: number;
  /** The clip the caller speaks at `bargeInAtMs` (μ-law 8 kHz). Required with bargeInAtMs. */
  bargeInAudio?: Uint8Array;
  dtmf?: readonly DtmfPress[];
  /** Silence sent after the caller audio so the agent can answer, before `stop`. Default 3000 ms. */
  tailMs?: number;
  /** A silence in agent audio up to this long is an underrun; longer ones are turn boundaries. Default 500 ms. */
  maxGapMs?: number;
  /** Bound of the whole call (connect to close). Default: scripted length + 30 s. */
  timeoutMs?: number;
  /** Bound of the WebSocket handshake. Default min(10 s, timeoutMs). */
  connectTimeoutMs?: number;
  signal?: AbortSignal;
}

export type SimulatedCallOutcome =
  /** All caller audio and the tail were sent, then `stop` and a normal close. */
  | 'completed'
  /** The bridge closed the socket first. */
  | 'server-closed'
  /** The upgrade failed (refused connection, non-101 status, handshake timeout). */
  | 'connect-failed'
  | 'timeout'
  | 'aborted'
  /** The socket failed mid-call. */
  | 'error';

export interface MarkRecord {
  name: string;
  receivedAtMs: number;
  /** When the simulator echoed it; null if the call ended first. */
  echoedAtMs: number | null;
  /** Echoed because of a `clear` rather than because its audio played. */
  viaClear: boolean;
}

export interface SimulatedCallResult {
  outcome: SimulatedCallOutcome;
  /** What went wrong, for connect-failed / error / timeout. */
  error?: string;
  /** The upgrade's HTTP status when the bridge refused it (e.g. 403 for a bad signature). */
  httpStatus?: number;
  streamSid: string;
  callSid: string;
  accountSid: string;
  /** Call time (from `start`) when the call ended (stop sent, or the socket closed). */
  durationMs: number;
  /** What the caller heard: μ-law 8 kHz, one byte per sample from call time 0 to durationMs, 0xFF where nothing played. */
  heard: Uint8Array;
  /** Stretches of agent audio in `heard` (contiguous playout). */
  heardSegments: { startMs: number; endMs: number }[];
  /** Call time of the first agent audio; null if none arrived. */
  firstAgentAudioMs: number | null;
  /** From the end of the caller's main clip to the first agent audio after it; null if none. */
  responseLatencyMs: number | null;
  /** Caller media frames sent (160 bytes each). */
  framesSent: number;
  /** Media messages received from the bridge, and their bytes. */
  framesReceived: number;
  bytesReceived: number;
  /** Agent audio still buffered, never played, when the call ended. */
  unplayedBytes: number;
  gaps: { atMs: number; durationMs: number }[];
  marks: MarkRecord[];
  clears: { atMs: number; droppedBytes: number; marksFlushed: number }[];
  /** Barge-in moment and the bridge's `clear` reaction (first clear at or after it). */
  bargeIn: { atMs: number; clearAtMs: number | null; reactionMs: number | null } | null;
  dtmfSent: { digit: string; atMs: number }[];
  /** Messages from the bridge Twilio would reject (bad JSON, wrong streamSid, unknown event, binary frame…). */
  protocolErrors: string[];
  close: { code: number; reason: string; initiatedBy: 'simulator' | 'server' } | null;
}

export const FRAME_MS = 20;
export const FRAME_BYTES = 160;
const SAMPLES_PER_MS = 8;
const ULAW_SILENCE = 0xff;
const CLOSE_WAIT_MS = 2000;
const FAST_MAX_BUFFERED_BYTES = 256 * 1024;
const B64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

const hexSid = (prefix: string) => prefix + randomBytes(16).toString('hex');

/** Runs one simulated call to completion. Rejects only for invalid options. */
export async function runSimulatedCall(options: SimulatedCallOptions): Promise<SimulatedCallResult> {
  validate(options);
  return new CallSimulator(options).run();
}

function validate(o: SimulatedCallOptions): void {
  let u: URL;
  try {
    u = new URL(o.url);
  } catch {
    throw new TypeError(`url must be an absolute ws:// or wss:// URL (got ${JSON.stringify(o.url)})`);
  }
  if (u.protocol !== 'ws:' && u.protocol !== 'wss:') throw new TypeError(`url must be ws:// or wss:// (got ${u.protocol})`);
  if (!(o.audio instanceof Uint8Array)) throw new TypeError('audio must be a Uint8Array of μ-law bytes');
  const nonNeg = (name: string, v: number | undefined) => {
    if (v !== undefined && (!Number.isFinite(v) || v < 0)) throw new TypeError(`${name} must be a non-negative number of ms`);
  };
  nonNeg('tailMs', o.tailMs);
  nonNeg('bargeInAtMs', o.bargeInAtMs);
  nonNeg('maxGapMs', o.maxGapMs);
  if (o.timeoutMs !== undefined && (!Number.isFinite(o.timeoutMs) || o.timeoutMs <= 0)) throw new TypeError('timeoutMs must be a positive number');
  if (o.connectTimeoutMs !== undefined && (!Number.isFinite(o.connectTimeoutMs) || o.connectTimeoutMs <= 0)) throw new TypeError('connectTimeoutMs must be a positive number');
  if (o.bargeInAtMs !== undefined && !(o.bargeInAudio instanceof Uint8Array)) throw new TypeError('bargeInAtMs needs bargeInAudio (the clip the caller speaks over the agent)');
  for (const d of o.dtmf ?? []) {
    if (typeof d.digit !== 'string' || !/^[0-9A-D*#]$/.test(d.digit)) throw new TypeError(`dtmf digit must be one of 0-9 A-D * # (got ${JSON.stringify(d.digit)})`);
    nonNeg('dtmf atMs', d.atMs);
  }
  for (const [k, v] of Object.entries(o.customParameters ?? {})) {
    if (typeof v !== 'string') throw new TypeError(`customParameters.${k} must be a string`);
  }
}

/** The μ-law bytes the caller has heard, grown on demand; bounded by the call's time limit. */
class Timeline {
  #buf = new Uint8Array(0);
  constructor(readonly capacityLimit: number) {}
  #ensure(n: number): void {
    if (n <= this.#buf.length) return;
    const next = new Uint8Array(Math.min(this.capacityLimit, Math.max(n, this.#buf.length * 2, 8000)));
    next.fill(ULAW_SILENCE, this.#buf.length);
    next.set(this.#buf);
    this.#buf = next;
  }
  write(at: number, bytes: Uint8Array): void {
    const end = Math.min(at + bytes.length, this.capacityLimit);
    if (end <= at) return;
    this.#ensure(end);
    this.#buf.set(bytes.subarray(0, end - at), at);
  }
  silence(from: number, to: number): void {
    const end = Math.min(to, this.#buf.length);
    if (end > from) this.#buf.fill(ULAW_SILENCE, from, end);
  }
  take(length: number): Uint8Array {
    const out = new Uint8Array(length).fill(ULAW_SILENCE);
    out.set(this.#buf.subarray(0, Math.min(length, this.#buf.length)));
    return out;
  }
}

type Phase = 'connecting' | 'streaming' | 'stopping' | 'done';

class CallSimulator {
  readonly #o: SimulatedCallOptions;
  readonly #timeoutMs: number;
  readonly #streamSid: string;
  readonly #callSid: string;
  readonly #accountSid: string;
  #ws: WebSocket | undefined;
  #phase: Phase = 'connecting';
  #resolve!: (r: SimulatedCallResult) => void;
  #timers = new Set<NodeJS.Timeout>();
  #wake: (() => void) | undefined;
  #onAbort: (() => void) | undefined;

  // caller script, in samples (= μ-law bytes) of call time
  readonly #bargeAtS: number | undefined;
  readonly #mainEndS: number;
  readonly #callEndS: number;
  readonly #totalFrames: number;
  readonly #fastFrames: number;
  readonly #dtmf: DtmfPress[];
  #dtmfNext = 0;

  // clock: virtual during the fast phase, real after it
  #fastPhase = false;
  #virtualMs = 0;
  #realBaseCallMs = 0;
  #realBasePerf = 0;

  #seq = 0;
  #chunk = 0;

  // Twilio's playout buffer (samples of call time)
  #scheduledEndS = 0;
  #hadAudio = false;
  #afterClear = false;
  #pendingMarks: { endS: number; rec: MarkRecord }[] = [];
  readonly #timeline: Timeline;
  readonly #segments: { start: number; end: number }[] = [];
  readonly #maxGapS: number;

  #endMs: number | undefined;
  readonly #r: Omit<SimulatedCallResult, 'heard' | 'heardSegments' | 'durationMs' | 'unplayedBytes'>;

  /**
   * The `<Parameter>`s Twilio returns in `start`. Twilio would have them from the voice
   * webhook's TwiML, stream token included; a simulated call that skips the webhook but
   * signs (authToken) mints the token the webhook would have issued.
   */
  #startParameters(): Record<string, string> {
    const p = { ...this.#o.customParameters };
    if (this.#o.authToken && p[STREAM_TOKEN_PARAM] === undefined) p[STREAM_TOKEN_PARAM] = mintStreamToken(streamTokenKey(this.#o.authToken), this.#callSid);
    return p;
  }

  constructor(o: SimulatedCallOptions) {
    this.#o = o;
    this.#streamSid = o.streamSid ?? hexSid('MZ');
    this.#callSid = o.callSid ?? hexSid('CA');
    this.#accountSid = o.accountSid ?? hexSid('AC');
    const tailS = Math.round((o.tailMs ?? 3000) * SAMPLES_PER_MS);
    this.#bargeAtS = o.bargeInAtMs === undefined ? undefined : Math.round(o.bargeInAtMs * SAMPLES_PER_MS);
    this.#mainEndS = this.#bargeAtS === undefined ? o.audio.length : Math.min(o.audio.length, this.#bargeAtS);
    const speechEndS = this.#bargeAtS === undefined ? o.audio.length : this.#bargeAtS + o.bargeInAudio!.length;
    this.#dtmf = [...(o.dtmf ?? [])].sort((a, b) => a.atMs - b.atMs);
    const lastDtmfS = this.#dtmf.length ? Math.round(this.#dtmf[this.#dtmf.length - 1]!.atMs * SAMPLES_PER_MS) + 1 : 0;
    this.#callEndS = Math.max(speechEndS, lastDtmfS) + tailS;
    this.#totalFrames = Math.ceil(this.#callEndS / FRAME_BYTES);
    this.#fastFrames = o.fast ? Math.ceil(this.#mainEndS / FRAME_BYTES) : 0;
    this.#maxGapS = (o.maxGapMs ?? 500) * SAMPLES_PER_MS;
    const timeoutMs = o.timeoutMs ?? this.#totalFrames * FRAME_MS + 30_000;
    this.#timeline = new Timeline(Math.ceil((timeoutMs + 1000) * SAMPLES_PER_MS));
    this.#r = {
      outcome: 'completed',
      streamSid: this.#streamSid,
      callSid: this.#callSid,
      accountSid: this.#accountSid,
      firstAgentAudioMs: null,
      responseLatencyMs: null,
      framesSent: 0,
      framesReceived: 0,
      bytesReceived: 0,
      gaps: [],
      marks: [],
      clears: [],
      bargeIn: o.bargeInAtMs === undefined ? null : { atMs: o.bargeInAtMs, clearAtMs: null, reactionMs: null },
      dtmfSent: [],
      protocolErrors: [],
      close: null,
    };
    this.#timeoutMs = timeoutMs;
  }

  run(): Promise<SimulatedCallResult> {
    return new Promise<SimulatedCallResult>((resolve) => {
      this.#resolve = resolve;
      const signal = this.#o.signal;
      if (signal?.aborted) return this.#finish('aborted', 'aborted before start');
      if (signal) {
        this.#onAbort = () => this.#finish('aborted', 'aborted');
        signal.addEventListener('abort', this.#onAbort, { once: true });
      }
      this.#timer(this.#timeoutMs, () => this.#finish('timeout', `call did not end within ${this.#timeoutMs} ms`));
      this.#connect();
    });
  }

  // ── clock ────────────────────────────────────────────────────────────────

  #nowMs(): number {
    if (this.#phase === 'connecting') return 0;
    return this.#fastPhase ? this.#virtualMs : this.#realBaseCallMs + (performance.now() - this.#realBasePerf);
  }
  #nowS(): number {
    return Math.round(this.#nowMs() * SAMPLES_PER_MS);
  }

  #timer(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.#timers.delete(t);
      fn();
    }, ms);
    this.#timers.add(t);
  }

  /** Waits until call time `tMs` (real phase) or yields once (fast phase); returns early when the call ends. */
  async #waitUntil(tMs: number, fast: boolean): Promise<void> {
    if (fast) {
      // Yield to the event loop so the bridge's messages are handled between frames; hold back when the socket is full.
      await new Promise<void>((r) => setImmediate(r));
      while (this.#phase === 'streaming' && (this.#ws?.bufferedAmount ?? 0) > FAST_MAX_BUFFERED_BYTES) {
        await new Promise<void>((r) => setTimeout(r, 2)); // bounded by the call timeout via #phase
      }
      this.#virtualMs = tMs;
      return;
    }
    const due = this.#realBasePerf + (tMs - this.#realBaseCallMs);
    // Timers may fire up to ~1 ms early against performance.now() (libuv's clock is coarser): sleep again for the rest.
    for (let delay = due - performance.now(); delay > 0 && this.#phase === 'streaming'; delay = due - performance.now()) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          this.#timers.delete(t);
          this.#wake = undefined;
          resolve();
        }, Math.ceil(delay));
        this.#timers.add(t);
        this.#wake = () => {
          clearTimeout(t);
          this.#timers.delete(t);
          resolve();
        };
      });
    }
    // behind schedule (a stalled event loop): no wait, the caller catches up in a burst
  }

  // ── connection ───────────────────────────────────────────────────────────

  #connect(): void {
    const o = this.#o;
    const headers: Record<string, string> = {};
    if (o.authToken !== undefined) {
      const signed = o.signatureUrl ?? toWebSocketUrl(o.url).replace(/^ws:/i, 'wss:');
      headers['X-Twilio-Signature'] = computeSignature(o.authToken, signed, {});
      if (/^ws:/i.test(o.url)) headers['X-Forwarded-Proto'] = 'https';
    }
    Object.assign(headers, o.headers);
    let ws: WebSocket;
    try {
      ws = new WebSocket(o.url, {
        headers,
        perMessageDeflate: false,
        handshakeTimeout: Math.min(o.connectTimeoutMs ?? 10_000, this.#timeoutMs),
        maxPayload: 16 * 1024 * 1024,
      });
    } catch (e) {
      this.#finish('connect-failed', e instanceof Error ? e.message : String(e));
      return;
    }
    this.#ws = ws;
    ws.on('unexpected-response', (req, res) => {
      this.#r.httpStatus = res.statusCode;
      // The bridge says why in a problem body (RFC 9457: `code`, `detail`); read a bounded
      // head of it, for at most REFUSAL_BODY_WAIT_MS, and name the reason with the status.
      const chunks: Buffer[] = [];
      let bytes = 0;
      const done = () => {
        clearTimeout(t);
        req.destroy();
        res.destroy();
        this.#finish('connect-failed', `upgrade refused: HTTP ${String(res.statusCode)}${refusalReason(Buffer.concat(chunks).toString('utf8'))}`);
      };
      const t = setTimeout(done, REFUSAL_BODY_WAIT_MS);
      res.on('data', (c: Buffer) => {
        if (bytes < REFUSAL_BODY_MAX_BYTES) chunks.push(c);
        bytes += c.length;
        if (bytes >= REFUSAL_BODY_MAX_BYTES) done();
      });
      res.once('end', done);
      res.once('error', done);
    });
    ws.on('error', (err) => {
      if (this.#phase === 'connecting') this.#finish('connect-failed', err.message);
      else if (this.#phase === 'streaming') this.#finish('error', err.message);
      // while stopping or done: the close (or the close-wait bound) ends the call
    });
    ws.on('open', () => {
      if (this.#phase !== 'connecting') return;
      this.#phase = 'streaming';
      this.#stream().catch((e: unknown) => this.#finish('error', e instanceof Error ? e.message : String(e)));
    });
    ws.on('message', (data, isBinary) => this.#onMessage(data, isBinary));
    ws.on('close', (code, reason) => {
      const initiatedBy = this.#phase === 'stopping' ? 'simulator' : 'server';
      this.#r.close ??= { code, reason: reason.toString('utf8'), initiatedBy };
      if (this.#phase === 'streaming') this.#finish('server-closed');
      else if (this.#phase === 'stopping') this.#finish('completed');
    });
  }

  /** Sends when the socket is open; returns whether it did (a closing socket drops messages). */
  #send(obj: unknown): boolean {
    const ws = this.#ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(obj));
    return true;
  }

  // ── caller side ──────────────────────────────────────────────────────────

  async #stream(): Promise<void> {
    this.#fastPhase = this.#fastFrames > 0;
    this.#realBasePerf = performance.now();
    this.#send({ event: 'connected', protocol: 'Call', version: '1.0.0' });
    this.#send({
      event: 'start',
      sequenceNumber: String(++this.#seq),
      start: {
        accountSid: this.#accountSid,
        streamSid: this.#streamSid,
        callSid: this.#callSid,
        tracks: ['inbound'],
        customParameters: this.#startParameters(),
        mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
      },
      streamSid: this.#streamSid,
    });
    // Frame k carries the caller audio of [20k, 20k + 20) ms, so it can leave no earlier than 20(k + 1):
    // a packetizer cannot send speech before it is spoken (this also keeps barge-in reaction times honest).
    const frame = new Uint8Array(FRAME_BYTES);
    for (let k = 0; k < this.#totalFrames; k++) {
      const tMs = (k + 1) * FRAME_MS;
      const fast = k < this.#fastFrames;
      if (!fast && this.#fastPhase) {
        // leave the virtual clock: real time continues from here
        this.#fastPhase = false;
        this.#realBaseCallMs = k * FRAME_MS;
        this.#realBasePerf = performance.now();
      }
      await this.#waitUntil(tMs, fast);
      if (this.#phase !== 'streaming') return;
      this.#playoutTick();
      this.#fillCallerFrame(k * FRAME_BYTES, frame);
      const sent = this.#send({
        event: 'media',
        sequenceNumber: String(++this.#seq),
        media: { track: 'inbound', chunk: String(++this.#chunk), timestamp: String(k * FRAME_MS), payload: Buffer.from(frame).toString('base64') },
        streamSid: this.#streamSid,
      });
      if (sent) this.#r.framesSent++;
      this.#sendDueDtmf(tMs); // a key pressed at t goes after the frame that ends at t
    }
    // Hang up: Twilio sends stop, then closes.
    this.#playoutTick();
    this.#endMs = this.#nowMs();
    this.#send({ event: 'stop', sequenceNumber: String(++this.#seq), stop: { accountSid: this.#accountSid, callSid: this.#callSid }, streamSid: this.#streamSid });
    this.#phase = 'stopping';
    this.#ws?.close(1000, 'call ended');
    this.#timer(CLOSE_WAIT_MS, () => {
      this.#ws?.terminate();
      this.#finish('completed');
    });
  }

  /** Caller audio for samples [at, at + 160): main clip, barge-in clip from bargeAt, silence elsewhere. */
  #fillCallerFrame(at: number, out: Uint8Array): void {
    const main = this.#o.audio;
    const barge = this.#o.bargeInAudio;
    const bargeAt = this.#bargeAtS;
    for (let i = 0; i < FRAME_BYTES; i++) {
      const s = at + i;
      let v = ULAW_SILENCE;
      if (bargeAt !== undefined && s >= bargeAt) {
        const j = s - bargeAt;
        if (j < barge!.length) v = barge![j]!;
      } else if (s < main.length) v = main[s]!;
      out[i] = v;
    }
  }

  #sendDueDtmf(tMs: number): void {
    while (this.#dtmfNext < this.#dtmf.length && this.#dtmf[this.#dtmfNext]!.atMs <= tMs) {
      const { digit } = this.#dtmf[this.#dtmfNext++]!;
      if (this.#send({ event: 'dtmf', streamSid: this.#streamSid, sequenceNumber: String(++this.#seq), dtmf: { track: 'inbound_track', digit } })) {
        this.#r.dtmfSent.push({ digit, atMs: this.#nowMs() });
      }
    }
  }

  // ── Twilio's playout of the bridge's audio ───────────────────────────────

  #playoutTick(): void {
    const nowS = this.#nowS();
    while (this.#pendingMarks.length > 0 && this.#pendingMarks[0]!.endS <= nowS) {
      this.#echoMark(this.#pendingMarks.shift()!.rec, false);
    }
  }

  #echoMark(rec: MarkRecord, viaClear: boolean, atMs = this.#nowMs()): void {
    if (!this.#send({ event: 'mark', sequenceNumber: String(++this.#seq), streamSid: this.#streamSid, mark: { name: rec.name } })) return;
    rec.echoedAtMs = atMs;
    rec.viaClear = viaClear;
  }

  #onMessage(data: WebSocket.RawData, isBinary: boolean): void {
    if (this.#phase !== 'streaming') return; // after stop Twilio no longer plays anything
    const err = (m: string) => {
      if (this.#r.protocolErrors.length < 100) this.#r.protocolErrors.push(m);
    };
    if (isBinary) return err('binary frame (Twilio accepts JSON text frames only)');
    const text = Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.from(data).toString('utf8');
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch {
      return err(`not JSON: ${text.slice(0, 60)}`);
    }
    if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) return err('not a JSON object');
    const m = msg as Record<string, unknown>;
    if (m.streamSid !== this.#streamSid) return err(`${String(m.event)}: streamSid ${JSON.stringify(m.streamSid)} is not this stream's`);
    this.#playoutTick();
    switch (m.event) {
      case 'media': {
        const payload = (m.media as Record<string, unknown> | undefined)?.payload;
        if (typeof payload !== 'string' || payload.length % 4 !== 0 || !B64_RE.test(payload)) return err('media.payload is not base64');
        const bytes = Buffer.from(payload, 'base64');
        this.#onAgentAudio(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
        return;
      }
      case 'mark': {
        const name = (m.mark as Record<string, unknown> | undefined)?.name;
        if (typeof name !== 'string' || name === '') return err('mark without mark.name');
        const nowMs = this.#nowMs();
        const rec: MarkRecord = { name, receivedAtMs: nowMs, echoedAtMs: null, viaClear: false };
        this.#r.marks.push(rec);
        // "when the audio ends (or if there is no audio buffered)" (Twilio's mark docs)
        if (this.#scheduledEndS <= Math.round(nowMs * SAMPLES_PER_MS)) this.#echoMark(rec, false, nowMs);
        else this.#pendingMarks.push({ endS: this.#scheduledEndS, rec });
        return;
      }
      case 'clear':
        this.#onClear();
        return;
      default:
        return err(`unknown event ${JSON.stringify(m.event)}`);
    }
  }

  #onAgentAudio(bytes: Uint8Array): void {
    const nowMs = this.#nowMs();
    const nowS = this.#nowS();
    this.#r.framesReceived++;
    this.#r.bytesReceived += bytes.length;
    if (bytes.length === 0) return;
    let start = this.#scheduledEndS;
    if (start < nowS) {
      // The buffer ran dry before this audio came: an underrun if it continues the same stretch of speech.
      const gapS = nowS - start;
      if (this.#hadAudio && !this.#afterClear && gapS <= this.#maxGapS) {
        this.#r.gaps.push({ atMs: start / SAMPLES_PER_MS, durationMs: gapS / SAMPLES_PER_MS });
      }
      start = nowS;
    }
    this.#timeline.write(start, bytes);
    const end = start + bytes.length;
    const last = this.#segments[this.#segments.length - 1];
    if (last && last.end === start) last.end = end;
    else this.#segments.push({ start, end });
    this.#scheduledEndS = end;
    this.#hadAudio = true;
    this.#afterClear = false;
    this.#r.firstAgentAudioMs ??= nowMs;
    const mainEndMs = this.#mainEndS / SAMPLES_PER_MS;
    if (this.#r.responseLatencyMs === null && nowMs >= mainEndMs) this.#r.responseLatencyMs = nowMs - mainEndMs;
  }

  #onClear(): void {
    const nowMs = this.#nowMs();
    const nowS = this.#nowS();
    const dropped = Math.max(0, this.#scheduledEndS - nowS);
    if (dropped > 0) {
      this.#timeline.silence(nowS, this.#scheduledEndS);
      this.#truncateSegments(nowS);
      this.#scheduledEndS = nowS;
    }
    // "empties all buffered audio and causes any mark messages to be sent back" (Twilio's clear docs)
    const flushed = this.#pendingMarks.splice(0);
    for (const p of flushed) this.#echoMark(p.rec, true, nowMs);
    this.#afterClear = true;
    this.#r.clears.push({ atMs: nowMs, droppedBytes: dropped, marksFlushed: flushed.length });
    const b = this.#r.bargeIn;
    if (b && b.clearAtMs === null && nowMs >= b.atMs) {
      b.clearAtMs = nowMs;
      b.reactionMs = nowMs - b.atMs;
    }
  }

  #truncateSegments(atS: number): void {
    while (this.#segments.length > 0) {
      const last = this.#segments[this.#segments.length - 1]!;
      if (last.start >= atS) this.#segments.pop();
      else {
        last.end = Math.min(last.end, atS);
        break;
      }
    }
  }

  // ── the one exit ─────────────────────────────────────────────────────────

  #finish(outcome: SimulatedCallOutcome, error?: string): void {
    if (this.#phase === 'done') return;
    const wasStreaming = this.#phase === 'streaming' || this.#phase === 'stopping';
    this.#endMs ??= wasStreaming ? this.#nowMs() : 0;
    this.#phase = 'done';
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    this.#wake?.();
    if (this.#onAbort) this.#o.signal?.removeEventListener('abort', this.#onAbort);
    const ws = this.#ws;
    if (ws && ws.readyState !== WebSocket.CLOSED) {
      if (ws.readyState === WebSocket.OPEN && outcome !== 'error') {
        ws.close(1000, outcome);
        this.#r.close ??= { code: 1000, reason: outcome, initiatedBy: 'simulator' };
      }
      // Bounded: whatever state the socket is in, it is gone shortly after.
      const t = setTimeout(() => ws.terminate(), CLOSE_WAIT_MS);
      t.unref();
      ws.once('close', () => clearTimeout(t));
      if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
    }
    const endS = Math.round(this.#endMs * SAMPLES_PER_MS);
    this.#truncateSegments(endS);
    const heard = this.#timeline.take(endS);
    const result: SimulatedCallResult = {
      ...this.#r,
      outcome,
      durationMs: this.#endMs,
      heard,
      heardSegments: this.#segments.map((s) => ({ startMs: s.start / SAMPLES_PER_MS, endMs: s.end / SAMPLES_PER_MS })),
      unplayedBytes: Math.max(0, this.#scheduledEndS - endS),
    };
    if (error !== undefined) result.error = error;
    this.#resolve(result);
  }
}

const REFUSAL_BODY_WAIT_MS = 1000;
const REFUSAL_BODY_MAX_BYTES = 4096;

/** " BRIDGE_ERR_X: detail" from a problem-details body (src/errors.ts), else "". */
function refusalReason(body: string): string {
  try {
    const p = JSON.parse(body) as { code?: unknown; detail?: unknown };
    const code = typeof p.code === 'string' ? p.code.slice(0, 64) : undefined;
    const detail = typeof p.detail === 'string' ? p.detail.slice(0, 300) : undefined;
    return code || detail ? ` ${[code, detail].filter(Boolean).join(': ')}` : '';
  } catch {
    return '';
  }
}
