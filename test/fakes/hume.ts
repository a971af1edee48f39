/**
 * A local fake of Hume EVI's chat WebSocket (`/v0/evi/chat`) on 127.0.0.1:0, written
 * from https://dev.hume.ai/reference/speech-to-speech-evi/chat, for the agent contract and the
 * adapter's own tests. (EVI itself was switched off on 2026-11-13; this fake is the
 * documented protocol, which Hume-compatible endpoints keep.)
 *
 *   upgrade GET /v0/evi/chat?api_key=…[&config_id][&resumed_chat_group_id]  (or X-Hume-Api-Key)
 *     wrong/missing key → HTTP 401; `refuse-next` → HTTP 503
 *   → chat_metadata {chat_id, chat_group_id}    first message (a resumed chat keeps its group id)
 *   ← session_settings  recorded; audio must be linear16, mono, 8–48 kHz, else an `error`
 *   ← audio_input       base64 s16le; counted in ms at the declared rate
 *                       (before session_settings: an `error`, like EVI's "audio before settings")
 *   ← user_input        recorded (DTMF arrives as "The caller pressed 5")
 *   ← session_settings with a `context` "… (N ms) …" → recorded as an interruption with heardMs N
 *   speak(ms): user_message, assistant_message, audio_output WAV chunks (100 ms each,
 *              header rate configurable 24000/48000, layouts: plain, LIST before data,
 *              an odd-sized chunk + pad byte), assistant_end
 *   interruptFromService(): user_interruption
 *   callTool(name, args): tool_call {tool_call_id, name, parameters (JSON text), tool_type "function",
 *              response_required true}; ← tool_response / tool_error for it: recorded, then the
 *              assistant answers with what it was told ("… tool lookup_order said …"); one for a
 *              call it did not make: an `error`
 *   faults: refuse-next, garbage (non-JSON, unknown type, bad base64, WAVs truncated /
 *           stereo / 8-bit / float / absurd size), stop-answering (stops reading the
 *           socket: no pongs), close-mid-call (close 1011)
 *
 * The WAVs are built here independently of the adapter's reader (fake the peer, not yourself).
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { WebSocket } from 'ws';
import { FakeServer, closeMidCall, stopAnswering } from './fake-server.js';
import type { FakeService } from '../agents/agent-contract.js';

export type WavLayout = 'plain' | 'list' | 'odd';

export interface FakeHumeOptions {
  apiKey?: string;
  /** Rate written in the audio_output WAV headers (EVI: 48 kHz per the SDK doc, 24 kHz per an SDK PR). Default 48000. */
  wavRateHz?: number;
  /** Layout of the WAV chunks speak() sends. Default 'plain'. */
  wavLayout?: WavLayout;
  /** Audio per audio_output chunk. Default 100 ms. */
  chunkMs?: number;
  /** Extra env for the adapter (e.g. HUME_OUTPUT_RATE). */
  env?: Record<string, string>;
}

export interface FakeHumeConnection {
  readonly id: number;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly authVia: 'header' | 'query';
  readonly chatId: string;
  readonly chatGroupId: string;
  readonly resumedChatGroupId: string | undefined;
  readonly sessionSettings: Record<string, any>[];
  readonly userInputs: string[];
  readonly toolErrors: Record<string, any>[];
  /** assistant_input texts received (spoken verbatim). */
  readonly assistantInputs: string[];
  /** tool_response messages received. */
  readonly toolResponses: Record<string, any>[];
  /** tool_call ids sent and not answered: id → name. */
  readonly openCalls: Map<string, string>;
  /** Caller audio received on this connection (ms at its declared rate). */
  audioMs: number;
  /** Errors this fake sent to the client. */
  readonly errorsSent: string[];
  /** Closed by the client (not by the fake). */
  closedByClient: boolean;
  open: boolean;
  readonly ws: WebSocket;
  readonly socket: Socket;
}

