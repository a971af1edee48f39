/**
 * GET /calls/history            a page of persisted calls, newest first (admin token)
 *     ?limit=1..500 (50)  &before=<cursor from `next`>   or   &page=N (1-based)
 *     filters, all optional, combined with AND, with either paging:
 *     &q=<number fragment or text, ≤ 64: case-insensitive substring of from or to>
 *     &agent=<exact>  &profile=<exact>  &endReason=<exact, or a prefix ending in *>
 *     → { calls: CallListItem[], next: string | null, outbox: { depth } }
 * GET /calls/history/:callSid   one persisted call in full (transcript turns included)
 *
 * A fastify plugin: the caller gives the auth check as an `onRequest` hook (the
 * bridge's admin check, src/server/admin-auth.ts), so a refused request is answered
 * before anything else. The query string is checked by the route's JSON schema;
 * failures are thrown as HttpProblem and answered as problem details by the app's
 * error handler (src/server/problem.ts).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ErrorCodes, HttpProblem } from '../errors.js';
import { MAX_END_REASON_LENGTH, MAX_LIST_LIMIT, MAX_NAME_LENGTH, MAX_Q_LENGTH } from './call-db.js';
import type { CallStore } from './call-store.js';
import { StoreError } from './store-error.js';

export interface HistoryRoutesOptions {
  store: CallStore;
  /** The auth check, run before the body is read (throws an HttpProblem to refuse). */
  onRequest: (req: FastifyRequest) => Promise<void>;
}

/** The history's paging and search parameters (the console's history takes the same: src/console/console-api.ts). */
export const listQuery = {
  type: 'object',
  properties: {
    limit: { type: 'integer', minimum: 1, maximum: MAX_LIST_LIMIT },
    page: { type: 'integer', minimum: 1, maximum: 1_000_000 },
    before: { type: 'string', maxLength: 512 },
    q: { type: 'string', maxLength: MAX_Q_LENGTH },
    agent: { type: 'string', maxLength: MAX_NAME_LENGTH },
    profile: { type: 'string', maxLength: MAX_NAME_LENGTH },
    endReason: { type: 'string', maxLength: MAX_END_REASON_LENGTH },
  },
} as const;

const callParams = { type: 'object', properties: { callSid: { type: 'string', minLength: 1, maxLength: 64 } }, required: ['callSid'] } as const;

/** A store failure as the problem it is (a bad cursor is the client's; an unreachable database is 503). */
function storeFailure(e: unknown): never {
  if (e instanceof RangeError) throw new HttpProblem(ErrorCodes.BAD_REQUEST, e.message);
  if (e instanceof StoreError) throw new HttpProblem(e.code, e.message, { status: 503 });
  throw e;
}

export async function historyRoutes(app: FastifyInstance, options: HistoryRoutesOptions): Promise<void> {
  const { store } = options;
  app.get('/calls/history', { onRequest: options.onRequest, schema: { querystring: listQuery } }, async (req) => {
    const q = req.query as { limit?: number; page?: number; before?: string; q?: string; agent?: string; profile?: string; endReason?: string };
    const before = q.before === '' ? undefined : q.before;
    if (before !== undefined && q.page !== undefined) throw new HttpProblem(ErrorCodes.BAD_REQUEST, 'give either before (a cursor) or page, not both');
    try {
      const result = await store.list({ limit: q.limit, before, page: q.page, q: q.q, agent: q.agent, profile: q.profile, endReason: q.endReason });
      return { ...result, ...(q.page !== undefined ? { page: q.page } : {}), outbox: { depth: store.stats().outboxDepth } };
    } catch (e) {
      return storeFailure(e);
    }
  });

  app.get('/calls/history/:callSid', { onRequest: options.onRequest, schema: { params: callParams } }, async (req) => {
    const { callSid } = req.params as { callSid: string };
    let call;
    try {
      call = await store.get(callSid);
    } catch (e) {
      return storeFailure(e);
    }
    if (!call) throw new HttpProblem(ErrorCodes.CALL_NOT_FOUND, `no recorded call ${callSid}`);
    return call;
  });
}
