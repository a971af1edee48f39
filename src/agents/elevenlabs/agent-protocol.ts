/**
 * ElevenLabs Agents (Conversational AI) WebSocket: wire types, builders for what we
 * send and a validating parser for what the service sends
 * (https://elevenlabs.io/docs/agents-platform/api-reference/agents-platform/websocket;
 * field names from elevenlabs-python `conversational_ai/conversation.py`).
 *
 * ```text
 *   bridge                                              wss://…/v1/convai/conversation?agent_id=…  (or a signed URL)
 *   ── {"type":"conversation_initiation_client_data", conversation_config_override, dynamic_variables} ─►
 *   ◄─ {"type":"conversation_initiation_metadata", …_event{conversation_id, agent_output_audio_format, user_input_audio_format}}
 *   ── {"user_audio_chunk":"<base64>"}   (no `type`; in user_input_audio_format) ──────────────────────►
 *   ◄─ {"type":"audio", audio_event{audio_base_64, event_id, alignment?}}
 *   ◄─ {"type":"agent_response" | "agent_response_correction" | "user_transcript", …}
 *   ◄─ {"type":"interruption", interruption_event{event_id}}   → drop audio with event_id ≤ this id
 *   ◄─ {"type":"ping", ping_event{event_id, ping_ms?}}          ── {"type":"pong","event_id":…} ──►  (at once)
 *   ◄─ {"type":"error", error_event{code, message?, error_type?, reason?}}   (the conversation is closing)
 *   ◄─ {"type":"context_usage", …}                             (accepted, not used)
 *   ◄─ {"type":"client_tool_call", client_tool_call{tool_name, tool_call_id, parameters}}
 *                                                              ── {"type":"client_tool_result",…} ──►
 *   ── {"type":"user_message"|"contextual_update","text":…} / {"type":"user_activity"} ──────────────►
 * ```
 *
 * Parsing never throws: every message becomes a typed event, an `ignored` event (a
 * type we know and do not use) or a `{ ok: false }` with a reason the session turns
 * into a counted BRIDGE_ERR_AGENT_PROTOCOL error.
 */
import { ULAW_8K, pcm16, type AudioFormat } from '../agent.js';

/** Formats an agent can be configured with (elevenlabs-python `asr_input_format.py`, `tts_output_format.py`). */
export const ELEVENLABS_AUDIO_FORMATS = ['ulaw_8000', 'pcm_8000', 'pcm_16000', 'pcm_22050', 'pcm_24000', 'pcm_44100', 'pcm_48000'] as const;
export type ElevenLabsAudioFormat = (typeof ELEVENLABS_AUDIO_FORMATS)[number];

export function isElevenLabsAudioFormat(s: unknown): s is ElevenLabsAudioFormat {
  return typeof s === 'string' && (ELEVENLABS_AUDIO_FORMATS as readonly string[]).includes(s);
}

/** Our AudioFormat for an ElevenLabs format name (PCM is 16-bit little-endian mono). */
export function toAudioFormat(f: ElevenLabsAudioFormat): AudioFormat {
  if (f === 'ulaw_8000') return ULAW_8K;
  return pcm16(Number(f.slice(4)));
}

/** Bytes of one ms of audio in an ElevenLabs format. */
export function bytesPerMs(f: ElevenLabsAudioFormat): number {
  return f === 'ulaw_8000' ? 8 : (Number(f.slice(4)) * 2) / 1000;
}

// --- client → server --------------------------------------------------------------

/**
 * `conversation_config_override.agent.language` is an enum of lowercase codes: the
 * `Language` schema of the ElevenLabs Agents AsyncAPI contract (elevenlabs/packages
 * `schemas/agent.asyncapi.yaml`, 2026-08), in its order. Anything else is refused by
 * the service (an `override_error`), so the bridge checks before connecting.
 */