/** A PCM16 mono WAV file; `extra` chunks go between `fmt ` and `data`. */
export function buildWav(samples: Int16Array, rateHz: number, opts: { extra?: { id: string; body: Uint8Array }[]; channels?: number; bits?: number; formatTag?: number; declaredDataBytes?: number } = {}): Buffer {
  const channels = opts.channels ?? 1;
  const bits = opts.bits ?? 16;
  const data = Buffer.from(samples.buffer, samples.byteOffset, samples.byteLength);
  const parts: Buffer[] = [];
  const fmt = Buffer.alloc(8 + 16);
  fmt.write('fmt ', 0, 'latin1');
  fmt.writeUInt32LE(16, 4);
  fmt.writeUInt16LE(opts.formatTag ?? 1, 8);
  fmt.writeUInt16LE(channels, 10);
  fmt.writeUInt32LE(rateHz, 12);
  fmt.writeUInt32LE((rateHz * channels * bits) / 8, 16);
  fmt.writeUInt16LE((channels * bits) / 8, 20);
  fmt.writeUInt16LE(bits, 22);
  parts.push(fmt);
  for (const c of opts.extra ?? []) {
    const h = Buffer.alloc(8);
    h.write(c.id, 0, 'latin1');
    h.writeUInt32LE(c.body.length, 4);
    parts.push(h, Buffer.from(c.body));
    if (c.body.length % 2 === 1) parts.push(Buffer.alloc(1)); // RIFF pad byte
  }
  const dh = Buffer.alloc(8);
  dh.write('data', 0, 'latin1');
  dh.writeUInt32LE(opts.declaredDataBytes ?? data.length, 4);
  parts.push(dh, data);
  const body = Buffer.concat(parts);
  const riff = Buffer.alloc(12);
  riff.write('RIFF', 0, 'latin1');
  riff.writeUInt32LE(4 + body.length, 4);
  riff.write('WAVE', 8, 'latin1');
  return Buffer.concat([riff, body]);
}

/** A 300 Hz tone at ~-12 dBFS, continuous across chunks. */
function tone(samples: number, rateHz: number, startSample: number): Int16Array {
  const a = new Int16Array(samples);
  for (let i = 0; i < samples; i++) a[i] = Math.round(8000 * Math.sin((2 * Math.PI * 300 * (startSample + i)) / rateHz));
  return a;
}

function layoutChunks(layout: WavLayout): { id: string; body: Uint8Array }[] {
  if (layout === 'list') return [{ id: 'LIST', body: Buffer.from('INFOISFT\x0e\x00\x00\x00Lavf61.7.100\x00\x00', 'latin1') }];
  if (layout === 'odd') return [{ id: 'junk', body: Buffer.from([1, 2, 3]) }, { id: 'LIST', body: Buffer.from('INFOx', 'latin1') }];
  return [];
}

export class FakeHume implements FakeService {
  readonly env: Record<string, string>;
  readonly apiKey: string;
  readonly connections: FakeHumeConnection[] = [];
  /** The HTTP side, with its upgrade faults (refuseNext, refuseAll, hangUpgrades). */
  readonly server: FakeServer;
  wavRateHz: number;
  wavLayout: WavLayout;
  chunkMs: number;
  #interruptions: { heardMs?: number }[] = [];
  #dtmf: string[] = [];
  #msgSeq = 0;
  constructor(server: FakeServer, o: FakeHumeOptions) {
    this.server = server;
    this.apiKey = o.apiKey ?? 'hume-test-key-' + randomUUID();
    this.wavRateHz = o.wavRateHz ?? 48_000;
    this.wavLayout = o.wavLayout ?? 'plain';
    this.chunkMs = o.chunkMs ?? 100;
    // A short keepalive so a silent socket is noticed well within the contract's bound.
    this.env = { HUME_API_KEY: this.apiKey, HUME_EVI_URL: server.url('/v0/evi/chat'), HUME_KEEPALIVE_MS: '1000', ...o.env };
  }

