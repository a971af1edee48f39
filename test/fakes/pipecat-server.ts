/**
 * A fake Pipecat server: a real WebSocket server on 127.0.0.1:0 whose transport uses
 * the protobuf frame serializer (pipecat `serializers/protobuf.py`), as a pipecat
 * SingleClientWebsocketServerTransport / FastAPIWebsocketTransport with
 * `serializer=ProtobufFrameSerializer()` and the RTVIProcessor a PipelineTask adds would.
 *
 * The schema is written here independently of the adapter's: this file parses the
 * exact `frames.proto` text (pipecat `src/pipecat/frames/frames.proto`) with
 * protobufjs's .proto parser (the adapter builds its schema from JSON and hand-encodes
 * its audio), so an encoding bug on one side cannot hide behind a shared definition.
 *
 * What it models:
 * - every message binary, one `Frame` each; bot audio as AudioRawFrames of 20 ms
 *   (`id`/`name` set the way Pipecat fills them), at `outputRateHz`, mono unless told;
 * - a response = RTVI `bot-started-speaking`, `bot-llm-text` tokens (the LLM runs ahead of
 *   the audio), audio, with its first frame `bot-output` {text, spoken: true,
 *   aggregated_by: 'sentence'} and one `bot-tts-text` per word, then `bot-stopped-speaking`
 *   — the RTVI messages only with `rtvi: true`, the default (without an RTVIProcessor
 *   Pipecat sends none, and the adapter must use the gap rule). Like the real serializer,
 *   it never sends TextFrame or TranscriptionFrame: words travel only as RTVI messages;
 * - caller audio: AudioRawFrames checked for sample_rate / num_channels / whole samples,
 *   counted in ms;
 * - client InterruptionFrame: stops the current response and (echoInterruption, the
 *   default — our assumption of how Pipecat propagates it) answers with an InterruptionFrame;
 *   the RTVI client message `t: 'interruption'` before it carries heardMs;
 * - DTMF as RTVI's native `dtmf` message {buttons: ["5"]} (RTVI 2.1.0+); RTVI `client-ready`
 *   is answered with `bot-ready`;
 * - the upgrade: with `allowedOrigins`, an Origin header not in the list (or none) gets
 *   HTTP 403, as a transport with PIPECAT_ALLOWED_ORIGINS answers; with `requireToken`,
 *   an Authorization other than `Bearer <token>` gets HTTP 401 (a proxy's check);
 * - faults: refuse-next (HTTP 503 on the next upgrade), garbage, stop-answering (no
 *   pongs, no frames), close-mid-call (socket dropped, 1006 at the client), and
 *   endSession() / botEndsCall() (the pipeline ends: a goodbye, then close 1001 as the
 *   WebSocket server transport does, or 1000 as the FastAPI one does);
 * - autoAnswer: a tiny energy-VAD bot for end-to-end calls — replies after the caller
 *   pauses (real-time paced, like Pipecat's output transport), sends RTVI
 *   `user-transcription` (an interim, then the final), and interrupts itself
 *   (InterruptionFrame) when the caller talks over it.
 */
import type { IncomingMessage } from 'node:http';
import { randomBytes } from 'node:crypto';
import protobuf from 'protobufjs';
import { WebSocket } from 'ws';
import { FakeServer, closeMidCall, setReading, type Refusal } from './fake-server.js';
import type { FakeService } from '../agents/agent-contract.js';

/** frames.proto, verbatim from https://github.com/pipecat-ai/pipecat (`src/pipecat/frames/frames.proto`). */
const FRAMES_PROTO = `
syntax = "proto3";
package pipecat;
message TextFrame          { uint64 id = 1; string name = 2; string text = 3; }
message AudioRawFrame      { uint64 id = 1; string name = 2; bytes audio = 3;
                             uint32 sample_rate = 4; uint32 num_channels = 5; optional uint64 pts = 6; }
message TranscriptionFrame { uint64 id = 1; string name = 2; string text = 3;
                             string user_id = 4; string timestamp = 5; }
message MessageFrame       { string data = 1; }
message InterruptionFrame  { uint64 id = 1; string name = 2; }
message Frame { oneof frame { TextFrame text = 1; AudioRawFrame audio = 2;
                TranscriptionFrame transcription = 3; MessageFrame message = 4;
                InterruptionFrame interruption = 5; } }
`;

const Frame = protobuf.parse(FRAMES_PROTO, { keepCase: true }).root.lookupType('pipecat.Frame');