export const ELEVENLABS_AGENT_LANGUAGES: ReadonlySet<string> = new Set([
  'en', 'ja', 'zh', 'de', 'hi', 'fr', 'ko', 'pt', 'pt-br', 'it', 'es', 'id', 'nl', 'tr', 'pl', 'sv', 'bg', 'ro', 'ar', 'cs',
  'el', 'fi', 'ms', 'da', 'ta', 'uk', 'ru', 'hu', 'hr', 'sk', 'no', 'vi', 'tl', 'af', 'hy', 'as', 'az', 'be', 'bn', 'bs',
  'ca', 'et', 'gl', 'ka', 'gu', 'ha', 'he', 'is', 'ga', 'jv', 'kn', 'kk', 'ky', 'lv', 'lt', 'lb', 'mk', 'ml', 'mr', 'ne',
  'ps', 'fa', 'pa', 'sr', 'sd', 'sl', 'so', 'sw', 'te', 'th', 'ur', 'cy',
]);

/**
 * A language option as the service's enum spells it: lowercase, `-` between language
 * and region (`pt-BR`, `pt_BR` → `pt-br`). A regional tag the enum does not list falls
 * back to its language (`en-US` → `en`, `pt-PT` → `pt`). Undefined when the language
 * itself is not supported.
 */
export function normaliseAgentLanguage(raw: string): string | undefined {
  const tag = raw.trim().toLowerCase().replace(/_/g, '-');
  if (!/^[a-z]{2,3}(-[a-z0-9]{2,8})?$/.test(tag)) return undefined;
  if (ELEVENLABS_AGENT_LANGUAGES.has(tag)) return tag;
  const base = tag.split('-')[0]!;
  return tag !== base && ELEVENLABS_AGENT_LANGUAGES.has(base) ? base : undefined;
}

/** `conversation_config_override` fields we may set (each must be allowed in the agent's security settings). */
export interface ConversationOverrides {
  readonly prompt?: string;
  readonly firstMessage?: string;
  readonly language?: string;
  readonly voiceId?: string;
}

export function buildInitiation(o: ConversationOverrides, dynamicVariables: Readonly<Record<string, string>>): string {
  const agent: Record<string, unknown> = {};
  if (o.prompt !== undefined) agent['prompt'] = { prompt: o.prompt };
  if (o.firstMessage !== undefined) agent['first_message'] = o.firstMessage;
  if (o.language !== undefined) agent['language'] = o.language;
  const override: Record<string, unknown> = {};
  if (Object.keys(agent).length > 0) override['agent'] = agent;
  if (o.voiceId !== undefined) override['tts'] = { voice_id: o.voiceId };
  const msg: Record<string, unknown> = { type: 'conversation_initiation_client_data', conversation_config_override: override };
  if (Object.keys(dynamicVariables).length > 0) msg['dynamic_variables'] = dynamicVariables;
  return JSON.stringify(msg);
}

/** `{"user_audio_chunk":"…"}`; base64 needs no JSON escaping, so no JSON.stringify per frame. */
export function buildUserAudioChunk(base64: string): string {
  return '{"user_audio_chunk":"' + base64 + '"}';
}

export function buildPong(eventId: number): string {
  return `{"type":"pong","event_id":${eventId}}`;
}

export function buildUserMessage(text: string): string {
  return JSON.stringify({ type: 'user_message', text });
}

export function buildContextualUpdate(text: string): string {
  return JSON.stringify({ type: 'contextual_update', text });
}

export function buildUserActivity(): string {
  return '{"type":"user_activity"}';
}

export function buildClientToolResult(toolCallId: string, result: string, isError: boolean): string {
  return JSON.stringify({ type: 'client_tool_result', tool_call_id: toolCallId, result, is_error: isError });
}

// --- server → client --------------------------------------------------------------

export interface Alignment {
  readonly chars: readonly string[];
  readonly charStartTimesMs: readonly number[];
}

