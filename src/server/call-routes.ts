/**
 * The live-call routes, across processes and instances:
 *
 *   GET  /calls                  live calls of every instance sharing the call-record
 *                                database (`?scope=local`: this process only)
 *   GET  /calls/:callSid         this process's call; else the owner's answer; else the record
 *   POST /calls/:callSid/say     speak a text into the call (ElevenLabs TTS), on its owner
 *   POST /calls/:callSid/hangup  end the call, on its owner
 *
 * A call lives on one process. Its in-progress row names the owner (a process run
 * that heartbeats) with the owner's internal URL and routing key, so a request that
 * the balancer gave to another instance is forwarded to the owner by a direct
 * internal HTTP request (the routing key in `X-Voice-Bridge-Route` picks the worker
 * behind a `--workers` primary). A forwarded request is marked and never forwarded
 * again, so two instances can never bounce one between them.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { CallManager } from '../call/call-manager.js';
import type { CallStore } from '../store/call-store.js';
import type { LiveCallRow } from '../store/sql-ops.js';
import type { TwilioRest } from '../twilio/rest.js';
import type { TtsService } from '../agents/elevenlabs/tts/service.js';
import { ROUTE_HEADER } from '../cluster-routing.js';

export const FORWARDED_HEADER = 'x-voice-bridge-forwarded';

/** Error codes of these routes (HTTP status in the table in README). */
export const CallRouteCodes = {
  NOT_FOUND: 'BRIDGE_ERR_CALL_NOT_FOUND',
  OWNER_UNREACHABLE: 'BRIDGE_ERR_CALL_OWNER_UNREACHABLE',
} as const;

export interface CallRoutesDeps {
  calls: CallManager;
  store?: CallStore;
  tts?: TtsService;
  rest?: TwilioRest;
  /** This process's run (to tell our own rows from another process's). */
  runId: () => string | undefined;
  /** Admin check for commands; undefined when allowed. */
  adminDenied(req: FastifyRequest, reply: FastifyReply): FastifyReply | undefined;
  /** Check for call data (admin once a token is set). */
  callDataDenied(req: FastifyRequest, reply: FastifyReply): FastifyReply | undefined;
  log?: (level: 'info' | 'warn' | 'error' | 'debug', msg: string, fields?: Record<string, unknown>) => void;
}

const FORWARD_TIMEOUT_MS = 5000;
/** /say waits for the TTS service (bounded at 20 s there). */
const SAY_FORWARD_TIMEOUT_MS = 25_000;

