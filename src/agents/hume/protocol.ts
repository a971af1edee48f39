/**
 * Hume EVI (Empathic Voice Interface) wire protocol: the message types we send and
 * receive, parsed and validated at the edge, and a strict reader for the WAV chunks
 * EVI sends as `audio_output`. Written from the Hume TypeScript SDK v0.15.16 types and
 * https://dev.hume.ai/reference/speech-to-speech-evi/chat.
 *
 * NOTE: Hume announced that EVI access ends 2026-11-13 ("Hume is sunsetting the TTS
 * and EVI APIs"). This module keeps to the documented protocol so the adapter works
 * against any Hume-compatible endpoint (HUME_EVI_URL).
 *
 * Wire: snake_case JSON text frames, one message per frame, `type` discriminates.
 *
 * ```text
 *   client → server                              server → client
 *   session_settings {audio{linear16,rate,1}}    chat_metadata {chat_id, chat_group_id}   (first message)
 *   audio_input {data: base64 s16le}             user_message {message{role,content}, interim}
 *   user_input {text}            (DTMF)          assistant_message {id, message{role,content}}
 *   tool_error {tool_call_id,…}  (no tools here) audio_output {id, index, data: base64 WAV file}
 *                                                user_interruption {time}
 *                                                assistant_end
 *                                                tool_call / error {code, slug, message} / …
 * ```
 */
import { humeSessionTools, type ToolDeclaration } from '../../tools/declarations.js';
import { BridgeError, ErrorCodes } from '../../errors.js';

// --- server → client ------------------------------------------------------------

export interface ChatMetadataMessage {
  readonly type: 'chat_metadata';
  readonly chatId: string;
  readonly chatGroupId: string;
}
export interface AudioOutputMessage {
  readonly type: 'audio_output';
  /** Identifies the assistant message this audio belongs to (several chunks share it). */
  readonly id: string;
  /** Chunk index within that message; -1 when absent. */
  readonly index: number;
  /** Base64 of one whole WAV file (validated as base64 text, not decoded here). */
  readonly data: string;
}
export interface UserMessage {
  readonly type: 'user_message';
  readonly text: string;
  readonly interim: boolean;
  readonly fromText: boolean;
}
export interface AssistantMessage {
  readonly type: 'assistant_message';
  readonly id: string | undefined;
  readonly text: string;
}
export interface UserInterruptionMessage {
  readonly type: 'user_interruption';
}
export interface AssistantEndMessage {
  readonly type: 'assistant_end';
}
export interface ToolCallMessage {
  readonly type: 'tool_call';
  readonly toolCallId: string;
  readonly name: string;
  readonly toolType: string | undefined;
  readonly responseRequired: boolean;
  /** The arguments as EVI sends them: JSON text. */
  readonly parameters: string;
}
export interface ErrorMessage {
  readonly type: 'error';
  readonly code: string;
  readonly slug: string;
  readonly message: string;
}
/** Messages we understand but do not act on (prosody scores, echoes of what we sent). */
export interface IgnoredMessage {
  readonly type: 'ignored';
  readonly wireType: string;
}

export type ServerMessage =
  | ChatMetadataMessage
  | AudioOutputMessage
  | UserMessage
  | AssistantMessage
  | UserInterruptionMessage
  | AssistantEndMessage
  | ToolCallMessage
  | ErrorMessage
  | IgnoredMessage;

/** Documented server types that carry nothing the bridge needs (EVI chat reference). */
const IGNORED_TYPES = new Set(['assistant_prosody', 'session_settings', 'tool_response', 'tool_error']);

/** Longest ids and texts we accept from the service (bounded memory per message). */
const MAX_ID_CHARS = 256;
const MAX_TEXT_CHARS = 64 * 1024;

const protocolError = (what: string) => new BridgeError(ErrorCodes.AGENT_PROTOCOL, `hume: ${what}`);

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(o: Record<string, unknown>, key: string, type: string, maxChars: number, required: true): string;
function str(o: Record<string, unknown>, key: string, type: string, maxChars: number, required: false): string | undefined;
function str(o: Record<string, unknown>, key: string, type: string, maxChars: number, required: boolean): string | undefined {
  const v = o[key];
  if (v === undefined || v === null) {
    if (required) throw protocolError(`${type} without ${key}`);
    return undefined;
  }
  if (typeof v !== 'string') throw protocolError(`${type}.${key} is ${typeof v}, expected a string`);
  if (v.length > maxChars) throw protocolError(`${type}.${key} is ${v.length} characters (limit ${maxChars})`);
  return v;
}

