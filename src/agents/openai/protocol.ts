/**
 * OpenAI Realtime API, GA interface: the wire shapes we send and read, and their
 * validation (https://platform.openai.com/docs/api-reference/realtime; openai-node
 * `src/resources/realtime/realtime.ts`).
 *
 * Only the GA shape is spoken: `session.type: "realtime"`, nested `audio.input` /
 * `audio.output`, `response.output_audio.*` event names. The beta shape
 * (`OpenAI-Beta: realtime=v1`, `response.audio.*`) was removed by OpenAI on
 * 2026-05-12 (https://developers.openai.com/api/docs/deprecations) and is never sent.
 *
 * Every server frame goes through parseServerEvent(): JSON, an object, a string
 * `type`, and for the events we act on the fields we read, with the right types.
 * Anything else is a typed failure the session counts and reports; it never throws.
 */
import { greetingInstruction } from '../shared/greeting.js';
import { openaiSessionTools, type ToolDeclaration } from '../../tools/declarations.js';

/** Audio formats we negotiate: G.711 μ-law passthrough (default) or PCM16 at 24 kHz (the only PCM rate the API accepts). */
export type OpenAiAudioFormat = 'pcmu' | 'pcm24k';
export type TurnDetection = 'server_vad' | 'semantic_vad';

export interface SessionSettings {
  readonly model: string;
  readonly instructions: string;
  readonly voice: string;
  readonly turnDetection: TurnDetection;
  /** Input transcription model; undefined = no caller transcripts. */
  readonly transcriptionModel?: string;
  readonly audioFormat: OpenAiAudioFormat;
  /** Function tools the model may call (GA `session.tools`); none → no tools in the session. */
  readonly tools?: readonly ToolDeclaration[];
}

/** Bytes of audio per ms in each format: μ-law 8 kHz = 8 B/ms, PCM16 24 kHz = 48 B/ms. */
export function bytesPerMs(format: OpenAiAudioFormat): number {
  return format === 'pcmu' ? 8 : 48;
}

export function wireFormat(format: OpenAiAudioFormat): { type: 'audio/pcmu' } | { type: 'audio/pcm'; rate: 24000 } {
  return format === 'pcmu' ? { type: 'audio/pcmu' } : { type: 'audio/pcm', rate: 24000 };
}

// --- client → server ----------------------------------------------------------------

/**
 * What we ask for in `turn_detection.interrupt_response`. With it the service cancels
 * the response in progress itself when its VAD hears the caller
 * (`input_audio_buffer.speech_started`); a `response.cancel` from us after that only
 * earns an `error` `response_cancel_not_active`. The service's `session.updated`
 * says what it applied (RealtimeConnection.serverInterrupts).
 */
export const REQUEST_INTERRUPT_RESPONSE = true;

/**
 * GA `session.update` (https://platform.openai.com/docs/api-reference/realtime-client-events/session/update).
 * The same message opens every session of a call (rollover, reconnect).
 */
export function buildSessionUpdate(s: SessionSettings): string {
  const input: Record<string, unknown> = {
    format: wireFormat(s.audioFormat),
    // create_response and interrupt_response are on by default; stated so the behaviour we
    // rely on (the server answers turns and cancels its response on caller speech) is explicit.
    turn_detection: { type: s.turnDetection, create_response: true, interrupt_response: REQUEST_INTERRUPT_RESPONSE },
  };
  if (s.transcriptionModel !== undefined) input['transcription'] = { model: s.transcriptionModel };
  return JSON.stringify({
    type: 'session.update',
    session: {
      type: 'realtime',
      model: s.model,
      output_modalities: ['audio'],
      instructions: s.instructions,
      audio: { input, output: { format: wireFormat(s.audioFormat), voice: s.voice } },
      ...(s.tools && s.tools.length > 0 ? { tools: openaiSessionTools(s.tools), tool_choice: 'auto' } : {}),
    },
  });
}