export type ServerEvent =
  | { kind: 'metadata'; conversationId: string; agentOutputFormat: string | undefined; userInputFormat: string | undefined }
  | { kind: 'audio'; eventId: number; audioBase64: string; alignment: Alignment | undefined }
  | { kind: 'interruption'; eventId: number }
  | { kind: 'agent_response'; text: string }
  | { kind: 'agent_response_correction'; original: string; corrected: string }
  | { kind: 'user_transcript'; text: string }
  | { kind: 'ping'; eventId: number; pingMs: number | undefined }
  | { kind: 'client_tool_call'; toolName: string; toolCallId: string; parameters: Record<string, unknown> }
  /** Tools the agent ran itself (system tools such as end_call): `agent_tool_response{tool_name, tool_call_id, tool_type, is_error, …}`; sent only when the agent's client_events include it. */
  | { kind: 'agent_tool_response'; toolName: string; isError: boolean }
  /**
   * `error{error_event{code, message?, error_type?, reason?}}`: per the contract, sent when the
   * service is closing the conversation; `code` is the close code that follows (1000 normal end
   * such as max_duration_exceeded, 1002 operational, 1008 input/contract, 1011 internal).
   */
  | { kind: 'error'; code: number | undefined; errorType: string | undefined; message: string }
  /** A type we know and deliberately do not use. */
  | { kind: 'ignored'; type: string };

export type ParseResult = { ok: true; event: ServerEvent } | { ok: false; detail: string; unknownType?: string };

/**
 * Types the service sends that the bridge does not need: VAD scores, tentative text,
 * streamed text parts, MCP status. Ignored quietly; anything else unknown is counted.
 */
const IGNORED_TYPES = new Set([
  'vad_score',
  'internal_tentative_agent_response',
  'agent_chat_response_part',
  'tentative_user_transcript',
  'internal_vad_score',
  'internal_turn_probability',
  'mcp_tool_call',
  'mcp_connection_status',
  'agent_tool_request',
  // How much of the LLM's context the conversation uses: nothing the phone call can act on.
  'context_usage',
  'conversation_initiation_client_data', // never from the server; tolerated, not an error
]);

/** Largest text message parsed (a 1 MB audio event is ~60 s of 8 kHz μ-law: far above what the service sends). */
export const MAX_MESSAGE_CHARS = 1_000_000;

const B64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

/** Whether `s` is well-formed standard base64 (padding optional). */
export function isBase64(s: string): boolean {
  return s.length % 4 !== 1 && B64_RE.test(s);
}

