/**
 * A local fake of the ElevenLabs Agents (Conversational AI) service on 127.0.0.1:0,
 * written from https://elevenlabs.io/docs/agents-platform/api-reference/agents-platform/websocket,
 * implementing the agent contract's FakeService.
 *
 *   GET /v1/convai/conversation/get-signed-url?agent_id=…   xi-api-key header (private agents)
 *       → 200 { signed_url: ws://…/v1/convai/conversation?agent_id=…&conversation_signature=<one-time token> }
 *       → 401 wrong/missing key, 404 unknown agent, 403 after fault('refuse-next')
 *   WS  /v1/convai/conversation?agent_id=…[&conversation_signature=…]
 *       upgrade refused (HTTP 403/404) for an unknown agent, a missing/used token (private), or refuse-next
 *       ◄─ conversation_initiation_client_data   (recorded; the fake answers only after it)
 *       ─► conversation_initiation_metadata       (announced formats: options.inputFormat / outputFormat)
 *       ─► ping {event_id, ping_ms} every pingIntervalMs (or ping(pingMs) on demand); pongs recorded
 *          with their event_id and how long after the ping they came (delayMs); a client should
 *          answer at once — ping_ms is the service's estimate of the round trip, not a wait
 *       ◄─ user_audio_chunk                       (ms counted in the announced input format)
 *       ◄─ user_message / contextual_update / user_activity / client_tool_result  (recorded)
 *       every client message's type is logged in arrival order (clientLog), to check what came first
 *   A language override outside the service's enum (AsyncAPI `Language`) is refused as the
 *   service does: error {code 1008, error_type override_error}, then close 1008.
 *   sendError(code, errorType, message): the service's `error` event — per the contract sent
 *   when it is closing the conversation — followed by a close with that code (unless told not
 *   to). sendContextUsage(): a `context_usage` event (payload shape assumed).
 *
 * speak(ms): `audio` events of chunkMs with increasing event_ids (a tone in the
 * output format, optionally with character alignment), sent at once (faster than
 * real time, as the service does), and the reply's `agent_response` after the last
 * chunk (or with the first, agentResponseAt: 'start' — the order the live service
 * seems to use). interruptFromService(): `interruption` whose event_id covers two
 * chunks still "in flight", then — the quirk — those two stale `audio` events
 * (ids ≤ the interruption's), which a client must drop.
 *
 * Barge-in as the service sees it: the adapter's `contextual_update` saying the
 * caller "interrupted … after hearing N ms" is recorded as an interruption with
 * heardMs = N. DTMF: digits parsed from "pressed the key(s) … on their phone keypad".
 *
 * Optional server behaviour for end-to-end calls: greetingMs (speak when the
 * conversation starts, like an agent's first message) and bargeInOnSpeech (an
 * energy VAD on caller audio while the agent is still talking at real-time pace:
 * interruption; then, when the caller is quiet for 500 ms, a user_transcript and a
 * reply of replyMs).
 *
 * Faults: refuse-next (HTTP 403 on the next REST call or upgrade), garbage (non-JSON,
 * a binary frame, bad base64 audio, a WAV header as audio, unknown types),
 * stop-answering (the socket is paused: no reads, no pongs, no pings), close-mid-call
 * (the TCP connection is dropped, no close frame).
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import { FakeServer, stopAnswering, type Refusal } from './fake-server.js';
import type { FakeService } from '../agents/agent-contract.js';

export interface FakeElevenLabsOptions {
  agentId?: string;
  /** Set → a private agent: the WS needs a signed URL obtained with this key. */
  apiKey?: string;
  /** Announced user_input_audio_format / agent_output_audio_format (any string, to test bad ones). Default ulaw_8000. */
  inputFormat?: string;
  outputFormat?: string;
  /** Omit the formats from the metadata (older servers). */
  announceFormats?: boolean;
  /** 0 = no pings. Default 1000. */
  pingIntervalMs?: number;
  /** ping_event.ping_ms; undefined = omitted. Default 20. */
  pingMs?: number | undefined;
  /** Audio per audio event. Default 100 ms. */
  chunkMs?: number;
  agentResponseAt?: 'start' | 'end';
  /** Send character alignment with audio events. */
  alignment?: boolean;
  greetingMs?: number;
  bargeInOnSpeech?: boolean;
  replyMs?: number;
  /** The service refuses the conversation with this error (then closes), as for an override the agent's security settings do not allow. */
  refuseInitiation?: { code: number; errorType: string; message: string };
}