export function registerCallRoutes(app: FastifyInstance, d: CallRoutesDeps): void {
  const { calls } = d;

  /** The live row of a call another process carries (undefined: nobody live, or it is ours, or no shared store). */
  async function remoteOwner(req: FastifyRequest, callSid: string): Promise<LiveCallRow | undefined> {
    if (!d.store || req.headers[FORWARDED_HEADER] !== undefined) return undefined;
    const row = await d.store.liveCall(callSid);
    return row && row.ownerRun !== d.runId() ? row : undefined;
  }

  async function forward(req: FastifyRequest, reply: FastifyReply, row: LiveCallRow, path: string, timeoutMs = FORWARD_TIMEOUT_MS): Promise<FastifyReply> {
    if (!row.internalUrl) return reply.code(502).send({ error: CallRouteCodes.OWNER_UNREACHABLE, message: `call ${row.callSid} is on ${row.routeKey}, which has no internal URL (set BRIDGE_INTERNAL_URL there)` });
    const headers: Record<string, string> = { [FORWARDED_HEADER]: '1', [ROUTE_HEADER]: row.routeKey, connection: 'close' };
    if (typeof req.headers.authorization === 'string') headers.authorization = req.headers.authorization;
    let body: string | undefined;
    if (req.method === 'POST') {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(req.body ?? {});
    }
    try {
      const res = await fetch(`${row.internalUrl}${path}`, { method: req.method, headers, body, signal: AbortSignal.timeout(timeoutMs) });
      const text = await res.text();
      return reply.code(res.status).header('content-type', res.headers.get('content-type') ?? 'application/json').header('x-voice-bridge-owner', row.routeKey).send(text);
    } catch (e) {
      d.log?.('warn', 'call owner did not answer a forwarded request', { callSid: row.callSid, owner: row.routeKey, url: row.internalUrl, err: e });
      return reply.code(502).send({ error: CallRouteCodes.OWNER_UNREACHABLE, message: `call ${row.callSid} is on ${row.routeKey} (${row.internalUrl}), which did not answer: ${(e as Error).message}` });
    }
  }

  /** A command for a call this process does not carry: to its owner, or 404. */
  async function toOwnerOr404(req: FastifyRequest, reply: FastifyReply, callSid: string, command: 'say' | 'hangup', timeoutMs: number): Promise<FastifyReply> {
    try {
      const row = await remoteOwner(req, callSid);
      if (row) return await forward(req, reply, row, `/calls/${encodeURIComponent(callSid)}/${command}`, timeoutMs);
    } catch (e) {
      return storeUnavailable(reply, e);
    }
    return reply.code(404).send({ error: CallRouteCodes.NOT_FOUND, message: `no active call ${callSid}` });
  }

  const storeUnavailable = (reply: FastifyReply, e: unknown) => reply.code(503).send({ error: (e as { code?: string }).code ?? 'BRIDGE_ERR_STORE_UNAVAILABLE', message: (e as Error).message });

  app.get('/calls', async (req, reply) => {
    const denied = d.callDataDenied(req, reply);
    if (denied) return denied;
    const own = d.store?.run;
    const local = calls.list().map((c) => ({ ...c, instance: own?.instanceId ?? null, worker: own && own.worker >= 0 ? own.worker : null, local: true }));
    if ((req.query as { scope?: string }).scope === 'local' || !d.store || d.store.stats().backend === 'off') return { calls: local };
    let rows: LiveCallRow[];
    try {
      rows = await d.store.liveCalls();
    } catch (e) {
      return storeUnavailable(reply, e);
    }
    const mine = d.runId();
    const seen = new Set(local.map((c) => c.callSid));
    const remote = rows
      .filter((r) => r.ownerRun !== mine && !seen.has(r.callSid))
      .map(({ ownerRun: _run, internalUrl: _url, ownerInstance, ownerWorker, ...r }) => ({ ...r, instance: ownerInstance, worker: ownerWorker !== null && ownerWorker >= 0 ? ownerWorker : null, local: false }));
    return { calls: [...local, ...remote] };
  });

  app.get('/calls/:callSid', async (req, reply) => {
    const denied = d.callDataDenied(req, reply);
    if (denied) return denied;
    const { callSid } = req.params as { callSid: string };
    const live = calls.session(callSid) ? calls.get(callSid) : undefined;
    if (live) return live;
    try {
      const row = await remoteOwner(req, callSid);
      if (row) return forward(req, reply, row, `/calls/${encodeURIComponent(callSid)}`);
    } catch (e) {
      return storeUnavailable(reply, e);
    }
    const recent = calls.get(callSid);
    if (recent) return recent;
    // Ended, on any instance: the record (the forwarded copy of this request stops here).
    if (d.store && req.headers[FORWARDED_HEADER] === undefined) {
      try {
        const stored = await d.store.get(callSid);
        if (stored) return stored;
      } catch (e) {
        return storeUnavailable(reply, e);
      }
    }
    return reply.code(404).send({ error: CallRouteCodes.NOT_FOUND, message: `no call ${callSid}` });
  });

  app.post('/calls/:callSid/say', async (req, reply) => {
    const denied = d.adminDenied(req, reply);
    if (denied) return denied;
    const { callSid } = req.params as { callSid: string };
    const session = calls.session(callSid);
    if (!session) return toOwnerOr404(req, reply, callSid, 'say', SAY_FORWARD_TIMEOUT_MS);
    if (!d.tts) return reply.code(503).send({ error: 'BRIDGE_ERR_TTS_NOT_CONFIGURED', message: 'set ELEVENLABS_API_KEY and ELEVENLABS_VOICE_ID' });
    const text = (req.body as { text?: unknown } | undefined)?.text;
    if (typeof text !== 'string' || text.trim() === '' || text.length > 5000) return reply.code(400).send({ error: 'BRIDGE_ERR_BAD_REQUEST', message: '"text" must be a non-empty string of at most 5000 characters' });
    try {
      const audio = await d.tts.speak(text, AbortSignal.timeout(20_000));
      const ms = session.say(audio, 'say');
      if (ms === 0) return reply.code(409).send({ error: 'BRIDGE_ERR_CALL_NOT_STREAMING', message: 'the call is not streaming' });
      return reply.code(202).send({ callSid, queuedMs: ms });
    } catch (e) {
      const err = e as { code?: string; message?: string };
      const status = err.code === 'BRIDGE_ERR_AGENT_CONFIG' ? 400 : err.code === 'BRIDGE_ERR_AGENT_TIMEOUT' ? 504 : 502;
      return reply.code(status).send({ error: err.code ?? 'BRIDGE_ERR_AGENT_SERVICE', message: err.message ?? String(e) });
    }
  });

  app.post('/calls/:callSid/hangup', async (req, reply) => {
    const denied = d.adminDenied(req, reply);
    if (denied) return denied;
    const { callSid } = req.params as { callSid: string };
    const session = calls.session(callSid);
    if (!session) return toOwnerOr404(req, reply, callSid, 'hangup', FORWARD_TIMEOUT_MS);
    // With REST credentials the phone call itself ends; without, closing the stream ends
    // <Connect> and Twilio runs out of TwiML, which hangs up.
    let viaRest = false;
    if (d.rest) {
      try {
        await d.rest.endCall(callSid);
        viaRest = true;
      } catch (e) {
        d.log?.('warn', 'hang-up through the REST API failed; closing the stream', { callSid, err: e });
      }
    }
    await session.close('hangup-requested');
    return reply.code(202).send({ callSid, ended: true, viaRest });
  });
}
