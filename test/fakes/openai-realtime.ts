/**
 * A fake OpenAI Realtime API (GA interface) on 127.0.0.1:0, written from
 * https://platform.openai.com/docs/api-reference/realtime: a real WebSocket server the
 * adapter connects to with its real code. It implements the agent contract's FakeService
 * plus what the OpenAI tests need.
 *
 * ```text
 *   upgrade GET /v1/realtime?model=…  Authorization: Bearer <key>     (401 wrong key, 400 no model,
 *                                                                     refuse-next: 503/401; OpenAI-Beta header → close 4000)
 *   ◄── session.created
 *   ── session.update {session.type:"realtime", audio.input/output.format …} ──► session.updated (or error)
 *   ── input_audio_buffer.append ──► decoded per the input format, counted in ms (and kept)
 *        [vad on] energy VAD ──► speech_started (with turn_detection.interrupt_response, the default, the
 *                                service cancels a response in progress itself: turn_detected)
 *                            ──► speech_stopped, committed, conversation.item.added,
 *                                input transcription completed ──► [autoAnswer] a response
 *   speak(ms) / response.create ──► response.created, output_item.added, content_part.added,
 *        output_audio.delta ×N (chunkMs each, every chunkIntervalMs: faster than real time),
 *        output_audio_transcript.delta/done, output_audio.done, output_item.done, response.done
 *   ── conversation.item.truncate ──► conversation.item.truncated, or an error when audio_end_ms is
 *        past the audio the item has (as the real API) — recorded as an interruption with heardMs
 *   ── response.cancel ──► the response ends `cancelled`; with nothing to cancel (none, or one the service
 *        already cancelled on speech_started): error response_cancel_not_active, "Cancellation failed: no
 *        active response found" (as the real API)
 *   ── conversation.item.create ──► conversation.item.added + done; "pressed 5" text is recorded as DTMF
 *   callTool(name, args) ──► response.created, output_item.added + done (a `function_call` item with
 *        call_id, name, arguments as JSON text), response.done — no audio (as the real API)
 *   ── conversation.item.create {function_call_output} ──► recorded; the next reply's transcript says
 *        what the tool answered ("… tool lookup_order said {…}"): the model answers with it
 * ```
 *
 * Quirks modelled: after a cancel (ours or the VAD's) `lateDeltasAfterCancel` deltas of
 * the cancelled response that were already queued still arrive before its response.done;
 * the session cap (`sessionMaxMs`) ends a session with error `session_expired` and a
 * close (the real close code is not documented: 1000 assumed).
 * Faults: refuse-next, garbage (bad JSON, an unknown event type, a delta that is not
 * base64), stop-answering (no frames, no pongs, input ignored), close-mid-call (1011 or 1000).
 */
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import type { WebSocket } from 'ws';
import { FakeServer, closeMidCall, setReading, type Refusal } from './fake-server.js';
import { readWav } from '../../src/audio/wav.js';
import { EnergyVad } from '../../src/audio/vad.js';
import { ULAW_DECODE, encodeUlawSample } from '../../src/dsp/ts/g711.js';
import type { FakeService } from '../agents/agent-contract.js';

export type FakeFormat = 'audio/pcmu' | 'audio/pcm';

export interface FakeOpenAiOptions {
  apiKey?: string;
  /** The fake's own session cap (the real one is 60 min): error session_expired, then close. */
  sessionMaxMs?: number;
  /** Run an energy VAD on caller audio (speech_started / speech_stopped / committed). Default false. */
  vad?: boolean;
  /** VAD silence that ends a caller turn (server_vad silence_duration_ms). Default 500. */
  vadSilenceMs?: number;
  /** With vad: answer each caller turn with a response. */
  autoAnswer?: boolean;
  /** Length of answers (auto and response.create); a list gives the n-th answer its length (the last repeats). Default 1000. */
  replyMs?: number | number[];
  /** Audio per delta and time between deltas. Default 100 ms every 10 ms (10× real time). */
  chunkMs?: number;
  chunkIntervalMs?: number;
  /** Deltas of a cancelled response still sent after the cancel. Default 3. */
  lateDeltasAfterCancel?: number;
  /** Extra env merged into `env` (adapter tuning). */
  env?: Record<string, string>;
  /**
   * The service applies this turn_detection.interrupt_response whatever the client asked
   * (and says so in session.updated); default: what the client's session.update asked.
   */
  applyInterruptResponse?: boolean;
}

