/**
 * The Gemini Live adapter's configuration: GEMINI_* keys read from Config.env and
 * validated once at start, every problem listed. Without
 * GEMINI_API_KEY the agent is simply unavailable (config undefined, no problem).
 *
 * Agent options from the voice webhook (`voice`, `instructions`, `model`) override
 * the env defaults per call; geminiCallOptions() validates them, and a bad one makes
 * the session's connect() reject with BRIDGE_ERR_AGENT_CONFIG.
 */
import type { ToolDeclaration } from '../../tools/declarations.js';
import { BridgeError, ErrorCodes } from '../../errors.js';
import { envDefault, readEnv } from '../../env-schema.js';

/**
 * The Gemini API (AI Studio key) endpoint (https://ai.google.dev/api/live). The key is sent in the
 * `x-goog-api-key` header of the upgrade, as Google's SDKs do — never in the URL, where
 * proxies, access logs and error messages would carry it.
 */
export const DEFAULT_GEMINI_LIVE_URL = envDefault('GEMINI_LIVE_URL');
/**
 * The GA Live model Google's model page recommends as the default for low-latency voice
 * agents (released 2026-09-15, no shutdown announced). It supersedes the preview models
 * gemini-2.5-flash-native-audio-preview-12-2025 and gemini-3.1-flash-live-preview (Live
 * preview models were reported retired on 2026-11-17). See docs/agents/gemini.md on
 * choosing another model (GEMINI_MODEL, or the per-call `model` parameter).
 */
export const DEFAULT_GEMINI_MODEL = envDefault('GEMINI_MODEL');
export const DEFAULT_GEMINI_VOICE = envDefault('GEMINI_VOICE');
export const DEFAULT_GEMINI_INSTRUCTIONS =
  'You are a helpful voice assistant on a phone call. Keep answers short and conversational. The caller hears you through a telephone line.';

export interface GeminiConfig {
  readonly apiKey: string;
  /** WebSocket endpoint, without the key (sent as the x-goog-api-key header); ws:// is allowed for local fakes. */
  readonly url: string;
  /** Model name without the `models/` prefix. */
  readonly model: string;
  readonly voice: string;
  readonly instructions: string;
  /** Bound of one connection attempt: WebSocket upgrade + setup → setupComplete. */
  readonly connectTimeoutMs: number;
  /** WebSocket ping period (liveness check; the Live API documents no application-level ping). */
  readonly pingIntervalMs: number;
  /** No frame (message or pong) from the service for this long → the socket is dead. */
  readonly idleTimeoutMs: number;
  /** Caller audio kept while the adapter reconnects (goAway rollover, resumption). */
  readonly resumeBufferMs: number;
  /** Consecutive failed reconnect attempts before the session fails for good. */
  readonly maxReconnects: number;
  /** Tell the model the heard position on barge-in, as a clientContent context note (see docs/agents/gemini.md). */
  readonly interruptNote: boolean;
}

/** Per-call options after webhook parameters are applied. */
export interface GeminiCallOptions {
  readonly model: string;
  readonly voice: string;
  readonly instructions: string;
  /** Function tools (setup.tools[].functionDeclarations); none → no tools in the setup. */
  readonly tools?: readonly ToolDeclaration[];
}

const MODEL_RE = /^[a-z0-9][a-z0-9.-]{0,127}$/;
/** Prebuilt voice names are single capitalised words (Puck, Charon, Kore, Zubenelgenubi…); the list grows, so check the shape only. */
const VOICE_RE = /^[A-Za-z][A-Za-z-]{0,39}$/;
export const MAX_INSTRUCTIONS_CHARS = 20_000;

type Env = Readonly<Record<string, string | undefined>>;

/** Reads GEMINI_* (declared in src/env-schema.ts); `config` is undefined when GEMINI_API_KEY is unset. */
export function readGeminiConfig(env: Env): { config: GeminiConfig | undefined; problems: string[] } {
  const { values: e, problems } = readEnv(env, 'gemini');
  const url = e.GEMINI_LIVE_URL;
  if (new URL(url).searchParams.has('key')) problems.push('GEMINI_LIVE_URL: must not carry the key (set GEMINI_API_KEY; the adapter sends it in the x-goog-api-key header)');
  const model = e.GEMINI_MODEL.startsWith('models/') ? e.GEMINI_MODEL.slice(7) : e.GEMINI_MODEL;
  // Gemini pongs have taken 8–30 s; a 20 s pong timeout tripped other clients (aicc2025/sip-to-ai#14).
  const { GEMINI_PING_INTERVAL_MS: pingIntervalMs, GEMINI_IDLE_TIMEOUT_MS: idleTimeoutMs } = e;
  if (idleTimeoutMs <= pingIntervalMs) problems.push(`GEMINI_IDLE_TIMEOUT_MS=${idleTimeoutMs} must be greater than GEMINI_PING_INTERVAL_MS=${pingIntervalMs}`);
  const apiKey = e.GEMINI_API_KEY;
  if (apiKey === undefined) return { config: undefined, problems };
  return {
    config: Object.freeze({
      apiKey,
      url,
      model,
      voice: e.GEMINI_VOICE,
      instructions: e.GEMINI_INSTRUCTIONS ?? DEFAULT_GEMINI_INSTRUCTIONS,
      connectTimeoutMs: e.GEMINI_CONNECT_TIMEOUT_MS,
      pingIntervalMs,
      idleTimeoutMs,
      resumeBufferMs: e.GEMINI_RESUME_BUFFER_MS,
      maxReconnects: e.GEMINI_MAX_RECONNECTS,
      interruptNote: e.GEMINI_INTERRUPT_NOTE,
    }),
    problems,
  };
}

function checkModel(v: string, what: string): string {
  const name = v.startsWith('models/') ? v.slice(7) : v;
  if (!MODEL_RE.test(name)) throw new Error(`${what}=${JSON.stringify(v)}: not a model name (e.g. ${DEFAULT_GEMINI_MODEL})`);
  return name;
}
function checkVoice(v: string, what: string): string {
  if (!VOICE_RE.test(v)) throw new Error(`${what}=${JSON.stringify(v)}: not a prebuilt voice name (e.g. Puck, Charon, Kore)`);
  return v;
}
function checkInstructions(v: string, what: string): string {
  if (v.length > MAX_INSTRUCTIONS_CHARS) throw new Error(`${what}: longer than ${MAX_INSTRUCTIONS_CHARS} characters`);
  return v;
}

/** The call's options: webhook parameters `model`, `voice`, `instructions` over the env defaults. Throws BRIDGE_ERR_AGENT_CONFIG. */
export function geminiCallOptions(config: GeminiConfig, parameters: Readonly<Record<string, string>>): GeminiCallOptions {
  try {
    const model = parameters['model'] !== undefined ? checkModel(parameters['model'].trim(), 'model') : config.model;
    const voice = parameters['voice'] !== undefined ? checkVoice(parameters['voice'].trim(), 'voice') : config.voice;
    const instructions = parameters['instructions'] !== undefined ? checkInstructions(parameters['instructions'].trim(), 'instructions') : config.instructions;
    if (instructions === '') throw new Error('instructions: must not be empty');
    return { model, voice, instructions };
  } catch (e) {
    throw new BridgeError(ErrorCodes.AGENT_CONFIG, `gemini agent: ${(e as Error).message}`);
  }
}