/** `{ role, content }` of user_message / assistant_message. */
function content(o: Record<string, unknown>, type: string): string {
  const m = o['message'];
  if (!isRecord(m)) throw protocolError(`${type} without a message object`);
  return str(m, 'content', `${type}.message`, MAX_TEXT_CHARS, false) ?? '';
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Parses one text frame from EVI. Throws BridgeError(AGENT_PROTOCOL) for anything that
 * is not a well-formed message of a documented type; never returns partial garbage.
 */
export function parseServerMessage(text: string): ServerMessage {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw protocolError(`a frame that is not JSON (${text.length} characters)`);
  }
  if (!isRecord(v)) throw protocolError(`a JSON ${Array.isArray(v) ? 'array' : typeof v} instead of a message object`);
  const type = v['type'];
  if (typeof type !== 'string') throw protocolError('a message without a string "type"');
  switch (type) {
    case 'chat_metadata': {
      const chatGroupId = str(v, 'chat_group_id', type, MAX_ID_CHARS, true);
      if (chatGroupId === '') throw protocolError('chat_metadata with an empty chat_group_id');
      return { type, chatGroupId, chatId: str(v, 'chat_id', type, MAX_ID_CHARS, false) ?? '' };
    }
    case 'audio_output': {
      const data = str(v, 'data', type, Number.MAX_SAFE_INTEGER, true);
      if (data.length % 4 !== 0 || !BASE64.test(data)) throw protocolError('audio_output.data is not base64');
      const index = v['index'];
      return { type, id: str(v, 'id', type, MAX_ID_CHARS, false) ?? '', index: typeof index === 'number' && Number.isInteger(index) ? index : -1, data };
    }
    case 'user_message':
      return { type, text: content(v, type), interim: v['interim'] === true, fromText: v['from_text'] === true };
    case 'assistant_message':
      return { type, id: str(v, 'id', type, MAX_ID_CHARS, false), text: content(v, type) };
    case 'user_interruption':
    case 'assistant_end':
      return { type };
    case 'tool_call':
      return {
        type,
        toolCallId: str(v, 'tool_call_id', type, MAX_ID_CHARS, true),
        name: str(v, 'name', type, MAX_ID_CHARS, false) ?? '',
        toolType: str(v, 'tool_type', type, MAX_ID_CHARS, false),
        responseRequired: v['response_required'] !== false,
        parameters: typeof v['parameters'] === 'string' ? v['parameters'] : v['parameters'] === undefined ? '{}' : JSON.stringify(v['parameters']),
      };
    case 'error':
      return {
        type,
        code: str(v, 'code', type, MAX_ID_CHARS, false) ?? '',
        slug: str(v, 'slug', type, MAX_ID_CHARS, false) ?? '',
        message: str(v, 'message', type, MAX_TEXT_CHARS, false) ?? '',
      };
    default:
      if (IGNORED_TYPES.has(type)) return { type: 'ignored', wireType: type };
      throw protocolError(`unknown message type ${JSON.stringify(type.slice(0, 64))}`);
  }
}

/**
 * Maps an EVI `error` message to our codes. Hume's error-code catalogue is not
 * published in a form we could confirm, so this looks at
 * the slug and text: auth / rate-limit words, else a service error.
 */
export function errorFromServiceMessage(m: ErrorMessage): BridgeError {
  const what = `${m.code} ${m.slug} ${m.message}`;
  const text = `hume: service error ${m.code || '?'}${m.slug ? ` (${m.slug})` : ''}: ${m.message.slice(0, 300)}`;
  if (/unauthori[sz]ed|forbidden|api[ _-]?key|access[ _-]?token|authenticat|credential/i.test(what)) return new BridgeError(ErrorCodes.AGENT_AUTH, text);
  if (/rate[ _-]?limit|quota|too[ _-]many|concurren|exhausted/i.test(what)) return new BridgeError(ErrorCodes.AGENT_RATE_LIMIT, text);
  return new BridgeError(ErrorCodes.AGENT_SERVICE, text);
}