export interface FakeResponse {
  id: string;
  itemId: string;
  /** Audio ms sent so far. */
  sentMs: number;
  totalMs: number;
  status: 'in_progress' | 'completed' | 'cancelled';
  cancelReason?: string;
  deltasAfterCancel: number;
}

export interface FakeConnection {
  id: number;
  ws: WebSocket;
  openedAt: number;
  sessionUpdates: Record<string, any>[];
  inputFormat: FakeFormat;
  outputFormat: FakeFormat;
  /** Caller audio received, raw bytes in the input format, in order. */
  audio: Buffer[];
  audioBytes: number;
  /** Items the client created (conversation.item.create), in order. */
  items: Record<string, any>[];
  /** Assistant items: audio ms sent per item (truncate is checked against it). */
  assistantItems: Map<string, { audioMs: number }>;
  truncates: { itemId: string; audioEndMs: number; ok: boolean }[];
  cancels: { responseId?: string; active: boolean }[];
  /** turn_detection.interrupt_response in effect: speech_started cancels the response in progress. Default true. */
  interruptResponse: boolean;
  responses: FakeResponse[];
  current: FakeResponse | undefined;
  /** Error events the fake sent (the adapter's mistakes show up here). */
  errorsSent: { code: string; message: string }[];
  closedBy: 'client' | 'server' | null;
  closedAt: number | null;
  closeCode: number | null;
  expired: boolean;
  stopped: boolean;
  vad: EnergyVad | undefined;
  userTurns: number;
  serverClosing: boolean;
  /** response.create messages the client sent (a greeting's carries response.instructions). */
  responseCreates: Record<string, any>[];
  /** function_call_output items not yet used by a reply. */
  toolOutputs: { callId: string; output: string }[];
  /** call_id → tool name, of the calls this connection made. */
  toolCalls: Map<string, string>;
}

export interface FakeOpenAi extends FakeService {
  readonly url: string;
  readonly apiKey: string;
  readonly connections: FakeConnection[];
  /** The connection speak()/faults act on: the newest open one. */
  readonly current: FakeConnection | undefined;
  /** Upgrades refused so far (status codes). */
  readonly refused: number[];
  /** The bytes a response of `ms` carries in `format` (what the caller should hear). */
  audioFor(format: FakeFormat, ms: number): Buffer;
  refuseNext(status: number, count?: number): void;
  /** Hardening tests: the next upgrade is answered only after `ms` (a slow handshake). */
  delayNextUpgrade(ms: number): void;
  /** Send anything raw to the current connection. */
  sendRaw(text: string): void;
  /** The model calls a tool: a response whose only output is a function_call item; resolves with its call_id after response.done. */
  callTool(name: string, args: Record<string, unknown> | string): Promise<string>;
  /** As FakeService.fault, with the close code for close-mid-call and the HTTP status for refuse-next. */
  fault(kind: 'refuse-next' | 'garbage' | 'stop-answering' | 'close-mid-call' | 'stop-reading' | 'resume-reading', opts?: { code?: number; status?: number }): Promise<void>;
}

const bytesPerMs = (f: FakeFormat) => (f === 'audio/pcmu' ? 8 : 48);

let reply24k: Int16Array | undefined;
async function replySource(): Promise<Int16Array> {
  if (!reply24k) {
    const w = await readWav(join(import.meta.dirname, '..', 'fixtures', 'agent-reply.24k-pcm16.wav'));
    if (w.encoding !== 'pcm16' || w.sampleRateHz !== 24000) throw new Error('agent-reply fixture is not 24 kHz PCM16');
    reply24k = w.data as Int16Array;
  }
  return reply24k;
}

