/**
 * GET /calls/history            a page of persisted calls, newest first (admin token)
 *     ?limit=1..500 (50)  &before=<cursor from `next`>   or   &page=N (1-based)
 *     → { calls: CallListItem[], next: string | null, outbox: { depth } }
 * GET /calls/history/:callSid   one persisted call in full (transcript turns included)
 *
 * Auth is the caller's: requireAdmin(req, reply) sends the refusal itself (the
 * bridge's bearer-token check); a request it answered goes no further.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { CallStore } from './call-store.js';
import { StoreError } from './store-error.js';

export type RequireAdmin = (req: FastifyRequest, reply: FastifyReply) => unknown;

function first(v: unknown): string | undefined {
  return Array.isArray(v) ? (typeof v[0] === 'string' ? v[0] : undefined) : typeof v === 'string' ? v : undefined;
}

function intParam(v: string | undefined): number | undefined | null {
  if (v === undefined || v === '') return undefined;
  return /^\d{1,7}$/.test(v) ? Number(v) : null;
}

function storeFailure(reply: FastifyReply, e: unknown): FastifyReply {
  if (e instanceof RangeError) return reply.code(400).send({ error: 'BRIDGE_ERR_BAD_REQUEST', message: e.message });
  if (e instanceof StoreError) return reply.code(503).send({ error: e.code, message: e.message });
  throw e;
}

export function registerHistoryRoute(app: FastifyInstance, store: CallStore, requireAdmin: RequireAdmin): void {
  app.get('/calls/history', async (req, reply) => {
    await requireAdmin(req, reply);
    if (reply.sent) return reply;
    const q = (req.query ?? {}) as Record<string, unknown>;
    const limit = intParam(first(q.limit));
    const page = intParam(first(q.page));
    const before = first(q.before);
    if (limit === null || page === null) return reply.code(400).send({ error: 'BRIDGE_ERR_BAD_REQUEST', message: 'limit and page must be positive integers' });
    if (before !== undefined && page !== undefined) return reply.code(400).send({ error: 'BRIDGE_ERR_BAD_REQUEST', message: 'give either before (a cursor) or page, not both' });
    try {
      const result = await store.list({ limit, before: before === '' ? undefined : before, page });
      return { ...result, ...(page !== undefined ? { page } : {}), outbox: { depth: store.stats().outboxDepth } };
    } catch (e) {
      return storeFailure(reply, e);
    }
  });

  app.get('/calls/history/:callSid', async (req, reply) => {
    await requireAdmin(req, reply);
    if (reply.sent) return reply;
    const { callSid } = req.params as { callSid: string };
    try {
      const call = await store.get(callSid);
      if (!call) return reply.code(404).send({ error: 'BRIDGE_ERR_CALL_NOT_FOUND', message: `no recorded call ${callSid}` });
      return call;
    } catch (e) {
      return storeFailure(reply, e);
    }
  });
}