// --- client → server --------------------------------------------------------------

export interface SessionSettings {
  /** PCM16 mono at this rate is what we stream as audio_input. */
  readonly sampleRateHz: number;
  readonly systemPrompt?: string;
  readonly voiceId?: string;
  /** Context injection (docs: "silently add information … without triggering a response"). */
  readonly context?: { readonly text: string; readonly type: 'temporary' | 'persistent' };
  /** Function tools (`tools`: name, JSON Schema as text, description). */
  readonly tools?: readonly ToolDeclaration[];
}

/**
 * `session_settings`. EVI's docs do not say whether a later session_settings message
 * replaces or merges the earlier one, so every one we send carries all our settings
 * (audio format, prompt, voice) — a replace then changes nothing.
 */
export function buildSessionSettings(s: SessionSettings): string {
  const msg: Record<string, unknown> = {
    type: 'session_settings',
    audio: { encoding: 'linear16', sample_rate: s.sampleRateHz, channels: 1 },
  };
  if (s.systemPrompt !== undefined) msg['system_prompt'] = s.systemPrompt;
  if (s.voiceId !== undefined) msg['voice_id'] = s.voiceId;
  if (s.context !== undefined) msg['context'] = { text: s.context.text, type: s.context.type };
  if (s.tools !== undefined && s.tools.length > 0) msg['tools'] = humeSessionTools(s.tools);
  return JSON.stringify(msg);
}

/** `audio_input` around base64 PCM16: plain concatenation (base64 needs no JSON escaping). */
export function buildAudioInput(base64: string): string {
  return '{"type":"audio_input","data":"' + base64 + '"}';
}

/** `user_input`: text the EVI treats as something the user said. */
export function buildUserInput(text: string): string {
  return JSON.stringify({ type: 'user_input', text });
}

/** `assistant_input`: text EVI speaks verbatim (the profile's greeting). */
export function buildAssistantInput(text: string): string {
  return JSON.stringify({ type: 'assistant_input', text });
}

/** `tool_error` for a tool call the bridge cannot serve (keeps EVI from waiting on it). */
export function buildToolError(toolCallId: string, error: string): string {
  return JSON.stringify({ type: 'tool_error', tool_call_id: toolCallId, error, content: error, level: 'warn' });
}

/** The text a DTMF key becomes (sent as user_input). */
export function dtmfText(digit: string): string {
  return `The caller pressed ${digit}`;
}

/**
 * Context sent after a barge-in: how much of the interrupted reply the caller actually
 * heard (from the bridge's acknowledged marks), so EVI's idea of the conversation
 * matches the phone. `heardText` is our estimate of the words heard.
 */
export function heardContextText(heardMs: number, heardText: string | undefined): string {
  const secs = (heardMs / 1000).toFixed(1);
  const base = `The caller interrupted your previous reply on the phone after hearing only its first ${secs} s (${Math.round(heardMs)} ms); they did not hear the rest.`;
  if (heardText === undefined) return base;
  if (heardText === '') return `${base} They heard none of its words.`;
  return `${base} What they heard was roughly: "${heardText}"`;
}

// --- audio_output WAV chunks -------------------------------------------------------

export interface WavChunkInfo {
  readonly sampleRateHz: number;
  /** Byte offset of the first sample inside the decoded WAV bytes. */
  readonly dataOffset: number;
  /** Number of PCM16 mono samples. */
  readonly samples: number;
}

/** Rates we accept in a WAV header (EVI: 48 kHz per the SDK's AudioOutput doc, 24 kHz per an SDK PR). */
export const MIN_WAV_RATE_HZ = 8000;
export const MAX_WAV_RATE_HZ = 96_000;
/** Longest audio one chunk may hold; more is an absurd header, not a sentence. */
export const MAX_CHUNK_MS = 60_000;

const FORMAT_PCM = 1;
const FORMAT_EXTENSIBLE = 0xfffe;

const formatError = (what: string) => new BridgeError(ErrorCodes.AGENT_AUDIO_FORMAT, `hume: audio_output WAV ${what}`);

