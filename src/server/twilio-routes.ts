/**
 * The Twilio side, as one fastify plugin:
 *
 *   POST /twilio/voice              voice webhook → TwiML <Connect><Stream url="wss://…/twilio/stream/<key>"> + <Parameter>s
 *   POST /twilio/status             call / stream status callbacks
 *   GET  /twilio/stream[/:routeKey] the Media Streams WebSocket (one CallSession per socket)
 *
 * X-Twilio-Signature is checked by hooks, never inside a handler, whenever
 * TWILIO_AUTH_TOKEN is set (https://www.twilio.com/docs/usage/security#validating-requests):
 *
 *   onRequest     a request without the header is refused (403) before its body is read
 *   onRequest     the upgrade: the HMAC over the wss:// URL, no params (twilio-labs/twilio-aspnet#162)
 *   preValidation the webhooks: the HMAC over the URL and the POST params, so it runs as
 *                 soon as the body is parsed — the first hook that can see the params
 *
 * Admission (src/lifecycle/admission.ts) decides whether the webhook connects the call
 * or refuses it politely, and whether the upgrade is accepted; the voice webhook is
 * rate-limited per source address (src/lifecycle/rate-limiter.ts), after the
 * signature: forged requests never spend the source's budget.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import twilio from 'twilio';
import type { Config } from '../config.js';
import type { CallManager } from '../call/call-manager.js';
import type { AgentRegistry } from '../agents/registry.js';
import { ErrorCodes, HttpProblem, type ErrorCode } from '../errors.js';
import type { Admission } from '../lifecycle/admission.js';
import type { RateLimiter } from '../lifecycle/rate-limiter.js';
import { isValidSignature, publicUrlOf, type RequestLike } from '../twilio/signature.js';
import { IDENTITY_PARAMS, PROFILE_PARAM } from '../twilio/stream-twiml.js';
import type { Profile } from '../profiles/schema.js';
import { profileAgentParameters } from '../profiles/profile-options.js';
import { isSid } from '../twilio/messages.js';
import { STREAM_TOKEN_PARAM } from '../twilio/stream-token.js';

export type RefusedLog = (stage: 'webhook' | 'stream', reason: string, req: FastifyRequest, code: string, fields?: Record<string, unknown>) => void;

export interface TwilioRoutesOptions {
  config: Config;
  calls: CallManager;
  agents: AgentRegistry;
  admission: Admission;
  webhookLimiter?: RateLimiter;
  /** The request as received, X-Forwarded-* dropped unless the peer is a trusted proxy. */
  asReceived(req: FastifyRequest): RequestLike;
  /** Counts and logs a call refused before it started. */
  refused: RefusedLog;
  /** The profiles in force (BRIDGE_PROFILES; docs/profiles.md); absent: the environment-based behaviour. */
  profiles?: { select(by: { to?: string; profileName?: string }): Profile | undefined };
  log?: (level: 'info' | 'warn' | 'error' | 'debug', msg: string, fields?: Record<string, unknown>) => void;
}

/** Query keys of the voice webhook that are not agent options (the bridge sets these parameters itself). */
const RESERVED = new Set(['agent', PROFILE_PARAM, IDENTITY_PARAMS.from, IDENTITY_PARAMS.to, STREAM_TOKEN_PARAM]);
/**
 * The longest agent option a query string carries (a TwiML <Parameter> and Twilio's
 * limits on the webhook URL are the reason); a longer one is refused, never dropped.
 */
export const MAX_WEBHOOK_OPTION_CHARS = 500;
const PARAM_NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;
const SIGNATURE_DETAIL = 'missing or invalid X-Twilio-Signature';

