/**
 * One body shape for every HTTP error: RFC 9457 problem details
 * (https://www.rfc-editor.org/rfc/rfc9457), `application/problem+json`, with our
 * stable `code` as an extension member. Routes and hooks throw `HttpProblem`; fastify's
 * own errors (schema validation, body too large, bad content type) and anything
 * unexpected come here too, so no route builds an error body of its own.
 *
 *   thrown HttpProblem      → its code, status, headers and extension members
 *   schema validation error → 400 BRIDGE_ERR_BAD_REQUEST, detail = the schema's message
 *   fastify 413 / 415       → BRIDGE_ERR_BODY_TOO_LARGE / BRIDGE_ERR_UNSUPPORTED_MEDIA_TYPE
 *   any other 4xx           → BRIDGE_ERR_BAD_REQUEST with fastify's status
 *   anything else           → 500 BRIDGE_ERR_INTERNAL (logged; the detail says nothing more)
 *   no route                → 404 BRIDGE_ERR_NOT_FOUND (setNotFoundHandler)
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ErrorCodes, HttpProblem, PROBLEM_CONTENT_TYPE, problemDetails, type ErrorCode } from '../errors.js';

type Log = (level: 'info' | 'warn' | 'error' | 'debug', msg: string, fields?: Record<string, unknown>) => void;

/** Answers `reply` with a problem body (the one place that writes one). */
export function sendProblem(reply: FastifyReply, code: ErrorCode, detail: string, options: { status?: number; extensions?: Record<string, unknown>; headers?: Record<string, string> } = {}): FastifyReply {
  const body = problemDetails(code, detail, options);
  if (options.headers) reply.headers(options.headers);
  return reply.code(body.status).type(PROBLEM_CONTENT_TYPE).send(body);
}

/** The problem for an error fastify or a route raised. */
export function problemOf(err: FastifyError | HttpProblem | Error): HttpProblem {
  if (err instanceof HttpProblem) return err;
  const fe = err as FastifyError;
  if (fe.validation) return new HttpProblem(ErrorCodes.BAD_REQUEST, fe.message);
  const status = fe.statusCode;
  if (status === 413) return new HttpProblem(ErrorCodes.BODY_TOO_LARGE, fe.message);
  if (status === 415) return new HttpProblem(ErrorCodes.UNSUPPORTED_MEDIA_TYPE, fe.message);
  if (status !== undefined && status >= 400 && status < 500) return new HttpProblem(ErrorCodes.BAD_REQUEST, fe.message, { status });
  return new HttpProblem(ErrorCodes.INTERNAL, 'internal error');
}

/**
 * Installs the error and not-found handlers on `app` (the root: encapsulated plugins
 * inherit both). `log` gets the unexpected errors, with their stack.
 */
export function useProblemDetails(app: FastifyInstance, log?: Log): void {
  app.setErrorHandler((err: FastifyError | HttpProblem, req: FastifyRequest, reply: FastifyReply) => {
    const p = problemOf(err);
    if (p.code === ErrorCodes.INTERNAL) log?.('error', 'request failed', { method: req.method, route: req.routeOptions?.url ?? null, err });
    return sendProblem(reply, p.code, p.message, { status: p.statusCode, extensions: p.extensions, headers: p.headers });
  });
  app.setNotFoundHandler((req, reply) => {
    // The path only (a query string may carry anything), bounded.
    const path = (req.url.split('?')[0] ?? '').slice(0, 200);
    return sendProblem(reply, ErrorCodes.NOT_FOUND, `no route for ${req.method} ${path}`);
  });
}
