/**
 * The lifecycle and admission settings, read from `Config.env` (the raw environment)
 * and validated once at start, like every other key: all problems at once, as a
 * ConfigError (exit 78). Documented in docs/operations/lifecycle.md.
 */
import { isIP } from 'node:net';
import { ConfigError } from '../config.js';

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

export function loadLifecycleConfig(env: Readonly<Record<string, string | undefined>>): LifecycleConfig {
  const problems: string[] = [];
  const get = (k: string) => {
    const v = env[k];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };
  const int = (k: string, def: number | undefined, min: number, max: number): number | undefined => {
    const v = get(k);
    if (v === undefined) return def;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) {
      problems.push(`${k}=${JSON.stringify(v)}: must be an integer from ${min} to ${max}`);
      return def;
    }
    return n;
  };

  let loadThreshold: number | undefined = 0.7;
  const lt = get('BRIDGE_LOAD_THRESHOLD');
  if (lt !== undefined) {
    if (['off', '0', 'none'].includes(lt.toLowerCase())) loadThreshold = undefined;
    else {
      const n = Number(lt);
      if (!Number.isFinite(n) || n <= 0 || n > 1) problems.push(`BRIDGE_LOAD_THRESHOLD=${JSON.stringify(lt)}: must be a number in (0, 1] (event-loop utilisation), or "off"`);
      else loadThreshold = n;
    }
  }

  let trustProxy: boolean | string[] = DEFAULT_TRUST_PROXY;
  const tp = get('BRIDGE_TRUST_PROXY');
  if (tp !== undefined) {
    const low = tp.toLowerCase();
    if (['1', 'true', 'yes', 'on'].includes(low)) trustProxy = true;
    else if (['0', 'false', 'no', 'off'].includes(low)) trustProxy = false;
    else {
      const list = tp.split(',').map((s) => s.trim()).filter((s) => s !== '');
      const bad = list.filter((s) => !PROXY_KEYWORDS.has(s) && isIP(s.split('/')[0]!) === 0);
      if (bad.length > 0 || list.length === 0) problems.push(`BRIDGE_TRUST_PROXY=${JSON.stringify(tp)}: must be 1/0, or a comma list of addresses, CIDRs, loopback, linklocal, uniquelocal`);
      else trustProxy = list;
    }
  }

  const config: LifecycleConfig = {
    drainTimeoutMs: int('BRIDGE_DRAIN_TIMEOUT_MS', 30_000, 0, 3_600_000)!,
    maxCalls: int('BRIDGE_MAX_CALLS', undefined, 1, 1_000_000),
    loadThreshold,
    loadWindowMs: int('BRIDGE_LOAD_WINDOW_MS', 5000, 200, 60_000)!,
    webhookRatePerMin: int('BRIDGE_WEBHOOK_RATE_PER_MIN', 600, 0, 1_000_000)!,
    httpTimeoutMs: int('BRIDGE_HTTP_TIMEOUT_MS', 15_000, 1000, 300_000)!,
    maxPendingStreams: int('BRIDGE_MAX_PENDING_STREAMS', 200, 1, 100_000)!,
    maxPendingPerSource: int('BRIDGE_MAX_PENDING_PER_SOURCE', 20, 1, 100_000)!,
    trustProxy,
  };
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(config);
}
