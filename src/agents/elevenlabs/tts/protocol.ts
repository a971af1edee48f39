/**
 * ElevenLabs text-to-speech WebSocket (`stream-input`): wire types, message
 * builders and a validating parser. Source: https://elevenlabs.io/docs/api-reference/websocket (elevenlabs-js
 * `InitializeConnection` / `SendText` / `CloseConnection`, elevenlabs-python
 * `realtime_tts.py`).
 *
 * ```text
 *   GET wss://api.elevenlabs.io/v1/text-to-speech/{voice_id}/stream-input?model_id=…&output_format=ulaw_8000
 *       xi-api-key: <key>                          (header; never in the URL, never in a message)
 *   client ─► {"text":" ","voice_settings":{…}}    init: the first text must be one blank space
 *   client ─► {"text":"Hello there. "}             the text, ending with a single space
 *   client ─► {"text":""}                          end of input: the server finishes and closes
 *   server ─► {"audio":"<base64 μ-law>","normalizedAlignment":{…},"alignment":{…}}   (audio may be null)
 *   server ─► {"isFinal":true}                     last message ("audio will be null")
 * ```
 *
 * Facts the public reference does not confirm, and what we assumed:
 * - The error message shape (not documented). We accept any
 *   JSON object without `audio`/`isFinal` that carries a string `error` or `message` as an error
 *   report, e.g. `{"message":"…","error":"voice_not_found","code":1008}`.
 * - Container: `ulaw_8000` is documented as raw μ-law (the format "commonly used for Twilio").
 *   Some ElevenLabs endpoints have been reported to put a WAV header in front of μ-law output, so
 *   a chunk that starts with a RIFF/WAVE header is parsed: μ-law 8 kHz mono → the header is
 *   stripped; anything else → BRIDGE_ERR_AGENT_AUDIO_FORMAT (never played to a caller).
 */
import { BridgeError, ErrorCodes, type ErrorCode } from '../../../errors.js';
import { parseWav, WavFormatError } from '../../../audio/wav.js';

/** The only output format we ask for: 8 kHz μ-law, Twilio's own format (no DSP on the way out). */
export const OUTPUT_FORMAT = 'ulaw_8000';

/** Voice settings as the caller gives them (camelCase); sent snake_case in the init message. */
export interface VoiceSettings {
  /** 0–1. */
  readonly stability: number;
  /** 0–1. */
  readonly similarityBoost: number;
  /** 0–1. */
  readonly style: number;
  readonly useSpeakerBoost: boolean;
  /** 0.7–1.2 (per the API reference); omitted from the wire when undefined (the service default, 1.0, applies). */
  readonly speed?: number;
}

/** The defaults we send (the brief's choice; ElevenLabs' own voice defaults vary per voice). */
export const DEFAULT_VOICE_SETTINGS: VoiceSettings = Object.freeze({
  stability: 0.5,
  similarityBoost: 0.75,
  style: 0,
  useSpeakerBoost: true,
});

/** Voice ids are 20 alphanumerics today; accept a little more, never anything that needs escaping. */
const VOICE_ID_RE = /^[A-Za-z0-9_-]{1,64}$/;
const MODEL_ID_RE = /^[A-Za-z0-9_.-]{1,64}$/;

function configError(message: string): BridgeError {
  return new BridgeError(ErrorCodes.AGENT_CONFIG, `elevenlabs tts: ${message}`);
}

export function validateVoiceId(voiceId: string): string {
  if (!VOICE_ID_RE.test(voiceId)) throw configError(`voice id ${JSON.stringify(voiceId)} must be 1–64 letters, digits, '_' or '-'`);
  return voiceId;
}

export function validateModelId(modelId: string): string {
  if (!MODEL_ID_RE.test(modelId)) throw configError(`model id ${JSON.stringify(modelId)} must be 1–64 letters, digits, '_', '.' or '-'`);
  return modelId;
}