export function buildAppend(audioBase64: string): string {
  return `{"type":"input_audio_buffer.append","audio":"${audioBase64}"}`;
}

export function buildTruncate(itemId: string, audioEndMs: number): string {
  return JSON.stringify({ type: 'conversation.item.truncate', item_id: itemId, content_index: 0, audio_end_ms: audioEndMs });
}

export function buildCancel(responseId?: string): string {
  return JSON.stringify(responseId === undefined ? { type: 'response.cancel' } : { type: 'response.cancel', response_id: responseId });
}

export function buildResponseCreate(): string {
  return '{"type":"response.create"}';
}

/**
 * The agent speaks first: a response.create, with per-response instructions when the
 * greeting's words are given (`auto`: the model greets in its own words).
 */
export function buildGreeting(greeting: string): string {
  return JSON.stringify({ type: 'response.create', response: { instructions: greetingInstruction(greeting) } });
}

/**
 * A text message item. User text is `input_text`; assistant text is `output_text`
 * (GA content types; the beta used `text`). Used for DTMF and for carrying the
 * conversation into a new session.
 */
export function buildTextItem(role: 'user' | 'assistant', text: string): string {
  return JSON.stringify({
    type: 'conversation.item.create',
    item: { type: 'message', role, content: [{ type: role === 'user' ? 'input_text' : 'output_text', text }] },
  });
}

// --- server → client ----------------------------------------------------------------

export interface ServiceError {
  readonly type?: string;
  readonly code?: string;
  readonly message: string;
  readonly param?: string;
}

/** The server events the session acts on, narrowed; everything else known is `ignored`. */
export type ServerEvent =
  | {
      readonly type: 'session.created' | 'session.updated';
      readonly outputFormatType?: string;
      readonly inputFormatType?: string;
      /** Whether the session's VAD cancels a response on caller speech; undefined when the session does not say. */
      readonly interruptResponse?: boolean;
    }
  | { readonly type: 'input_audio_buffer.speech_started'; readonly itemId?: string; readonly audioStartMs?: number }
  | { readonly type: 'input_audio_buffer.speech_stopped'; readonly itemId?: string }
  | { readonly type: 'input_audio_buffer.committed'; readonly itemId?: string }
  | { readonly type: 'response.created'; readonly responseId: string }
  | { readonly type: 'response.output_item.added'; readonly responseId: string; readonly itemId: string; readonly role?: string; readonly itemType?: string }
  | { readonly type: 'response.output_audio.delta'; readonly responseId: string; readonly itemId: string; readonly delta: string }
  | { readonly type: 'response.output_audio_transcript.done'; readonly responseId: string; readonly itemId: string; readonly transcript: string }
  | { readonly type: 'conversation.item.input_audio_transcription.completed'; readonly itemId: string; readonly transcript: string }
  | { readonly type: 'conversation.item.added' | 'conversation.item.created' | 'conversation.item.done'; readonly itemId?: string }
  | { readonly type: 'response.done'; readonly responseId: string; readonly status?: string; readonly reason?: string }
  /** A finished output item; for a `function_call` item, the call (its `call_id`, name and JSON-text arguments). */
  | {
      readonly type: 'response.output_item.done';
      readonly responseId: string;
      readonly itemType?: string;
      readonly call?: { readonly callId: string; readonly name: string; readonly arguments: string };
    }
  | { readonly type: 'error'; readonly error: ServiceError }
  | { readonly type: 'ignored'; readonly name: string };

export type ParseResult =
  | { readonly ok: true; readonly event: ServerEvent }
  | { readonly ok: false; readonly kind: 'json' | 'shape' | 'unknown-type'; readonly detail: string };

/**
 * Server events we receive and deliberately do nothing with (see the API's server-events reference). An event type
 * outside this list and outside the ones parsed is reported once per type.
 */
