/**
 * ElevenLabs TTS settings from the environment (Config.env), validated once.
 *
 * | Variable                     | Default                  | Meaning |
 * |------------------------------|--------------------------|---------|
 * | ELEVENLABS_API_KEY           | (none)                   | API key, sent as the `xi-api-key` header. Shared with the ElevenLabs Agents adapter. |
 * | ELEVENLABS_VOICE_ID          | (none: required for TTS) | Voice to speak with. §5a documents no default voice, so none is assumed. |
 * | ELEVENLABS_TTS_URL           | wss://api.elevenlabs.io  | Service base URL (ws:// or wss://). |
 * | ELEVENLABS_TTS_MODEL         | eleven_flash_v2_5        | model_id (lowest-latency multilingual model). |
 * | ELEVENLABS_TTS_CACHE_ENTRIES | 256                      | Cache bound: entries (0 disables the cache). |
 * | ELEVENLABS_TTS_CACHE_MB      | 32                       | Cache bound: MiB of audio + keys (0 disables the cache). |
 * | ELEVENLABS_TTS_TIMEOUT_MS    | 30000                    | Bound of one synthesis (the handshake is bounded by BRIDGE_AGENT_CONNECT_TIMEOUT_MS). |
 * | ELEVENLABS_GREETING          | (none)                   | Text spoken when a call starts (needs the key and a voice id). |
 *
 * TTS is configured when ELEVENLABS_API_KEY and ELEVENLABS_VOICE_ID are both set. A key
 * alone is not a problem (the Agents adapter needs only the key); a greeting without a
 * voice, or any malformed value, is.
 */
import { DEFAULT_TTS_MODEL, DEFAULT_TTS_URL } from './client.js';

export interface ElevenLabsTtsConfig {
  readonly apiKey: string;
  readonly voiceId: string;
  readonly baseUrl: string;
  readonly modelId: string;
  readonly cacheEntries: number;
  readonly cacheBytes: number;
  readonly timeoutMs: number;
  readonly greeting?: string;
}

/** Partial settings read even when TTS is not fully configured (the CLI takes --voice). */
export interface ElevenLabsTtsEnv {
  readonly apiKey?: string;
  readonly voiceId?: string;
  readonly baseUrl: string;
  readonly modelId: string;
  readonly cacheEntries: number;
  readonly cacheBytes: number;
  readonly timeoutMs: number;
  readonly greeting?: string;
}

const VOICE_ID_RE = /^[A-Za-z0-9_-]{1,64}$/;
const MODEL_ID_RE = /^[A-Za-z0-9_.-]{1,64}$/;
/** Greeting text limit: the client's maxTextChars default. */
const MAX_GREETING_CHARS = 5000;

/** Reads every ELEVENLABS_* key the TTS client uses; lists every bad value in `problems`. */
export function readElevenLabsTtsEnv(env: Readonly<Record<string, string | undefined>>): { env: ElevenLabsTtsEnv; problems: string[] } {
  const problems: string[] = [];
  const get = (k: string) => {
    const v = env[k];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };
  const int = (k: string, def: number, min: number, max: number): number => {
    const v = get(k);
    if (v === undefined) return def;
    const n = Number(v);
    if (!/^\d+$/.test(v) || !Number.isInteger(n) || n < min || n > max) {
      problems.push(`${k}=${JSON.stringify(v)}: must be an integer from ${min} to ${max}`);
      return def;
    }
    return n;
  };

  const apiKey = get('ELEVENLABS_API_KEY');
  const voiceId = get('ELEVENLABS_VOICE_ID');
  if (voiceId !== undefined && !VOICE_ID_RE.test(voiceId)) problems.push(`ELEVENLABS_VOICE_ID=${JSON.stringify(voiceId)}: must be 1–64 letters, digits, '_' or '-'`);
  let baseUrl = get('ELEVENLABS_TTS_URL') ?? DEFAULT_TTS_URL;
  try {
    const u = new URL(baseUrl);
    if (u.protocol !== 'ws:' && u.protocol !== 'wss:') throw new Error('protocol');
    if (u.search !== '' || u.hash !== '') throw new Error('query');
    baseUrl = baseUrl.replace(/\/+$/, '');
  } catch {
    problems.push(`ELEVENLABS_TTS_URL=${JSON.stringify(baseUrl)}: must be a ws:// or wss:// URL without a query (e.g. wss://api.elevenlabs.io)`);
    baseUrl = DEFAULT_TTS_URL;
  }
  const modelId = get('ELEVENLABS_TTS_MODEL') ?? DEFAULT_TTS_MODEL;
  if (!MODEL_ID_RE.test(modelId)) problems.push(`ELEVENLABS_TTS_MODEL=${JSON.stringify(modelId)}: must be 1–64 letters, digits, '_', '.' or '-'`);
  const cacheEntries = int('ELEVENLABS_TTS_CACHE_ENTRIES', 256, 0, 1_000_000);
  const cacheMb = int('ELEVENLABS_TTS_CACHE_MB', 32, 0, 65_536);
  const timeoutMs = int('ELEVENLABS_TTS_TIMEOUT_MS', 30_000, 1000, 600_000);
  const greeting = get('ELEVENLABS_GREETING');
  if (greeting !== undefined) {
    if (greeting.length > MAX_GREETING_CHARS) problems.push(`ELEVENLABS_GREETING: ${greeting.length} characters; the limit is ${MAX_GREETING_CHARS}`);
    if (voiceId === undefined) problems.push('ELEVENLABS_GREETING needs ELEVENLABS_VOICE_ID (the voice to speak it with)');
    if (apiKey === undefined) problems.push('ELEVENLABS_GREETING needs ELEVENLABS_API_KEY');
  }
  return {
    env: { apiKey, voiceId, baseUrl, modelId, cacheEntries, cacheBytes: cacheMb * 1024 * 1024, timeoutMs, greeting },
    problems,
  };
}

/**
 * The TTS configuration, or undefined when TTS is not configured (no key or no voice id),
 * plus every problem found. Callers with problems should refuse to start (ConfigError).
 */
export function readElevenLabsTtsConfig(env: Readonly<Record<string, string | undefined>>): { config: ElevenLabsTtsConfig | undefined; problems: string[] } {
  const { env: e, problems } = readElevenLabsTtsEnv(env);
  if (e.apiKey === undefined || e.voiceId === undefined) return { config: undefined, problems };
  return {
    config: Object.freeze({
      apiKey: e.apiKey,
      voiceId: e.voiceId,
      baseUrl: e.baseUrl,
      modelId: e.modelId,
      cacheEntries: e.cacheEntries,
      cacheBytes: e.cacheBytes,
      timeoutMs: e.timeoutMs,
      ...(e.greeting === undefined ? {} : { greeting: e.greeting }),
    }),
    problems,
  };
}
