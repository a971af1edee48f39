/**
 * The admin and call routes, as one fastify plugin (each route's auth is an onRequest
 * hook from src/server/admin-auth.ts; bodies and params are checked by JSON schemas):
 *
 *   POST /calls                      place an outbound call (admin)
 *   GET  /calls, /calls/:callSid     live calls of every instance (call data) — src/server/call-routes.ts
 *   POST /calls/:callSid/say|hangup  (admin) — src/server/call-routes.ts
 *   GET  /calls/history[/:callSid]   persisted calls (admin) — src/store/history-route.ts
 */
import type { Profile } from '../profiles/schema.js';
import type { TwilioRoutesOptions } from './twilio-routes.js';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Config } from '../config.js';
import type { CallManager } from '../call/call-manager.js';
import type { AgentRegistry } from '../agents/registry.js';
import type { TtsService } from '../agents/elevenlabs/tts/service.js';
import { ErrorCodes, HttpProblem, isErrorCode } from '../errors.js';
import type { CallStore } from '../store/call-store.js';
import { historyRoutes } from '../store/history-route.js';
import type { TwilioRest } from '../twilio/rest.js';
import { publicUrlOf, type RequestLike } from '../twilio/signature.js';
import { outboundStreamTwiml } from '../twilio/stream-twiml.js';
import type { AdminAuth } from './admin-auth.js';
import { callRoutes } from './call-routes.js';

export interface AdminRoutesOptions {
  config: Config;
  calls: CallManager;
  agents: AgentRegistry;
  auth: AdminAuth;
  rest?: TwilioRest;
  tts?: TtsService;
  store?: CallStore;
  /** The profiles in force: POST /calls may name one (its agent and options answer the call). */
  profiles?: TwilioRoutesOptions['profiles'];
  asReceived(req: FastifyRequest): RequestLike;
  log?: (level: 'info' | 'warn' | 'error' | 'debug', msg: string, fields?: Record<string, unknown>) => void;
}

/** E.164 (ITU-T E.164: at most 15 digits, no leading 0), as Twilio takes it. */
const placeCallBody = {
  type: 'object',
  required: ['to'],
  properties: {
    to: { type: 'string', pattern: '^\\+[1-9]\\d{6,14}$' },
    agent: { type: 'string', maxLength: 64 },
    profile: { type: 'string', minLength: 1, maxLength: 64 },
    /** Answering machine detection: true (= Enable) or Twilio's mode; the agent is told who answered. */
    machineDetection: { anyOf: [{ type: 'boolean' }, { type: 'string', enum: ['Enable', 'DetectMessageEnd'] }] },
  },
} as const;

export async function adminRoutes(app: FastifyInstance, o: AdminRoutesOptions): Promise<void> {
  const { config, calls, agents } = o;
  if (o.store) await app.register(historyRoutes, { store: o.store, onRequest: o.auth.admin });
  await app.register(callRoutes, { calls, store: o.store, tts: o.tts, rest: o.rest, runId: () => o.store?.run?.runId, auth: o.auth, log: o.log });

  app.post(
    '/calls',
    {
      onRequest: o.auth.admin,
      // Whether calls can be placed at all is said before the body is judged.
      preValidation: async () => {
        if (!o.rest || !config.twilio.fromNumber) throw new HttpProblem(ErrorCodes.TWILIO_NOT_CONFIGURED, 'set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM_NUMBER');
      },
      schema: { body: placeCallBody },
    },
    async (req, reply) => {
      const rest = o.rest!;
      const from = config.twilio.fromNumber!;
      const { to, agent, profile: profileName, machineDetection } = req.body as { to: string; agent?: string; profile?: string; machineDetection?: boolean | 'Enable' | 'DetectMessageEnd' };
      let profile: Profile | undefined;
      if (profileName !== undefined) {
        if (agent !== undefined) throw new HttpProblem(ErrorCodes.PROFILE_UNKNOWN, 'give a profile or an agent, not both: the profile names its agent', { status: 400 });
        profile = o.profiles?.select({ profileName });
        if (!profile) throw new HttpProblem(ErrorCodes.PROFILE_UNKNOWN, o.profiles ? `profile "${profileName}" is not in the profiles file` : 'no profiles file is loaded (BRIDGE_PROFILES)', { status: 404 });
      }
      const agentName = profile?.agent ?? agent ?? config.defaultAgent;
      let available = false;
      try {
        available = agents.get(agentName).available;
      } catch {
        available = false;
      }
      if (!available) throw new HttpProblem(ErrorCodes.AGENT_UNKNOWN, `agent "${agentName}" is not available`);
      const base = config.publicUrl ?? publicUrlOf(o.asReceived(req), undefined, { websocket: false }).replace(/\/calls(\?.*)?$/, '');
      const twiml = outboundStreamTwiml({ baseUrl: base, agent: agentName, ...(profile ? { profile: profile.name } : {}), from, to, streamToken: calls.streamTokens?.mintOutbound() });
      const amd = machineDetection === undefined || machineDetection === false ? undefined : { mode: machineDetection === true ? 'Enable' : machineDetection, amdStatusCallback: `${base}/twilio/amd` } as const;
      try {
        const call = await rest.createCall({ to, from, twiml, statusCallback: `${base}/twilio/status`, ...(amd ? { machineDetection: amd } : {}) });
        return reply.code(201).send({ callSid: call.sid, status: call.status, agent: agentName, ...(profile ? { profile: profile.name } : {}), machineDetection: amd?.mode ?? null });
      } catch (e) {
        // Twilio's failure under its own code (src/twilio/rest.ts), always a bad gateway here.
        const code = (e as { code?: unknown }).code;
        throw new HttpProblem(isErrorCode(code) ? code : ErrorCodes.TWILIO_REST, (e as Error).message ?? String(e), { status: 502 });
      }
    },
  );
}