export interface FakePipecatOptions {
  /** Rate the fake expects caller audio at (AudioRawFrame.sample_rate). Default 16000. */
  sampleRateHz?: number;
  /** Rate of the bot's audio. Default: sampleRateHz. */
  outputRateHz?: number;
  /** Channels of the bot's audio. Default 1. */
  outputChannels?: number;
  /** Send RTVI bot-started/stopped-speaking around each response. Default true. */
  rtvi?: boolean;
  /** Answer a client InterruptionFrame with one of its own. Default true. */
  echoInterruption?: boolean;
  /** Pace speak() in real time (a 20 ms frame every 20 ms). Default false (burst). */
  realtime?: boolean;
  /** A VAD-driven bot for end-to-end calls. */
  autoAnswer?: { replyMs: number; silenceMs?: number; thresholdDbfs?: number };
  /** Origins the transport accepts (PIPECAT_ALLOWED_ORIGINS); others, and none, get HTTP 403. */
  allowedOrigins?: string[];
  /** Upgrades without `Authorization: Bearer <token>` get HTTP 401. */
  requireToken?: string;
}

interface Received {
  audioMs: number;
  interruptions: { heardMs?: number }[];
  dtmf: string[];
  closed: boolean;
  /** Caller AudioRawFrames with a wrong rate, channel count or length. */
  audioFormatErrors: string[];
  /** Every MessageFrame's parsed JSON. */
  messages: unknown[];
  /** Undecodable or text messages from the client. */
  badMessages: number;
  /** Upgrade requests' Authorization headers. */
  authHeaders: (string | undefined)[];
  /** Upgrade requests' Origin headers. */
  origins: (string | undefined)[];
  /** Upgrades refused by the origin or token check. */
  refusedUpgrades: number;
  connections: number;
}

interface Conn {
  ws: WebSocket;
  stopped: boolean;
  /** Increments to stop a response being sent. */
  speakEpoch: number;
  pendingHeardMs: number | undefined;
}

let frameIds = 1000;

export class FakePipecatServer implements FakeService {
  readonly env: Record<string, string>;
  readonly url: string;
  readonly #o: Required<Omit<FakePipecatOptions, 'autoAnswer' | 'allowedOrigins' | 'requireToken'>> & Pick<FakePipecatOptions, 'autoAnswer' | 'allowedOrigins' | 'requireToken'>;
  /** The HTTP side, with its upgrade faults. */
  readonly server: FakeServer;
  #conn: Conn | undefined;
  #rx: Received = { audioMs: 0, interruptions: [], dtmf: [], closed: false, audioFormatErrors: [], messages: [], badMessages: 0, authHeaders: [], origins: [], refusedUpgrades: 0, connections: 0 };
  #connWaiters: (() => void)[] = [];
  // autoAnswer state
  #vadBlock: Int16Array = new Int16Array(0);
  #vadLen = 0;
  #voicedRun = 0;
  #silentMs = 0;
  #inSpeech = false;
  #playingUntil = 0;
  #utterances = 0;

