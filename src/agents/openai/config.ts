/**
 * The OpenAI adapter's settings from OPENAI_* environment variables (validated once,
 * every problem listed), and per-call overrides from the webhook's agent parameters
 * (validated per call: a bad value rejects connect() with BRIDGE_ERR_AGENT_CONFIG).
 */
import { BridgeError, ErrorCodes } from '../../errors.js';
import { envDefault, readEnv } from '../../env-schema.js';
import type { OpenAiAudioFormat, SessionSettings, TurnDetection } from './protocol.js';

export interface OpenAiConfig {
  readonly apiKey: string;
  /** wss://api.openai.com/v1/realtime; `?model=` is added per session. */
  readonly url: string;
  readonly defaults: SessionSettings;
  /** Roll over to a fresh session after this long (the service caps sessions at 60 min,
   * https://community.openai.com/t/realtime-api-session-timeout-post-ga/1357331). */
  readonly sessionMaxMs: number;
  /** Longest wait for a quiet moment (no response, caller not talking) before a rollover switches anyway. */
  readonly rolloverWaitMs: number;
  /** WebSocket ping period; a socket with no pong (or any frame) for one period is dead. */
  readonly pingIntervalMs: number;
  /** Bound of one connect: upgrade + session.created + session.updated. */
  readonly handshakeTimeoutMs: number;
  /** New sessions tried after a transient failure before giving up (backoff between them). */
  readonly reconnectAttempts: number;
}

/**
 * Defaults (declared in src/env-schema.ts; the instructions here). The models are
 * current, non-deprecated ones (openai-python 3.57.0 models): `gpt-realtime`
 * (deprecated, shutdown announced for 2027-01-20) and `whisper-1` as a transcription
 * model (deprecated, 2027-02-26) were the defaults before. OPENAI_MODEL /
 * OPENAI_TRANSCRIPTION_MODEL (or the `model` / `transcription_model` parameters) pin another.
 */
export const OPENAI_DEFAULTS = {
  url: envDefault('OPENAI_REALTIME_URL'),
  model: envDefault('OPENAI_MODEL'),
  voice: envDefault('OPENAI_VOICE'),
  instructions:
    'You are a helpful voice assistant on a phone call. Keep answers short and conversational, and speak in the language the caller uses.',
  turnDetection: envDefault('OPENAI_TURN_DETECTION'),
  transcriptionModel: envDefault('OPENAI_TRANSCRIPTION_MODEL'),
  audioFormat: envDefault('OPENAI_AUDIO_FORMAT'),
  sessionMaxMs: envDefault('OPENAI_SESSION_MAX_MS'),
  rolloverWaitMs: envDefault('OPENAI_ROLLOVER_WAIT_MS'),
  pingIntervalMs: envDefault('OPENAI_PING_INTERVAL_MS'),
  handshakeTimeoutMs: envDefault('OPENAI_HANDSHAKE_TIMEOUT_MS'),
  reconnectAttempts: envDefault('OPENAI_RECONNECT_ATTEMPTS'),
};

/** Longest instructions accepted from the environment or a webhook parameter. */
const MAX_INSTRUCTIONS = 16_000;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

type Env = Readonly<Record<string, string | undefined>>;

function parseFormat(v: string): OpenAiAudioFormat | undefined {
  const x = v.trim().toLowerCase();
  if (x === 'pcmu' || x === 'ulaw' || x === 'g711_ulaw' || x === 'audio/pcmu') return 'pcmu';
  if (x === 'pcm24k' || x === 'pcm' || x === 'pcm16' || x === 'audio/pcm') return 'pcm24k';
  return undefined;
}

function parseTurnDetection(v: string): TurnDetection | undefined {
  const x = v.trim().toLowerCase();
  return x === 'server_vad' || x === 'semantic_vad' ? x : undefined;
}

/** `none`/`off` turns caller transcription off. */
function parseTranscription(v: string): string | null | undefined {
  const x = v.trim();
  if (['none', 'off', '0', 'false'].includes(x.toLowerCase())) return null;
  return NAME.test(x) ? x : undefined;
}

