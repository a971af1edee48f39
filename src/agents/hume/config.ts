/**
 * The Hume EVI adapter's configuration: HUME_* keys from Config.env, validated once
 * at start (every problem listed), plus the per-call agent options from the webhook.
 *
 * NOTE: Hume announced that EVI access ends 2026-11-13; HUME_EVI_URL points the
 * adapter at any endpoint that speaks the documented EVI protocol.
 */
import { BridgeError, ErrorCodes } from '../../errors.js';

export const DEFAULT_EVI_URL = 'wss://api.hume.ai/v0/evi/chat';

export interface HumeConfig {
  /** HUME_API_KEY: sent as the `X-Hume-Api-Key` header and the `api_key` query parameter (§4.1). */
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
}

const ID_PATTERN = /^[A-Za-z0-9_-]{1,128}$/;
const MAX_INSTRUCTIONS_CHARS = 20_000;

type Env = Readonly<Record<string, string | undefined>>;

/** Reads HUME_*; `config` is undefined when HUME_API_KEY is unset (the agent is then unavailable). */
export function readHumeConfig(env: Env): { config: HumeConfig | undefined; problems: string[] } {
  const problems: string[] = [];
  const get = (k: string) => {
    const v = env[k];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };
  const int = (k: string, def: number, min: number, max: number): number => {
    const v = get(k);
    if (v === undefined) return def;
    const n = /^-?\d+$/.test(v) ? Number(v) : NaN;
    if (!Number.isInteger(n) || n < min || n > max) {
      problems.push(`${k}=${JSON.stringify(v)}: must be an integer from ${min} to ${max}`);
      return def;
    }
    return n;
  };

  const apiKey = get('HUME_API_KEY');
  let url = DEFAULT_EVI_URL;
  const urlText = get('HUME_EVI_URL');
  if (urlText !== undefined) {
    try {
      const u = new URL(urlText);
      if (u.protocol !== 'ws:' && u.protocol !== 'wss:') throw new Error('protocol');
      if (u.searchParams.has('api_key')) throw new Error('key in URL');
      url = urlText;
    } catch (e) {
      problems.push(
        (e as Error).message === 'key in URL'
          ? 'HUME_EVI_URL: must not carry api_key (set HUME_API_KEY instead)'
          : `HUME_EVI_URL=${JSON.stringify(urlText)}: must be an absolute ws:// or wss:// URL`,
      );
    }
  }
  const configId = get('HUME_CONFIG_ID');
  if (configId !== undefined && !ID_PATTERN.test(configId)) problems.push(`HUME_CONFIG_ID=${JSON.stringify(configId)}: must be an id (letters, digits, - and _)`);
  const inputRateHz = int('HUME_INPUT_RATE', 16_000, 8000, 48_000);
  const outputRateHz = int('HUME_OUTPUT_RATE', 24_000, 8000, 48_000);
  const keepaliveMs = int('HUME_KEEPALIVE_MS', 5000, 500, 60_000);
  const resumeAttempts = int('HUME_RESUME_ATTEMPTS', 3, 0, 10);
  if (apiKey === undefined) return { config: undefined, problems };
  return {
    config: Object.freeze({ apiKey, url, configId: configId !== undefined && ID_PATTERN.test(configId) ? configId : undefined, inputRateHz, outputRateHz, keepaliveMs, resumeAttempts }),
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