export async function twilioRoutes(app: FastifyInstance, o: TwilioRoutesOptions): Promise<void> {
  const { config, calls, agents, admission } = o;
  const token = config.twilio.authToken;
  const checking = config.twilio.validateSignatures && !!token;

  function signatureOk(req: FastifyRequest, wss: boolean): boolean {
    const sig = req.headers['x-twilio-signature'];
    if (typeof sig !== 'string' || sig.length === 0) return false;
    const url = publicUrlOf(o.asReceived(req), config.publicUrl, { websocket: wss });
    const params = wss ? {} : ((req.body ?? {}) as Record<string, string>);
    return isValidSignature(token!, sig, url, params);
  }
  /** Refuses with 403; `stage` logs and counts it as a refused call. */
  const forbid = (req: FastifyRequest, stage?: 'webhook' | 'stream'): never => {
    if (stage) o.refused(stage, 'signature', req, ErrorCodes.TWILIO_SIGNATURE);
    throw new HttpProblem(ErrorCodes.TWILIO_SIGNATURE, SIGNATURE_DETAIL);
  };
  const stageOf = (req: FastifyRequest) => (req.routeOptions.url === '/twilio/voice' ? 'webhook' : undefined);

  if (checking) {
    app.addHook('onRequest', async (req) => {
      const sig = req.headers['x-twilio-signature'];
      if (typeof sig !== 'string' || sig.length === 0) forbid(req, req.routeOptions.config.twilio === 'stream' ? 'stream' : stageOf(req));
    });
  }
  const webhookSignature = async (req: FastifyRequest) => {
    if (checking && !signatureOk(req, false)) forbid(req, stageOf(req));
  };

  app.post('/twilio/voice', { preValidation: webhookSignature }, async (req, reply) => {
    const retryAfterS = o.webhookLimiter?.take(req.ip) ?? 0;
    if (retryAfterS > 0) {
      o.refused('webhook', 'rate-limited', req, ErrorCodes.RATE_LIMITED, { retryAfterS });
      throw new HttpProblem(ErrorCodes.RATE_LIMITED, 'too many voice webhook requests from this source', { headers: { 'retry-after': String(retryAfterS) } });
    }
    const query = req.query as Record<string, string | string[] | undefined>;
    const first = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);
    // An option too long for a query string is refused, loudly: silently dropping it
    // would run the call with another prompt than the one asked for.
    for (const [k, v] of Object.entries(query)) {
      const value = first(v);
      if (RESERVED.has(k) || value === undefined || !PARAM_NAME.test(k) || value.length <= MAX_WEBHOOK_OPTION_CHARS) continue;
      o.refused('webhook', 'option-too-long', req, ErrorCodes.WEBHOOK_OPTION_TOO_LONG, { option: k, chars: value.length });
      throw new HttpProblem(
        ErrorCodes.WEBHOOK_OPTION_TOO_LONG,
        `agent option "${k}" is ${value.length} characters, over the ${MAX_WEBHOOK_OPTION_CHARS} a webhook query may carry; long options belong in a profile (BRIDGE_PROFILES, docs/profiles.md), named by ?profile=NAME or by the called number`,
        { extensions: { option: k, maxChars: MAX_WEBHOOK_OPTION_CHARS } },
      );
    }
    const body = (req.body ?? {}) as Record<string, unknown>;
    const to = typeof body.To === 'string' ? body.To : undefined;
    // Which profile answers (docs/profiles.md): ?profile=NAME, else the called number,
    // else the default profile, else none (the environment-based behaviour below).
    const profileName = first(query[PROFILE_PARAM]);
    let profile: Profile | undefined;
    if (profileName !== undefined || o.profiles) {
      profile = o.profiles?.select(profileName !== undefined ? { profileName } : { to });
      if (profileName !== undefined && profile === undefined) {
        // A wrong name is never replaced by another profile: the caller is refused politely.
        o.refused('webhook', 'profile-unknown', req, ErrorCodes.PROFILE_UNKNOWN, { profile: profileName.slice(0, 64), profilesLoaded: o.profiles !== undefined });
        return reply.type('text/xml').send(refuseTwiml('Sorry, this line is not available right now.'));
      }
    }
    const agentName = profile?.agent ?? first(query.agent) ?? config.defaultAgent;
    const response = new twilio.twiml.VoiceResponse();
    let agentOk = false;
    let agentProblem: ErrorCode = ErrorCodes.AGENT_CONFIG; // registered, not configured (e.g. no API key)
    try {
      agentOk = agents.get(agentName).available;
    } catch {
      agentOk = false;
      agentProblem = ErrorCodes.AGENT_UNKNOWN;
    }
    const callSid = typeof body.CallSid === 'string' && isSid('CA', body.CallSid) ? body.CallSid : undefined;
    const refusal = agentOk ? admission.admitWebhook(callSid) : undefined;
    if (refusal || !agentOk) {
      // Twilio reads TwiML, not problem bodies: the caller is refused politely, with a 200.
      o.refused('webhook', refusal?.reason ?? 'agent-unavailable', req, refusal?.code ?? agentProblem, { agent: agentName.slice(0, 64), ...(profile ? { profile: profile.name } : {}) });
      return reply.type('text/xml').send(
        refuseTwiml(
          refusal?.reason === 'draining'
            ? 'Sorry, we cannot take your call right now. Please call again shortly.'
            : refusal
              ? 'Sorry, all our lines are busy right now. Please call again shortly.'
              : 'Sorry, this line is not available right now.',
        ),
      );
    }
    const base = publicUrlOf(o.asReceived(req), config.publicUrl, { websocket: true }).replace(/\/twilio\/voice(\?.*)?$/, '');
    const connect = response.connect();
    // The stream URL ends in this process's routing key (a path segment: Twilio's
    // <Stream url> takes no query string), so a balancer or the --workers primary can
    // send the stream where the agent was pre-connected. A miss is served all the same.
    const stream = connect.stream({ url: `${base}/twilio/stream/${config.routeKey}`, statusCallback: `${base.replace(/^ws/, 'http')}/twilio/status` });
    // With a profile the TwiML names it, and nothing else of it: its agent and options
    // (any length) are looked up by name where the stream lands (src/call/call-manager.ts).
    if (profile) stream.parameter({ name: PROFILE_PARAM, value: profile.name });
    else stream.parameter({ name: 'agent', value: agentName });
    // The call's identity travels with the call: whichever process gets the stream can record it.
    if (typeof body.From === 'string' && body.From.length <= 64) stream.parameter({ name: IDENTITY_PARAMS.from, value: body.From });
    if (typeof body.To === 'string' && body.To.length <= 64) stream.parameter({ name: IDENTITY_PARAMS.to, value: body.To });
    // With signature checks on, the stream must come back with this call's token (src/twilio/stream-token.ts).
    if (calls.streamTokens && callSid !== undefined) stream.parameter({ name: STREAM_TOKEN_PARAM, value: calls.streamTokens.mint(callSid) });
    let options: Record<string, string> = {};
    if (profile) {
      options = profileAgentParameters(profile);
      // The profile decides the agent and its options: the query's are not used.
      const ignored = Object.keys(query).filter((k) => k !== PROFILE_PARAM && k !== STREAM_TOKEN_PARAM);
      if (ignored.length > 0) o.log?.('warn', 'voice webhook query options ignored: the profile decides the agent and its options', { profile: profile.name, ignored: ignored.slice(0, 20).map((k) => k.slice(0, 64)) });
    } else {
      for (const [k, v] of Object.entries(query)) {
        const value = first(v);
        if (RESERVED.has(k) || value === undefined || !PARAM_NAME.test(k)) continue;
        stream.parameter({ name: k, value });
        options[k] = value;
      }
    }
    // Connect the agent now, while Twilio fetches the TwiML and dials the stream.
    if (callSid !== undefined) {
      calls.rememberParties(callSid, typeof body.From === 'string' ? body.From : undefined, to);
      calls.prepare(callSid, agentName, options, profile?.name);
    }
    return reply.type('text/xml').send(response.toString());
  });

  app.post('/twilio/status', { preValidation: webhookSignature }, async (req, reply) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const params: Record<string, string> = {};
    for (const [k, v] of Object.entries(body)) if (typeof v === 'string') params[k] = v;
    // Unsigned callbacks (signature checks off) could come from anyone: not attached to
    // call records, and not kept (memory is not theirs to fill).
    if (config.twilio.validateSignatures) calls.recordStatus(params);
    return reply.code(204).send();
  });

  // Asynchronous answering-machine detection of an outbound call (POST /calls with
  // machineDetection): the call's agent is told who answered. Signed like every callback.
  app.post('/twilio/amd', { preValidation: webhookSignature }, async (req, reply) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const callSid = typeof body.CallSid === 'string' ? body.CallSid : '';
    const answeredBy = typeof body.AnsweredBy === 'string' ? body.AnsweredBy.slice(0, 32) : 'unknown';
    if (config.twilio.validateSignatures) {
      const here = calls.answeredBy(callSid, answeredBy);
      o.log?.('info', 'answering machine detection', { callSid, answeredBy, local: here });
    }
    return reply.code(204).send();
  });

  // The Media Stream, with or without a routing key (`/twilio/stream/<key>`). The key
  // only steers balancers; here any key — ours, another process's, a forged one — is
  // served the same: a stream is never refused or sent elsewhere because of its key.
  // An upgrade has no body: both checks run at onRequest, before any upgrade work.
  const upgradeSignature = async (req: FastifyRequest) => {
    if (checking && !signatureOk(req, true)) forbid(req, 'stream');
  };
  const upgradeAdmission = async (req: FastifyRequest) => {
    const refusal = admission.admitUpgrade(req.ip);
    if (!refusal) return;
    o.refused('stream', refusal.reason, req, refusal.code);
    throw new HttpProblem(refusal.code, refusal.message, { extensions: { reason: refusal.reason } });
  };
  const onStream = (socket: import('ws').WebSocket, req: FastifyRequest) => {
    admission.trackStream(calls.attach(socket), req.ip);
  };
  for (const path of ['/twilio/stream', '/twilio/stream/:routeKey']) {
    app.get(path, { websocket: true, config: { twilio: 'stream' }, onRequest: [upgradeSignature, upgradeAdmission] }, onStream);
  }
}

/** A polite refusal a caller hears (Twilio reads TwiML, not problem bodies: a 200). */
function refuseTwiml(text: string): string {
  const response = new twilio.twiml.VoiceResponse();
  response.say(text);
  response.hangup();
  return response.toString();
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Marks the Media Streams routes for the signature hook (their refusals are counted as streams). */
    twilio?: 'stream';
  }
}
