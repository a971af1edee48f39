/**
 * ElevenLabs TTS settings from the environment (Config.env; declared in
 * src/env-schema.ts), validated once at start with every other key.
 *
 * The variables (ELEVENLABS_API_KEY, shared with the Agents adapter, ELEVENLABS_VOICE_ID,
 * ELEVENLABS_TTS_*, ELEVENLABS_GREETING) and their defaults are in the schema.
 *
 * TTS is configured when ELEVENLABS_API_KEY and ELEVENLABS_VOICE_ID are both set. A key
 * alone is not a problem (the Agents adapter needs only the key); a greeting without a
 * voice, or any malformed value, is.
 */
import { readEnv } from '../../../env-schema.js';

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

/** Greeting text limit: the client's maxTextChars default. */
const MAX_GREETING_CHARS = 5000;

/** Reads every ELEVENLABS_* key the TTS client uses; lists every bad value in `problems`. */
export function readElevenLabsTtsEnv(env: Readonly<Record<string, string | undefined>>): { env: ElevenLabsTtsEnv; problems: string[] } {
  const { values: e, problems } = readEnv(env, 'elevenlabs-tts');
  const { ELEVENLABS_API_KEY: apiKey, ELEVENLABS_VOICE_ID: voiceId, ELEVENLABS_GREETING: greeting } = e;
  if (greeting !== undefined) {
    if (greeting.length > MAX_GREETING_CHARS) problems.push(`ELEVENLABS_GREETING: ${greeting.length} characters; the limit is ${MAX_GREETING_CHARS}`);
    if (voiceId === undefined) problems.push('ELEVENLABS_GREETING needs ELEVENLABS_VOICE_ID (the voice to speak it with)');
    if (apiKey === undefined) problems.push('ELEVENLABS_GREETING needs ELEVENLABS_API_KEY');
  }
  return {
    env: {
      apiKey,
      voiceId,
      baseUrl: e.ELEVENLABS_TTS_URL.replace(/\/+$/, ''),
      modelId: e.ELEVENLABS_TTS_MODEL,
      cacheEntries: e.ELEVENLABS_TTS_CACHE_ENTRIES,
      cacheBytes: e.ELEVENLABS_TTS_CACHE_MB * 1024 * 1024,
      timeoutMs: e.ELEVENLABS_TTS_TIMEOUT_MS,
      greeting,
    },
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
