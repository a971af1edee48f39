/**
 * The signature on every tool request and event the bridge sends (docs/tools.md,
 * docs/events.md):
 *
 *   X-Voice-Bridge-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>
 *
 * The timestamp is inside the signed text, so a receiver that checks it (here: within
 * `toleranceS`, default 5 minutes) refuses a captured request replayed later; the raw
 * body is signed byte for byte, so the receiver must verify before parsing. Several
 * `v1=` entries are accepted (one matching is enough), which leaves room to rotate a
 * secret by signing with both for a while.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** The header's name (a contract: receivers look for exactly this). */
export const SIGNATURE_HEADER = 'X-Voice-Bridge-Signature';
/** Default accepted clock difference between signer and receiver (seconds). */
export const DEFAULT_SIGNATURE_TOLERANCE_S = 300;

function hmacHex(secret: string, t: number, rawBody: string | Uint8Array): string {
  const h = createHmac('sha256', secret);
  h.update(`${t}.`);
  h.update(rawBody);
  return h.digest('hex');
}

/** The header value for `rawBody` signed at `tSeconds` (default: now). */
export function signBody(secret: string, rawBody: string | Uint8Array, tSeconds: number = Math.floor(Date.now() / 1000)): string {
  const t = Math.floor(tSeconds);
  return `t=${t},v1=${hmacHex(secret, t, rawBody)}`;
}

export interface VerifyOptions {
  /** Largest accepted |now − t| in seconds (default 300). */
  toleranceS?: number;
  /** The receiver's clock, unix seconds (default: now). */
  now?: number;
}

export type VerifyResult = { ok: true; t: number } | { ok: false; reason: 'missing' | 'malformed' | 'stale' | 'mismatch' };

/**
 * Checks a `X-Voice-Bridge-Signature` value against the raw body as received (before
 * any JSON parsing). Never throws; the comparison is constant-time.
 */
export function verifySignature(secret: string, rawBody: string | Uint8Array, header: string | null | undefined, options: VerifyOptions = {}): VerifyResult {
  if (typeof header !== 'string' || header.length === 0) return { ok: false, reason: 'missing' };
  let t: number | undefined;
  const sigs: string[] = [];
  for (const part of header.split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const k = part.slice(0, eq).trim();
    const v = part.slice(eq + 1).trim();
    if (k === 't' && /^\d{1,15}$/.test(v)) t = Number(v);
    else if (k === 'v1' && /^[0-9a-f]{64}$/i.test(v)) sigs.push(v.toLowerCase());
  }
  if (t === undefined || sigs.length === 0) return { ok: false, reason: 'malformed' };
  const now = options.now ?? Date.now() / 1000;
  if (Math.abs(now - t) > (options.toleranceS ?? DEFAULT_SIGNATURE_TOLERANCE_S)) return { ok: false, reason: 'stale' };
  const expected = Buffer.from(hmacHex(secret, t, rawBody), 'hex');
  let match = false;
  for (const s of sigs) {
    // Every candidate is compared (no early exit), each in constant time.
    if (timingSafeEqual(expected, Buffer.from(s, 'hex'))) match = true;
  }
  return match ? { ok: true, t } : { ok: false, reason: 'mismatch' };
}