const IGNORED = new Set([
  'conversation.created',
  'conversation.item.retrieved',
  'conversation.item.deleted',
  'conversation.item.truncated',
  'conversation.item.input_audio_transcription.delta',
  'conversation.item.input_audio_transcription.segment',
  'conversation.item.input_audio_transcription.failed',
  'input_audio_buffer.cleared',
  'input_audio_buffer.timeout_triggered',
  'input_audio_buffer.dtmf_event_received',
  'output_audio_buffer.started',
  'output_audio_buffer.stopped',
  'output_audio_buffer.cleared',
  'response.content_part.added',
  'response.content_part.done',
  'response.output_audio.done',
  'response.output_audio_transcript.delta',
  'response.output_text.delta',
  'response.output_text.done',
  'response.function_call_arguments.delta',
  'response.function_call_arguments.done',
  'response.mcp_call_arguments.delta',
  'response.mcp_call_arguments.done',
  'response.mcp_call.in_progress',
  'response.mcp_call.completed',
  'response.mcp_call.failed',
  'mcp_list_tools.in_progress',
  'mcp_list_tools.completed',
  'mcp_list_tools.failed',
  'rate_limits.updated',
]);

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (o: Obj, k: string): string | undefined => (typeof o[k] === 'string' ? (o[k] as string) : undefined);
const num = (o: Obj, k: string): number | undefined => (typeof o[k] === 'number' && Number.isFinite(o[k]) ? (o[k] as number) : undefined);

/**
 * Padded base64 → bytes, or undefined when `s` is not that: Buffer.from(…, 'base64') alone
 * skips junk silently. Checked by the decoded length instead of a pattern over every
 * character (this runs on each audio delta): the decoder skips anything outside the
 * alphabet and stops at a '=' mid-string, so junk always comes out short. (URL-safe
 * '-' and '_' decode as '+' and '/': still audio.)
 */
export function decodeBase64(s: string): Buffer | undefined {
  if (s.length % 4 !== 0) return undefined;
  const pad = s.charCodeAt(s.length - 1) === 61 ? (s.charCodeAt(s.length - 2) === 61 ? 2 : 1) : 0;
  const bytes = Buffer.from(s, 'base64');
  return bytes.length === (s.length >> 2) * 3 - pad ? bytes : undefined;
}

/**
 * `audio.input.turn_detection` of a session object: null (no server VAD) → false; an
 * object → its `interrupt_response`, which defaults to true; absent → undefined.
 */
function interruptResponse(session: unknown): boolean | undefined {
  if (!isObj(session) || !isObj(session['audio'])) return undefined;
  const input = session['audio']['input'];
  if (!isObj(input) || !('turn_detection' in input)) return undefined;
  const td = input['turn_detection'];
  if (td === null) return false;
  if (!isObj(td)) return undefined;
  return td['interrupt_response'] !== false;
}

function formatType(session: unknown, dir: 'input' | 'output'): string | undefined {
  if (!isObj(session) || !isObj(session['audio'])) return undefined;
  const d = session['audio'][dir];
  if (!isObj(d) || !isObj(d['format'])) return undefined;
  return str(d['format'], 'type');
}

/** A server event of a known type without the fields it must have (no closure per event: this runs for every delta). */
function shapeError(type: string, what: string): ParseResult {
  return { ok: false, kind: 'shape', detail: `${type}: ${what}` };
}

