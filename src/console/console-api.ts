/**
 * The call console's data routes (docs/console.md), all behind the admin token — the
 * console needs BRIDGE_ADMIN_TOKEN even on loopback:
 *
 *   GET /console/api/info                  version, instance, whether numbers show in clear
 *   GET /console/api/live                  SSE: the live calls of every instance, levels, barge-ins
 *   GET /console/api/calls/:callSid/feed   SSE: one live call's timeline (on its owner: forwarded)
 *   GET /console/api/calls/:callSid        a call as the console shows it: live, else its record
 *   GET|POST /console/api/history          records, paged and searched (number, agent, profile, end reason);
 *                                          the page POSTs the search, so no number is ever in a URL
 *   GET /calls/:callSid/recording          the stereo WAV (also for scripts)
 *
 * The page reads calls only through these (its actions go to the shared say / hangup /
 * transfer routes the CLI uses), so numbers are redacted in one place unless
 * BRIDGE_LOG_PII allows them; custom parameters and status callbacks are not shown.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { isAbsolute, relative, resolve } from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { CallManager } from '../call/call-manager.js';
import { ErrorCodes, HttpProblem, isErrorCode } from '../errors.js';
import { ROUTE_HEADER } from '../cluster-routing.js';
import type { CallStore } from '../store/call-store.js';
import { listQuery } from '../store/history-route.js';
import { StoreError } from '../store/store-error.js';
import type { AdminAuth } from '../server/admin-auth.js';
import { FORWARDED_HEADER } from '../server/call-routes.js';
import { ConsoleHub, redactNumber } from './console-hub.js';
import { openSse } from './sse.js';

export interface ConsoleApiDeps {
  calls: CallManager;
  store?: CallStore | undefined;
  auth: AdminAuth;
  runId: () => string | undefined;
  instanceId: string;
  worker: number | null;
  pii: boolean;
  version: string;
  /** BRIDGE_RECORD's directory when recording is on (recordings are served only from there). */
  recordingDir: string | undefined;
  log?: (level: 'info' | 'warn' | 'error' | 'debug', msg: string, fields?: Record<string, unknown>) => void;
}

const callParams = { type: 'object', required: ['callSid'], properties: { callSid: { type: 'string', minLength: 1, maxLength: 64 } } } as const;
/** GET /calls/history's search and page-number parameters (no cursor: the page pages by number). */
const { before: _cursor, ...historyProperties } = listQuery.properties;
const historyQuery = { type: 'object', properties: historyProperties } as const;

const storeProblem = (e: unknown): HttpProblem => {
  if (e instanceof RangeError) return new HttpProblem(ErrorCodes.BAD_REQUEST, e.message);
  const code = (e as { code?: unknown }).code;
  return new HttpProblem(e instanceof StoreError || isErrorCode(code) ? (code as typeof ErrorCodes.STORE_UNAVAILABLE) : ErrorCodes.STORE_UNAVAILABLE, (e as Error).message, { status: 503 });
};