/** Merges `partial` over `base` and checks every range; throws BRIDGE_ERR_AGENT_CONFIG. */
export function resolveVoiceSettings(base: VoiceSettings, partial?: Partial<VoiceSettings>): VoiceSettings {
  const s = { ...base, ...(partial ?? {}) };
  const unit = (name: string, v: unknown) => {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 1) throw configError(`voice setting ${name}=${String(v)} must be a number from 0 to 1`);
  };
  unit('stability', s.stability);
  unit('similarityBoost', s.similarityBoost);
  unit('style', s.style);
  if (typeof s.useSpeakerBoost !== 'boolean') throw configError(`voice setting useSpeakerBoost must be true or false`);
  if (s.speed !== undefined && (typeof s.speed !== 'number' || !Number.isFinite(s.speed) || s.speed < 0.7 || s.speed > 1.2)) {
    throw configError(`voice setting speed=${String(s.speed)} must be a number from 0.7 to 1.2`);
  }
  const out: VoiceSettings = { stability: s.stability, similarityBoost: s.similarityBoost, style: s.style, useSpeakerBoost: s.useSpeakerBoost };
  return Object.freeze(s.speed === undefined ? out : { ...out, speed: s.speed });
}

/**
 * Text as sent: trimmed, inner whitespace runs collapsed, then "a single space" at the end
 * (the API reference: text "should always end with a single space"). Empty text would be the end-of-input
 * marker, so it is refused.
 */
export function normalizeText(text: string, maxChars: number): string {
  if (typeof text !== 'string') throw configError('text must be a string');
  const t = text.replace(/\s+/g, ' ').trim();
  if (t.length === 0) throw configError('text is empty');
  if (t.length > maxChars) throw configError(`text is ${t.length} characters; the limit is ${maxChars}`);
  return `${t} `;
}

/** wss://…/v1/text-to-speech/{voice}/stream-input?model_id=…&output_format=ulaw_8000 */
export function buildStreamUrl(baseUrl: string, voiceId: string, modelId: string): string {
  const base = baseUrl.replace(/\/+$/, '');
  const q = new URLSearchParams({ model_id: modelId, output_format: OUTPUT_FORMAT });
  return `${base}/v1/text-to-speech/${encodeURIComponent(voiceId)}/stream-input?${q.toString()}`;
}

/** The first message: one blank space plus the voice settings (snake_case on the wire). */
export function buildInitMessage(settings: VoiceSettings): string {
  const vs: Record<string, number | boolean> = {
    stability: settings.stability,
    similarity_boost: settings.similarityBoost,
    style: settings.style,
    use_speaker_boost: settings.useSpeakerBoost,
  };
  if (settings.speed !== undefined) vs['speed'] = settings.speed;
  return JSON.stringify({ text: ' ', voice_settings: vs });
}

/** A text message; `text` is already normalised (ends with one space). */
export function buildTextMessage(text: string): string {
  return JSON.stringify({ text });
}

/** End of input: the server generates what is left, sends isFinal and closes. */
export const END_OF_INPUT_MESSAGE = JSON.stringify({ text: '' });

export type ServerMessage =
  | { readonly kind: 'audio'; readonly audio: Uint8Array | null }
  | { readonly kind: 'final' }
  | { readonly kind: 'error'; readonly error: BridgeError }
  | { readonly kind: 'unknown' };

const BASE64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Parses one text frame from the server. Malformed frames (not JSON, not an object) throw
 * BRIDGE_ERR_AGENT_PROTOCOL; audio that is not base64 throws BRIDGE_ERR_AGENT_AUDIO_FORMAT.
 * An object we do not recognise is 'unknown' (counted by the caller, otherwise ignored: the
 * service may add fields and messages).
 */
