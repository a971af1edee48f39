/**
 * The HTTP/WebSocket surface (fastify + @fastify/websocket), one plugin per concern:
 *
 *   twilio   POST /twilio/voice, POST /twilio/status, GET /twilio/stream[/:key]   (src/server/twilio-routes.ts)
 *   health   GET /healthz, GET /readyz                                            (src/server/health-routes.ts)
 *   admin    POST /calls, GET /calls[/:callSid], POST /calls/:callSid/say|hangup,
 *            GET /calls/history[/:callSid]                                       (src/server/admin-routes.ts)
 *   console  GET /console (the page), GET /console/api/* (its data, admin),
 *            GET /calls/:callSid/recording                                 (src/console/)
 *   metrics  GET /metrics (registered by main: src/metrics/route.ts)
 *
 * Cross-cutting checks are hooks (the Twilio signature, the admin token: onRequest,
 * before a body is read), input is checked by each route's JSON schema, and every
 * HTTP error — ours, fastify's, an unknown route — is answered in one shape, RFC 9457
 * problem details with our stable `code` (src/server/problem.ts, src/errors.ts).
 */
import { createServer } from 'node:http';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import formbody from '@fastify/formbody';
import websocket from '@fastify/websocket';
import { isLoopbackHost, type Config } from '../config.js';
import type { CallManager } from '../call/call-manager.js';
import type { AgentRegistry } from '../agents/registry.js';
import type { DspLoadInfo } from '../dsp/load.js';
import type { RequestLike } from '../twilio/signature.js';
import { DEFAULT_TRUST_PROXY } from '../lifecycle/lifecycle-config.js';
import proxyAddr from '@fastify/proxy-addr';
import type { TwilioRest } from '../twilio/rest.js';
import type { TtsService } from '../agents/elevenlabs/tts/service.js';
import type { CallStore } from '../store/call-store.js';
import { Admission } from '../lifecycle/admission.js';
import { isSid } from '../twilio/messages.js';
import type { RateLimiter } from '../lifecycle/rate-limiter.js';
import { adminAuth } from './admin-auth.js';
import { adminRoutes } from './admin-routes.js';
import { consoleStaticRoutes, CONSOLE_BUILD_DIR } from '../console/static-routes.js';
import { consoleApiRoutes } from '../console/console-api.js';
import { readRecordingSettings } from '../recording/recorder.js';
import { piiLoggingEnabled } from '../log.js';
import { packageVersion } from '../version.js';
import { healthRoutes } from './health-routes.js';
import { useProblemDetails } from './problem.js';
import { twilioRoutes, type RefusedLog, type TwilioRoutesOptions } from './twilio-routes.js';

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
  /** The profiles in force (BRIDGE_PROFILES): the voice webhook routes calls by them (docs/profiles.md). */
  profiles?: TwilioRoutesOptions['profiles'];
  /** Who may set X-Forwarded-* (fastify trustProxy): true, false, or addresses/CIDRs/keywords; default loopback only. */
  trustProxy?: boolean | string[];
  /** Bound on receiving a request's headers and whole body (ms); default 15 s (BRIDGE_HTTP_TIMEOUT_MS). */
  httpTimeoutMs?: number;
  log?: (level: 'info' | 'warn' | 'error' | 'debug', msg: string, fields?: Record<string, unknown>) => void;
  /** Counters of what the HTTP side refuses and answers (src/metrics: onRefused, onHttpResponse). */
  observe?: { refused(stage: 'webhook' | 'stream', reason: string): void; response(method: string, route: string, statusCode: number): void };
}

export const DEFAULT_HTTP_TIMEOUT_MS = 15_000;

/** The trust predicate for a trustProxy setting (what fastify builds for X-Forwarded-For). */
function compileTrust(tp: boolean | string[]): (addr: string, i: number) => boolean {
  if (tp === true) return () => true;
  if (tp === false) return () => false;
  return proxyAddr.compile(tp);
}
const KEEP_ALIVE_TIMEOUT_MS = 5000;

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
  const refused: RefusedLog = (stage, reason, req, code, fields = {}) => {
    observe?.refused(stage, reason);
    const body = (stage === 'webhook' ? (req.body ?? {}) : {}) as Record<string, unknown>;
    const callSid = typeof body.CallSid === 'string' && isSid('CA', body.CallSid) ? body.CallSid : undefined;
    const parties = typeof body.From === 'string' || typeof body.To === 'string' ? { pii: { from: body.From ?? null, to: body.To ?? null } } : {};
    deps.log?.(reason === 'draining' ? 'info' : 'warn', stage === 'webhook' ? 'call refused at the voice webhook' : 'stream refused at the upgrade', { stage, reason, code, ...(callSid ? { callSid } : {}), ip: req.ip, ...fields, ...parties });
  };
  // One error body shape for the whole app, set on the root before any plugin (they inherit it).
  useProblemDetails(app, deps.log);
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

  await app.register(twilioRoutes, { config, calls, agents, admission, webhookLimiter: deps.webhookLimiter, asReceived, refused, profiles: deps.profiles, log: deps.log });
  await app.register(healthRoutes, { config, agents, admission, dspInfo: deps.dspInfo, dspPool: deps.dspPool });
  // Call data is open without a token only on a loopback bind (local development).
  const auth = adminAuth({ adminToken: config.adminToken, loopbackOnly: isLoopbackHost(config.host) });
  await app.register(adminRoutes, { config, calls, agents, auth, rest: deps.rest, tts: deps.tts, store: deps.store, profiles: deps.profiles, asReceived, log: deps.log });
  await app.register(consoleStaticRoutes, { dir: CONSOLE_BUILD_DIR }); // the call console's page (public, no data)
  const recording = readRecordingSettings(config.env).settings;
  await app.register(consoleApiRoutes, {
    calls,
    store: deps.store,
    auth,
    runId: () => deps.store?.run?.runId,
    instanceId: config.instanceId,
    worker: config.workerSlot ?? null,
    pii: piiLoggingEnabled(config.env),
    version: packageVersion(),
    recordingDir: recording.enabled ? recording.dir : undefined,
    log: deps.log,
  });

  return app;
}
