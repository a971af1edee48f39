/**
 * A local fake of the Gemini Live API (BidiGenerateContent WebSocket), on
 * 127.0.0.1:0, written from https://ai.google.dev/api/live. It implements the agent contract's
 * FakeService and adds hooks for the adapter's own tests.
 *
 * What it models:
 * - endpoint path `/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent`;
 *   the key in the `x-goog-api-key` header, as the SDKs send it. A wrong key: the upgrade
 *   succeeds, then close 1007 "API key not valid…" (that is how the real service has
 *   reported key problems, e.g. yagudaev/voiceclaw#155 — assumed for invalid keys too). No key:
 *   close 1008 "…unregistered callers…" (Google's answer to a request without identity).
 *   A key in the URL query is refused with HTTP 400 — stricter than the service, which
 *   takes `?key=`, so that a key in a URL (where logs and errors carry it) fails tests.
 *   Wrong path: HTTP 404.
 * - client messages, strictly: exactly one known top-level key; `setup` first and
 *   only once (model `models/…`, responseModalities ["AUDIO"]); unknown keys, a second
 *   setup, input before setup, `sessionResumption.transparent` (rejected by the Gemini
 *   API, js-genai) or audio that is not `audio/pcm;rate=16000` base64 PCM16 → close 1007
 *   "Invalid JSON payload…" like Google's proto-JSON parser.
 * - server messages, with the quirk that many arrive as BINARY frames holding UTF-8
 *   JSON (`frames: 'mixed'` default: setupComplete and every other audio chunk binary).
 * - speak(ms): a model turn — inlineData chunks of 24 kHz PCM16 (`audio/pcm;rate=24000`)
 *   faster than real time, an outputTranscription, generationComplete, then (like the real
 *   server, which holds the turn for the playback time it assumes, per js-genai's `generationComplete` doc) turnComplete
 *   only when `ms` of playback would be over. Caller speech / interruptFromService()
 *   during the turn → `interrupted` then `turnComplete` (no generationComplete), no more audio.
 * - resumption: `sessionResumptionUpdate` every handleIntervalMs and after each turn
 *   (resumable:false with no handle while a turn is generating); a setup with a handle we
 *   issued continues that logical session; an unknown handle → close 1008 "Requested
 *   entity was not found." (the real answer to a stale handle is not documented).
 *   Each logical session keeps the caller audio it has heard (sessionAudio()); a handle
 *   covers what was heard when it was issued, and resuming with it DROPS the input the
 *   old connection received after it — the Gemini API has no transparent mode, so that
 *   input is lost on resumption, as with the real service.
 * - connection lifetime: with `connectionLifetimeMs`, each connection sends
 *   `goAway {timeLeft: "<s>s"}` and closes itself (1001) `goAwayTimeLeftMs` later.
 *   With `goAwayMidUtterance`, the connection sends goAway once the caller has been
 *   speaking for `afterMs` (heard by the activity detection below).
 * - activity detection: an EnergyVad on the caller audio acts as the server's (with
 *   autoReply or goAwayMidUtterance): autoReply — speech over a turn → interrupted; end
 *   of speech → a reply of replyMs.
 * - clientContent: turns of { role: 'user' | 'model', parts: [{ text }] }, recorded with
 *   their channel (notes()); `rejectClientContentAfterTurn` closes 1007 on clientContent
 *   after a model turn, as some Live models have.
 * - Faults: refuse-next (HTTP 403 on the next upgrade), garbage (non-JSON text, an object
 *   of unknown keys, a binary frame that is not UTF-8, inlineData with the wrong
 *   mimeType and the wrong rate), stop-answering (no messages, no pongs), close-mid-call (1011).
 *
 * Tools: callTool(name, args) sends `toolCall.functionCalls[{id, name, args}]`;
 * the client's `toolResponse.functionResponses[{id, name, response}]` is checked (a list,
 * ids the fake issued and did not cancel, the matching name, an object `response`; else
 * close 1007 like Google's parser) and recorded, and the model then takes its turn at
 * once (the default blocking behaviour), its outputTranscription saying what it was told
 * ("… tool lookup_order said {…}"). cancelTools() sends `toolCallCancellation.ids` for the
 * calls still open, as the service does when the caller interrupts.
 *
 * What the adapter reports: realtimeInput.text "pressed <digit>" → dtmf (the caller's own
 * input); a clientContent note "first <n> ms" → an interruption with heardMs. Any other
 * realtimeInput.text — a note included — is the caller's words (texts()), as the real
 * service takes it (see src/agents/gemini/session.ts).
 */