/** Reads OPENAI_* (declared in src/env-schema.ts); `config` is undefined when OPENAI_API_KEY is unset (the agent is then unavailable). */
export function readOpenAiConfig(env: Env): { config: OpenAiConfig | undefined; problems: string[] } {
  const { values: e, problems } = readEnv(env, 'openai');
  const transcriptionModel = parseTranscription(e.OPENAI_TRANSCRIPTION_MODEL) ?? undefined;
  const apiKey = e.OPENAI_API_KEY;
  if (apiKey === undefined) return { config: undefined, problems };
  return {
    config: Object.freeze({
      apiKey,
      url: e.OPENAI_REALTIME_URL,
      defaults: Object.freeze({
        model: e.OPENAI_MODEL,
        instructions: e.OPENAI_INSTRUCTIONS ?? OPENAI_DEFAULTS.instructions,
        voice: e.OPENAI_VOICE,
        turnDetection: e.OPENAI_TURN_DETECTION,
        transcriptionModel,
        audioFormat: e.OPENAI_AUDIO_FORMAT,
      }),
      sessionMaxMs: e.OPENAI_SESSION_MAX_MS,
      rolloverWaitMs: e.OPENAI_ROLLOVER_WAIT_MS,
      pingIntervalMs: e.OPENAI_PING_INTERVAL_MS,
      handshakeTimeoutMs: e.OPENAI_HANDSHAKE_TIMEOUT_MS,
      reconnectAttempts: e.OPENAI_RECONNECT_ATTEMPTS,
    }),
    problems,
  };
}

/**
 * Per-call settings: the env defaults overridden by agent parameters `voice`,
 * `instructions`, `turn_detection`, `transcription_model` (`none` = off), `format`
 * (pcmu | pcm24k) and `model`. Throws BRIDGE_ERR_AGENT_CONFIG listing every bad one.
 */
export function sessionSettingsFor(defaults: SessionSettings, parameters: Readonly<Record<string, string>>): SessionSettings {
  const problems: string[] = [];
  const p = (k: string) => {
    const v = parameters[k];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };
  let { model, voice, instructions, turnDetection, transcriptionModel, audioFormat } = defaults;
  const m = p('model');
  if (m !== undefined) {
    if (NAME.test(m)) model = m;
    else problems.push(`model=${JSON.stringify(m.slice(0, 80))}: not a model name`);
  }
  const v = p('voice');
  if (v !== undefined) {
    if (NAME.test(v)) voice = v;
    else problems.push(`voice=${JSON.stringify(v.slice(0, 80))}: not a voice name`);
  }
  const i = p('instructions');
  if (i !== undefined) {
    if (i.length <= MAX_INSTRUCTIONS) instructions = i;
    else problems.push(`instructions: longer than ${MAX_INSTRUCTIONS} characters`);
  }
  const td = p('turn_detection');
  if (td !== undefined) {
    const t = parseTurnDetection(td);
    if (t === undefined) problems.push(`turn_detection=${JSON.stringify(td.slice(0, 80))}: must be server_vad or semantic_vad`);
    else turnDetection = t;
  }
  const tm = p('transcription_model');
  if (tm !== undefined) {
    const t = parseTranscription(tm);
    if (t === undefined) problems.push(`transcription_model=${JSON.stringify(tm.slice(0, 80))}: not a model name (or "none")`);
    else transcriptionModel = t ?? undefined;
  }
  const f = p('format');
  if (f !== undefined) {
    const x = parseFormat(f);
    if (x === undefined) problems.push(`format=${JSON.stringify(f.slice(0, 80))}: must be pcmu or pcm24k`);
    else audioFormat = x;
  }
  if (problems.length > 0) throw new BridgeError(ErrorCodes.AGENT_CONFIG, `openai agent: ${problems.join('; ')}`);
  return Object.freeze({ model, voice, instructions, turnDetection, transcriptionModel, audioFormat });
}
