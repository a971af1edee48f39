/**
 * The live-call routes, across processes and instances:
 *
 *   GET  /calls                  live calls of every instance sharing the call-record
 *                                database (`?scope=local`: this process only)
 *   GET  /calls/:callSid         this process's call; else the owner's answer; else the record
 *   POST /calls/:callSid/say     speak a text into the call (ElevenLabs TTS), on its owner
 *   POST /calls/:callSid/hangup  end the call, on its owner
 *   POST /calls/:callSid/transfer  redirect the call to one of its profile's transfer_call
 *                                destinations (Twilio REST <Dial>), on its owner
 *
 * Each of the three is an operator's action: kept in the call's timeline and record.
 *
 * A call lives on one process. Its in-progress row names the owner (a process run
 * that heartbeats) with the owner's internal URL and routing key, so a request that
 * the balancer gave to another instance is forwarded to the owner by a direct
 * internal HTTP request (the routing key in `X-Voice-Bridge-Route` picks the worker
 * behind a `--workers` primary). A forwarded request is marked and never forwarded
 * again, so two instances can never bounce one between them.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ErrorCodes, HttpProblem, isErrorCode } from '../errors.js';
import type { CallManager } from '../call/call-manager.js';
import type { CallStore } from '../store/call-store.js';
import type { LiveCallRow } from '../store/sql-ops.js';
import type { TwilioRest } from '../twilio/rest.js';
import type { TtsService } from '../agents/elevenlabs/tts/service.js';
import { ROUTE_HEADER } from '../cluster-routing.js';
import type { AdminAuth } from './admin-auth.js';

export const FORWARDED_HEADER = 'x-voice-bridge-forwarded';

/** Error codes of these routes (declared with their HTTP status in src/errors.ts). */
export const CallRouteCodes = {
  NOT_FOUND: ErrorCodes.CALL_NOT_FOUND,
  OWNER_UNREACHABLE: ErrorCodes.CALL_OWNER_UNREACHABLE,
} as const;

export interface CallRoutesDeps {
  calls: CallManager;
  store?: CallStore;
  tts?: TtsService;
  rest?: TwilioRest;
  /** This process's run (to tell our own rows from another process's). */
  runId: () => string | undefined;
  /** The admin and call-data checks (onRequest hooks). */
  auth: AdminAuth;
  log?: (level: 'info' | 'warn' | 'error' | 'debug', msg: string, fields?: Record<string, unknown>) => void;
}

const FORWARD_TIMEOUT_MS = 5000;
/** /say waits for the TTS service (bounded at 20 s there). */
const SAY_FORWARD_TIMEOUT_MS = 25_000;

const callParams = { type: 'object', required: ['callSid'], properties: { callSid: { type: 'string', minLength: 1, maxLength: 64 } } } as const;
/** Whitespace-only text is refused like empty text (`\S`: at least one non-space). */
const sayBody = { type: 'object', required: ['text'], properties: { text: { type: 'string', minLength: 1, maxLength: 5000, pattern: '\\S' } } } as const;
const transferBody = { type: 'object', required: ['to'], properties: { to: { type: 'string', minLength: 1, maxLength: 256 } } } as const;
const listQuery = { type: 'object', properties: { scope: { type: 'string', maxLength: 16 } } } as const;