export async function startFakeOpenAi(options: FakeOpenAiOptions = {}): Promise<FakeOpenAi> {
  const apiKey = options.apiKey ?? 'sk-fake-' + Math.random().toString(36).slice(2);
  const chunkMs = options.chunkMs ?? 100;
  const chunkIntervalMs = options.chunkIntervalMs ?? 10;
  const lateDeltas = options.lateDeltasAfterCancel ?? 3;
  const src = await replySource();
  // The reply as the service would send it: PCM16 LE 24 kHz, or μ-law 8 kHz (3:1 average then G.711).
  const pcmBytes = Buffer.from(src.buffer, src.byteOffset, src.byteLength);
  const ulawBytes = Buffer.alloc(Math.floor(src.length / 3));
  for (let i = 0; i < ulawBytes.length; i++) ulawBytes[i] = encodeUlawSample(Math.round((src[3 * i]! + src[3 * i + 1]! + src[3 * i + 2]!) / 3));
  const audioFor = (format: FakeFormat, ms: number): Buffer => {
    const source = format === 'audio/pcmu' ? ulawBytes : pcmBytes;
    const n = Math.round(ms * bytesPerMs(format));
    const out = Buffer.alloc(n);
    for (let off = 0; off < n; off += source.length) source.copy(out, off, 0, Math.min(source.length, n - off));
    return out;
  };

  let answers = 0;
  const nextReplyMs = (): number => {
    const r = options.replyMs ?? 1000;
    return Array.isArray(r) ? r[Math.min(answers++, r.length - 1)]! : r;
  };
  const connections: FakeConnection[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let ids = 0;
  let seq = 0;
  const later = (ms: number, fn: () => void) => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  };

  const send = (c: FakeConnection, ev: Record<string, unknown>) => {
    if (c.stopped || c.ws.readyState !== c.ws.OPEN) return;
    c.ws.send(JSON.stringify({ event_id: `event_${++seq}`, ...ev }));
  };
  const sendError = (c: FakeConnection, code: string, message: string, type = 'invalid_request_error', param: string | null = null) => {
    c.errorsSent.push({ code, message });
    send(c, { type: 'error', error: { type, code, message, param, event_id: null } });
  };

  const sessionObject = (c: FakeConnection, model: string, extra: Record<string, any> = {}) => ({
    type: 'realtime',
    object: 'realtime.session',
    id: `sess_${c.id}`,
    model,
    output_modalities: ['audio'],
    instructions: '',
    ...extra,
    audio: {
      input: { format: c.inputFormat === 'audio/pcm' ? { type: 'audio/pcm', rate: 24000 } : { type: c.inputFormat }, turn_detection: { type: 'server_vad' }, ...(extra['audio']?.input ?? {}) },
      output: { voice: 'alloy', ...(extra['audio']?.output ?? {}), format: c.outputFormat === 'audio/pcm' ? { type: 'audio/pcm', rate: 24000 } : { type: c.outputFormat } },
    },
  });

  /** A response of `ms` audio, sent in chunks; resolves after its response.done. */
  const respond = (c: FakeConnection, ms: number): Promise<void> => {
    if (c.current) {
      sendError(c, 'conversation_already_has_active_response', 'Conversation already has an active response in progress');
      return Promise.resolve();
    }
    const n = ++seq;
    const r: FakeResponse = { id: `resp_${n}`, itemId: `item_${n}`, sentMs: 0, totalMs: ms, status: 'in_progress', deltasAfterCancel: 0 };
    c.responses.push(r);
    c.current = r;
    c.assistantItems.set(r.itemId, { audioMs: 0 });
    const audio = audioFor(c.outputFormat, ms);
    const bpm = bytesPerMs(c.outputFormat);
    const ids = { response_id: r.id, item_id: r.itemId, output_index: 0, content_index: 0 };
    const used = c.toolOutputs.splice(0);
    const transcript = `[agent reply ${n}: ${ms} ms]${used.map((o) => ` tool ${c.toolCalls.get(o.callId) ?? '?'} said ${o.output}`).join('')}`;
    send(c, { type: 'response.created', response: { id: r.id, object: 'realtime.response', status: 'in_progress', output: [] } });
    send(c, { type: 'rate_limits.updated', rate_limits: [{ name: 'tokens', limit: 40000, remaining: 39000, reset_seconds: 1.5 }] });
    send(c, { type: 'response.output_item.added', response_id: r.id, output_index: 0, item: { id: r.itemId, type: 'message', role: 'assistant', status: 'in_progress', content: [] } });
    send(c, { type: 'conversation.item.added', previous_item_id: null, item: { id: r.itemId, type: 'message', role: 'assistant', status: 'in_progress', content: [] } });
    send(c, { type: 'response.content_part.added', ...ids, part: { type: 'audio', transcript: '' } });
    return new Promise<void>((resolve) => {
      const finish = () => {
        send(c, { type: 'response.output_audio.done', ...ids });
        send(c, { type: 'response.output_audio_transcript.done', ...ids, transcript });
        send(c, { type: 'response.content_part.done', ...ids, part: { type: 'audio', transcript } });
        send(c, { type: 'response.output_item.done', response_id: r.id, output_index: 0, item: { id: r.itemId, type: 'message', role: 'assistant', status: r.status === 'cancelled' ? 'incomplete' : 'completed' } });
        if (r.status === 'in_progress') r.status = 'completed';
        send(c, {
          type: 'response.done',
          response: { id: r.id, object: 'realtime.response', status: r.status, status_details: r.status === 'cancelled' ? { type: 'cancelled', reason: r.cancelReason } : null, output: [{ id: r.itemId, type: 'message', role: 'assistant' }] },
        });
        if (c.current === r) c.current = undefined;
        resolve();
      };
      const step = () => {
        if (c.ws.readyState !== c.ws.OPEN || c.stopped) {
          if (c.current === r) c.current = undefined;
          return resolve();
        }
        const cancelled = r.status === 'cancelled';
        if (r.sentMs >= ms || (cancelled && r.deltasAfterCancel >= lateDeltas)) return finish();
        const take = Math.min(chunkMs, ms - r.sentMs);
        const from = Math.round(r.sentMs * bpm);
        const chunk = audio.subarray(from, from + Math.round(take * bpm));
        send(c, { type: 'response.output_audio.delta', ...ids, delta: chunk.toString('base64') });
        send(c, { type: 'response.output_audio_transcript.delta', ...ids, delta: r.sentMs === 0 ? transcript : '' });
        r.sentMs += take;
        c.assistantItems.get(r.itemId)!.audioMs = r.sentMs;
        if (cancelled) r.deltasAfterCancel++;
        later(chunkIntervalMs, step);
      };
      step();
    });
  };

  const cancel = (c: FakeConnection, reason: 'turn_detected' | 'client_cancelled') => {
    const r = c.current;
    if (!r || r.status !== 'in_progress') return false;
    r.status = 'cancelled';
    r.cancelReason = reason;
    return true;
  };

  const speechStarted = (c: FakeConnection, audioStartMs: number) => {
    c.userTurns++;
    send(c, { type: 'input_audio_buffer.speech_started', audio_start_ms: audioStartMs, item_id: `item_user_${c.id}_${c.userTurns}` });
    if (c.interruptResponse) cancel(c, 'turn_detected');
  };

  const speechStopped = (c: FakeConnection, startMs: number, endMs: number) => {
    const itemId = `item_user_${c.id}_${c.userTurns}`;
    send(c, { type: 'input_audio_buffer.speech_stopped', audio_end_ms: endMs, item_id: itemId });
    send(c, { type: 'input_audio_buffer.committed', item_id: itemId, previous_item_id: null });
    send(c, { type: 'conversation.item.added', previous_item_id: null, item: { id: itemId, type: 'message', role: 'user', content: [{ type: 'input_audio', transcript: null }] } });
    send(c, { type: 'conversation.item.input_audio_transcription.completed', item_id: itemId, content_index: 0, transcript: `[caller turn ${c.userTurns}: ${endMs - startMs} ms]`, usage: { type: 'duration', seconds: (endMs - startMs) / 1000 } });
    if (options.autoAnswer) void respond(c, nextReplyMs());
  };

  const onAppend = (c: FakeConnection, b64: string) => {
    if (typeof b64 !== 'string' || b64.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) {
      sendError(c, 'invalid_value', 'Invalid base64 audio', 'invalid_request_error', 'audio');
      return;
    }
    const bytes = Buffer.from(b64, 'base64');
    if (c.audioBytes < 8 * 1024 * 1024) c.audio.push(bytes);
    c.audioBytes += bytes.length;
    if (!c.vad) return;
    let pcm: Int16Array;
    if (c.inputFormat === 'audio/pcmu') {
      pcm = new Int16Array(bytes.length);
      for (let i = 0; i < bytes.length; i++) pcm[i] = ULAW_DECODE[bytes[i]!]!;
    } else {
      pcm = new Int16Array(bytes.length >> 1);
      for (let i = 0; i < pcm.length; i++) pcm[i] = bytes.readInt16LE(2 * i);
    }
    const frame = c.vad.frameSamples;
    for (let i = 0; i + frame <= pcm.length; i += frame) {
      const ev = c.vad.process(pcm.subarray(i, i + frame));
      const rate = c.vad.sampleRateHz / 1000;
      if (ev === 'speechStart') speechStarted(c, Math.round(c.vad.speechStartSample / rate));
      else if (ev === 'speechEnd') speechStopped(c, Math.round(c.vad.speechStartSample / rate), Math.round(c.vad.speechEndSample / rate));
    }
  };

  const onClientEvent = (c: FakeConnection, text: string) => {
    let m: any;
    try {
      m = JSON.parse(text);
    } catch {
      sendError(c, 'invalid_json', 'The server could not parse the event as JSON');
      return;
    }
    switch (m?.type) {
      case 'session.update': {
        const s = m.session;
        if (!s || s.type !== 'realtime') {
          sendError(c, s?.type === undefined ? 'missing_required_parameter' : 'invalid_value', "Missing or invalid 'session.type': expected 'realtime'", 'invalid_request_error', 'session.type');
          return;
        }
        const fmt = (x: any): FakeFormat | undefined => (x?.type === 'audio/pcmu' ? 'audio/pcmu' : x?.type === 'audio/pcm' && (x.rate === undefined || x.rate === 24000) ? 'audio/pcm' : undefined);
        const inF = s.audio?.input?.format === undefined ? c.inputFormat : fmt(s.audio.input.format);
        const outF = s.audio?.output?.format === undefined ? c.outputFormat : fmt(s.audio.output.format);
        if (!inF || !outF) {
          sendError(c, 'invalid_value', 'Unsupported audio format', 'invalid_request_error', 'session.audio');
          return;
        }
        c.inputFormat = inF;
        c.outputFormat = outF;
        c.sessionUpdates.push(s);
        // turn_detection: null turns the server VAD off; interrupt_response defaults to true.
        const td = s.audio?.input?.turn_detection;
        if (td !== undefined) c.interruptResponse = td !== null && td.interrupt_response !== false;
        if (options.applyInterruptResponse !== undefined) c.interruptResponse = options.applyInterruptResponse;
        if (options.vad) c.vad = new EnergyVad({ sampleRateHz: inF === 'audio/pcmu' ? 8000 : 24000, silenceMs: options.vadSilenceMs ?? 500 });
        const applied = td === null || td === undefined ? s : { ...s, audio: { ...s.audio, input: { ...s.audio.input, turn_detection: { ...td, interrupt_response: c.interruptResponse } } } };
        send(c, { type: 'session.updated', session: sessionObject(c, s.model ?? 'gpt-realtime-2.1', applied) });
        return;
      }
      case 'input_audio_buffer.append':
        onAppend(c, m.audio);
        return;
      case 'conversation.item.create': {
        const item = m.item ?? {};
        if (item.type === 'function_call_output') {
          if (typeof item.call_id !== 'string' || !c.toolCalls.has(item.call_id) || typeof item.output !== 'string') {
            sendError(c, 'invalid_value', `Invalid function_call_output: unknown call_id or no output string`, 'invalid_request_error', 'item.call_id');
            return;
          }
          c.toolOutputs.push({ callId: item.call_id, output: item.output });
        }
        c.items.push(item);
        const id = `item_c_${++seq}`;
        send(c, { type: 'conversation.item.added', previous_item_id: null, item: { ...item, id } });
        send(c, { type: 'conversation.item.done', previous_item_id: null, item: { ...item, id, status: 'completed' } });
        return;
      }
      case 'conversation.item.truncate': {
        const item = c.assistantItems.get(m.item_id);
        const end = m.audio_end_ms;
        if (!item) {
          c.truncates.push({ itemId: m.item_id, audioEndMs: end, ok: false });
          sendError(c, 'item_not_found', `Item with item_id '${m.item_id}' not found`, 'invalid_request_error', 'item_id');
        } else if (!Number.isInteger(end) || end < 0 || end > item.audioMs) {
          c.truncates.push({ itemId: m.item_id, audioEndMs: end, ok: false });
          sendError(c, 'invalid_value', `Audio content of ${item.audioMs}ms is already shorter than ${end}ms`, 'invalid_request_error', 'audio_end_ms');
        } else {
          c.truncates.push({ itemId: m.item_id, audioEndMs: end, ok: true });
          send(c, { type: 'conversation.item.truncated', item_id: m.item_id, content_index: 0, audio_end_ms: end });
        }
        return;
      }
      case 'response.cancel': {
        const active = cancel(c, 'client_cancelled');
        c.cancels.push({ responseId: m.response_id, active });
        if (!active) sendError(c, 'response_cancel_not_active', 'Cancellation failed: no active response found');
        return;
      }
      case 'response.create':
        c.responseCreates.push(m);
        void respond(c, nextReplyMs());
        return;
      case 'input_audio_buffer.commit':
      case 'input_audio_buffer.clear':
        return;
      default:
        sendError(c, 'invalid_value', `Invalid value: '${String(m?.type).slice(0, 60)}'`, 'invalid_request_error', 'type');
    }
  };

  const refusal = (status: number, body: object): Refusal => ({ status, text: 'Refused', body: JSON.stringify(body) });
  const injected = (status: number): Refusal =>
    refusal(status, { error: { type: status === 401 ? 'invalid_request_error' : 'server_error', code: status === 401 ? 'invalid_api_key' : null, message: `refused (${status})` } });
  const upgrade = (req: IncomingMessage, u: URL): Refusal | undefined => {
    if (req.headers.authorization !== `Bearer ${apiKey}`) return refusal(401, { error: { type: 'invalid_request_error', code: 'invalid_api_key', message: 'Incorrect API key provided' } });
    if (u.pathname !== '/v1/realtime' || !u.searchParams.get('model')) return refusal(400, { error: { type: 'invalid_request_error', message: 'missing model' } });
    return undefined;
  };
  const connection = (ws: WebSocket, req: IncomingMessage, u: URL): void => {
    const c: FakeConnection = {
      id: ++ids,
      ws,
      openedAt: Date.now(),
      sessionUpdates: [],
      inputFormat: 'audio/pcm',
      outputFormat: 'audio/pcm',
      audio: [],
      audioBytes: 0,
      items: [],
      assistantItems: new Map(),
      truncates: [],
      cancels: [],
      interruptResponse: true,
      responses: [],
      current: undefined,
      errorsSent: [],
      closedBy: null,
      closedAt: null,
      closeCode: null,
      expired: false,
      stopped: false,
      vad: undefined,
      userTurns: 0,
      serverClosing: false,
      toolOutputs: [],
      responseCreates: [],
      toolCalls: new Map(),
    };
    connections.push(c);
    ws.on('close', (code) => {
      c.closedBy ??= c.serverClosing ? 'server' : 'client';
      c.closeCode = code;
      c.closedAt = Date.now();
      if (c.current) c.current = undefined;
    });
    ws.on('error', () => undefined);
    ws.on('ping', (data) => {
      if (!c.stopped) ws.pong(data);
    });
    if (req.headers['openai-beta']) {
      // The beta interface was removed (2026-05-12; the real service closes with 4000).
      c.serverClosing = true;
      ws.close(4000, 'beta_api_shape_disabled');
      return;
    }
    ws.on('message', (data, isBinary) => {
      // stop-answering: input is not read; after the service closed, nothing more is processed
      if (c.stopped || c.serverClosing) return;
      if (isBinary) return sendError(c, 'invalid_value', 'binary frames are not supported');
      onClientEvent(c, data.toString());
    });
    send(c, { type: 'session.created', session: sessionObject(c, u.searchParams.get('model')!) });
    if (options.sessionMaxMs !== undefined) {
      later(options.sessionMaxMs, () => {
        if (ws.readyState !== ws.OPEN || c.stopped) return;
        c.expired = true;
        sendError(c, 'session_expired', `Your session hit the maximum duration of ${options.sessionMaxMs} ms.`);
        c.serverClosing = true;
        ws.close(1000, 'session expired');
      });
    }
  };
  const server = await FakeServer.start({ wss: { autoPong: false }, upgrade, connection });
  const url = server.url('/v1/realtime');

  const current = () => [...connections].reverse().find((c) => c.ws.readyState === c.ws.OPEN && !c.serverClosing);

  const fake: FakeOpenAi = {
    url,
    apiKey,
    connections,
    get current() {
      return current();
    },
    refused: server.refused,
    // The production keepalive (5 s): a 300 ms one made a test process that stalled that long (a
    // loaded 2-core CI box) redial and miscount connections. Dead-peer tests ask for a short one.
    env: { OPENAI_API_KEY: apiKey, OPENAI_REALTIME_URL: url, OPENAI_HANDSHAKE_TIMEOUT_MS: '2000', ...options.env },
    audioFor,
    async speak(ms: number) {
      const c = current();
      if (!c) throw new Error('fake openai: no open session to speak on');
      await respond(c, ms);
    },
    async callTool(name: string, args: Record<string, unknown> | string) {
      const c = current();
      if (!c) throw new Error('fake openai: no open session');
      if (c.current) throw new Error('fake openai: a response is active');
      const n = ++seq;
      const r: FakeResponse = { id: `resp_${n}`, itemId: `item_fc_${n}`, sentMs: 0, totalMs: 0, status: 'completed', deltasAfterCancel: 0 };
      const callId = `call_${n}`;
      c.toolCalls.set(callId, name);
      c.responses.push(r);
      const item = { id: r.itemId, type: 'function_call', status: 'completed', name, call_id: callId, arguments: typeof args === 'string' ? args : JSON.stringify(args) };
      send(c, { type: 'response.created', response: { id: r.id, object: 'realtime.response', status: 'in_progress', output: [] } });
      send(c, { type: 'response.output_item.added', response_id: r.id, output_index: 0, item: { ...item, status: 'in_progress', arguments: '' } });
      send(c, { type: 'response.function_call_arguments.done', response_id: r.id, item_id: r.itemId, output_index: 0, call_id: callId, arguments: item.arguments });
      send(c, { type: 'response.output_item.done', response_id: r.id, output_index: 0, item });
      send(c, { type: 'response.done', response: { id: r.id, object: 'realtime.response', status: 'completed', status_details: null, output: [item] } });
      return callId;
    },
    async interruptFromService() {
      const c = current();
      if (!c) throw new Error('fake openai: no open session');
      speechStarted(c, Math.round(c.audioBytes / bytesPerMs(c.inputFormat)));
    },
    received() {
      const interruptions: { heardMs?: number }[] = [];
      const dtmf: string[] = [];
      let audioMs = 0;
      for (const c of connections) {
        audioMs += c.audioBytes / bytesPerMs(c.inputFormat);
        for (const t of c.truncates) interruptions.push({ heardMs: t.audioEndMs });
        for (const item of c.items) {
          if (item?.role !== 'user') continue;
          for (const part of item.content ?? []) {
            const m = typeof part?.text === 'string' ? /pressed ([0-9*#A-D](?:, [0-9*#A-D])*)/.exec(part.text) : null;
            if (m) dtmf.push(...m[1]!.split(', '));
          }
        }
      }
      const last = connections.at(-1);
      return { audioMs, interruptions, dtmf, closed: last?.closedBy === 'client' };
    },
    async fault(kind, opts?: { code?: number; status?: number }) {
      if (kind === 'refuse-next') {
        server.refuseNext(injected(opts?.status ?? 503));
        return;
      }
      const c = current();
      if (!c) throw new Error('fake openai: no open session');
      switch (kind) {
        case 'garbage':
          c.ws.send('{"type": "response.output_audio.delta", oops');
          c.ws.send(JSON.stringify({ type: 'mystery.event', event_id: 'evt_x' }));
          c.ws.send(JSON.stringify({ no_type: true }));
          c.ws.send(JSON.stringify({ type: 'response.output_audio.delta', event_id: 'evt_y', response_id: 'resp_garbage', item_id: 'item_garbage', output_index: 0, content_index: 0, delta: '***not base64***' }));
          return;
        case 'stop-answering':
          c.stopped = true;
          return;
        case 'stop-reading':
        case 'resume-reading':
          setReading(c.ws, kind === 'resume-reading');
          return;
        case 'close-mid-call':
          c.serverClosing = true;
          closeMidCall(c.ws, opts?.code ?? 1011, 'internal error');
          return;
      }
    },
    delayNextUpgrade(ms: number) {
      server.delayNextUpgrade(ms);
    },
    refuseNext(status: number, count = 1) {
      server.refuseNext(injected(status), count);
    },
    sendRaw(text: string) {
      current()?.ws.send(text);
    },
    async close() {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      await server.close();
    },
  };
  return fake;
}