  /** The newest connection (the one speak() talks on). */
  get current(): FakeHumeConnection | undefined {
    return this.connections.at(-1);
  }

  // --- server side -------------------------------------------------------------------

  /** Upgrades refused (HTTP status). */
  get refused(): readonly number[] {
    return this.server.refused;
  }

  upgrade(req: IncomingMessage, url: URL): { status: number; body: string } | undefined {
    if (url.pathname !== '/v0/evi/chat') return { status: 404, body: '{"message":"Not Found"}' };
    const headerKey = req.headers['x-hume-api-key'];
    if (headerKey !== this.apiKey && url.searchParams.get('api_key') !== this.apiKey) return { status: 401, body: '{"message":"Unauthorized"}' };
    return undefined;
  }

  connection(ws: WebSocket, req: IncomingMessage, url: URL): void {
    const authVia = req.headers['x-hume-api-key'] === this.apiKey ? 'header' : 'query';
    const resumed = url.searchParams.get('resumed_chat_group_id') ?? undefined;
    const conn: FakeHumeConnection = {
      id: this.connections.length + 1,
      path: url.pathname,
      query: url.searchParams,
      authVia,
      chatId: randomUUID(),
      chatGroupId: resumed ?? randomUUID(),
      resumedChatGroupId: resumed,
      sessionSettings: [],
      userInputs: [],
      toolErrors: [],
      toolResponses: [],
      assistantInputs: [],
      openCalls: new Map(),
      audioMs: 0,
      errorsSent: [],
      closedByClient: false,
      open: true,
      ws,
      socket: req.socket,
    };
    this.connections.push(conn);
    let closingByUs = false;
    (conn as { closeByFake?: () => void }).closeByFake = () => (closingByUs = true);
    ws.on('close', () => {
      conn.open = false;
      if (!closingByUs) conn.closedByClient = true;
    });
    ws.on('error', () => undefined);
    ws.on('message', (data, isBinary) => this.#onMessage(conn, isBinary ? '' : data.toString()));
    ws.send(JSON.stringify({ type: 'chat_metadata', chat_id: conn.chatId, chat_group_id: conn.chatGroupId, request_id: randomUUID() }));
  }

  #sendError(conn: FakeHumeConnection, code: string, slug: string, message: string): void {
    conn.errorsSent.push(slug);
    conn.ws.send(JSON.stringify({ type: 'error', code, slug, message }));
  }