export interface FakeConversation {
  readonly id: string;
  readonly url: string;
  initData: Record<string, unknown> | undefined;
  audioBytes: number;
  badAudioChunks: number;
  closedByClient: boolean;
  closeCode: number | undefined;
}

export interface FakeElevenLabs extends FakeService {
  readonly url: string;
  readonly agentId: string;
  readonly conversations: FakeConversation[];
  readonly signedUrlRequests: { agentId: string | null; keyOk: boolean }[];
  readonly pings: { eventId: number; atMs: number }[];
  /** delayMs: from the ping with that event_id to this pong (undefined for an unknown event_id). */
  readonly pongs: { eventId: number; atMs: number; delayMs: number | undefined }[];
  /** The type of every client message, in the order they arrived (`user_audio_chunk` for audio). */
  readonly clientLog: string[];
  readonly userMessages: string[];
  readonly contextualUpdates: string[];
  readonly toolResults: Record<string, unknown>[];
  readonly unknownClientMessages: string[];
  userActivity: number;
  /** The audio the fake spoke in the current conversation, in order (wire bytes). */
  spoken(): Uint8Array;
  /** The text of each reply spoken. */
  readonly replies: string[];
  /**
   * The agent calls a client tool; resolves with its tool_call_id. A client_tool_result for
   * it makes the agent answer with what it was told ("… tool <name> said <result>").
   */
  callTool(name: string, parameters?: Record<string, unknown>): Promise<string>;
  /** The service ends the conversation normally (close 1000), as after its end_call system tool. */
  endConversation(reason?: string): Promise<void>;
  /** Sends raw text to the client (tests of odd messages). */
  sendRaw(text: string): Promise<void>;
  /** Sends one ping now; resolves with its event_id. */
  ping(pingMs?: number): Promise<number>;
  /** The service's `error` event, then (unless close is false) a close with `code`. */
  sendError(code: number | undefined, errorType: string | undefined, message: string, opts?: { close?: boolean }): Promise<void>;
  /** A `context_usage` event. */
  sendContextUsage(): Promise<void>;
  /** Resolves when the current conversation has its metadata. */
  ready(timeoutMs?: number): Promise<void>;
}

const WS_PATH = '/v1/convai/conversation';
/** The AsyncAPI contract's `Language` enum (elevenlabs/packages schemas/agent.asyncapi.yaml): what the service accepts as agent.language. */
const LANGUAGES = new Set(
  'en ja zh de hi fr ko pt pt-br it es id nl tr pl sv bg ro ar cs el fi ms da ta uk ru hu hr sk no vi tl af hy as az be bn bs ca et gl ka gu ha he is ga jv kn kk ky lv lt lb mk ml mr ne ps fa pa sr sd sl so sw te th ur cy'.split(' '),
);
const SIGNED_PATH = '/v1/convai/conversation/get-signed-url';

function bytesPerMs(format: string): number {
  if (format === 'ulaw_8000') return 8;
  const m = /^pcm_(\d+)$/.exec(format);
  return m ? (Number(m[1]) * 2) / 1000 : 8;
}

/** G.711 μ-law encode of one linear sample (written here for the fake; the classic bias-and-segment method). */
function ulawEncode(sample: number): number {
  const BIAS = 0x84;
  let s = Math.max(-32635, Math.min(32635, Math.round(sample)));
  const sign = s < 0 ? 0x80 : 0;
  if (s < 0) s = -s;
  s += BIAS;
  let exp = 7;
  for (let mask = 0x4000; (s & mask) === 0 && exp > 0; mask >>= 1) exp--;
  const mant = (s >> (exp + 3)) & 0x0f;
  return ~(sign | (exp << 4) | mant) & 0xff;
}

function ulawDecode(code: number): number {
  const c = ~code & 0xff;
  const exp = (c >> 4) & 7;
  const mag = ((((c & 0x0f) << 3) + 0x84) << exp) - 0x84;
  return c & 0x80 ? -mag : mag;
}

interface Conn {
  conv: FakeConversation;
  ws: WebSocket;
  socket: Socket;
  outFormat: string;
  inFormat: string;
  eventId: number;
  pingTimer: NodeJS.Timeout | undefined;
  spoken: Buffer[];
  /** Real-time estimate of when the agent's audio so far has finished playing at the caller. */
  speakingUntil: number;
  /** client_tool_call ids sent and not answered: id → tool name. */
  openCalls: Map<string, string>;
  loudChunks: number;
  quietSince: number;
  awaitingReply: boolean;
  phase: number;
  stopped: boolean;
  /** The fake closed or dropped the connection itself. */
  serverClosed: boolean;
}

