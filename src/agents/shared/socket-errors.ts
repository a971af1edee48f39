/**
 * One table from what a provider's socket says — an HTTP status on the WebSocket
 * upgrade, a close code, a network failure — to a BridgeError, for every adapter.
 * The error's code decides what the adapter does with it (BridgeError.retryable):
 *
 * | what                                   | code                | retried |
 * |----------------------------------------|---------------------|---------|
 * | HTTP 401, 403 / close 1008 (policy)    | AGENT_AUTH          | no      |
 * | HTTP 404 (wrong model / agent id), other 4xx, close 1007 (invalid data) | AGENT_CONFIG / AGENT_PROTOCOL | no |
 * | HTTP 408 / upgrade or handshake timeout | AGENT_TIMEOUT      | yes     |
 * | HTTP 429 / close 1013 (try again later) | AGENT_RATE_LIMIT   | yes     |
 * | HTTP 5xx / close 1011 (server error)    | AGENT_SERVICE      | yes     |
 * | network failure (refused, reset, DNS)   | AGENT_CONNECT      | yes     |
 * | any other close                         | AGENT_CLOSED       | yes     |
 *
 * A close *during the handshake* with an unlisted code is AGENT_CONNECT (the
 * service would not start the session). A provider adds what is its own through
 * `SocketErrorRules` (OpenAI's 4000 for the removed beta interface, Hume's 4001/4003)
 * and hints that name its settings (never their values).
 *
 * Close codes: RFC 6455 §7.4.1; HTTP statuses: RFC 9110 §15.
 */
import { BridgeError, ErrorCodes, type ErrorCode } from '../../errors.js';

export type SocketPhase = 'handshake' | 'open';

export interface SocketErrorRules {
  /** Prefix of every message, e.g. 'openai' or 'pipecat agent'. */
  readonly provider: string;
  /** A provider's own reading of an upgrade status (undefined: the table decides). */
  readonly status?: (status: number) => ErrorCode | undefined;
  /** A provider's own reading of a close code (undefined: the table decides). */
  readonly close?: (code: number, reason: string, phase: SocketPhase) => ErrorCode | undefined;
  /** Words added to an upgrade refusal, e.g. which setting to check. */
  readonly hint?: (status: number) => string;
}

/** The table's code for an HTTP status on the upgrade. */
export function statusCode(status: number): ErrorCode {
  if (status === 401 || status === 403) return ErrorCodes.AGENT_AUTH;
  if (status === 408) return ErrorCodes.AGENT_TIMEOUT;
  if (status === 429) return ErrorCodes.AGENT_RATE_LIMIT;
  if (status >= 500) return ErrorCodes.AGENT_SERVICE;
  // 404 (a model, agent or path that does not exist) and the other 4xx: our request is wrong; retrying repeats it.
  if (status >= 400) return ErrorCodes.AGENT_CONFIG;
  return ErrorCodes.AGENT_CONNECT; // 1xx/2xx/3xx instead of 101: not a WebSocket endpoint we can use
}

/** The table's code for a close code. */
export function closeCode(code: number, phase: SocketPhase): ErrorCode {
  if (code === 1008) return ErrorCodes.AGENT_AUTH;
  if (code === 1007) return ErrorCodes.AGENT_PROTOCOL;
  if (code === 1011) return ErrorCodes.AGENT_SERVICE;
  if (code === 1013) return ErrorCodes.AGENT_RATE_LIMIT;
  return phase === 'handshake' ? ErrorCodes.AGENT_CONNECT : ErrorCodes.AGENT_CLOSED;
}

/** Service text in our messages: printable and bounded. */
export function sanitize(s: string, max = 160): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\x00-\x1f\x7f]/g, ' ').slice(0, max);
}

export function upgradeError(rules: SocketErrorRules, status: number, what = 'the WebSocket upgrade'): BridgeError {
  const code = rules.status?.(status) ?? statusCode(status);
  return new BridgeError(code, `${rules.provider}: ${what} was refused with HTTP ${status}${rules.hint?.(status) ?? ''}`);
}

export function closeError(rules: SocketErrorRules, code: number, reason: string, phase: SocketPhase): BridgeError {
  const ec = rules.close?.(code, reason, phase) ?? closeCode(code, phase);
  const why = reason ? `: ${sanitize(reason, 120)}` : '';
  const when = phase === 'handshake' ? 'during the handshake' : 'the session';
  return new BridgeError(ec, `${rules.provider}: the service closed ${when} (close ${code}${why})`, { cause: { closeCode: code, reason } });
}

/** The close code behind an error from closeError() (a close, as opposed to an upgrade refusal or a timeout). */
export function closeCodeOf(err: BridgeError): number | undefined {
  const c = err.cause as { closeCode?: unknown } | undefined;
  return typeof c?.closeCode === 'number' ? c.closeCode : undefined;
}

export function networkError(rules: SocketErrorRules, e: Error, target: string): BridgeError {
  return new BridgeError(ErrorCodes.AGENT_CONNECT, `${rules.provider}: cannot connect to ${target}: ${e.message}`, { cause: e });
}

export function abortError(rules: SocketErrorRules, signal: AbortSignal): BridgeError {
  // The caller's bound on the connect ran out (a timeout, or the call ended first).
  const r: unknown = signal.reason;
  return new BridgeError(ErrorCodes.AGENT_TIMEOUT, `${rules.provider}: connect aborted (${r instanceof Error ? r.message : String(r ?? 'aborted')})`, { cause: r });
}

/** Anything thrown, as a BridgeError (AGENT_CONNECT when it is not one). */
export function toBridgeError(provider: string, e: unknown): BridgeError {
  if (e instanceof BridgeError) return e;
  return new BridgeError(ErrorCodes.AGENT_CONNECT, `${provider}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
}
