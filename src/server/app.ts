/**
 * The HTTP/WebSocket surface (fastify + @fastify/websocket):
 *
 *   POST /twilio/voice    voice webhook → TwiML <Connect><Stream url="wss://…/twilio/stream"> + <Parameter>s
 *   POST /twilio/status   call / stream status callbacks
 *   GET  /twilio/stream   the Media Streams WebSocket (one CallSession per socket)
 *   GET  /healthz, /readyz (503 with the reason when draining, at BRIDGE_MAX_CALLS or overloaded)
 *   GET  /calls, /calls/:callSid (admin token when BRIDGE_ADMIN_TOKEN is set: caller data),
 *        POST /calls/:callSid/say | hangup — every instance's calls (src/server/call-routes.ts)
 *   POST /calls           place an outbound call (admin token)
 *
 * X-Twilio-Signature is checked on the webhooks and on the upgrade (over the wss://
 * URL, no params; protocols.md §1.9) whenever TWILIO_AUTH_TOKEN is set. Admission
 * (src/lifecycle/admission.ts) decides whether the webhook connects the call or
 * refuses it politely, and whether the upgrade is accepted; the voice webhook is
 * rate-limited per source address (src/lifecycle/rate-limiter.ts).
 */
import { timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import formbody from '@fastify/formbody';
import websocket from '@fastify/websocket';
import twilio from 'twilio';
import { isLoopbackHost, type Config } from '../config.js';
import type { CallManager } from '../call/call-manager.js';
import type { AgentRegistry } from '../agents/registry.js';
import type { DspLoadInfo } from '../dsp/load.js';
import { isValidSignature, publicUrlOf, type RequestLike } from '../twilio/signature.js';
import { DEFAULT_TRUST_PROXY } from '../lifecycle/lifecycle-config.js';
import proxyAddr from '@fastify/proxy-addr';
import type { TwilioRest } from '../twilio/rest.js';
import type { TtsService } from '../agents/elevenlabs/tts/service.js';
import type { CallStore } from '../store/call-store.js';
import { registerHistoryRoute } from '../store/history-route.js';
import { Admission } from '../lifecycle/admission.js';
import { IDENTITY_PARAMS, outboundStreamTwiml } from '../twilio/stream-twiml.js';
import { isSid } from '../twilio/messages.js';
import { registerCallRoutes } from './call-routes.js';
import { STREAM_TOKEN_PARAM } from '../twilio/stream-token.js';
import { RateLimitCodes, type RateLimiter } from '../lifecycle/rate-limiter.js';
import { ErrorCodes } from '../errors.js';

export interface AppDeps {
  config: Config;
  calls: CallManager;
  agents: AgentRegistry;
  dspInfo: () => DspLoadInfo | undefined;
  /** BRIDGE_DSP_POOL mode: the pool's counters for /readyz (undefined: inline DSP, no `dspPool` key). */
  dspPool?: () => { threads: number; calls: number; workerCalls: number; batches: number; failedBatches: number };
  rest?: TwilioRest;
  /** ElevenLabs TTS for POST /calls/:callSid/say (undefined when not configured). */
  tts?: TtsService;
  /** Call records, for GET /calls/history (admin). */
  store?: CallStore;
  logger?: boolean | object;
  /** Admission (draining, BRIDGE_MAX_CALLS, load gate); default: one that only knows draining. */
  admission?: Admission;
  /** Per-source limit on the voice webhook (undefined: no limit). */
  webhookLimiter?: RateLimiter;
  /** Who may set X-Forwarded-* (fastify trustProxy): true, false, or addresses/CIDRs/keywords; default loopback only. */
  trustProxy?: boolean | string[];
  /** Bound on receiving a request's headers and whole body (ms); default 15 s (BRIDGE_HTTP_TIMEOUT_MS). */
  httpTimeoutMs?: number;
  log?: (level: 'info' | 'warn' | 'error' | 'debug', msg: string, fields?: Record<string, unknown>) => void;
  /** Counters of what the HTTP side refuses and answers (src/metrics: onRefused, onHttpResponse). */
  observe?: { refused(stage: 'webhook' | 'stream', reason: string): void; response(method: string, route: string, statusCode: number): void };
}

export const DEFAULT_HTTP_TIMEOUT_MS = 15_000;
const SIGNATURE_ERROR = 'BRIDGE_ERR_TWILIO_SIGNATURE';

/** The trust predicate for a trustProxy setting (what fastify builds for X-Forwarded-For). */
function compileTrust(tp: boolean | string[]): (addr: string, i: number) => boolean {
  if (tp === true) return () => true;
  if (tp === false) return () => false;
  return proxyAddr.compile(tp);
}
const KEEP_ALIVE_TIMEOUT_MS = 5000;

/** Query keys of the voice webhook that are not agent options (the bridge sets these parameters itself). */
const RESERVED = new Set(['agent', IDENTITY_PARAMS.from, IDENTITY_PARAMS.to, STREAM_TOKEN_PARAM]);
const PARAM_NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;

export async function buildApp(deps: AppDeps): Promise<FastifyInstance & { draining: boolean }> {
  const { config, calls, agents } = deps;
  // Every HTTP wait is bounded (fastify's own defaults are 0 = none): a client that trickles
  // its headers or body is cut after httpTimeoutMs, an idle keep-alive connection after 5 s,
  // checked every second; on close every remaining connection is destroyed, so one slow
  // client can never hold a shutdown. Upgraded WebSockets leave the HTTP server's
  // bookkeeping at the upgrade (the call's own timeouts take over).
  const httpTimeoutMs = deps.httpTimeoutMs ?? DEFAULT_HTTP_TIMEOUT_MS;
  const trustProxy = deps.trustProxy ?? DEFAULT_TRUST_PROXY;
  const app = Fastify({
    logger: deps.logger ?? false,
    bodyLimit: 64 * 1024,
    trustProxy,
    forceCloseConnections: true,
    serverFactory: (handler) =>
      createServer({ requestTimeout: httpTimeoutMs, headersTimeout: httpTimeoutMs, keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS, connectionsCheckingInterval: Math.min(1000, httpTimeoutMs) }, handler),
  }) as unknown as FastifyInstance & { draining: boolean };
  const admission = deps.admission ?? new Admission({ activeCalls: () => calls.startedCount });
  // `app.draining = true` (the older switch) starts the admission's drain.
  Object.defineProperty(app, 'draining', {
    get: () => admission.draining,
    set: (v: boolean) => {
      if (v) admission.startDraining();
    },
  });
  calls.on('callStarted', ({ callSid }) => admission.release(callSid));
  const observe = deps.observe;
  if (observe) {
    app.addHook('onResponse', async (req, reply) => {
      observe.response(req.method, req.routeOptions?.url ?? 'unmatched', reply.statusCode);
    });
  }
  /**
   * A call refused before it started — the one place: counted (voice_bridge_calls_refused_total)
   * and logged, one line with the reason (the metric's label) and a stable code. The
   * caller's numbers only under `pii`.
   */
  const refused = (stage: 'webhook' | 'stream', reason: string, req: FastifyRequest, code: string, fields: Record<string, unknown> = {}) => {
    observe?.refused(stage, reason);
    const body = (stage === 'webhook' ? (req.body ?? {}) : {}) as Record<string, unknown>;
    const callSid = typeof body.CallSid === 'string' && isSid('CA', body.CallSid) ? body.CallSid : undefined;
    const parties = typeof body.From === 'string' || typeof body.To === 'string' ? { pii: { from: body.From ?? null, to: body.To ?? null } } : {};
    deps.log?.(reason === 'draining' ? 'info' : 'warn', stage === 'webhook' ? 'call refused at the voice webhook' : 'stream refused at the upgrade', { stage, reason, code, ...(callSid ? { callSid } : {}), ip: req.ip, ...fields, ...parties });
  };
  await app.register(formbody);
  await app.register(websocket, {
    // Messages up to 1 MiB reach the session, which counts anything above
    // BRIDGE_MAX_MESSAGE_BYTES and keeps the call; bigger ones close the socket (1009).
    options: { maxPayload: Math.max(1024 * 1024, config.maxMessageBytes * 4) },
  });

  // X-Forwarded-Proto/-Host/-Port steer the URL we check signatures over and the stream
  // URL we answer with: honoured only from a peer in BRIDGE_TRUST_PROXY, the same rule
  // fastify applies to X-Forwarded-For (anyone else could point Twilio elsewhere).
  const peerTrusted = compileTrust(trustProxy);
  const FORWARDED = new Set(['x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port']);
  function asReceived(req: FastifyRequest): RequestLike {
    if (peerTrusted(req.socket?.remoteAddress ?? '', 0)) return req;
    const headers: RequestLike['headers'] = {};
    for (const [k, v] of Object.entries(req.headers)) if (!FORWARDED.has(k)) headers[k] = v;
    return { url: req.url, headers, protocol: req.protocol };
  }

  const token = config.twilio.authToken;
  function signatureOk(req: FastifyRequest, wss: boolean): boolean {
    if (!config.twilio.validateSignatures || !token) return true;
    const sig = req.headers['x-twilio-signature'];
    if (typeof sig !== 'string' || sig.length === 0) return false;
    const url = publicUrlOf(asReceived(req), config.publicUrl, { websocket: wss });
    const params = wss ? {} : ((req.body ?? {}) as Record<string, string>);
    return isValidSignature(token, sig, url, params);
  }

  function forbid(reply: FastifyReply): FastifyReply {
    return reply.code(403).send({ error: SIGNATURE_ERROR, message: 'missing or invalid X-Twilio-Signature' });
  }

  app.post('/twilio/voice', async (req, reply) => {
    // The signature first: forged requests are refused outright and never spend the
    // source's webhook budget, so unsigned traffic cannot starve Twilio's real webhooks.
    if (!signatureOk(req, false)) {
      refused('webhook', 'signature', req, SIGNATURE_ERROR);
      return forbid(reply);
    }
    const retryAfterS = deps.webhookLimiter?.take(req.ip) ?? 0;
    if (retryAfterS > 0) {
      refused('webhook', 'rate-limited', req, RateLimitCodes.RATE_LIMITED, { retryAfterS });
      return reply.code(429).header('retry-after', String(retryAfterS)).send({ error: RateLimitCodes.RATE_LIMITED, message: 'too many voice webhook requests from this source' });
    }
    const query = req.query as Record<string, string | string[] | undefined>;
    const first = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);
    const agentName = first(query.agent) ?? config.defaultAgent;
    const response = new twilio.twiml.VoiceResponse();
    let agentOk = false;
    let agentProblem: string = ErrorCodes.AGENT_CONFIG; // registered, not configured (e.g. no API key)
    try {
      agentOk = agents.get(agentName).available;
    } catch {
      agentOk = false;
      agentProblem = ErrorCodes.AGENT_UNKNOWN;
    }
    const body = (req.body ?? {}) as Record<string, unknown>;
    const callSid = typeof body.CallSid === 'string' && isSid('CA', body.CallSid) ? body.CallSid : undefined;
    const refusal = agentOk ? admission.admitWebhook(callSid) : undefined;
    if (refusal || !agentOk) {
      refused('webhook', refusal?.reason ?? 'agent-unavailable', req, refusal?.code ?? agentProblem, { agent: agentName.slice(0, 64) });
      response.say(
        refusal?.reason === 'draining'
          ? 'Sorry, we cannot take your call right now. Please call again shortly.'
          : refusal
            ? 'Sorry, all our lines are busy right now. Please call again shortly.'
            : 'Sorry, this line is not available right now.',
      );
      response.hangup();
      return reply.type('text/xml').send(response.toString());
    }
    const base = publicUrlOf(asReceived(req), config.publicUrl, { websocket: true }).replace(/\/twilio\/voice(\?.*)?$/, '');
    const connect = response.connect();
    // The stream URL ends in this process's routing key (a path segment: Twilio's
    // <Stream url> takes no query string), so a balancer or the --workers primary can
    // send the stream where the agent was pre-connected. A miss is served all the same.
    const stream = connect.stream({ url: `${base}/twilio/stream/${config.routeKey}`, statusCallback: `${base.replace(/^ws/, 'http')}/twilio/status` });
    stream.parameter({ name: 'agent', value: agentName });
    // The call's identity travels with the call: whichever process gets the stream can record it.
    if (typeof body.From === 'string' && body.From.length <= 64) stream.parameter({ name: IDENTITY_PARAMS.from, value: body.From });
    if (typeof body.To === 'string' && body.To.length <= 64) stream.parameter({ name: IDENTITY_PARAMS.to, value: body.To });
    // With signature checks on, the stream must come back with this call's token (src/twilio/stream-token.ts).
    if (calls.streamTokens && callSid !== undefined) stream.parameter({ name: STREAM_TOKEN_PARAM, value: calls.streamTokens.mint(callSid) });
    const options: Record<string, string> = {};
    for (const [k, v] of Object.entries(query)) {
      const value = first(v);
      if (RESERVED.has(k) || value === undefined || !PARAM_NAME.test(k) || value.length > 500) continue;
      stream.parameter({ name: k, value });
      options[k] = value;
    }
    // Connect the agent now, while Twilio fetches the TwiML and dials the stream.
    if (callSid !== undefined) {
      calls.rememberParties(callSid, typeof body.From === 'string' ? body.From : undefined, typeof body.To === 'string' ? body.To : undefined);
      calls.prepare(callSid, agentName, options);
    }
    return reply.type('text/xml').send(response.toString());
  });

  app.post('/twilio/status', async (req, reply) => {
    if (!signatureOk(req, false)) return forbid(reply);
    const body = (req.body ?? {}) as Record<string, unknown>;
    const params: Record<string, string> = {};
    for (const [k, v] of Object.entries(body)) if (typeof v === 'string') params[k] = v;
    // Unsigned callbacks (signature checks off) could come from anyone: not attached to
    // call records, and not kept (memory is not theirs to fill).
    if (config.twilio.validateSignatures) calls.recordStatus(params);
    return reply.code(204).send();
  });

  // The Media Stream, with or without a routing key (`/twilio/stream/<key>`). The key
  // only steers balancers; here any key — ours, another process's, a forged one — is
  // served the same: a stream is never refused or sent elsewhere because of its key.
  const streamRoute = {
    websocket: true,
    preValidation: async (req: FastifyRequest, reply: FastifyReply) => {
      if (!signatureOk(req, true)) {
        refused('stream', 'signature', req, SIGNATURE_ERROR);
        return forbid(reply);
      }
      const refusal = admission.admitUpgrade(req.ip);
      if (refusal) refused('stream', refusal.reason, req, refusal.code);
      if (refusal) return reply.code(refusal.reason === 'pending-streams' ? 429 : 503).send({ error: refusal.code, message: refusal.message, reason: refusal.reason });
    },
  } as const;
  const onStream = (socket: import('ws').WebSocket, req: FastifyRequest) => {
    admission.trackStream(calls.attach(socket), req.ip);
  };
  app.get('/twilio/stream', streamRoute, onStream);
  app.get('/twilio/stream/:routeKey', streamRoute, onStream);

  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_req, reply) => {
    const info = deps.dspInfo();
    const a = admission.status();
    const body = {
      ready: a.ready,
      reason: a.reason,
      dsp: info ? { backend: info.backend, requested: info.requested, fallbackReason: info.fallbackReason ?? null, simd: info.simd ?? null } : null,
      activeCalls: a.activeCalls,
      reservedCalls: a.reservedCalls,
      maxCalls: a.maxCalls,
      load: a.load,
      pid: process.pid,
      ...(config.unsignedExposed ? { warning: 'Twilio signature checks are off on a non-loopback address (BRIDGE_ALLOW_UNSIGNED=1): anyone who reaches this port can start calls' } : {}),
      instance: config.instanceId,
      worker: config.workerSlot ?? null,
      routeKey: config.routeKey,
      agents: agents.available(),
      ...(deps.dspPool ? { dspPool: deps.dspPool() } : {}),
    };
    return reply.code(a.ready ? 200 : 503).send(body);
  });

  /**
   * Call data (numbers, transcripts, custom parameters): admin-only once a token is
   * configured, and whenever the bridge is reachable from other hosts (a non-loopback
   * bind); open without a token only on loopback (local development).
   */
  function callDataDenied(req: FastifyRequest, reply: FastifyReply): FastifyReply | undefined {
    return config.adminToken || !isLoopbackHost(config.host) ? adminDenied(req, reply) : undefined;
  }

  /** Admin routes: a bearer token, compared in constant time; off when BRIDGE_ADMIN_TOKEN is unset. */
  function adminDenied(req: FastifyRequest, reply: FastifyReply): FastifyReply | undefined {
    const admin = config.adminToken;
    if (!admin) return reply.code(403).send({ error: 'BRIDGE_ERR_ADMIN_DISABLED', message: 'set BRIDGE_ADMIN_TOKEN to enable admin routes' });
    const got = Buffer.from(req.headers.authorization ?? '');
    const want = Buffer.from(`Bearer ${admin}`);
    if (got.length !== want.length || !timingSafeEqual(got, want)) return reply.code(401).send({ error: 'BRIDGE_ERR_ADMIN_AUTH', message: 'missing or wrong admin token' });
    return undefined;
  }

  if (deps.store) registerHistoryRoute(app, deps.store, adminDenied);

  registerCallRoutes(app, { calls, store: deps.store, tts: deps.tts, rest: deps.rest, runId: () => deps.store?.run?.runId, adminDenied, callDataDenied, log: deps.log });

  app.post('/calls', async (req, reply) => {
    const denied = adminDenied(req, reply);
    if (denied) return denied;
    if (!deps.rest || !config.twilio.fromNumber) {
      return reply.code(503).send({ error: 'BRIDGE_ERR_TWILIO_NOT_CONFIGURED', message: 'set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM_NUMBER' });
    }
    const body = (req.body ?? {}) as Record<string, unknown>;
    const to = typeof body.to === 'string' ? body.to : '';
    if (!/^\+[1-9]\d{6,14}$/.test(to)) return reply.code(400).send({ error: 'BRIDGE_ERR_BAD_REQUEST', message: '"to" must be an E.164 number like +15551234567' });
    const agentName = typeof body.agent === 'string' ? body.agent : config.defaultAgent;
    try {
      if (!agents.get(agentName).available) throw new Error('unavailable');
    } catch {
      return reply.code(400).send({ error: 'BRIDGE_ERR_AGENT_UNKNOWN', message: `agent "${agentName}" is not available` });
    }
    const base = config.publicUrl ?? publicUrlOf(asReceived(req), undefined, { websocket: false }).replace(/\/calls(\?.*)?$/, '');
    const twiml = outboundStreamTwiml({ baseUrl: base, agent: agentName, from: config.twilio.fromNumber, to, streamToken: calls.streamTokens?.mintOutbound() });
    try {
      const call = await deps.rest.createCall({ to, from: config.twilio.fromNumber, twiml, statusCallback: `${base}/twilio/status` });
      return reply.code(201).send({ callSid: call.sid, status: call.status, agent: agentName });
    } catch (e) {
      const err = e as { code?: string; message?: string };
      return reply.code(502).send({ error: err.code ?? 'BRIDGE_ERR_TWILIO_REST', message: err.message ?? String(e) });
    }
  });

  return app;
}