export async function startFakeElevenLabs(options: FakeElevenLabsOptions = {}): Promise<FakeElevenLabs> {
  const agentId = options.agentId ?? 'agent_fake0123456789';
  const outFormat = options.outputFormat ?? 'ulaw_8000';
  const inFormat = options.inputFormat ?? 'ulaw_8000';
  const chunkMs = options.chunkMs ?? 100;
  const pingIntervalMs = options.pingIntervalMs ?? 1000;
  const pingMs = 'pingMs' in options ? options.pingMs : 20;
  const tokens = new Set<string>();
  let refuseNext = false;
  let current: Conn | undefined;
  let readyWaiters: Array<() => void> = [];
  let convSeq = 0;
  const t0 = Date.now();
  const state = {
    audioMs: 0,
    interruptions: [] as { heardMs?: number }[],
    dtmf: [] as string[],
  };

  const conversations: FakeConversation[] = [];
  const signedUrlRequests: { agentId: string | null; keyOk: boolean }[] = [];
  const pings: { eventId: number; atMs: number }[] = [];
  const pongs: { eventId: number; atMs: number; delayMs: number | undefined }[] = [];
  const clientLog: string[] = [];
  const userMessages: string[] = [];
  const contextualUpdates: string[] = [];
  const toolResults: Record<string, unknown>[] = [];
  /** What the next reply says it was told by tools. */
  const toolNotes: string[] = [];
  const unknownClientMessages: string[] = [];
  const replies: string[] = [];
  const conns = new Set<Conn>();

  const json = (res: ServerResponse, status: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };

  const rest = (req: IncomingMessage, res: ServerResponse): void => {
    const u = new URL(req.url ?? '/', 'http://x');
    if (req.method !== 'GET' || u.pathname !== SIGNED_PATH) return json(res, 404, { detail: { status: 'not_found', message: 'Not Found' } });
    const key = req.headers['xi-api-key'];
    const keyOk = options.apiKey !== undefined && key === options.apiKey;
    signedUrlRequests.push({ agentId: u.searchParams.get('agent_id'), keyOk });
    if (refuseNext) {
      refuseNext = false;
      return json(res, 403, { detail: { status: 'quota_exceeded', message: 'refused (fault injection)' } });
    }
    if (!keyOk) return json(res, 401, { detail: { status: 'invalid_api_key', message: 'Invalid API key' } });
    if (u.searchParams.get('agent_id') !== agentId) return json(res, 404, { detail: { status: 'agent_not_found', message: 'Agent not found' } });
    const token = randomBytes(12).toString('hex');
    tokens.add(token);
    json(res, 200, { signed_url: `${wsBase}${WS_PATH}?agent_id=${agentId}&conversation_signature=${token}` });
  };

  const upgrade = (_req: IncomingMessage, u: URL): Refusal | undefined => {
    if (u.pathname !== WS_PATH) return { status: 404 };
    if (refuseNext) {
      refuseNext = false;
      return { status: 403 };
    }
    if (u.searchParams.get('agent_id') !== agentId) return { status: 404 };
    if (options.apiKey !== undefined) {
      const token = u.searchParams.get('conversation_signature');
      if (token === null || !tokens.delete(token)) return { status: 403 };
    }
    return undefined;
  };

  const server = await FakeServer.start({
    http: rest,
    upgrade,
    connection: (ws, _req, u, socket) => onConnection(ws, socket, u.pathname + u.search.replace(/conversation_signature=[^&]+/, 'conversation_signature=…')),
  });
  const httpBase = server.httpUrl;
  const wsBase = server.url('');

  function send(c: Conn, msg: unknown): void {
    if (c.stopped || c.ws.readyState !== c.ws.OPEN) return;
    c.ws.send(typeof msg === 'string' ? msg : JSON.stringify(msg));
  }

  function onConnection(ws: WebSocket, socket: Socket, url: string): void {
    const conv: FakeConversation = { id: `conv_fake_${++convSeq}`, url, initData: undefined, audioBytes: 0, badAudioChunks: 0, closedByClient: false, closeCode: undefined };
    conversations.push(conv);
    const c: Conn = { conv, ws, socket, outFormat, inFormat, eventId: 0, pingTimer: undefined, spoken: [], speakingUntil: 0, openCalls: new Map(), loudChunks: 0, quietSince: 0, awaitingReply: false, phase: 0, stopped: false, serverClosed: false };
    conns.add(c);
    current = c;
    ws.on('close', (code) => {
      conv.closeCode = code;
      if (!c.serverClosed) conv.closedByClient = true;
      if (c.pingTimer) clearInterval(c.pingTimer);
      conns.delete(c);
    });
    ws.on('error', () => undefined);
    ws.on('message', (data, isBinary) => {
      if (c.stopped) return;
      const text = isBinary ? '' : data.toString();
      let m: Record<string, unknown>;
      try {
        m = JSON.parse(text) as Record<string, unknown>;
      } catch {
        unknownClientMessages.push(text.slice(0, 200));
        return;
      }
      if (typeof m['user_audio_chunk'] === 'string') {
        if (clientLog.at(-1) !== 'user_audio_chunk') clientLog.push('user_audio_chunk');
        return onAudio(c, m['user_audio_chunk']);
      }
      clientLog.push(String(m['type']));
      switch (m['type']) {
        case 'conversation_initiation_client_data': {
          if (conv.initData !== undefined) return;
          conv.initData = m;
          const language = (m['conversation_config_override'] as { agent?: { language?: unknown } } | undefined)?.agent?.language;
          if (language !== undefined && !LANGUAGES.has(String(language))) {
            sendErrorOn(c, 1008, 'override_error', `Invalid language override: ${String(language)}`, true);
            return;
          }
          if (options.refuseInitiation) {
            const r = options.refuseInitiation;
            sendErrorOn(c, r.code, r.errorType, r.message, true);
            return;
          }
          startConversation(c);
          return;
        }
        case 'pong': {
          const atMs = Date.now() - t0;
          const ping = pings.find((p) => p.eventId === m['event_id']);
          pongs.push({ eventId: m['event_id'] as number, atMs, delayMs: ping === undefined ? undefined : atMs - ping.atMs });
          return;
        }
        case 'user_message':
          userMessages.push(String(m['text']));
          parseDtmf(String(m['text']));
          return;
        case 'contextual_update': {
          const t = String(m['text']);
          contextualUpdates.push(t);
          parseDtmf(t);
          const heard = /interrupted your last reply after hearing (\d+) ms/.exec(t);
          if (heard) state.interruptions.push({ heardMs: Number(heard[1]) });
          return;
        }
        case 'user_activity':
          api.userActivity++;
          return;
        case 'client_tool_result': {
          toolResults.push(m);
          const name = c.openCalls.get(String(m['tool_call_id']));
          if (name !== undefined) {
            c.openCalls.delete(String(m['tool_call_id']));
            toolNotes.push(` Tool ${name} said ${String(m['result'])}${m['is_error'] === true ? ' (an error)' : ''}.`);
            speakOn(c, 300);
          }
          return;
        }
        default:
          unknownClientMessages.push(text.slice(0, 200));
      }
    });
  }

  function parseDtmf(text: string): void {
    const d = /pressed the keys? ([0-9A-D*# ]+) on their phone keypad/.exec(text);
    if (d) for (const digit of d[1]!.split(' ')) if (digit !== '') state.dtmf.push(digit);
  }

  function startConversation(c: Conn): void {
    const ev: Record<string, unknown> = { conversation_id: c.conv.id };
    if (options.announceFormats !== false) {
      ev['agent_output_audio_format'] = c.outFormat;
      ev['user_input_audio_format'] = c.inFormat;
    }
    send(c, { type: 'conversation_initiation_metadata', conversation_initiation_metadata_event: ev });
    c.phase = 1;
    if (pingIntervalMs > 0) c.pingTimer = setInterval(() => pingOn(c, pingMs), pingIntervalMs);
    const w = readyWaiters;
    readyWaiters = [];
    for (const r of w) r();
    // The conversation's first message, as overridden at initiation (overrides enabled), is spoken at once.
    const first = (c.conv.initData?.['conversation_config_override'] as { agent?: { first_message?: unknown } } | undefined)?.agent?.first_message;
    if (typeof first === 'string' && first !== '') speakOn(c, options.greetingMs ?? 600, first);
    else if (options.greetingMs) speakOn(c, options.greetingMs);
  }

  function onAudio(c: Conn, b64: string): void {
    const bytes = Buffer.from(b64, 'base64');
    const pcm = c.inFormat !== 'ulaw_8000';
    if (pcm && bytes.length % 2 !== 0) {
      c.conv.badAudioChunks++;
      return;
    }
    c.conv.audioBytes += bytes.length;
    state.audioMs += bytes.length / bytesPerMs(c.inFormat);
    if (!options.bargeInOnSpeech) return;
    // A simple server VAD: mean absolute level of the chunk.
    let sum = 0;
    const n = pcm ? bytes.length / 2 : bytes.length;
    for (let i = 0; i < n; i++) sum += Math.abs(pcm ? bytes.readInt16LE(i * 2) : ulawDecode(bytes[i]!));
    const loud = sum / Math.max(1, n) > 800;
    const now = Date.now();
    c.loudChunks = loud ? c.loudChunks + 1 : 0;
    if (loud) c.quietSince = now;
    if (c.loudChunks === 3 && now < c.speakingUntil) {
      interruptOn(c);
      c.awaitingReply = true;
    }
    if (c.awaitingReply && !loud && now - c.quietSince > 500) {
      c.awaitingReply = false;
      send(c, { type: 'user_transcript', user_transcription_event: { user_transcript: 'Sorry, can I ask something else?' } });
      if (options.replyMs) speakOn(c, options.replyMs);
    }
  }

  function audioBytes(c: Conn, ms: number, phase: number): Buffer {
    const n = Math.round(ms * bytesPerMs(c.outFormat));
    const out = Buffer.alloc(n);
    if (c.outFormat === 'ulaw_8000') {
      for (let i = 0; i < n; i++) out[i] = ulawEncode(8000 * Math.sin((2 * Math.PI * 440 * (phase + i)) / 8000));
    } else {
      const rate = Number(c.outFormat.slice(4)) || 16000;
      for (let i = 0; i < n / 2; i++) out.writeInt16LE(Math.round(8000 * Math.sin((2 * Math.PI * 440 * (phase + i)) / rate)), i * 2);
    }
    return out;
  }

  function speakOn(c: Conn, ms: number, words?: string): void {
    const n = replies.length + 1;
    const text = words ?? `This is reply number ${n} from the fake agent, lasting ${ms} milliseconds.${toolNotes.splice(0).join('')}`;
    replies.push(text);
    const response = { type: 'agent_response', agent_response_event: { agent_response: text } };
    if (options.agentResponseAt === 'start') send(c, response);
    const now = Date.now();
    c.speakingUntil = Math.max(now, c.speakingUntil) + ms;
    let phase = 0;
    for (let at = 0; at < ms; at += chunkMs) {
      const len = Math.min(chunkMs, ms - at);
      const audio = audioBytes(c, len, phase);
      phase += c.outFormat === 'ulaw_8000' ? audio.length : audio.length / 2;
      c.spoken.push(audio);
      const ev: Record<string, unknown> = { audio_base_64: audio.toString('base64'), event_id: ++c.eventId };
      if (options.alignment) {
        // Characters spread evenly over the reply; each chunk carries its own, times relative to the chunk.
        const perChar = ms / text.length;
        const chars: string[] = [];
        const starts: number[] = [];
        for (let i = 0; i < text.length; i++) {
          const t = i * perChar;
          if (t >= at && t < at + len) {
            chars.push(text[i]!);
            starts.push(Math.round(t - at));
          }
        }
        ev['alignment'] = { chars, char_start_times_ms: starts, char_durations_ms: starts.map(() => Math.round(perChar)) };
      }
      send(c, { type: 'audio', audio_event: ev });
    }
    if (options.agentResponseAt !== 'start') send(c, response);
  }

  function pingOn(c: Conn, ms: number | undefined): number {
    const id = ++c.eventId;
    pings.push({ eventId: id, atMs: Date.now() - t0 });
    const pe: Record<string, unknown> = { event_id: id };
    if (ms !== undefined) pe['ping_ms'] = ms;
    send(c, { type: 'ping', ping_event: pe });
    return id;
  }

  /** The contract's error event ("sent when connection is closing due to an error"), then the close. */
  function sendErrorOn(c: Conn, code: number | undefined, errorType: string | undefined, message: string, close: boolean): void {
    const ev: Record<string, unknown> = { message };
    if (code !== undefined) ev['code'] = code;
    if (errorType !== undefined) ev['error_type'] = errorType;
    send(c, { type: 'error', error_event: ev });
    if (close) {
      c.serverClosed = true;
      c.ws.close(code ?? 1011, errorType ?? 'error');
    }
  }

  function interruptOn(c: Conn): void {
    // Two chunks were already generated before the caller spoke: the interruption covers them.
    const inFlight = [c.eventId + 1, c.eventId + 2];
    c.eventId += 2;
    send(c, { type: 'interruption', interruption_event: { event_id: c.eventId } });
    for (const id of inFlight) send(c, { type: 'audio', audio_event: { audio_base_64: audioBytes(c, 40, 0).toString('base64'), event_id: id } });
    c.speakingUntil = 0;
  }

  async function ready(timeoutMs = 3000): Promise<void> {
    if (current && current.phase >= 1 && !current.stopped) return;
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('fake elevenlabs: no conversation started')), timeoutMs);
      readyWaiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  async function withConn(fn: (c: Conn) => void): Promise<void> {
    await ready();
    fn(current!);
  }

  const api: FakeElevenLabs = {
    url: httpBase,
    agentId,
    env: {
      ELEVENLABS_AGENT_ID: agentId,
      ELEVENLABS_CONVAI_URL: `${wsBase}${WS_PATH}`,
      ELEVENLABS_API_URL: httpBase,
      ELEVENLABS_AUDIO_FORMAT: outFormat === inFormat && /^(ulaw_8000|pcm_\d+)$/.test(outFormat) ? outFormat : 'ulaw_8000',
      ELEVENLABS_IDLE_TIMEOUT_MS: '1500',
      ...(options.apiKey !== undefined ? { ELEVENLABS_API_KEY: options.apiKey } : {}),
    },
    conversations,
    signedUrlRequests,
    pings,
    pongs,
    clientLog,
    userMessages,
    contextualUpdates,
    toolResults,
    unknownClientMessages,
    userActivity: 0,
    replies,
    spoken: () => Buffer.concat(current?.spoken ?? []),
    ready,
    speak: (ms) => withConn((c) => speakOn(c, ms)),
    interruptFromService: () => withConn((c) => interruptOn(c)),
    callTool: async (name, parameters = {}) => {
      let id = '';
      await withConn((c) => {
        id = `tool_${++c.eventId}`;
        c.openCalls.set(id, name);
        send(c, { type: 'client_tool_call', client_tool_call: { tool_name: name, tool_call_id: id, parameters } });
      });
      return id;
    },
    endConversation: (reason = 'Agent ended the call') =>
      withConn((c) => {
        c.serverClosed = true;
        c.ws.close(1000, reason);
      }),
    sendRaw: (text) => withConn((c) => send(c, text)),
    async ping(ms?: number) {
      await ready();
      return pingOn(current!, ms);
    },
    sendError: (code, errorType, message, opts) => withConn((c) => sendErrorOn(c, code, errorType, message, opts?.close !== false)),
    // Shape assumed (the contract names the event, the payload is not used by the bridge).
    sendContextUsage: () => withConn((c) => send(c, { type: 'context_usage', context_usage_event: { used_tokens: 1200, max_tokens: 128000 } })),
    received: () => ({
      audioMs: state.audioMs,
      interruptions: [...state.interruptions],
      dtmf: [...state.dtmf],
      closed: conversations.length > 0 && conversations[conversations.length - 1]!.closedByClient,
    }),
    async fault(kind) {
      if (kind === 'refuse-next') {
        refuseNext = true;
        return;
      }
      await ready();
      const c = current!;
      switch (kind) {
        case 'garbage':
          send(c, 'this is not JSON {');
          c.ws.send(randomBytes(64), { binary: true });
          send(c, { type: 'audio', audio_event: { audio_base_64: '!!not base64!!', event_id: ++c.eventId } });
          send(c, { type: 'audio', audio_event: { audio_base_64: Buffer.from('RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00', 'latin1').toString('base64'), event_id: ++c.eventId } });
          send(c, { type: 'audio', audio_event: { audio_base_64: 'f39/', event_id: 'seven' } });
          send(c, { type: 'surprise_event', surprise_event: {} });
          send(c, { no_type: true });
          send(c, '[1,2,3]');
          return;
        case 'stop-answering':
          // A hung peer: nothing is read (so no WebSocket pongs either) and nothing more is sent.
          c.stopped = true;
          if (c.pingTimer) clearInterval(c.pingTimer);
          stopAnswering(c.socket);
          return;
        case 'stop-reading':
          c.socket.pause();
          return;
        case 'resume-reading':
          c.socket.resume();
          return;
        case 'close-mid-call':
          c.serverClosed = true;
          c.stopped = true;
          c.socket.destroy();
          return;
      }
    },
    async close() {
      for (const c of conns) {
        c.stopped = true;
        c.serverClosed = true;
        if (c.pingTimer) clearInterval(c.pingTimer);
        c.socket.destroy();
      }
      await server.close();
    },
  };
  return api;
}
