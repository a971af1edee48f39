/**
 * One bounded, signed JSON POST: what a tool request and an event delivery share.
 *
 * Bounds, whatever the server does:
 *   - `timeoutMs` covers the whole exchange (connect, headers, body): a server that sends
 *     its headers and then trickles the body is cut off at the deadline, because the
 *     AbortController aborts the body stream too;
 *   - and, should the HTTP stack not settle promptly after the abort, the outcome is
 *     returned anyway at `timeoutMs + HARD_GRACE_MS` (the request is left to die on its own);
 *   - the reply is read up to `maxResponseBytes` and no further (a declared
 *     Content-Length over the limit is refused before reading any of it);
 *   - the caller's AbortSignal ends it at once (barge-in, call ended, cancellation).
 *
 * Redirects are not followed: a signed body must go only where the profile says.
 * Never throws: every failure is an outcome.
 */
import { packageVersion } from '../version.js';
import { SIGNATURE_HEADER, signBody } from './signature.js';

/** After the abort at `timeoutMs`, how long the HTTP stack may take to settle before we answer anyway. */
export const HARD_GRACE_MS = 500;

export interface PostSignedOptions {
  /** Signs the body (X-Voice-Bridge-Signature); without it the request goes unsigned. */
  secret?: string | undefined;
  timeoutMs: number;
  maxResponseBytes: number;
  signal?: AbortSignal | undefined;
  /** Signing time, unix seconds (default now). */
  nowS?: number;
  /** Extra request headers (e.g. an idempotency key). */
  headers?: Record<string, string>;
}

export type PostOutcome =
  | { kind: 'response'; status: number; body: Buffer }
  | { kind: 'too-large'; status: number }
  | { kind: 'timeout' }
  | { kind: 'aborted' }
  | { kind: 'network'; message: string };

let userAgent: string | undefined;

export async function postSigned(url: string, rawBody: string, options: PostSignedOptions): Promise<PostOutcome> {
  if (options.signal?.aborted) return { kind: 'aborted' };
  userAgent ??= `voice-bridge/${packageVersion()}`;
  const ac = new AbortController();
  let why: 'timeout' | 'aborted' | undefined;
  let settle!: (o: PostOutcome) => void;
  // Resolves early on the caller's abort or at the hard deadline; the attempt races it.
  const deadline = new Promise<PostOutcome>((resolve) => (settle = resolve));
  const onAbort = (): void => {
    why ??= 'aborted';
    ac.abort();
    settle({ kind: 'aborted' });
  };
  options.signal?.addEventListener('abort', onAbort, { once: true });
  const soft = setTimeout(() => {
    why ??= 'timeout';
    ac.abort();
  }, options.timeoutMs);
  const hard = setTimeout(() => settle({ kind: why ?? 'timeout' }), options.timeoutMs + HARD_GRACE_MS);
  const headers: Record<string, string> = { 'content-type': 'application/json', 'user-agent': userAgent, ...options.headers };
  if (options.secret !== undefined) headers[SIGNATURE_HEADER] = signBody(options.secret, rawBody, options.nowS);

  const attempt = async (): Promise<PostOutcome> => {
    try {
      const res = await fetch(url, { method: 'POST', headers, body: rawBody, signal: ac.signal, redirect: 'manual' });
      const declared = Number(res.headers.get('content-length'));
      if (Number.isFinite(declared) && declared > options.maxResponseBytes) {
        ac.abort();
        return { kind: 'too-large', status: res.status };
      }
      const chunks: Uint8Array[] = [];
      let size = 0;
      if (res.body) {
        const reader = res.body.getReader();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          size += value.byteLength;
          if (size > options.maxResponseBytes) {
            // Stop reading at the limit; the abort closes the connection.
            ac.abort();
            return { kind: 'too-large', status: res.status };
          }
          chunks.push(value);
        }
      }
      return { kind: 'response', status: res.status, body: Buffer.concat(chunks, size) };
    } catch (e) {
      if (why !== undefined) return { kind: why };
      return { kind: 'network', message: networkMessage(e) };
    }
  };

  try {
    return await Promise.race([attempt(), deadline]);
  } finally {
    clearTimeout(soft);
    clearTimeout(hard);
    options.signal?.removeEventListener('abort', onAbort);
  }
}

/** undici's "fetch failed" hides the reason in `cause` (ECONNREFUSED, ENOTFOUND, a TLS error…). */
function networkMessage(e: unknown): string {
  const err = e as { message?: string; cause?: { code?: string; message?: string } };
  const code = err.cause?.code;
  if (typeof code === 'string') return code;
  return err.cause?.message ?? err.message ?? String(e);
}
