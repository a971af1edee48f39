/**
 * The lifecycle and admission settings, read from `Config.env` (the raw environment;
 * declared in src/env-schema.ts) and validated once at start with every other key
 * (loadConfig runs readLifecycleConfig): all problems at once, as a ConfigError
 * (exit 78). Documented in docs/operations/lifecycle.md.
 */
import { isIP } from 'node:net';
import { ConfigError } from '../config-error.js';
import { parseBoolean, readEnv } from '../env-schema.js';

export interface LifecycleConfig {
  /** After SIGTERM/SIGINT: longest wait for active calls to end by themselves (ms). */
  readonly drainTimeoutMs: number;
  /** Most calls this process carries at once (streams + calls admitted at the webhook); undefined = unlimited. */
  readonly maxCalls: number | undefined;
  /** Event-loop utilisation (0–1) over the window above which new calls are refused; undefined = gate off. */
  readonly loadThreshold: number | undefined;
  /** The moving window the load is measured over (ms). */
  readonly loadWindowMs: number;
  /** Voice webhook requests per minute per source address; 0 = no limit. */
  readonly webhookRatePerMin: number;
  /** Bound on receiving an HTTP request's headers and body (ms). */
  readonly httpTimeoutMs: number;
  /** Media Streams sockets before their `start` (not calls yet): at most this many in total, and from one source. */
  readonly maxPendingStreams: number;
  readonly maxPendingPerSource: number;
  /** fastify `trustProxy`: which peers may set X-Forwarded-For (true, false, or a list of addresses/CIDRs/keywords). */
  readonly trustProxy: boolean | string[];
}

/**
 * Loopback only: a proxy on the same host. A proxy elsewhere (another machine of the
 * private network) must be named, e.g. BRIDGE_TRUST_PROXY=10.0.0.5 or 10.0.0.0/24 —
 * trusting whole private ranges let any client there choose its rate-limit bucket and
 * the URL signatures are checked over.
 */
export const DEFAULT_TRUST_PROXY = ['loopback'];
const PROXY_KEYWORDS = new Set(['loopback', 'linklocal', 'uniquelocal']);

/** The settings, or (with the defaults in their place) the problems of the bad ones. */
export function readLifecycleConfig(env: Readonly<Record<string, string | undefined>>): { config: LifecycleConfig; problems: string[] } {
  const { values: e, problems } = readEnv(env, 'lifecycle');

  let loadThreshold: number | undefined = 0.7;
  const lt = e.BRIDGE_LOAD_THRESHOLD;
  if (['off', '0', 'none'].includes(lt.toLowerCase())) loadThreshold = undefined;
  else {
    const n = /^(\d+\.?\d*|\.\d+)$/.test(lt) ? Number(lt) : NaN;
    if (!Number.isFinite(n) || n <= 0 || n > 1) problems.push(`BRIDGE_LOAD_THRESHOLD=${JSON.stringify(lt)}: must be a number in (0, 1] (event-loop utilisation), or "off"`);
    else loadThreshold = n;
  }

  let trustProxy: boolean | string[] = DEFAULT_TRUST_PROXY;
  const tp = e.BRIDGE_TRUST_PROXY;
  const asBoolean = parseBoolean(tp);
  if (asBoolean !== undefined) trustProxy = asBoolean;
  else {
    const list = tp.split(',').map((s) => s.trim()).filter((s) => s !== '');
    const bad = list.filter((s) => !PROXY_KEYWORDS.has(s) && isIP(s.split('/')[0]!) === 0);
    if (bad.length > 0 || list.length === 0) problems.push(`BRIDGE_TRUST_PROXY=${JSON.stringify(tp)}: must be 1/0, or a comma list of addresses, CIDRs, loopback, linklocal, uniquelocal`);
    else trustProxy = list;
  }

  const config: LifecycleConfig = {
    drainTimeoutMs: e.BRIDGE_DRAIN_TIMEOUT_MS,
    maxCalls: e.BRIDGE_MAX_CALLS,
    loadThreshold,
    loadWindowMs: e.BRIDGE_LOAD_WINDOW_MS,
    webhookRatePerMin: e.BRIDGE_WEBHOOK_RATE_PER_MIN,
    httpTimeoutMs: e.BRIDGE_HTTP_TIMEOUT_MS,
    maxPendingStreams: e.BRIDGE_MAX_PENDING_STREAMS,
    maxPendingPerSource: e.BRIDGE_MAX_PENDING_PER_SOURCE,
    trustProxy,
  };
  return { config: Object.freeze(config), problems };
}

/** The settings; throws ConfigError listing every bad one. */
export function loadLifecycleConfig(env: Readonly<Record<string, string | undefined>>): LifecycleConfig {
  const { config, problems } = readLifecycleConfig(env);
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}
