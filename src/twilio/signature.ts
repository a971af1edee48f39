/**
 * X-Twilio-Signature (https://www.twilio.com/docs/usage/security), computed and checked by the official
 * `twilio` package so we follow its URL variants (port added/removed, legacy
 * query encoding) exactly:
 *
 *   data      = url (with query string) + for each param name, sorted: name + value
 *               (array values: de-duplicated, sorted, name + value each)
 *   signature = base64(HMAC-SHA1(key = AuthToken, data as UTF-8))
 *
 * A WebSocket upgrade (Media Streams) is a GET with no body: params = {} and the
 * URL is the `wss://…` URL Twilio dialled — not `https://` (twilio-aspnet#162).
 *
 * `publicUrlOf` rebuilds that URL from a request as our server sees it, behind
 * TLS-terminating proxies (ngrok, load balancers) that set X-Forwarded-Proto /
 * X-Forwarded-Host. Those headers are client-controlled; when the public URL is
 * known, configure it (BRIDGE_PUBLIC_URL) and the headers are not consulted.
 */
import twilio from 'twilio';

export type SignatureParams = Record<string, string | readonly string[]>;

/** The signature Twilio sends for a request to `url` with form `params` ({} for GETs and WebSocket upgrades). */
export function computeSignature(authToken: string, url: string, params: SignatureParams = {}): string {
  return twilio.getExpectedTwilioSignature(authToken, url, params);
}

/**
 * Whether `signature` is Twilio's for this request. Never throws: an empty token,
 * a missing or repeated header, or a URL that does not parse is simply invalid
 * (an empty key would let anyone sign).
 */
export function isValidSignature(authToken: string, signature: string | readonly string[] | undefined, url: string, params: SignatureParams = {}): boolean {
  if (typeof authToken !== 'string' || authToken.length === 0) return false;
  if (typeof signature !== 'string' || signature.length === 0) return false;
  try {
    return twilio.validateRequest(authToken, signature, url, params);
  } catch {
    return false; // validateRequest parses the URL with `new URL()` for its fallback variants
  }
}

export interface RequestLike {
  headers: Record<string, string | string[] | undefined>;
  /** Request target as received: path and query (`/twilio/stream?x=1`), or absolute-form. */
  url: string;
  /** Protocol of the socket that reached us: 'http' | 'https' (fastify's request.protocol). */
  protocol?: string;
}

export interface PublicUrlOptions {
  /** Force the ws/wss form (true) or http/https form (false); default: from the `Upgrade: websocket` header. */
  websocket?: boolean;
}

function firstHeader(v: string | string[] | undefined): string | undefined {
  const s = Array.isArray(v) ? v[0] : v;
  if (s === undefined) return undefined;
  // Proxies append: "X-Forwarded-Proto: https, http" — the first hop is the one Twilio dialled.
  const first = s.split(',')[0]!.trim();
  return first === '' ? undefined : first;
}

const HOST_RE = /^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(?::\d{1,5})?$/;

function toScheme(proto: string | undefined, websocket: boolean): string {
  const secure = proto !== undefined && /^(https|wss)$/i.test(proto);
  if (websocket) return secure ? 'wss' : 'ws';
  return secure ? 'https' : 'http';
}

/**
 * The URL Twilio requested, for signature validation.
 *
 * - With `publicBaseUrl` (e.g. `https://bridge.example.com`): its origin and path
 *   prefix + the request path and query as received; the scheme becomes wss/ws for
 *   an upgrade. Forwarded headers are ignored.
 * - Otherwise: scheme from `X-Forwarded-Proto` (first value) or the socket's
 *   protocol; host from `X-Forwarded-Host` or `Host`, plus `X-Forwarded-Port` when
 *   the host has none and the port is not the scheme's default. A missing or
 *   malformed host yields `localhost` (which a real Twilio signature never matches).
 */
export function publicUrlOf(request: RequestLike, publicBaseUrl?: string, options: PublicUrlOptions = {}): string {
  const upgrade = firstHeader(request.headers['upgrade']);
  const websocket = options.websocket ?? (upgrade !== undefined && upgrade.toLowerCase() === 'websocket');
  let target = request.url || '/';
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(target)) {
    // absolute-form request target (sent to proxies): keep only path and query, verbatim
    const m = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*(.*)$/i.exec(target);
    target = m?.[1] || '/';
  }
  if (!target.startsWith('/')) target = `/${target}`;

  if (publicBaseUrl !== undefined && publicBaseUrl !== '') {
    const base = new URL(publicBaseUrl);
    const prefix = base.pathname.replace(/\/+$/, '');
    return `${toScheme(base.protocol.slice(0, -1), websocket)}://${base.host}${prefix}${target}`;
  }

  const scheme = toScheme(firstHeader(request.headers['x-forwarded-proto']) ?? request.protocol, websocket);
  let host = firstHeader(request.headers['x-forwarded-host']) ?? firstHeader(request.headers['host']);
  if (host === undefined || !HOST_RE.test(host)) host = 'localhost';
  const fwdPort = firstHeader(request.headers['x-forwarded-port']);
  const hasPort = /:\d+$/.test(host);
  if (!hasPort && fwdPort !== undefined && /^\d{1,5}$/.test(fwdPort)) {
    const defaultPort = scheme === 'https' || scheme === 'wss' ? '443' : '80';
    if (fwdPort !== defaultPort) host = `${host}:${fwdPort}`;
  }
  return `${scheme}://${host}${target}`;
}

/** `https://…` → `wss://…`, `http://…` → `ws://…` (and ws(s) unchanged): the form Twilio signs for an upgrade. */
export function toWebSocketUrl(url: string): string {
  return url.replace(/^https:/i, 'wss:').replace(/^http:/i, 'ws:');
}