/** A fastify plugin: the live-call routes. */
export async function callRoutes(app: FastifyInstance, d: CallRoutesDeps): Promise<void> {
  const { calls } = d;

  /** The live row of a call another process carries (undefined: nobody live, or it is ours, or no shared store). */
  async function remoteOwner(req: FastifyRequest, callSid: string): Promise<LiveCallRow | undefined> {
    if (!d.store || req.headers[FORWARDED_HEADER] !== undefined) return undefined;
    const row = await d.store.liveCall(callSid);
    return row && row.ownerRun !== d.runId() ? row : undefined;
  }

  async function forward(req: FastifyRequest, reply: FastifyReply, row: LiveCallRow, path: string, timeoutMs = FORWARD_TIMEOUT_MS): Promise<FastifyReply> {
    if (!row.internalUrl) throw new HttpProblem(CallRouteCodes.OWNER_UNREACHABLE, `call ${row.callSid} is on ${row.routeKey}, which has no internal URL (set BRIDGE_INTERNAL_URL there)`);
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
      throw new HttpProblem(CallRouteCodes.OWNER_UNREACHABLE, `call ${row.callSid} is on ${row.routeKey} (${row.internalUrl}), which did not answer: ${(e as Error).message}`);
    }
  }

  /** A command for a call this process does not carry: to its owner, or 404. */
  async function toOwnerOr404(req: FastifyRequest, reply: FastifyReply, callSid: string, command: 'say' | 'hangup' | 'transfer', timeoutMs: number): Promise<FastifyReply> {
    const row = await ownerOf(req, callSid);
    if (row) return forward(req, reply, row, `/calls/${encodeURIComponent(callSid)}/${command}`, timeoutMs);
    throw new HttpProblem(CallRouteCodes.NOT_FOUND, `no active call ${callSid}`);
  }

  /** remoteOwner, with a store failure answered 503 (its own code when it has one). */
  async function ownerOf(req: FastifyRequest, callSid: string): Promise<LiveCallRow | undefined> {
    try {
      return await remoteOwner(req, callSid);
    } catch (e) {
      throw storeUnavailable(e);
    }
  }

  const storeUnavailable = (e: unknown) => {
    const code = (e as { code?: unknown }).code;
    return new HttpProblem(isErrorCode(code) ? code : ErrorCodes.STORE_UNAVAILABLE, (e as Error).message, { status: 503 });
  };

  app.get('/calls', { onRequest: d.auth.callData, schema: { querystring: listQuery } }, async (req) => {
    const own = d.store?.run;
    const local = calls.list().map((c) => ({ ...c, instance: own?.instanceId ?? null, worker: own && own.worker >= 0 ? own.worker : null, local: true }));
    if ((req.query as { scope?: string }).scope === 'local' || !d.store || d.store.stats().backend === 'off') return { calls: local };
    let rows: LiveCallRow[];
    try {
      rows = await d.store.liveCalls();
    } catch (e) {
      throw storeUnavailable(e);
    }
    const mine = d.runId();
    const seen = new Set(local.map((c) => c.callSid));
    const remote = rows
      .filter((r) => r.ownerRun !== mine && !seen.has(r.callSid))
      .map(({ ownerRun: _run, internalUrl: _url, ownerInstance, ownerWorker, ...r }) => ({ ...r, instance: ownerInstance, worker: ownerWorker !== null && ownerWorker >= 0 ? ownerWorker : null, local: false }));
    return { calls: [...local, ...remote] };
  });

  app.get('/calls/:callSid', { onRequest: d.auth.callData, schema: { params: callParams } }, async (req, reply) => {
    const { callSid } = req.params as { callSid: string };
    const live = calls.session(callSid) ? calls.get(callSid) : undefined;
    if (live) return live;
    const row = await ownerOf(req, callSid);
    if (row) return forward(req, reply, row, `/calls/${encodeURIComponent(callSid)}`);
    const recent = calls.get(callSid);
    if (recent) return recent;
    // Ended, on any instance: the record (the forwarded copy of this request stops here).
    if (d.store && req.headers[FORWARDED_HEADER] === undefined) {
      try {
        const stored = await d.store.get(callSid);
        if (stored) return stored;
      } catch (e) {
        throw storeUnavailable(e);
      }
    }
    throw new HttpProblem(CallRouteCodes.NOT_FOUND, `no call ${callSid}`);
  });

  app.post('/calls/:callSid/say', { onRequest: d.auth.admin, schema: { params: callParams, body: sayBody } }, async (req, reply) => {
    const { callSid } = req.params as { callSid: string };
    const session = calls.session(callSid);
    if (!session) return toOwnerOr404(req, reply, callSid, 'say', SAY_FORWARD_TIMEOUT_MS);
    if (!d.tts) throw new HttpProblem(ErrorCodes.TTS_NOT_CONFIGURED, 'set ELEVENLABS_API_KEY and ELEVENLABS_VOICE_ID');
    const { text } = req.body as { text: string };
    let audio;
    try {
      audio = await d.tts.speak(text, AbortSignal.timeout(20_000));
    } catch (e) {
      // The TTS service's failure, under its own code: a bad voice/text is ours to fix (400),
      // a slow service is a gateway timeout (504), anything else a bad gateway (502).
      const code = (e as { code?: unknown }).code;
      const status = code === ErrorCodes.AGENT_CONFIG ? 400 : code === ErrorCodes.AGENT_TIMEOUT ? 504 : 502;
      throw new HttpProblem(isErrorCode(code) ? code : ErrorCodes.AGENT_SERVICE, (e as Error).message ?? String(e), { status });
    }
    const ms = session.say(audio, 'say');
    if (ms === 0) throw new HttpProblem(ErrorCodes.CALL_NOT_STREAMING, 'the call is not streaming');
    session.audit('say', text.length > 200 ? `${text.slice(0, 200)}…` : text);
    return reply.code(202).send({ callSid, queuedMs: ms });
  });

  app.post('/calls/:callSid/hangup', { onRequest: d.auth.admin, schema: { params: callParams } }, async (req, reply) => {
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
    session.audit('hangup', viaRest ? 'rest' : 'stream');
    await session.close('hangup-requested');
    return reply.code(202).send({ callSid, ended: true, viaRest });
  });

  app.post('/calls/:callSid/transfer', { onRequest: d.auth.admin, schema: { params: callParams, body: transferBody } }, async (req, reply) => {
    const { callSid } = req.params as { callSid: string };
    const session = calls.session(callSid);
    if (!session) return toOwnerOr404(req, reply, callSid, 'transfer', FORWARD_TIMEOUT_MS);
    const { to } = req.body as { to: string };
    const allowed = session.transferTargets;
    if (!allowed.includes(to)) {
      throw new HttpProblem(ErrorCodes.TRANSFER_NOT_ALLOWED, allowed.length ? `${to} is not one of this call's transfer destinations (${allowed.join(', ')})` : "this call's profile allows no transfers (transfer_call)");
    }
    session.audit('transfer', to);
    try {
      await session.transfer(to);
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      session.audit('transfer', `${to} failed: ${isErrorCode(code) ? code : 'error'}`);
      if (code === ErrorCodes.TWILIO_NOT_CONFIGURED || code === ErrorCodes.CALL_NOT_STREAMING) throw new HttpProblem(code, (e as Error).message);
      throw new HttpProblem(isErrorCode(code) ? code : ErrorCodes.TWILIO_REST, (e as Error).message ?? String(e), { status: 502 });
    }
    return reply.code(202).send({ callSid, to });
  });
}