export function parseServerEvent(text: string): ParseResult {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return { ok: false, kind: 'json', detail: `not JSON (${text.length} chars)` };
  }
  if (!isObj(v)) return { ok: false, kind: 'shape', detail: 'not a JSON object' };
  const type = str(v, 'type');
  if (type === undefined) return { ok: false, kind: 'shape', detail: 'no string "type"' };
  switch (type) {
    case 'session.created':
    case 'session.updated':
      return {
        ok: true,
        event: { type, outputFormatType: formatType(v['session'], 'output'), inputFormatType: formatType(v['session'], 'input'), interruptResponse: interruptResponse(v['session']) },
      };
    case 'input_audio_buffer.speech_started':
      return { ok: true, event: { type, itemId: str(v, 'item_id'), audioStartMs: num(v, 'audio_start_ms') } };
    case 'input_audio_buffer.speech_stopped':
    case 'input_audio_buffer.committed':
      return { ok: true, event: { type, itemId: str(v, 'item_id') } };
    case 'response.created': {
      const r = v['response'];
      const id = isObj(r) ? str(r, 'id') : undefined;
      return id === undefined ? shapeError(type, 'no response.id') : { ok: true, event: { type, responseId: id } };
    }
    case 'response.output_item.added': {
      const item = v['item'];
      const responseId = str(v, 'response_id');
      const itemId = isObj(item) ? str(item, 'id') : undefined;
      if (responseId === undefined || itemId === undefined || !isObj(item)) return shapeError(type, 'no response_id or item.id');
      return { ok: true, event: { type, responseId, itemId, role: str(item, 'role'), itemType: str(item, 'type') } };
    }
    case 'response.output_audio.delta': {
      const responseId = str(v, 'response_id');
      const itemId = str(v, 'item_id');
      const delta = str(v, 'delta');
      if (responseId === undefined || itemId === undefined || delta === undefined) return shapeError(type, 'no response_id, item_id or delta');
      return { ok: true, event: { type, responseId, itemId, delta } };
    }
    case 'response.output_audio_transcript.done': {
      const responseId = str(v, 'response_id');
      const itemId = str(v, 'item_id');
      const transcript = str(v, 'transcript');
      if (responseId === undefined || itemId === undefined || transcript === undefined) return shapeError(type, 'no response_id, item_id or transcript');
      return { ok: true, event: { type, responseId, itemId, transcript } };
    }
    case 'conversation.item.input_audio_transcription.completed': {
      const itemId = str(v, 'item_id');
      const transcript = str(v, 'transcript');
      if (itemId === undefined || transcript === undefined) return shapeError(type, 'no item_id or transcript');
      return { ok: true, event: { type, itemId, transcript } };
    }
    case 'conversation.item.added':
    case 'conversation.item.created':
    case 'conversation.item.done': {
      const item = v['item'];
      return { ok: true, event: { type, itemId: isObj(item) ? str(item, 'id') : undefined } };
    }
    case 'response.output_item.done': {
      const item = v['item'];
      const responseId = str(v, 'response_id');
      if (responseId === undefined || !isObj(item)) return shapeError(type, 'no response_id or item');
      const itemType = str(item, 'type');
      if (itemType !== 'function_call') return { ok: true, event: { type, responseId, itemType } };
      const callId = str(item, 'call_id');
      const name = str(item, 'name');
      if (callId === undefined || name === undefined) return shapeError(type, 'function_call without call_id or name');
      return { ok: true, event: { type, responseId, itemType, call: { callId, name, arguments: str(item, 'arguments') ?? '' } } };
    }
    case 'response.done': {
      const r = v['response'];
      if (!isObj(r) || str(r, 'id') === undefined) return shapeError(type, 'no response.id');
      const details = r['status_details'];
      return { ok: true, event: { type, responseId: str(r, 'id')!, status: str(r, 'status'), reason: isObj(details) ? str(details, 'reason') : undefined } };
    }
    case 'error': {
      const e = v['error'];
      if (!isObj(e)) return shapeError(type, 'no error object');
      return { ok: true, event: { type, error: { type: str(e, 'type'), code: str(e, 'code'), message: str(e, 'message') ?? '(no message)', param: str(e, 'param') } } };
    }
    default:
      if (IGNORED.has(type)) return { ok: true, event: { type: 'ignored', name: type } };
      return { ok: false, kind: 'unknown-type', detail: `unknown event type ${JSON.stringify(type.slice(0, 80))}` };
  }
}
