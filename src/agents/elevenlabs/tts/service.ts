/**
 * The TTS integration surface for the call core: one TtsService per process,
 * built from Config.env, shared by every call (the cache is process-wide).
 *
 *   const tts = createTtsService(config);          // undefined when ELEVENLABS_API_KEY or _VOICE_ID is unset
 *   const ulaw = await tts.speak('Hello', signal);  // 8 kHz μ-law bytes, no header, cached
 *   tts.greeting                                    // ELEVENLABS_GREETING or undefined
 *
 * speak() rejects with a BridgeError: AGENT_CONFIG for text that is empty or over 5000
 * characters (a 400 for an HTTP caller), AGENT_AUTH / AGENT_TIMEOUT / AGENT_AUDIO_FORMAT /
 * AGENT_PROTOCOL / AGENT_CONNECT / AGENT_RATE_LIMIT / AGENT_SERVICE from the service (502/504
 * material), AGENT_CLOSED after close(); or with an Error named 'AbortError' when `signal`
 * aborts (AGENT_TIMEOUT when it aborts with a TimeoutError, as AbortSignal.timeout() does).
 */
import { ConfigError, type Config } from '../../../config.js';
import { ElevenLabsTtsClient, type TtsClientOptions, type TtsClientStats } from './client.js';
import { readElevenLabsTtsConfig } from './config.js';
import type { VoiceSettings } from './protocol.js';

export interface TtsService {
  readonly voiceId: string;
  readonly modelId: string;
  /** ELEVENLABS_GREETING (whitespace-trimmed), or undefined. */
  readonly greeting: string | undefined;
  /** The whole utterance as 8 kHz μ-law (the caller's own copy); cached by (text, voice, model, settings). */
  speak(text: string, signal: AbortSignal): Promise<Uint8Array>;
  /** Same audio, chunk by chunk as it is synthesized, so playback can start early; resolves with the byte count. */
  stream(text: string, onChunk: (ulaw: Uint8Array) => void, signal: AbortSignal): Promise<number>;
  stats(): TtsClientStats;
  /** Ends running syntheses (AGENT_CLOSED) and refuses new ones. Call at shutdown. Idempotent. */
  close(): void;
}

export interface TtsServiceOptions {
  /** Client overrides (tests shorten timeouts); env-derived values win only where not given. */
  readonly client?: Partial<Omit<TtsClientOptions, 'apiKey' | 'voiceId'>>;
  /** Voice settings for every utterance (defaults: 0.5 / 0.75 / 0 / speaker boost). */
  readonly settings?: Partial<VoiceSettings>;
}

/**
 * The process's TTS service, or undefined when TTS is not configured. Throws ConfigError
 * listing every malformed ELEVENLABS_* value (start-up should refuse to run with them).
 */
export function createTtsService(config: Config, options: TtsServiceOptions = {}): TtsService | undefined {
  const { config: c, problems } = readElevenLabsTtsConfig(config.env);
  if (problems.length > 0) throw new ConfigError(problems);
  if (c === undefined) return undefined;
  const client = new ElevenLabsTtsClient({
    apiKey: c.apiKey,
    voiceId: c.voiceId,
    baseUrl: c.baseUrl,
    modelId: c.modelId,
    cacheEntries: c.cacheEntries,
    cacheBytes: c.cacheBytes,
    connectTimeoutMs: config.agentConnectTimeoutMs,
    totalTimeoutMs: c.timeoutMs,
    ...options.client,
    ...(options.settings === undefined ? {} : { settings: options.settings }),
  });
  return {
    voiceId: client.voiceId,
    modelId: client.modelId,
    greeting: c.greeting,
    speak: (text, signal) => client.synthesize(text, { signal }),
    stream: (text, onChunk, signal) => client.stream(text, onChunk, { signal }),
    stats: () => client.stats(),
    close: () => client.close(),
  };
}