function fourcc(b: Uint8Array, at: number): string {
  return String.fromCharCode(b[at]!, b[at + 1]!, b[at + 2]!, b[at + 3]!);
}

/**
 * Reads the header of one `audio_output` WAV file, strictly: walks the RIFF chunks
 * (`fmt `, `LIST`, `fact`, anything else skipped, odd sizes followed by their pad byte)
 * up to `data`, and requires PCM16 mono at 8–96 kHz with a consistent `fmt ` and a
 * `data` chunk whose declared size is really there. Unlike src/audio/wav.ts (files on
 * disk, lenient with streaming writers), nothing truncated or odd is played: a chunk
 * we cannot read exactly becomes BRIDGE_ERR_AGENT_AUDIO_FORMAT. Allocates nothing.
 */
export function readWavChunk(bytes: Uint8Array): WavChunkInfo {
  if (bytes.length < 12) throw formatError(`is ${bytes.length} bytes, shorter than a RIFF header`);
  const magic = fourcc(bytes, 0);
  if (magic !== 'RIFF') throw formatError(`starts with ${JSON.stringify(magic)}, expected "RIFF"`);
  if (fourcc(bytes, 8) !== 'WAVE') throw formatError(`has RIFF form ${JSON.stringify(fourcc(bytes, 8))}, expected "WAVE"`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const riffEnd = 8 + view.getUint32(4, true);
  if (riffEnd > bytes.length) throw formatError(`declares ${riffEnd} bytes but is ${bytes.length} (truncated)`);
  let rate = 0;
  let at = 12;
  while (at + 8 <= riffEnd) {
    const id = fourcc(bytes, at);
    const size = view.getUint32(at + 4, true);
    const body = at + 8;
    if (size > riffEnd - body) throw formatError(`chunk ${JSON.stringify(id)} declares ${size} bytes but only ${riffEnd - body} remain (truncated)`);
    if (id === 'fmt ') {
      if (size < 16) throw formatError(`"fmt " chunk is ${size} bytes (needs 16)`);
      let tag = view.getUint16(body, true);
      if (tag === FORMAT_EXTENSIBLE) {
        if (size < 40) throw formatError(`WAVE_FORMAT_EXTENSIBLE "fmt " chunk is ${size} bytes (needs 40)`);
        tag = view.getUint16(body + 24, true); // first two bytes of the SubFormat GUID
      }
      const channels = view.getUint16(body + 2, true);
      const rateHz = view.getUint32(body + 4, true);
      const byteRate = view.getUint32(body + 8, true);
      const blockAlign = view.getUint16(body + 12, true);
      const bits = view.getUint16(body + 14, true);
      if (tag !== FORMAT_PCM) throw formatError(`has format tag ${tag}, expected 1 (PCM)`);
      if (bits !== 16) throw formatError(`has ${bits} bits per sample, expected 16`);
      if (channels !== 1) throw formatError(`has ${channels} channels, expected mono`);
      if (rateHz < MIN_WAV_RATE_HZ || rateHz > MAX_WAV_RATE_HZ) throw formatError(`has sample rate ${rateHz} Hz, outside ${MIN_WAV_RATE_HZ}–${MAX_WAV_RATE_HZ}`);
      if (blockAlign !== 2 || byteRate !== rateHz * 2) throw formatError(`"fmt " is inconsistent (blockAlign ${blockAlign}, byteRate ${byteRate} at ${rateHz} Hz)`);
      rate = rateHz;
    } else if (id === 'data') {
      if (rate === 0) throw formatError('has "data" before "fmt "');
      if (size % 2 !== 0) throw formatError(`"data" is ${size} bytes, not whole 16-bit samples`);
      if (size / 2 > (rate * MAX_CHUNK_MS) / 1000) throw formatError(`"data" holds ${Math.round(size / 2 / (rate / 1000))} ms (limit ${MAX_CHUNK_MS} ms)`);
      return { sampleRateHz: rate, dataOffset: body, samples: size / 2 };
    }
    at = body + size + (size & 1); // chunks are word-aligned: an odd size is followed by a pad byte
  }
  throw formatError(rate === 0 ? 'has no "fmt " chunk' : 'has no "data" chunk');
}