import type { IncomingMessage } from 'node:http';
import type { WebSocket, RawData } from 'ws';
import { FakeServer, closeMidCall, setReading, type Refusal } from './fake-server.js';
import { EnergyVad } from '../../src/audio/vad.js';
import type { FakeService } from '../agents/agent-contract.js';

export const GEMINI_PATH = '/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent';
const IN_RATE = 16_000;
const OUT_RATE = 24_000;

export interface FakeGeminiOptions {
  apiKey?: string;
  /** Each connection sends goAway after this long (ms), then closes itself goAwayTimeLeftMs later. */
  connectionLifetimeMs?: number;
  goAwayTimeLeftMs?: number;
  /** Period of sessionResumptionUpdate messages; default 250 ms. */
  handleIntervalMs?: number;
  /** Act on caller audio like the server's activity detection. */
  autoReply?: { replyMs: number; silenceMs?: number; thresholdDbfs?: number };
  /** Which server messages are binary frames. Default 'mixed'. */
  frames?: 'mixed' | 'binary' | 'text';
  /** Audio per chunk and time between chunks; default 100 ms every 20 ms (5× real time). */
  chunkMs?: number;
  chunkIntervalMs?: number;
  /** Extra env for the adapter (merged into `env`). */
  env?: Record<string, string>;
  /** Send goAway {timeLeft: timeLeftMs} once the caller has spoken afterMs of an utterance (once per connection). */
  goAwayMidUtterance?: { afterMs: number; timeLeftMs: number };
  /** Length of the model's answer to a complete user clientContent turn (a greeting request). Default 600. */
  replyToClientTurnMs?: number;
  /** Close 1007 on clientContent sent after the session's first model turn. */
  rejectClientContentAfterTurn?: boolean;
}

/** A clientContent or realtimeInput.text message as the fake received it. */
export interface FakeGeminiNote {
  channel: 'clientContent' | 'realtimeInput';
  role: string | undefined;
  text: string;
  turnComplete: boolean | undefined;
}

interface Turn {
  conn: Conn;
  stopped: boolean;
}

interface Conn {
  id: number;
  ws: WebSocket;
  setup: Record<string, unknown> | undefined;
  /** Logical session this connection serves. */
  session: number;
  resumedWith: string | undefined;
  audioSamples: number;
  turn: Turn | undefined;
  deaf: boolean;
  holdSetup: boolean;
  setupDelayMs: number;
  /** setupComplete was sent. */
  ready: boolean;
  closedBy: 'client' | 'server' | undefined;
  closeCode: number | undefined;
  timers: Set<NodeJS.Timeout>;
  vad: EnergyVad | undefined;
  vadFrame: Int16Array;
  vadLen: number;
  /** Voiced ms of the utterance in progress (activity detection), and whether goAwayMidUtterance fired. */
  speechMs: number;
  goAwaySent: boolean;
  /** Tool calls issued and not yet answered or cancelled: id → name. */
  openCalls: Map<string, string>;
}

/** A logical session: the caller audio it has heard, and whether it had a model turn. */
interface SessionState {
  heard: Int16Array[];
  hadModelTurn: boolean;
}