export async function consoleApiRoutes(app: FastifyInstance, d: ConsoleApiDeps): Promise<void> {
  const hub = new ConsoleHub({ calls: d.calls, store: d.store, runId: d.runId, instanceId: d.instanceId, worker: d.worker, pii: d.pii, recording: d.recordingDir !== undefined, log: d.log });
  const admin = d.auth.admin;
  /** A record or summary as the console shows it: numbers redacted unless allowed; no custom parameters or status callbacks. */
  const shown = <T extends { from?: string | null; to?: string | null }>(r: T) => {
    const { customParameters: _p, status: _s, ...rest } = r as T & { customParameters?: unknown; status?: unknown };
    return { ...rest, from: redactNumber(r.from ?? null, d.pii), to: redactNumber(r.to ?? null, d.pii) };
  };

  app.get('/console/api/info', { onRequest: admin }, async () => ({ version: d.version, instance: d.instanceId, worker: d.worker, pii: d.pii }));

  app.get('/console/api/live', { onRequest: admin }, async (_req, reply) => {
    hub.watchLive(openSse(reply));
  });

  app.get('/console/api/calls/:callSid/feed', { onRequest: admin, schema: { params: callParams } }, async (req, reply) => {
    const { callSid } = req.params as { callSid: string };
    const session = d.calls.session(callSid);
    if (session) return hub.watchCall(session, openSse(reply));
    const row = await ownerRow(req, callSid);
    if (!row) throw new HttpProblem(ErrorCodes.CALL_NOT_FOUND, `no live call ${callSid}`);
    return forwardStream(req, reply, row, `/console/api/calls/${encodeURIComponent(callSid)}/feed`);
  });

  app.get('/console/api/calls/:callSid', { onRequest: admin, schema: { params: callParams } }, async (req) => {
    const { callSid } = req.params as { callSid: string };
    if (d.calls.session(callSid)) return shown({ ...d.calls.get(callSid)!, ...partiesOf(callSid), live: true });
    // Ended (or live elsewhere): the record, which has the numbers; this process's memory of a call it just ended otherwise.
    const recent = d.calls.get(callSid);
    if (d.store) {
      try {
        const stored = await d.store.get(callSid);
        // Just ended here, its completed record still on its way through the outbox: what this process knows, with the record's numbers.
        if (stored && stored.recordState === 'in-progress' && recent) return shown({ ...stored, ...recent, from: stored.from, to: stored.to, recordState: 'completed', live: false });
        if (stored) return shown({ ...stored, live: stored.recordState === 'in-progress' });
      } catch (e) {
        throw storeProblem(e);
      }
    }
    if (recent) return shown({ ...recent, from: null, to: null, live: false });
    throw new HttpProblem(ErrorCodes.CALL_NOT_FOUND, `no call ${callSid}`);
  });

  type HistorySearch = { limit?: number; page?: number; q?: string; agent?: string; profile?: string; endReason?: string };
  const history = async (q: HistorySearch) => {
    if (!d.store) throw new HttpProblem(ErrorCodes.STORE_UNAVAILABLE, 'call records are off here', { status: 503 });
    try {
      const page = await d.store.list({ limit: q.limit ?? 20, page: q.page ?? 1, q: q.q, agent: q.agent, profile: q.profile, endReason: q.endReason });
      return { calls: page.calls.map(shown), page: q.page ?? 1, more: page.next !== null };
    } catch (e) {
      throw storeProblem(e);
    }
  };
  app.get('/console/api/history', { onRequest: admin, schema: { querystring: historyQuery } }, async (req) => history(req.query as HistorySearch));
  // The page searches by POST: a number fragment in a body, never in a URL (proxies and access logs keep URLs).
  app.post('/console/api/history', { onRequest: admin, schema: { body: historyQuery } }, async (req) => history((req.body ?? {}) as HistorySearch));

  app.get('/calls/:callSid/recording', { onRequest: admin, schema: { params: callParams } }, async (req, reply) => {
    const { callSid } = req.params as { callSid: string };
    const path = await recordingPathOf(callSid);
    const dir = d.recordingDir;
    // Only a file in the recording directory (a record's path is data: never followed elsewhere).
    const rel = path && dir ? relative(dir, resolve(path)) : undefined;
    if (!path || rel === undefined || rel.startsWith('..') || isAbsolute(rel) || !path.endsWith('.wav')) throw new HttpProblem(ErrorCodes.RECORDING_NOT_FOUND, `no recording of ${callSid} here`);
    let size: number;
    try {
      size = (await stat(path)).size;
    } catch {
      throw new HttpProblem(ErrorCodes.RECORDING_NOT_FOUND, `the recording of ${callSid} is not on this instance's disk`);
    }
    return reply.header('content-type', 'audio/wav').header('content-length', size).header('cache-control', 'no-store').send(createReadStream(path));
  });

  function partiesOf(callSid: string): { from: string | null; to: string | null } {
    const c = d.calls.live().find((x) => x.session.callSid === callSid);
    return c ? { from: c.from, to: c.to } : { from: null, to: null };
  }

  async function recordingPathOf(callSid: string): Promise<string | null> {
    const local = d.calls.get(callSid);
    if (local?.recordingPath) return local.recordingPath;
    if (!d.store) return null;
    try {
      return (await d.store.get(callSid))?.recordingPath ?? null;
    } catch (e) {
      throw storeProblem(e);
    }
  }

  /** The live row of a call another process carries (not for a request already forwarded). */
  async function ownerRow(req: FastifyRequest, callSid: string) {
    if (!d.store || req.headers[FORWARDED_HEADER] !== undefined) return undefined;
    try {
      const row = await d.store.liveCall(callSid);
      return row && row.ownerRun !== d.runId() ? row : undefined;
    } catch (e) {
      throw storeProblem(e);
    }
  }

  /** An event stream from the call's owner, passed through as it comes; ends when either side goes. */
  async function forwardStream(req: FastifyRequest, reply: FastifyReply, row: { callSid: string; routeKey: string; internalUrl: string | null }, path: string): Promise<void> {
    if (!row.internalUrl) throw new HttpProblem(ErrorCodes.CALL_OWNER_UNREACHABLE, `call ${row.callSid} is on ${row.routeKey}, which has no internal URL (set BRIDGE_INTERNAL_URL there)`);
    const ac = new AbortController();
    const headers: Record<string, string> = { [FORWARDED_HEADER]: '1', [ROUTE_HEADER]: row.routeKey };
    if (typeof req.headers.authorization === 'string') headers.authorization = req.headers.authorization;
    let res: Response;
    // Bounded until the owner answers; the stream itself lasts as long as the call.
    const answerTimer = setTimeout(() => ac.abort(new Error('no answer within 5 s')), 5000);
    try {
      res = await fetch(`${row.internalUrl}${path}`, { headers, signal: ac.signal });
    } catch (e) {
      throw new HttpProblem(ErrorCodes.CALL_OWNER_UNREACHABLE, `call ${row.callSid} is on ${row.routeKey} (${row.internalUrl}), which did not answer: ${(e as Error).message}`);
    } finally {
      clearTimeout(answerTimer);
    }
    if (!res.ok || !res.body) {
      const text = await res.text();
      return void reply.code(res.status).header('content-type', res.headers.get('content-type') ?? 'application/json').send(text);
    }
    reply.hijack();
    const out = reply.raw;
    out.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no', 'x-voice-bridge-owner': row.routeKey });
    out.on('close', () => ac.abort());
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        if (out.destroyed) break;
        out.write(chunk);
      }
    } catch {
      /* the owner went away, or the page did */
    }
    out.end();
  }
}
