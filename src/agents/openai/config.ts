/**
 * The OpenAI adapter's settings from OPENAI_* environment variables (validated once,
 * every problem listed), and per-call overrides from the webhook's agent parameters
 * (validated per call: a bad value rejects connect() with BRIDGE_ERR_AGENT_CONFIG).
 */
import { BridgeError, ErrorCodes } from '../../errors.js';
import type { OpenAiAudioFormat, SessionSettings, TurnDetection } from './protocol.js';

export interface OpenAiConfig {
  readonly apiKey: string;
  /** wss://api.openai.com/v1/realtime; `?model=` is added per session. */
  readonly url: string;
  readonly defaults: SessionSettings;
  /** Roll over to a fresh session after this long (the service caps sessions at 60 min, §2.7). */
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
 * Defaults. The models are current, non-deprecated ones (openai-python 3.57.0 models):
 * `gpt-realtime` (deprecated, shutdown announced for 2027-01-20) and `whisper-1` as a
 * transcription model (deprecated, 2027-02-26) were the defaults before. OPENAI_MODEL /
 * OPENAI_TRANSCRIPTION_MODEL (or the `model` / `transcription_model` parameters) pin another.
 */
export const OPENAI_DEFAULTS = {
  url: 'wss://api.openai.com/v1/realtime',
  model: 'gpt-realtime-2.1',
  voice: 'alloy',
  instructions:
    'You are a helpful voice assistant on a phone call. Keep answers short and conversational, and speak in the language the caller uses.',
  turnDetection: 'server_vad' as TurnDetection,
  transcriptionModel: 'gpt-4o-mini-transcribe',
  audioFormat: 'pcmu' as OpenAiAudioFormat,
  sessionMaxMs: 3_300_000,
  rolloverWaitMs: 30_000,
  pingIntervalMs: 5000,
  handshakeTimeoutMs: 10_000,
  reconnectAttempts: 3,
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

/** Reads OPENAI_*; `config` is undefined when OPENAI_API_KEY is unset (the agent is then unavailable). */
export function readOpenAiConfig(env: Env): { config: OpenAiConfig | undefined; problems: string[] } {
  const problems: string[] = [];
  const get = (k: string) => {
    const v = env[k];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };
  const int = (k: string, def: number, min: number, max: number): number => {
    const v = get(k);
    if (v === undefined) return def;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) {
      problems.push(`${k}=${JSON.stringify(v)}: must be an integer from ${min} to ${max}`);
      return def;
    }
    return n;
  };

  let url = OPENAI_DEFAULTS.url;
  const rawUrl = get('OPENAI_REALTIME_URL');
  if (rawUrl !== undefined) {
    try {
      const u = new URL(rawUrl);
      if (u.protocol !== 'wss:' && u.protocol !== 'ws:') throw new Error('protocol');
      url = rawUrl;
    } catch {
      problems.push(`OPENAI_REALTIME_URL=${JSON.stringify(rawUrl)}: must be an absolute wss:// (or ws://) URL`);
    }
  }
  const model = get('OPENAI_MODEL') ?? OPENAI_DEFAULTS.model;
  if (!NAME.test(model)) problems.push(`OPENAI_MODEL=${JSON.stringify(model)}: not a model name`);
  const voice = get('OPENAI_VOICE') ?? OPENAI_DEFAULTS.voice;
  if (!NAME.test(voice)) problems.push(`OPENAI_VOICE=${JSON.stringify(voice)}: not a voice name`);
  const instructions = env['OPENAI_INSTRUCTIONS']?.trim() || OPENAI_DEFAULTS.instructions;
  if (instructions.length > MAX_INSTRUCTIONS) problems.push(`OPENAI_INSTRUCTIONS: longer than ${MAX_INSTRUCTIONS} characters`);
  let turnDetection = OPENAI_DEFAULTS.turnDetection;
  const td = get('OPENAI_TURN_DETECTION');
  if (td !== undefined) {
    const t = parseTurnDetection(td);
    if (t === undefined) problems.push(`OPENAI_TURN_DETECTION=${JSON.stringify(td)}: must be server_vad or semantic_vad`);
    else turnDetection = t;
  }
  let transcriptionModel: string | undefined = OPENAI_DEFAULTS.transcriptionModel;
  const tm = get('OPENAI_TRANSCRIPTION_MODEL');
  if (tm !== undefined) {
    const t = parseTranscription(tm);
    if (t === undefined) problems.push(`OPENAI_TRANSCRIPTION_MODEL=${JSON.stringify(tm)}: not a model name (or "none")`);
    else transcriptionModel = t ?? undefined;
  }
  let audioFormat = OPENAI_DEFAULTS.audioFormat;
  const af = get('OPENAI_AUDIO_FORMAT');
  if (af !== undefined) {
    const f = parseFormat(af);
    if (f === undefined) problems.push(`OPENAI_AUDIO_FORMAT=${JSON.stringify(af)}: must be pcmu or pcm24k`);
    else audioFormat = f;
  }
  const sessionMaxMs = int('OPENAI_SESSION_MAX_MS', OPENAI_DEFAULTS.sessionMaxMs, 1000, 3_600_000);
  const rolloverWaitMs = int('OPENAI_ROLLOVER_WAIT_MS', OPENAI_DEFAULTS.rolloverWaitMs, 0, 300_000);
  const pingIntervalMs = int('OPENAI_PING_INTERVAL_MS', OPENAI_DEFAULTS.pingIntervalMs, 100, 120_000);
  const handshakeTimeoutMs = int('OPENAI_HANDSHAKE_TIMEOUT_MS', OPENAI_DEFAULTS.handshakeTimeoutMs, 100, 120_000);
  const reconnectAttempts = int('OPENAI_RECONNECT_ATTEMPTS', OPENAI_DEFAULTS.reconnectAttempts, 0, 10);

  const apiKey = get('OPENAI_API_KEY');
  if (apiKey !== undefined && /\s/.test(apiKey)) problems.push('OPENAI_API_KEY: contains whitespace');
  if (apiKey === undefined) return { config: undefined, problems };
  return {
    config: Object.freeze({
      apiKey,
      url,
      defaults: Object.freeze({ model, instructions, voice, turnDetection, transcriptionModel, audioFormat }),
      sessionMaxMs,
      rolloverWaitMs,
      pingIntervalMs,
      handshakeTimeoutMs,
      reconnectAttempts,
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