export interface FakeGemini extends FakeService {
  readonly url: string;
  /** Every connection so far (setup, whether resumed, who closed it). */
  connections(): { id: number; setup: Record<string, unknown> | undefined; resumedWith: string | undefined; audioMs: number; closedBy?: string; closeCode?: number }[];
  /** All caller audio received, in arrival order, across connections. */
  callerSamples(): Int16Array;
  /** Other realtimeInput.text messages: what the service takes as the caller's words. */
  texts(): string[];
  /** Every clientContent turn and realtimeInput.text, with its channel. */
  notes(): FakeGeminiNote[];
  /** The caller audio the current logical session holds (after resumptions dropped what their handles did not cover). */
  sessionAudio(): Int16Array;
  /** Caller samples dropped by resumptions (received after the handle resumed from). */
  droppedOnResume(): number;
  /** Each upgrade request: its query string and whether it carried the x-goog-api-key header (the key itself is not kept). */
  upgrades(): { query: string; keyHeader: boolean }[];
  /** interrupted messages the fake sent. */
  serviceInterruptions(): number;
  /** Sends a raw frame on the current connection. */
  sendRaw(message: string | object, binary?: boolean): void;
  /** Closes the current connection from the service side. */
  closeCurrent(code: number, reason: string): void;
  /** Sends goAway now on the current connection and closes it timeLeftMs later. */
  goAway(timeLeftMs: number): void;
  /** The next connection gets no setupComplete (or gets it after delayMs). */
  holdSetupNext(delayMs?: number): void;
  /** Refuse every upgrade with this HTTP status until called with undefined. */
  refuseUpgrades(status: number | undefined): void;
  upgradesRefused(): number;
  /** Forget every issued handle (a resume then gets close 1008). */
  forgetHandles(): void;
  /** Resolves when a connection has completed setup and is open. */
  waitForConnection(count: number, timeoutMs?: number): Promise<void>;
  /** The model calls a tool on the current connection; returns the call's id. */
  callTool(name: string, args: Record<string, unknown>): string;
  /** toolCallCancellation for every call still open on the current connection; returns their ids. */
  cancelTools(): string[];
  /** Every functionResponse the client sent, in order. */
  toolResponses(): { id: string; name: string; response: Record<string, unknown> }[];
}

