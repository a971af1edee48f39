/**
 * The Pipecat adapter's settings, from PIPECAT_* keys in `Config.env` (validated once
 * at start; every problem listed). PIPECAT_URL unset → the agent is unavailable (not
 * a problem); set but invalid → a problem.
 */
import { BridgeError, ErrorCodes } from '../../errors.js';
import { envDefault, parseInteger, readEnv } from '../../env-schema.js';

export interface PipecatConfig {
  /** ws:// or wss:// URL of a Pipecat WebSocket transport using ProtobufFrameSerializer. */
  readonly url: string;
  /** Optional bearer token, sent as `Authorization: Bearer …` on the upgrade (for a proxy or the bot's own check). Never logged. */
  readonly authToken?: string;
  /**
   * Optional `Origin` header of the upgrade. A bot whose transport checks origins
   * (PIPECAT_ALLOWED_ORIGINS / `allowed_origins`) refuses a connection without an
   * allowed Origin with HTTP 403; the bridge sends none unless this is set.
   */
  readonly origin?: string;
  /** PCM16 rate of the caller audio we send (AudioRawFrame.sample_rate): the pipeline's audio_in_sample_rate. */
  readonly sampleRateHz: number;
  /**
   * The bot audio rate we expect (outputFormat: the call opens its outbound path at it);
   * undefined → sampleRateHz. A frame at another rate is played at its own rate (the
   * call's outbound path follows). Pipecat's PipelineParams default audio_out_sample_rate
   * is 24000: set this to match and the path never has to change rate.
   */
  readonly outputSampleRateHz?: number;
  /** Bound of the WebSocket handshake (ms). */
  readonly connectTimeoutMs: number;
  /** No bot audio for this long ends the response (Pipecat's own bot-stopped-speaking threshold is 350 ms). */
  readonly responseGapMs: number;
  /** WebSocket ping interval; a ping unanswered by the next one means the server stopped answering (ms). */
  readonly pingIntervalMs: number;
  /** Reconnect once (to a NEW Pipecat session) after an abnormal mid-call close. */
  readonly reconnect: boolean;
}

/** The env defaults (declared in src/env-schema.ts). */
export const PIPECAT_DEFAULTS = Object.freeze({
  sampleRateHz: envDefault('PIPECAT_SAMPLE_RATE'),
  connectTimeoutMs: envDefault('PIPECAT_CONNECT_TIMEOUT_MS'),
  responseGapMs: envDefault('PIPECAT_RESPONSE_GAP_MS'),
  pingIntervalMs: envDefault('PIPECAT_PING_INTERVAL_MS'),
  reconnect: envDefault('PIPECAT_RECONNECT'),
});

export const MIN_RATE_HZ = 8000;
export const MAX_RATE_HZ = 48_000;

/** A rate we can send in whole 20 ms frames, within 8000–48000 Hz. Returns an error text or undefined. */
export function rateProblem(text: string): string | undefined {
  const n = parseInteger(text) ?? NaN;
  if (!Number.isInteger(n) || n < MIN_RATE_HZ || n > MAX_RATE_HZ || n % 50 !== 0) {
    return `must be an integer from ${MIN_RATE_HZ} to ${MAX_RATE_HZ} Hz divisible by 50 (whole 20 ms frames)`;
  }
  return undefined;
}

/** Reads PIPECAT_* (declared in src/env-schema.ts); `config` is undefined without PIPECAT_URL, or with a problem. */
export function readPipecatConfig(env: Readonly<Record<string, string | undefined>>): { config: PipecatConfig | undefined; problems: string[] } {
  const { values: e, problems } = readEnv(env, 'pipecat');
  let origin: string | undefined;
  const rawOrigin = e.PIPECAT_ORIGIN;
  if (rawOrigin !== undefined) {
    const p = originProblem(rawOrigin);
    if (p) problems.push(`PIPECAT_ORIGIN=${JSON.stringify(rawOrigin.slice(0, 100))}: ${p}`);
    else origin = rawOrigin.replace(/\/$/, '');
  }
  if (e.PIPECAT_URL === undefined || problems.length > 0) return { config: undefined, problems };
  const config: PipecatConfig = {
    url: new URL(e.PIPECAT_URL).toString(),
    authToken: e.PIPECAT_AUTH_TOKEN,
    origin,
    sampleRateHz: e.PIPECAT_SAMPLE_RATE,
    outputSampleRateHz: e.PIPECAT_OUTPUT_SAMPLE_RATE,
    connectTimeoutMs: e.PIPECAT_CONNECT_TIMEOUT_MS,
    responseGapMs: e.PIPECAT_RESPONSE_GAP_MS,
    pingIntervalMs: e.PIPECAT_PING_INTERVAL_MS,
    reconnect: e.PIPECAT_RECONNECT,
  };
  return { config: Object.freeze(config), problems };
}

/** An Origin header value: scheme://host[:port], no path, query or credentials (RFC 6454 serialisation). */
function originProblem(v: string): string | undefined {
  try {
    const u = new URL(v);
    if (u.origin === 'null' || u.username || u.password || u.search || u.hash || (u.pathname !== '/' && u.pathname !== '')) throw new Error('not an origin');
    if (!/^[a-z][a-z0-9+.-]*:\/\/[^/?#]+\/?$/i.test(v)) throw new Error('not an origin');
    return undefined;
  } catch {
    return 'must be an origin like https://bridge.example.com (scheme, host and optional port; no path)';
  }
}

/**
 * Agent options from the webhook (`ctx.parameters`): `rate` overrides
 * PIPECAT_SAMPLE_RATE for this call (and the output rate too, unless
 * PIPECAT_OUTPUT_SAMPLE_RATE is set); `outputRate` overrides the output rate. Other
 * parameters belong to other agents and are ignored. Throws BRIDGE_ERR_AGENT_CONFIG
 * for a bad value.
 */
export function ratesFromParameters(parameters: Readonly<Record<string, string>>, config: PipecatConfig): { inHz: number; outHz: number } {
  const read = (key: string): number | undefined => {
    const v = parameters[key]?.trim();
    if (v === undefined || v === '') return undefined;
    const p = rateProblem(v);
    if (p) throw new BridgeError(ErrorCodes.AGENT_CONFIG, `pipecat agent: ${key}=${JSON.stringify(v)} ${p}`);
    return Number(v);
  };
  const inHz = read('rate') ?? config.sampleRateHz;
  const outHz = read('outputRate') ?? config.outputSampleRateHz ?? inHz;
  return { inHz, outHz };
}