  private constructor(server: FakeServer, options: FakePipecatOptions) {
    const rate = options.sampleRateHz ?? 16_000;
    this.#o = {
      sampleRateHz: rate,
      outputRateHz: options.outputRateHz ?? rate,
      outputChannels: options.outputChannels ?? 1,
      rtvi: options.rtvi ?? true,
      echoInterruption: options.echoInterruption ?? true,
      realtime: options.realtime ?? false,
      autoAnswer: options.autoAnswer,
      allowedOrigins: options.allowedOrigins,
      requireToken: options.requireToken,
    };
    this.server = server;
    this.url = server.url('/ws');
    // The production keepalive (5 s): a 300 ms one made a test process that stalled that long redial.
    // Dead-peer tests ask for a short one.
    this.env = { PIPECAT_URL: this.url, PIPECAT_SAMPLE_RATE: String(rate) };
    this.#vadBlock = new Int16Array(rate / 50);
  }

  /** The bot's own checks: an allowed Origin (PIPECAT_ALLOWED_ORIGINS) and the token. */
  #upgrade(req: IncomingMessage): Refusal | undefined {
    this.#rx.authHeaders.push(req.headers.authorization);
    this.#rx.origins.push(req.headers.origin);
    const allowed = this.#o.allowedOrigins;
    const badOrigin = allowed !== undefined && (req.headers.origin === undefined || !allowed.includes(req.headers.origin));
    const badToken = this.#o.requireToken !== undefined && req.headers.authorization !== `Bearer ${this.#o.requireToken}`;
    if (!badOrigin && !badToken) return undefined;
    this.#rx.refusedUpgrades++;
    return { status: badOrigin ? 403 : 401 };
  }

  static async start(options: FakePipecatOptions = {}): Promise<FakePipecatServer> {
    let fake: FakePipecatServer | undefined;
    const server = await FakeServer.start({
      // autoPong off: pongs are ours to withhold (stop-answering).
      wss: { autoPong: false, perMessageDeflate: false },
      http: (_req, res) => res.writeHead(426).end(),
      upgrade: (req) => fake!.#upgrade(req),
      connection: (ws) => fake!.#onConnection(ws),
    });
    fake = new FakePipecatServer(server, options);
    return fake;
  }

  // --- connection ------------------------------------------------------------------

  #onConnection(ws: WebSocket): void {
    // Like pipecat's single-client WebsocketServerTransport the newest client wins; tests use one at a time.
    const conn: Conn = { ws, stopped: false, speakEpoch: 0, pendingHeardMs: undefined };
    this.#conn = conn;
    this.#rx.connections++;
    this.#rx.closed = false;
    ws.on('ping', (data) => {
      if (!conn.stopped) ws.pong(data);
    });
    ws.on('message', (data, isBinary) => {
      if (conn.stopped) return;
      if (!isBinary) {
        this.#rx.badMessages++;
        return;
      }
      this.#onClientFrame(conn, data as Buffer);
    });
    ws.on('close', () => {
      conn.speakEpoch++;
      // Closed by the client (the adapter), unless we dropped it ourselves.
      if (!conn.stopped && this.#conn === conn) this.#rx.closed = true;
    });
    ws.on('error', () => undefined);
    const w = this.#connWaiters;
    this.#connWaiters = [];
    for (const r of w) r();
  }

  /** Resolves once a client is connected (the current or a later connection). */
  async connected(minConnections = 1, timeoutMs = 5000): Promise<void> {
    const t0 = Date.now();
    while (!(this.#rx.connections >= minConnections && this.#conn?.ws.readyState === WebSocket.OPEN)) {
      if (Date.now() - t0 > timeoutMs) throw new Error('fake pipecat: no client connected');
      await new Promise<void>((r) => {
        this.#connWaiters.push(r);
        setTimeout(r, 50);
      });
    }
  }

  #current(): Conn {
    const c = this.#conn;
    if (!c || c.ws.readyState !== WebSocket.OPEN) throw new Error('fake pipecat: no connected client');
    return c;
  }

  #onClientFrame(conn: Conn, data: Buffer): void {
    let f: any;
    try {
      f = Frame.toObject(Frame.decode(data), { oneofs: true, longs: Number, defaults: false });
    } catch {
      this.#rx.badMessages++;
      return;
    }
    switch (f.frame) {
      case 'audio': {
        const a = f.audio as { audio?: Uint8Array; sample_rate?: number; num_channels?: number };
        const bytes = a.audio ?? new Uint8Array(0);
        if (a.sample_rate !== this.#o.sampleRateHz) this.#rx.audioFormatErrors.push(`sample_rate ${a.sample_rate}, expected ${this.#o.sampleRateHz}`);
        else if (a.num_channels !== 1) this.#rx.audioFormatErrors.push(`num_channels ${a.num_channels}`);
        else if (bytes.length % 2 !== 0) this.#rx.audioFormatErrors.push(`odd length ${bytes.length}`);
        else {
          this.#rx.audioMs += (bytes.length / 2 / this.#o.sampleRateHz) * 1000;
          if (this.#o.autoAnswer) this.#vad(conn, bytes);
        }
        return;
      }
      case 'interruption':
        this.#rx.interruptions.push(conn.pendingHeardMs === undefined ? {} : { heardMs: conn.pendingHeardMs });
        conn.pendingHeardMs = undefined;
        conn.speakEpoch++;
        this.#playingUntil = 0;
        if (this.#o.echoInterruption) this.#send(conn, { interruption: { id: frameIds++, name: 'InterruptionFrame#0' } });
        return;
      case 'message': {
        let m: any;
        try {
          m = JSON.parse(f.message.data ?? '');
        } catch {
          this.#rx.badMessages++;
          return;
        }
        this.#rx.messages.push(m);
        if (m?.label !== 'rtvi-ai') return;
        if (m.type === 'client-ready') this.#send(conn, { message: { data: JSON.stringify({ label: 'rtvi-ai', type: 'bot-ready', id: m.id, data: { version: '2.2.0', about: { library: 'fake-pipecat' } } }) } });
        // RTVI's native key press (2.1.0+): only keys of the phone keypad.
        if (m.type === 'dtmf' && Array.isArray(m.data?.buttons)) {
          for (const b of m.data.buttons) if (typeof b === 'string' && /^[0-9*#]$/.test(b)) this.#rx.dtmf.push(b);
        }
        if (m.type === 'client-message' && m.data?.t === 'interruption' && typeof m.data.d?.heardMs === 'number') conn.pendingHeardMs = m.data.d.heardMs;
        return;
      }
      case 'text':
      case 'transcription':
        return;
      default:
        this.#rx.badMessages++;
    }
  }

  #send(conn: Conn, frame: Record<string, unknown>): void {
    if (conn.stopped || conn.ws.readyState !== WebSocket.OPEN) return;
    conn.ws.send(Frame.encode(Frame.fromObject(frame)).finish());
  }

  #rtvi(conn: Conn, type: string, data?: Record<string, unknown>): void {
    if (this.#o.rtvi) this.#send(conn, { message: { data: JSON.stringify({ label: 'rtvi-ai', type, ...(data !== undefined ? { data } : {}) }) } });
  }

  // --- FakeService -------------------------------------------------------------------

  async speak(ms: number, text = 'Hello from the fake Pipecat bot.'): Promise<void> {
    const conn = this.#current();
    const epoch = ++conn.speakEpoch;
    const rate = this.#o.outputRateHz;
    const ch = this.#o.outputChannels;
    const samples = rate / 50;
    const frames = Math.ceil(ms / 20);
    this.#rtvi(conn, 'bot-started-speaking');
    // The LLM's tokens run ahead of the audio (they carry their own spaces).
    for (const token of text.match(/\S+\s*/g) ?? []) this.#rtvi(conn, 'bot-llm-text', { text: token });
    const t0 = Date.now();
    this.#playingUntil = t0 + ms + 300;
    for (let k = 0; k < frames; k++) {
      if (conn.speakEpoch !== epoch) return; // interrupted
      const pcm = new Int16Array(samples * ch);
      for (let i = 0; i < samples; i++) {
        const v = Math.round(8000 * Math.sin((2 * Math.PI * 300 * (k * samples + i)) / rate));
        for (let c = 0; c < ch; c++) pcm[i * ch + c] = v;
      }
      this.#send(conn, { audio: { id: frameIds++, name: `TTSAudioRawFrame#${k}`, audio: new Uint8Array(pcm.buffer), sample_rate: rate, num_channels: ch } });
      if (k === 0) {
        // What is being spoken, as the RTVIObserver reports it with the audio.
        this.#rtvi(conn, 'bot-output', { text, spoken: true, aggregated_by: 'sentence' });
        for (const word of text.split(/\s+/).filter(Boolean)) this.#rtvi(conn, 'bot-tts-text', { text: word });
      }
      if (this.#o.realtime) {
        const due = t0 + (k + 1) * 20;
        await new Promise((r) => setTimeout(r, Math.max(0, due - Date.now())));
      }
    }
    if (conn.speakEpoch !== epoch) return;
    this.#rtvi(conn, 'bot-stopped-speaking');
  }

  async interruptFromService(): Promise<void> {
    const conn = this.#current();
    conn.speakEpoch++;
    this.#playingUntil = 0;
    this.#rtvi(conn, 'user-started-speaking');
    this.#send(conn, { interruption: { id: frameIds++, name: 'InterruptionFrame#1' } });
  }

  received(): Received {
    return {
      ...this.#rx,
      interruptions: [...this.#rx.interruptions],
      dtmf: [...this.#rx.dtmf],
      audioFormatErrors: [...this.#rx.audioFormatErrors],
      messages: [...this.#rx.messages],
      authHeaders: [...this.#rx.authHeaders],
      origins: [...this.#rx.origins],
    };
  }

  async fault(kind: 'refuse-next' | 'garbage' | 'stop-answering' | 'close-mid-call' | 'stop-reading' | 'resume-reading'): Promise<void> {
    if (kind === 'refuse-next') {
      this.server.refuseNext(503);
      return;
    }
    const conn = this.#current();
    switch (kind) {
      case 'garbage': {
        const ws = conn.ws;
        // Random bytes, but never a valid Frame: field 31, wire type 7 (no such wire type).
        ws.send(Buffer.concat([Buffer.from([0xff, 0x01]), randomBytes(64)]));
        // What a JSON serializer would send.
        ws.send(JSON.stringify({ label: 'rtvi-ai', type: 'bot-ready', data: {} }));
        // A Frame whose oneof is a field this schema does not have (9: a newer frame type).
        ws.send(Buffer.from([0x4a, 0x02, 0x08, 0x01]));
        const pcm = new Uint8Array(640);
        this.#send(conn, { audio: { audio: pcm, sample_rate: 0, num_channels: 1 } });
        this.#send(conn, { audio: { audio: new Uint8Array(641), sample_rate: this.#o.outputRateHz, num_channels: 1 } });
        this.#send(conn, { message: { data: '{not json' } });
        return;
      }
      case 'stop-answering':
        conn.speakEpoch++;
        conn.stopped = true; // no pongs, no frames, ignores everything
        return;
      case 'stop-reading':
      case 'resume-reading':
        setReading(conn.ws, kind === 'resume-reading');
        return;
      case 'close-mid-call':
        conn.speakEpoch++;
        conn.stopped = true;
        conn.ws.terminate();
        return;
    }
  }

  /** Hardening tests: the next upgrade is answered only after `ms` (a slow handshake). */
  delayNextUpgrade(ms: number): void {
    this.server.delayNextUpgrade(ms);
  }

  /** Extra faults and frames for adapter tests. */
  refuseNextWith(status: number): void {
    this.server.refuseNext(status);
  }
  sendRaw(data: Buffer | string): void {
    this.#current().ws.send(data);
  }
  sendFrame(frame: Record<string, unknown>): void {
    this.#send(this.#current(), frame);
  }
  sendRtvi(message: Record<string, unknown>): void {
    this.#send(this.#current(), { message: { data: JSON.stringify({ label: 'rtvi-ai', ...message }) } });
  }
  /** The pipeline ended (EndFrame): the transport closes the socket normally. */
  endSession(code = 1000, reason = ''): void {
    const conn = this.#current();
    conn.stopped = true;
    closeMidCall(conn.ws, code, reason);
  }
  /**
   * The bot ends the call: its goodbye, then the pipeline's EndFrame closes the socket —
   * 1001 from the WebSocket server transport (the default here), 1000 from the FastAPI one.
   */
  async botEndsCall(goodbyeMs = 300, code: 1000 | 1001 = 1001): Promise<void> {
    await this.speak(goodbyeMs, 'Thank you for calling, goodbye!');
    this.endSession(code);
  }

  async close(): Promise<void> {
    await this.server.close();
  }

  // --- autoAnswer -----------------------------------------------------------------------

  #vad(conn: Conn, bytes: Uint8Array): void {
    const aa = this.#o.autoAnswer!;
    const threshold = aa.thresholdDbfs ?? -35;
    const silenceMs = aa.silenceMs ?? 600;
    const pcm = new Int16Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
    const block = this.#vadBlock;
    for (let i = 0; i < pcm.length; i++) {
      block[this.#vadLen++] = pcm[i]!;
      if (this.#vadLen < block.length) continue;
      this.#vadLen = 0;
      let sum = 0;
      for (let k = 0; k < block.length; k++) sum += block[k]! * block[k]!;
      const dbfs = 10 * Math.log10(sum / block.length / (32768 * 32768) + 1e-12);
      if (dbfs >= threshold) {
        this.#silentMs = 0;
        if (++this.#voicedRun === 3 && !this.#inSpeech) {
          this.#inSpeech = true;
          if (Date.now() < this.#playingUntil) void this.interruptFromService(); // the caller talks over the bot
        }
      } else {
        this.#voicedRun = 0;
        if (this.#inSpeech && (this.#silentMs += 20) >= silenceMs) {
          this.#inSpeech = false;
          this.#silentMs = 0;
          const n = ++this.#utterances;
          const timestamp = new Date().toISOString();
          this.#rtvi(conn, 'user-transcription', { text: 'caller', user_id: 'caller', timestamp, final: false });
          this.#rtvi(conn, 'user-transcription', { text: `caller utterance ${n}`, user_id: 'caller', timestamp, final: true });
          void this.speak(aa.replyMs, `reply ${n}`).catch(() => undefined);
        }
      }
    }
  }
}

export const startFakePipecat = (options?: FakePipecatOptions) => FakePipecatServer.start(options);