export function parseServerMessage(data: string): ServerMessage {
  let msg: unknown;
  try {
    msg = JSON.parse(data);
  } catch {
    throw new BridgeError(ErrorCodes.AGENT_PROTOCOL, `elevenlabs tts: a message that is not JSON (${data.length} chars)`);
  }
  if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) {
    throw new BridgeError(ErrorCodes.AGENT_PROTOCOL, 'elevenlabs tts: a message that is not a JSON object');
  }
  const m = msg as Record<string, unknown>;
  if ('audio' in m) {
    const a = m['audio'];
    if (a === null || a === undefined || a === '') {
      // "audio" may be null (per the API reference), also on the final message: {"audio":null,"isFinal":true}.
      return m['isFinal'] === true ? { kind: 'final' } : { kind: 'audio', audio: null };
    }
    if (typeof a !== 'string' || a.length % 4 !== 0 || !BASE64_RE.test(a)) {
      throw new BridgeError(ErrorCodes.AGENT_AUDIO_FORMAT, `elevenlabs tts: "audio" is not base64 (${typeof a === 'string' ? `${a.length} chars` : typeof a})`);
    }
    const b = Buffer.from(a, 'base64');
    const audio = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    // A final message carrying audio is not documented; keep the audio, then finish.
    return { kind: 'audio', audio };
  }
  if (m['isFinal'] === true) return { kind: 'final' };
  const err = m['error'];
  const text = m['message'];
  if (typeof err === 'string' || typeof text === 'string') {
    const detail = [err, text].filter((x): x is string => typeof x === 'string').join(': ');
    return { kind: 'error', error: new BridgeError(classifyServiceText(detail, ErrorCodes.AGENT_SERVICE), `elevenlabs tts: service error: ${truncate(detail)}`) };
  }
  return { kind: 'unknown' };
}

/**
 * A code for an error text from the service (error message or close reason). The wording
 * ElevenLabs uses is not documented; these patterns cover the error slugs we have seen
 * quoted (invalid_api_key, quota_exceeded, voice_not_found, input timeout).
 */
export function classifyServiceText(text: string, fallback: ErrorCode): ErrorCode {
  const t = text.toLowerCase();
  if (/api[ _-]?key|unauthori[sz]ed|authenticat|forbidden|permission/.test(t)) return ErrorCodes.AGENT_AUTH;
  if (/quota|rate[ _-]?limit|too many|concurren|limit[ _-]?reached/.test(t)) return ErrorCodes.AGENT_RATE_LIMIT;
  if (/voice.*not[ _-]?found|model.*not[ _-]?found|invalid[ _-]?(voice|model)|unsupported[ _-]?model/.test(t)) return ErrorCodes.AGENT_CONFIG;
  if (/time[ _-]?out|timed out/.test(t)) return ErrorCodes.AGENT_TIMEOUT;
  return fallback;
}

/** A code for a WebSocket close before `isFinal`. 1008 (policy) is how auth failures close (errors.ts). */
export function classifyClose(code: number, reason: string): ErrorCode {
  if (code === 1008) return classifyServiceText(reason, ErrorCodes.AGENT_AUTH);
  return classifyServiceText(reason, ErrorCodes.AGENT_SERVICE);
}

function isRiffWave(b: Uint8Array): boolean {
  // "RIFF" ???? "WAVE"
  return b.length >= 12 && b[0] === 0x52 && b[1] === 0x49 && b[2] === 0x46 && b[3] === 0x46 && b[8] === 0x57 && b[9] === 0x41 && b[10] === 0x56 && b[11] === 0x45;
}

/**
 * The μ-law samples of one decoded audio chunk. Raw μ-law is returned as is (any byte is a
 * valid μ-law code); a chunk that carries a WAV header is accepted only if it declares μ-law,
 * 8000 Hz, mono, and comes back without the header.
 */
export function ulawPayload(chunk: Uint8Array): Uint8Array {
  if (!isRiffWave(chunk)) return chunk;
  let wav;
  try {
    wav = parseWav(chunk);
  } catch (e) {
    const why = e instanceof WavFormatError ? e.message : String(e);
    throw new BridgeError(ErrorCodes.AGENT_AUDIO_FORMAT, `elevenlabs tts: audio chunk has an unreadable WAV header (${why})`);
  }
  if (wav.encoding !== 'ulaw' || wav.sampleRateHz !== 8000 || wav.channels !== 1) {
    throw new BridgeError(
      ErrorCodes.AGENT_AUDIO_FORMAT,
      `elevenlabs tts: asked for ${OUTPUT_FORMAT}, got a WAV of ${wav.encoding} ${wav.sampleRateHz} Hz × ${wav.channels}`,
    );
  }
  return wav.data as Uint8Array;
}

function truncate(s: string, n = 200): string {
  return s.length > n ? `${s.slice(0, n)}…` : s;
}