  #onMessage(conn: FakeHumeConnection, text: string): void {
    let m: any;
    try {
      m = JSON.parse(text);
    } catch {
      return this.#sendError(conn, 'E0101', 'invalid_message', 'message is not JSON');
    }
    const settings = conn.sessionSettings.at(-1);
    switch (m?.type) {
      case 'session_settings': {
        const a = m.audio;
        if (a !== undefined && (a.encoding !== 'linear16' || a.channels !== 1 || !Number.isInteger(a.sample_rate) || a.sample_rate < 8000 || a.sample_rate > 48000)) {
          return this.#sendError(conn, 'E0102', 'invalid_session_settings', 'audio must be linear16 mono 8-48 kHz');
        }
        conn.sessionSettings.push(m);
        const ctx = m.context?.text;
        if (typeof ctx === 'string') {
          const heard = /\((\d+) ms\)/.exec(ctx);
          this.#interruptions.push(heard ? { heardMs: Number(heard[1]) } : {});
        }
        return;
      }
      case 'audio_input': {
        const rate = settings?.audio?.sample_rate;
        if (rate === undefined) return this.#sendError(conn, 'E0103', 'audio_before_settings', 'linear16 audio needs session_settings.audio first');
        if (typeof m.data !== 'string') return this.#sendError(conn, 'E0101', 'invalid_message', 'audio_input.data missing');
        const bytes = Buffer.from(m.data, 'base64').length;
        conn.audioMs += (bytes / 2 / rate) * 1000;
        return;
      }
      case 'user_input': {
        conn.userInputs.push(String(m.text));
        const d = /^The caller pressed (\S)/.exec(String(m.text));
        if (d) this.#dtmf.push(d[1]!);
        return;
      }
      case 'assistant_input':
        // EVI speaks the text verbatim, as an assistant turn of its own.
        conn.assistantInputs.push(String(m.text));
        void this.speak(600, { userText: null, text: String(m.text) });
        return;
      case 'tool_error':
      case 'tool_response': {
        (m.type === 'tool_error' ? conn.toolErrors : conn.toolResponses).push(m);
        const name = conn.openCalls.get(m.tool_call_id);
        if (name === undefined) {
          if (conn.toolResponses.includes(m)) return this.#sendError(conn, 'E0104', 'unknown_tool_call', `no open tool call ${String(m.tool_call_id)}`);
          return; // a tool_error for a call EVI's config made (the existing behaviour)
        }
        conn.openCalls.delete(m.tool_call_id);
        void this.speak(300, { userText: null, text: `Done. tool ${name} said ${m.type === 'tool_error' ? `error ${String(m.error)}` : String(m.content)}` });
        return;
      }
      default:
        return this.#sendError(conn, 'E0101', 'invalid_message', `unknown type ${String(m?.type)}`);
    }
  }

  // --- FakeService --------------------------------------------------------------------

  #send(conn: FakeHumeConnection | undefined, msg: unknown): Promise<void> {
    if (!conn || conn.ws.readyState !== WebSocket.OPEN) return Promise.resolve();
    const text = typeof msg === 'string' ? msg : JSON.stringify(msg);
    return new Promise((resolve) => conn.ws.send(text, () => resolve()));
  }

  /** An EVI turn: user_message, assistant_message, `ms` of audio_output WAV chunks, assistant_end. */
  async speak(ms: number, o: { rateHz?: number; layout?: WavLayout; userText?: string | null; text?: string; end?: boolean; messageId?: string } = {}): Promise<void> {
    const conn = this.current;
    const rate = o.rateHz ?? this.wavRateHz;
    const id = o.messageId ?? `msg-${++this.#msgSeq}`;
    if (o.userText !== null) await this.#send(conn, { type: 'user_message', message: { role: 'user', content: o.userText ?? 'Hello?' }, models: {}, time: { begin: 0, end: 500 }, interim: false, from_text: false });
    await this.#send(conn, { type: 'assistant_message', id, message: { role: 'assistant', content: o.text ?? 'One two three four five six seven eight nine ten.' }, models: {}, from_text: false });
    await this.sendAudio(ms, { rateHz: rate, layout: o.layout, messageId: id });
    if (o.end !== false) await this.#send(conn, { type: 'assistant_end' });
  }

  /** audio_output chunks only. */
  async sendAudio(ms: number, o: { rateHz?: number; layout?: WavLayout; messageId?: string } = {}): Promise<void> {
    const conn = this.current;
    const rate = o.rateHz ?? this.wavRateHz;
    const total = Math.round((ms * rate) / 1000);
    const per = Math.round((this.chunkMs * rate) / 1000);
    const id = o.messageId ?? `msg-${++this.#msgSeq}`;
    for (let at = 0, index = 0; at < total; at += per, index++) {
      const wav = buildWav(tone(Math.min(per, total - at), rate, at), rate, { extra: layoutChunks(o.layout ?? this.wavLayout) });
      await this.#send(conn, { type: 'audio_output', id, index, data: wav.toString('base64') });
    }
  }

  /** EVI calls a function tool; returns its tool_call_id. */
  async callTool(name: string, args: Record<string, unknown>): Promise<string> {
    const conn = this.current;
    if (!conn) throw new Error('fake hume: no connection');
    const id = `tool-${++this.#msgSeq}`;
    conn.openCalls.set(id, name);
    await this.#send(conn, { type: 'tool_call', tool_call_id: id, name, parameters: JSON.stringify(args), tool_type: 'function', response_required: true });
    return id;
  }

  async userSays(text: string, interim = false): Promise<void> {
    await this.#send(this.current, { type: 'user_message', message: { role: 'user', content: text }, models: {}, time: { begin: 0, end: 500 }, interim, from_text: false });
  }

  async sendRaw(msg: unknown): Promise<void> {
    await this.#send(this.current, msg);
  }

  async interruptFromService(): Promise<void> {
    await this.#send(this.current, { type: 'user_interruption', time: Date.now() });
  }

  received(): ReturnType<FakeService['received']> {
    const cur = this.current;
    return {
      audioMs: this.connections.reduce((s, c) => s + c.audioMs, 0),
      interruptions: [...this.#interruptions],
      dtmf: [...this.#dtmf],
      closed: cur !== undefined && !cur.open && cur.closedByClient,
    };
  }

  /** The garbage a broken or hostile peer might send; none of it is playable audio. */
  static garbage(): (string | Buffer)[] {
    const pcm = tone(2400, 24_000, 0);
    const b64 = (b: Buffer) => b.toString('base64');
    const good = buildWav(pcm, 24_000);
    const audio = (data: string) => JSON.stringify({ type: 'audio_output', id: 'garbage', index: 0, data });
    return [
      'this is not JSON {',
      '[1,2,3]',
      JSON.stringify({ no_type: true }),
      JSON.stringify({ type: 'mystery_event', data: 'x' }),
      JSON.stringify({ type: 'chat_metadata', chat_group_id: 42 }),
      audio('!!!not base64!!!'),
      audio(b64(good.subarray(0, good.length - 1000))), // truncated: data shorter than declared
      audio(b64(buildWav(pcm, 24_000, { channels: 2 }))), // stereo
      audio(b64(buildWav(new Int16Array(1200), 24_000, { bits: 8 }))), // 8-bit
      audio(b64(buildWav(pcm, 24_000, { formatTag: 3, bits: 32 }))), // IEEE float
      audio(b64(buildWav(pcm, 24_000, { declaredDataBytes: 0x7fff_fff0 }))), // absurd size
      audio(b64(buildWav(pcm, 1000))), // absurd rate
      audio(b64(Buffer.from('RIFX\x10\x00\x00\x00WAVEfmt ', 'latin1'))),
      Buffer.from([0xde, 0xad, 0xbe, 0xef]), // a binary frame
    ];
  }

  async fault(kind: 'refuse-next' | 'garbage' | 'stop-answering' | 'close-mid-call' | 'stop-reading' | 'resume-reading', closeCode = 1011): Promise<void> {
    const conn = this.current;
    switch (kind) {
      case 'refuse-next':
        this.server.refuseNext({ status: 503, body: '{"message":"Service Unavailable"}' });
        return;
      case 'garbage':
        if (!conn) return;
        for (const g of FakeHume.garbage()) await new Promise<void>((r) => conn.ws.send(g, { binary: typeof g !== 'string' }, () => r()));
        return;
      case 'stop-answering':
        if (conn) stopAnswering(conn.socket);
        return;
      case 'stop-reading':
        if (conn) conn.socket.pause();
        return;
      case 'resume-reading':
        if (conn) conn.socket.resume();
        return;
      case 'close-mid-call':
        if (!conn) return;
        (conn as { closeByFake?: () => void }).closeByFake?.();
        closeMidCall(conn.ws, closeCode, 'internal error');
        return;
    }
  }

  async close(): Promise<void> {
    for (const c of this.connections) (c as { closeByFake?: () => void }).closeByFake?.();
    await this.server.close();
  }
}

export async function startFakeHume(options: FakeHumeOptions = {}): Promise<FakeHume> {
  let fake: FakeHume | undefined;
  const server = await FakeServer.start({
    wss: { maxPayload: 1024 * 1024 },
    upgrade: (req, url) => fake!.upgrade(req, url),
    connection: (ws, req, url) => fake!.connection(ws, req, url),
  });
  fake = new FakeHume(server, options);
  return fake;
}