function obj(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

/** event ids are integers; the Python SDK does int(event_id), so numeric strings are accepted too. */
function eventId(v: unknown): number | undefined {
  const n = typeof v === 'string' && /^\d{1,15}$/.test(v) ? Number(v) : v;
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function parseAlignment(v: unknown): Alignment | undefined {
  const a = obj(v);
  if (!a) return undefined;
  const chars = a['chars'];
  const starts = a['char_start_times_ms'];
  if (!Array.isArray(chars) || !Array.isArray(starts) || chars.length !== starts.length) return undefined;
  if (!chars.every((c) => typeof c === 'string') || !starts.every((t) => typeof t === 'number' && Number.isFinite(t))) return undefined;
  return { chars: chars as string[], charStartTimesMs: starts as number[] };
}

export function parseServerMessage(text: string): ParseResult {
  if (text.length > MAX_MESSAGE_CHARS) return { ok: false, detail: `message of ${text.length} chars exceeds ${MAX_MESSAGE_CHARS}` };
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { ok: false, detail: 'not JSON' };
  }
  const m = obj(raw);
  if (!m) return { ok: false, detail: 'not a JSON object' };
  const type = m['type'];
  if (typeof type !== 'string') return { ok: false, detail: 'no "type"' };
  const bad = (detail: string): ParseResult => ({ ok: false, detail: `${type}: ${detail}` });

  switch (type) {
    case 'conversation_initiation_metadata': {
      const e = obj(m['conversation_initiation_metadata_event']);
      if (!e) return bad('missing conversation_initiation_metadata_event');
      const out = e['agent_output_audio_format'];
      const inp = e['user_input_audio_format'];
      if ((out !== undefined && typeof out !== 'string') || (inp !== undefined && typeof inp !== 'string')) return bad('audio formats must be strings');
      return { ok: true, event: { kind: 'metadata', conversationId: str(e['conversation_id']) ?? '', agentOutputFormat: out as string | undefined, userInputFormat: inp as string | undefined } };
    }
    case 'audio': {
      const e = obj(m['audio_event']);
      if (!e) return bad('missing audio_event');
      const id = eventId(e['event_id']);
      if (id === undefined) return bad('event_id is not a non-negative integer');
      const audio = e['audio_base_64'];
      if (typeof audio !== 'string') return bad('audio_base_64 is not a string');
      if (!isBase64(audio)) return bad('audio_base_64 is not base64');
      return { ok: true, event: { kind: 'audio', eventId: id, audioBase64: audio, alignment: parseAlignment(e['alignment']) } };
    }
    case 'interruption': {
      const e = obj(m['interruption_event']);
      const id = eventId(e?.['event_id']);
      if (id === undefined) return bad('interruption_event.event_id is not a non-negative integer');
      return { ok: true, event: { kind: 'interruption', eventId: id } };
    }
    case 'agent_response': {
      const t = str(obj(m['agent_response_event'])?.['agent_response']);
      if (t === undefined) return bad('agent_response_event.agent_response is not a string');
      return { ok: true, event: { kind: 'agent_response', text: t } };
    }
    case 'agent_response_correction': {
      const e = obj(m['agent_response_correction_event']);
      const original = str(e?.['original_agent_response']);
      const corrected = str(e?.['corrected_agent_response']);
      if (original === undefined || corrected === undefined) return bad('agent_response_correction_event needs original_ and corrected_agent_response strings');
      return { ok: true, event: { kind: 'agent_response_correction', original, corrected } };
    }
    case 'user_transcript': {
      const t = str(obj(m['user_transcription_event'])?.['user_transcript']);
      if (t === undefined) return bad('user_transcription_event.user_transcript is not a string');
      return { ok: true, event: { kind: 'user_transcript', text: t } };
    }
    case 'ping': {
      const e = obj(m['ping_event']);
      const id = eventId(e?.['event_id']);
      if (id === undefined) return bad('ping_event.event_id is not a non-negative integer');
      const pingMs = e?.['ping_ms'];
      return { ok: true, event: { kind: 'ping', eventId: id, pingMs: typeof pingMs === 'number' && Number.isFinite(pingMs) && pingMs >= 0 ? pingMs : undefined } };
    }
    case 'client_tool_call': {
      const e = obj(m['client_tool_call']);
      const toolName = str(e?.['tool_name']);
      const toolCallId = str(e?.['tool_call_id']);
      if (toolName === undefined || toolCallId === undefined) return bad('client_tool_call needs tool_name and tool_call_id strings');
      return { ok: true, event: { kind: 'client_tool_call', toolName, toolCallId, parameters: obj(e?.['parameters']) ?? {} } };
    }
    case 'agent_tool_response': {
      const e = obj(m['agent_tool_response']);
      const toolName = str(e?.['tool_name']);
      if (toolName === undefined) return bad('agent_tool_response.tool_name is not a string');
      return { ok: true, event: { kind: 'agent_tool_response', toolName, isError: e?.['is_error'] === true } };
    }
    case 'error': {
      // Never a parse failure: whatever its shape, an error from the service is reported as one.
      const e = obj(m['error_event']) ?? obj(m['error']) ?? m;
      const code = e['code'];
      const errorType = str(e['error_type']);
      const message = str(e['message']) ?? str(e['reason']) ?? '(no message)';
      return { ok: true, event: { kind: 'error', code: typeof code === 'number' && Number.isInteger(code) ? code : undefined, errorType, message } };
    }
    default:
      if (IGNORED_TYPES.has(type)) return { ok: true, event: { kind: 'ignored', type } };
      return { ok: false, detail: `unknown type ${JSON.stringify(type.slice(0, 64))}`, unknownType: type.slice(0, 64) };
  }
}
