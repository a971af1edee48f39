/**
 * The Hume EVI adapter's configuration: HUME_* keys from Config.env, validated once
 * at start (every problem listed), plus the per-call agent options from the webhook.
 *
 * NOTE: Hume announced that EVI access ends 2026-11-13; HUME_EVI_URL points the
 * adapter at any endpoint that speaks the documented EVI protocol.
 */
import type { ToolDeclaration } from '../../tools/declarations.js';
import { BridgeError, ErrorCodes } from '../../errors.js';
import { envDefault, readEnv } from '../../env-schema.js';

export const DEFAULT_EVI_URL = envDefault('HUME_EVI_URL');

export interface HumeConfig {
  /** HUME_API_KEY: sent as the `X-Hume-Api-Key` header and the `api_key` query parameter (as the Hume SDK does). */
  readonly apiKey: string;
  /** HUME_EVI_URL (ws:// or wss://). */
  readonly url: string;
  /** HUME_CONFIG_ID: EVI config (voice, prompt, timeouts) to use; the account default when unset. */
  readonly configId?: string;
  /** HUME_INPUT_RATE: PCM16 rate we stream to EVI (declared in session_settings.audio). */
  readonly inputRateHz: number;
  /** HUME_OUTPUT_RATE: PCM16 rate we hand the bridge; WAV chunks at other rates are resampled. */
  readonly outputRateHz: number;
  /** HUME_KEEPALIVE_MS: WebSocket ping interval; two unanswered intervals = a dead socket. */
  readonly keepaliveMs: number;
  /** HUME_RESUME_ATTEMPTS: reconnects (by chat_group_id) after an unexpected close; 0 = none. */
  readonly resumeAttempts: number;
}

export interface HumeCallOptions {
  /** `instructions` → session_settings.system_prompt. */
  readonly systemPrompt?: string;
  /** `voice` → session_settings.voice_id. */
  readonly voiceId?: string;
  /** `config_id` → overrides HUME_CONFIG_ID for this call. */
  readonly configId?: string;
  /** The call's tools, declared in session_settings. */
  readonly tools?: readonly ToolDeclaration[];
}

const ID_PATTERN = /^[A-Za-z0-9_-]{1,128}$/;
const MAX_INSTRUCTIONS_CHARS = 20_000;

type Env = Readonly<Record<string, string | undefined>>;

/** Reads HUME_* (declared in src/env-schema.ts); `config` is undefined when HUME_API_KEY is unset (the agent is then unavailable). */
export function readHumeConfig(env: Env): { config: HumeConfig | undefined; problems: string[] } {
  const { values: e, problems } = readEnv(env, 'hume');
  let url = e.HUME_EVI_URL;
  if (new URL(url).searchParams.has('api_key')) {
    problems.push('HUME_EVI_URL: must not carry api_key (set HUME_API_KEY instead)');
    url = DEFAULT_EVI_URL;
  }
  const apiKey = e.HUME_API_KEY;
  if (apiKey === undefined) return { config: undefined, problems };
  return {
    config: Object.freeze({
      apiKey,
      url,
      configId: e.HUME_CONFIG_ID,
      inputRateHz: e.HUME_INPUT_RATE,
      outputRateHz: e.HUME_OUTPUT_RATE,
      keepaliveMs: e.HUME_KEEPALIVE_MS,
      resumeAttempts: e.HUME_RESUME_ATTEMPTS,
    }),
    problems,
  };
}

/**
 * Agent options from the webhook (TwiML <Parameter>s): `instructions`, `voice`,
 * `config_id`; other names belong to other agents and are ignored. A bad value throws
 * BridgeError(AGENT_CONFIG), which the session's connect() rejects with.
 */
export function readHumeCallOptions(parameters: Readonly<Record<string, string>>): HumeCallOptions {
  const out: { systemPrompt?: string; voiceId?: string; configId?: string } = {};
  const instructions = parameters['instructions'];
  if (instructions !== undefined) {
    const t = instructions.trim();
    if (t === '' || t.length > MAX_INSTRUCTIONS_CHARS) throw new BridgeError(ErrorCodes.AGENT_CONFIG, `hume: instructions must be 1–${MAX_INSTRUCTIONS_CHARS} characters`);
    out.systemPrompt = t;
  }
  const voice = parameters['voice'];
  if (voice !== undefined) {
    if (!ID_PATTERN.test(voice.trim())) throw new BridgeError(ErrorCodes.AGENT_CONFIG, `hume: voice=${JSON.stringify(voice.slice(0, 64))} must be a voice id (letters, digits, - and _)`);
    out.voiceId = voice.trim();
  }
  const configId = parameters['config_id'];
  if (configId !== undefined) {
    if (!ID_PATTERN.test(configId.trim())) throw new BridgeError(ErrorCodes.AGENT_CONFIG, `hume: config_id=${JSON.stringify(configId.slice(0, 64))} must be an id (letters, digits, - and _)`);
    out.configId = configId.trim();
  }
  return out;
}