export async function startFakeGemini(options: FakeGeminiOptions = {}): Promise<FakeGemini> {
  const apiKey = options.apiKey ?? 'fake-gemini-key-123';
  const frames = options.frames ?? 'mixed';
  const chunkSamples = Math.round(((options.chunkMs ?? 100) * OUT_RATE) / 1000);
  const chunkIntervalMs = options.chunkIntervalMs ?? 20;
  const handleIntervalMs = options.handleIntervalMs ?? 250;

  const conns: Conn[] = [];
  const callerChunks: Int16Array[] = [];
  let callerSampleCount = 0;
  const interruptions: { heardMs?: number }[] = [];
  const dtmf: string[] = [];
  const texts: string[] = [];
  const notes: FakeGeminiNote[] = [];
  const upgrades: { query: string; keyHeader: boolean }[] = [];
  const sessions = new Map<number, SessionState>();
  let droppedOnResume = 0;
  let serviceInterruptions = 0;
  let refuseNext = false;
  let holdNext = false;
  let delayNext = 0;
  let refuseAllStatus: number | undefined;
  let upgradesRefused = 0;
  /** handle → the logical session and how many chunks of its heard audio the handle covers. */
  const handles = new Map<string, { session: number; heard: number }>();
  let handleSeq = 0;
  let sessionSeq = 0;
  let connSeq = 0;
  let turnChain: Promise<void> = Promise.resolve();
  const toolResponses: { id: string; name: string; response: Record<string, unknown> }[] = [];
  /** What the next model turn says it was told by tools. */
  const toolNotes: string[] = [];
  let toolSeq = 0;
  let audioChunkSeq = 0;

  const upgrade = (req: IncomingMessage, u: URL): Refusal | undefined => {
    const reply = (status: number, text: string): Refusal => ({ status, text, body: `{"error":{"code":${status},"message":"${text}"}}` });
    if (u.pathname !== GEMINI_PATH) return reply(404, 'Not Found');
    const headerKey = req.headers['x-goog-api-key'];
    upgrades.push({ query: u.search, keyHeader: typeof headerKey === 'string' && headerKey !== '' });
    if (refuseNext || refuseAllStatus !== undefined) {
      upgradesRefused++;
      const status = refuseAllStatus ?? 403;
      refuseNext = false;
      return reply(status, status === 403 ? 'Forbidden' : 'Service Unavailable');
    }
    // Fake policy (see the file comment): the key belongs in the header, never in the URL.
    if (u.searchParams.has('key')) return reply(400, 'API key in the URL query: send it in the x-goog-api-key header');
    return undefined;
  };
  const keyState = (req: IncomingMessage): 'missing' | 'ok' | 'wrong' => {
    const key = req.headers['x-goog-api-key'];
    return typeof key !== 'string' || key === '' ? 'missing' : key === apiKey ? 'ok' : 'wrong';
  };

  const current = (): Conn | undefined => {
    for (let i = conns.length - 1; i >= 0; i--) {
      const c = conns[i]!;
      if (c.ready && c.closedBy === undefined && c.ws.readyState === c.ws.OPEN) return c;
    }
    return undefined;
  };

  const send = (c: Conn, msg: object | string, binary: boolean) => {
    if (c.deaf || c.ws.readyState !== c.ws.OPEN) return;
    const text = typeof msg === 'string' ? msg : JSON.stringify(msg);
    c.ws.send(binary ? Buffer.from(text, 'utf8') : text, { binary });
  };
  const sendMsg = (c: Conn, msg: object, binaryInMixed = false) => send(c, msg, frames === 'binary' || (frames === 'mixed' && binaryInMixed));

  const after = (c: Conn, ms: number, fn: () => void) => {
    const t = setTimeout(() => {
      c.timers.delete(t);
      fn();
    }, ms);
    c.timers.add(t);
  };

  const serverClose = (c: Conn, code: number, reason: string) => {
    if (c.closedBy !== undefined) return;
    c.closedBy = 'server';
    c.closeCode = code;
    if (c.turn) c.turn.stopped = true;
    closeMidCall(c.ws, code, reason);
    setTimeout(() => c.ws.terminate(), 500).unref();
  };

  const issueHandle = (c: Conn) => {
    if (c.turn !== undefined) {
      sendMsg(c, { sessionResumptionUpdate: { resumable: false } });
      return;
    }
    const h = `fake-handle-${++handleSeq}`;
    handles.set(h, { session: c.session, heard: sessionOf(c).heard.length });
    sendMsg(c, { sessionResumptionUpdate: { newHandle: h, resumable: true } });
  };

  const sessionOf = (c: Conn): SessionState => {
    let st = sessions.get(c.session);
    if (st === undefined) sessions.set(c.session, (st = { heard: [], hadModelTurn: false }));
    return st;
  };

  function onConnection(ws: WebSocket, key: 'ok' | 'wrong' | 'missing'): void {
    const c: Conn = {
      id: ++connSeq,
      ws,
      setup: undefined,
      session: 0,
      resumedWith: undefined,
      audioSamples: 0,
      turn: undefined,
      deaf: false,
      holdSetup: holdNext,
      setupDelayMs: delayNext,
      ready: false,
      closedBy: undefined,
      closeCode: undefined,
      timers: new Set(),
      vad:
        options.autoReply || options.goAwayMidUtterance
          ? new EnergyVad({ sampleRateHz: IN_RATE, thresholdDbfs: options.autoReply?.thresholdDbfs ?? -45, silenceMs: options.autoReply?.silenceMs ?? 700 })
          : undefined,
      vadFrame: new Int16Array(IN_RATE / 50),
      vadLen: 0,
      speechMs: 0,
      goAwaySent: false,
      openCalls: new Map(),
    };
    holdNext = false;
    delayNext = 0;
    conns.push(c);
    ws.on('ping', (data) => {
      if (!c.deaf) ws.pong(data);
    });
    ws.on('close', (code) => {
      if (c.closedBy === undefined) {
        c.closedBy = 'client';
        c.closeCode = code;
      }
      if (c.turn) c.turn.stopped = true;
      for (const t of c.timers) clearTimeout(t);
      c.timers.clear();
    });
    ws.on('error', () => undefined);
    if (key === 'missing') {
      serverClose(c, 1008, "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.".slice(0, 120));
      return;
    }
    if (key === 'wrong') {
      serverClose(c, 1007, 'API key not valid. Please pass a valid API key.');
      return;
    }
    ws.on('message', (data: RawData, isBinary: boolean) => onClientMessage(c, data, isBinary));
  }

  const invalid = (c: Conn, what: string) => serverClose(c, 1007, `Invalid JSON payload received. ${what}`.slice(0, 120));

  function onClientMessage(c: Conn, data: RawData, isBinary: boolean): void {
    if (c.deaf || c.closedBy !== undefined) return;
    let m: Record<string, unknown>;
    try {
      const text = Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.from(data as ArrayBuffer).toString('utf8');
      m = JSON.parse(text) as Record<string, unknown>;
      if (typeof m !== 'object' || m === null || Array.isArray(m)) throw new Error('not an object');
    } catch {
      return invalid(c, `Not JSON (${isBinary ? 'binary' : 'text'} frame).`);
    }
    const keys = Object.keys(m);
    if (keys.length !== 1) return invalid(c, `Expected exactly one field, got ${keys.join(', ')}.`);
    const key = keys[0]!;
    const body = m[key] as Record<string, unknown>;
    if (key === 'setup') return onSetup(c, body);
    if (c.setup === undefined) return invalid(c, 'setup must be the first message.');
    if (key === 'realtimeInput') return onRealtimeInput(c, body);
    if (key === 'clientContent') return onClientContent(c, body);
    if (key === 'toolResponse') return onToolResponse(c, body);
    return invalid(c, `Unknown name "${key}": Cannot find field.`);
  }

  function onToolResponse(c: Conn, body: Record<string, unknown>): void {
    const list = body?.['functionResponses'];
    if (!Array.isArray(list)) return invalid(c, 'toolResponse.functionResponses must be a list.');
    const said: string[] = [];
    for (const r of list as Record<string, unknown>[]) {
      const id = r?.['id'];
      const name = r?.['name'];
      const response = r?.['response'];
      if (typeof id !== 'string' || typeof name !== 'string' || typeof response !== 'object' || response === null || Array.isArray(response)) return invalid(c, 'functionResponses[] must have a string id and name and an object response.');
      if (c.openCalls.get(id) !== name) return invalid(c, `No open function call ${JSON.stringify(id)} named ${JSON.stringify(name)}.`);
      c.openCalls.delete(id);
      toolResponses.push({ id, name, response: response as Record<string, unknown> });
      said.push(` tool ${name} said ${JSON.stringify(response)}`);
    }
    toolNotes.push(...said);
    void fake.speak(300);
  }

  function onSetup(c: Conn, s: Record<string, unknown>): void {
    if (c.setup !== undefined) return invalid(c, 'setup may only be sent once.');
    if (typeof s?.['model'] !== 'string' || !/^models\/[a-z0-9.-]+$/.test(s['model'])) return invalid(c, 'setup.model must be models/<name>.');
    const gc = s['generationConfig'] as Record<string, unknown> | undefined;
    if (JSON.stringify(gc?.['responseModalities']) !== '["AUDIO"]') return invalid(c, 'responseModalities must be ["AUDIO"] for this model.');
    const sr = s['sessionResumption'] as Record<string, unknown> | undefined;
    if (sr !== undefined && 'transparent' in sr) return invalid(c, 'Unknown name "transparent" at setup.session_resumption.');
    c.setup = s;
    const handle = typeof sr?.['handle'] === 'string' ? sr['handle'] : undefined;
    if (handle !== undefined) {
      c.resumedWith = handle;
      const h = handles.get(handle);
      if (h === undefined) return serverClose(c, 1008, 'Requested entity was not found.');
      c.session = h.session;
      // No transparent mode: what the session heard after this handle is gone.
      const st = sessionOf(c);
      for (const lost of st.heard.splice(h.heard)) droppedOnResume += lost.length;
      for (const [k, v] of handles) if (v.session === h.session && v.heard > h.heard) handles.delete(k);
    } else c.session = ++sessionSeq;
    if (c.holdSetup) return;
    if (c.setupDelayMs > 0) after(c, c.setupDelayMs, () => completeSetup(c, sr));
    else completeSetup(c, sr);
  }

  function completeSetup(c: Conn, sr: Record<string, unknown> | undefined): void {
    c.ready = true;
    sendMsg(c, { setupComplete: {} }, true);
    const every = setInterval(() => {
      if (c.closedBy !== undefined || c.ws.readyState !== c.ws.OPEN) clearInterval(every);
      else if (sr !== undefined) issueHandle(c);
    }, handleIntervalMs);
    c.timers.add(every as unknown as NodeJS.Timeout);
    if (sr !== undefined) issueHandle(c);
    if (options.connectionLifetimeMs !== undefined) {
      const left = options.goAwayTimeLeftMs ?? 1000;
      after(c, options.connectionLifetimeMs, () => sendGoAway(c, left));
    }
  }

  function sendGoAway(c: Conn, leftMs: number): void {
    sendMsg(c, { goAway: { timeLeft: `${(leftMs / 1000).toFixed(3).replace(/\.?0+$/, '')}s` } });
    after(c, leftMs, () => serverClose(c, 1001, 'Connection lifetime reached.'));
  }

  function onRealtimeInput(c: Conn, r: Record<string, unknown>): void {
    const keys = Object.keys(r ?? {});
    if (keys.length !== 1) return invalid(c, 'realtimeInput must have one field.');
    if ('audio' in r) {
      const a = r['audio'] as Record<string, unknown>;
      if (a?.['mimeType'] !== `audio/pcm;rate=${IN_RATE}`) return invalid(c, `Unsupported audio mimeType ${String(a?.['mimeType'])}.`);
      const data = a['data'];
      if (typeof data !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(data)) return invalid(c, 'audio.data is not base64.');
      const bytes = Buffer.from(data, 'base64');
      if (bytes.length % 2 !== 0) return invalid(c, 'audio.data is not whole PCM16 samples.');
      const pcm = new Int16Array(bytes.length / 2);
      Buffer.from(pcm.buffer).set(bytes);
      callerChunks.push(pcm);
      callerSampleCount += pcm.length;
      c.audioSamples += pcm.length;
      sessionOf(c).heard.push(pcm);
      if (c.vad) runVad(c, pcm);
      return;
    }
    if ('text' in r) {
      // realtimeInput "is always assumed to be the user's input": whatever it says, the caller said it.
      const t = String(r['text']);
      notes.push({ channel: 'realtimeInput', role: undefined, text: t, turnComplete: undefined });
      const digit = /pressed ([0-9*#A-D]) on/.exec(t);
      if (digit) dtmf.push(digit[1]!);
      else texts.push(t);
      return;
    }
    if ('audioStreamEnd' in r || 'activityStart' in r || 'activityEnd' in r || 'video' in r || 'mediaChunks' in r) return;
    return invalid(c, `Unknown name "${keys[0]}" at realtime_input.`);
  }

  function onClientContent(c: Conn, b: Record<string, unknown>): void {
    const turns = b?.['turns'];
    const turnComplete = b?.['turnComplete'];
    if (turns !== undefined && !Array.isArray(turns)) return invalid(c, 'clientContent.turns must be a list.');
    if (turnComplete !== undefined && typeof turnComplete !== 'boolean') return invalid(c, 'clientContent.turnComplete must be a bool.');
    for (const t of (turns ?? []) as unknown[]) {
      const turn = t as Record<string, unknown> | null;
      const role = turn?.['role'];
      const parts = turn?.['parts'];
      if (role !== 'user' && role !== 'model') return invalid(c, `Invalid value at 'client_content.turns.role' (${JSON.stringify(role)}).`);
      if (!Array.isArray(parts) || parts.some((p) => typeof (p as Record<string, unknown>)?.['text'] !== 'string')) return invalid(c, 'clientContent.turns.parts must be text parts.');
    }
    if (options.rejectClientContentAfterTurn && sessionOf(c).hadModelTurn) return serverClose(c, 1007, 'Request contains an invalid argument.');
    for (const t of (turns ?? []) as { role: string; parts: { text: string }[] }[]) {
      const text = t.parts.map((p) => p.text).join('');
      notes.push({ channel: 'clientContent', role: t.role, text, turnComplete: turnComplete as boolean | undefined });
      const heard = /first (\d+) ms/.exec(text);
      if (heard) interruptions.push({ heardMs: Number(heard[1]) });
    }
    // A complete user turn is answered at once (the model takes its turn), as the service does.
    if (turnComplete === true && ((turns ?? []) as { role: string }[]).some((t) => t.role === 'user')) void fake.speak(options.replyToClientTurnMs ?? 600);
  }

  function runVad(c: Conn, pcm: Int16Array): void {
    const vad = c.vad!;
    let i = 0;
    while (i < pcm.length) {
      const n = Math.min(c.vadFrame.length - c.vadLen, pcm.length - i);
      c.vadFrame.set(pcm.subarray(i, i + n), c.vadLen);
      c.vadLen += n;
      i += n;
      if (c.vadLen < c.vadFrame.length) break;
      c.vadLen = 0;
      const ev = vad.process(c.vadFrame);
      if (ev === 'speechStart' || ev === 'speech') c.speechMs += 20;
      if (ev === 'speechStart' && c.turn !== undefined && options.autoReply) void fake.interruptFromService();
      const g = options.goAwayMidUtterance;
      if (g && !c.goAwaySent && vad.speaking && c.speechMs >= g.afterMs) {
        c.goAwaySent = true;
        sendGoAway(c, g.timeLeftMs);
      }
      if (ev === 'speechEnd') {
        c.speechMs = 0;
        if (options.autoReply) void fake.speak(options.autoReply.replyMs);
      }
    }
  }

  const tone = (n: number, offset: number) => {
    const a = new Int16Array(n);
    for (let i = 0; i < n; i++) a[i] = Math.round(8000 * Math.sin((2 * Math.PI * 330 * (offset + i)) / OUT_RATE));
    return a;
  };

  async function waitForCurrent(timeoutMs: number): Promise<Conn | undefined> {
    const t0 = Date.now();
    for (;;) {
      const c = current();
      if (c !== undefined || Date.now() - t0 > timeoutMs) return c;
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** One model turn; `started` resolves when its first chunk is out (or it could not start). */
  async function runTurn(ms: number, started: () => void): Promise<void> {
    const c = await waitForCurrent(5000);
    if (c === undefined || c.turn !== undefined) return started();
    const turn: Turn = { conn: c, stopped: false };
    c.turn = turn;
    sessionOf(c).hadModelTurn = true;
    const total = Math.round((ms * OUT_RATE) / 1000);
    const t0 = Date.now();
    let sent = 0;
    while (sent < total && !turn.stopped) {
      const n = Math.min(chunkSamples, total - sent);
      const pcm = tone(n, sent);
      const data = Buffer.from(pcm.buffer).toString('base64');
      sendMsg(c, { serverContent: { modelTurn: { parts: [{ inlineData: { mimeType: `audio/pcm;rate=${OUT_RATE}`, data } }] } } }, ++audioChunkSeq % 2 === 0);
      sent += n;
      if (sent === n) started();
      await new Promise((r) => setTimeout(r, chunkIntervalMs));
    }
    if (turn.stopped) return started();
    sendMsg(c, { serverContent: { outputTranscription: { text: `(${ms} ms of tone)${toolNotes.splice(0).join('')}` } } });
    sendMsg(c, { serverContent: { generationComplete: true } });
    // The real server holds turnComplete for the playback time it assumes (js-genai `generationComplete` doc).
    const playbackLeft = ms - (Date.now() - t0);
    if (playbackLeft > 0) await new Promise((r) => setTimeout(r, playbackLeft));
    if (turn.stopped) return;
    c.turn = undefined;
    sendMsg(c, { serverContent: { turnComplete: true } });
    if (c.setup?.['sessionResumption'] !== undefined) issueHandle(c);
  }

  const server = await FakeServer.start({
    wss: { autoPong: false, maxPayload: 16 * 1024 * 1024 },
    upgrade,
    connection: (ws, req) => onConnection(ws, keyState(req)),
  });
  const url = server.url(GEMINI_PATH);

  const fake: FakeGemini = {
    url,
    env: { GEMINI_API_KEY: apiKey, GEMINI_LIVE_URL: url, GEMINI_PING_INTERVAL_MS: '200', GEMINI_IDLE_TIMEOUT_MS: '1500', GEMINI_CONNECT_TIMEOUT_MS: '2000', ...options.env },
    speak(ms: number): Promise<void> {
      return new Promise<void>((started) => {
        turnChain = turnChain.then(() => runTurn(ms, started)).catch(() => started());
      });
    },
    async interruptFromService(): Promise<void> {
      const c = current();
      if (c === undefined) return;
      serviceInterruptions++;
      const hadTurn = c.turn !== undefined;
      if (c.turn) c.turn.stopped = true;
      c.turn = undefined;
      sendMsg(c, { serverContent: { interrupted: true } }, true);
      if (hadTurn) sendMsg(c, { serverContent: { turnComplete: true } });
    },
    callTool(name: string, args: Record<string, unknown>): string {
      const c = current();
      if (c === undefined) throw new Error('fake gemini: no open connection');
      const id = `fc_${++toolSeq}`;
      c.openCalls.set(id, name);
      sendMsg(c, { toolCall: { functionCalls: [{ id, name, args }] } });
      return id;
    },
    cancelTools(): string[] {
      const c = current();
      if (c === undefined) return [];
      const ids = [...c.openCalls.keys()];
      c.openCalls.clear();
      if (ids.length > 0) sendMsg(c, { toolCallCancellation: { ids } });
      return ids;
    },
    toolResponses: () => toolResponses.map((r) => ({ ...r })),
    received() {
      const last = conns[conns.length - 1];
      return {
        audioMs: (callerSampleCount * 1000) / IN_RATE,
        interruptions: interruptions.map((x) => ({ ...x })),
        dtmf: [...dtmf],
        closed: last !== undefined && last.closedBy === 'client',
      };
    },
    async fault(kind) {
      const c = current();
      switch (kind) {
        case 'refuse-next':
          refuseNext = true;
          return;
        case 'garbage':
          if (!c) return;
          send(c, 'this is not json {', false);
          send(c, { bogus: { x: 1 } }, false);
          c.ws.send(Buffer.from([0xff, 0xfe, 0xfd]), { binary: true });
          send(c, { serverContent: { modelTurn: { parts: [{ inlineData: { mimeType: 'audio/pcm;rate=16000', data: Buffer.from(tone(320, 0).buffer).toString('base64') } }] } } }, true);
          send(c, { serverContent: { modelTurn: { parts: [{ inlineData: { mimeType: 'audio/wav', data: 'UklGRg==' } }] } } }, false);
          send(c, { serverContent: { turnComplete: true } }, false);
          return;
        case 'stop-answering':
          if (c) c.deaf = true;
          return;
        case 'stop-reading':
        case 'resume-reading':
          if (c) setReading(c.ws, kind === 'resume-reading');
          return;
        case 'close-mid-call':
          if (c) serverClose(c, 1011, 'Internal error occurred.');
          return;
      }
    },
    connections: () =>
      conns.map((c) => ({ id: c.id, setup: c.setup, resumedWith: c.resumedWith, audioMs: (c.audioSamples * 1000) / IN_RATE, closedBy: c.closedBy, closeCode: c.closeCode })),
    callerSamples() {
      const out = new Int16Array(callerSampleCount);
      let o = 0;
      for (const ch of callerChunks) {
        out.set(ch, o);
        o += ch.length;
      }
      return out;
    },
    texts: () => [...texts],
    notes: () => notes.map((n) => ({ ...n })),
    sessionAudio() {
      const last = conns.filter((c) => c.setup !== undefined).at(-1);
      const heard = last === undefined ? [] : sessionOf(last).heard;
      const out = new Int16Array(heard.reduce((n, x) => n + x.length, 0));
      let o = 0;
      for (const ch of heard) {
        out.set(ch, o);
        o += ch.length;
      }
      return out;
    },
    droppedOnResume: () => droppedOnResume,
    upgrades: () => upgrades.map((u) => ({ ...u })),
    serviceInterruptions: () => serviceInterruptions,
    sendRaw(message, binary = false) {
      const c = current();
      if (c) send(c, message, binary);
    },
    closeCurrent(code, reason) {
      const c = current();
      if (c) serverClose(c, code, reason);
    },
    goAway(timeLeftMs) {
      const c = current();
      if (c) sendGoAway(c, timeLeftMs);
    },
    holdSetupNext(delayMs?: number) {
      if (delayMs === undefined) holdNext = true;
      else delayNext = delayMs;
    },
    refuseUpgrades(status) {
      refuseAllStatus = status;
    },
    upgradesRefused: () => upgradesRefused,
    forgetHandles() {
      handles.clear();
    },
    async waitForConnection(count, timeoutMs = 5000) {
      const t0 = Date.now();
      while (conns.filter((c) => c.ready).length < count || current() === undefined) {
        if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for connection ${count}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    async close() {
      for (const c of conns) {
        if (c.turn) c.turn.stopped = true;
        for (const t of c.timers) clearTimeout(t);
      }
      await server.close();
    },
  };
  return fake;
}
