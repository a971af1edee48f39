/**
 * Configuration from environment variables, read and validated once at start.
 * Every problem is listed at once (ConfigError.problems), not just the first.
 * The README's "Environment variables" table documents each key.
 */
import { isIP } from 'node:net';
import { hostname } from 'node:os';

export type AgentName = 'echo' | 'openai' | 'gemini' | 'elevenlabs' | 'hume' | 'pipecat';
export const AGENT_NAMES: readonly AgentName[] = ['echo', 'openai', 'gemini', 'elevenlabs', 'hume', 'pipecat'];

export interface Config {
  readonly port: number;
  readonly host: string;
  /** Public base URL Twilio reaches us at (https://…); undefined → derived from each request. */
  readonly publicUrl?: string;
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  readonly dsp: 'auto' | 'native' | 'ts';
  /** Experimental: worker threads running all calls' DSP in batches (0 = inline on the event loop, the default). */
  readonly dspPool: number;
  readonly defaultAgent: AgentName;
  /** How far outbound audio may run ahead of real time at Twilio (ms). */
  readonly playoutLeadMs: number;
  /** Caller audio kept while the agent is not yet connected (ms). */
  readonly prestartBufferMs: number;
  /** Largest accepted WebSocket message from Twilio (bytes). */
  readonly maxMessageBytes: number;
  /** How long a call may wait for Twilio's `start`, and for the agent to connect (ms). */
  readonly startTimeoutMs: number;
  readonly agentConnectTimeoutMs: number;
  /** After the agent ends the call: longest wait for the goodbye's last mark (ms). */
  readonly hangupDrainTimeoutMs: number;
  readonly resamplerQuality: number;
  readonly adminToken?: string;
  /** Signature checks off on a non-loopback bind (BRIDGE_ALLOW_UNSIGNED=1): warned at start and on /readyz. */
  readonly unsignedExposed: boolean;
  /**
   * This instance's name (BRIDGE_INSTANCE_ID; default: the host name, e.g. a Kubernetes
   * pod's name): in call records, heartbeats and the stream URL's routing key.
   */
  readonly instanceId: string;
  /** Worker slot of `start --workers N` (BRIDGE_WORKER_SLOT, set by the primary); undefined in a single process. */
  readonly workerSlot: number | undefined;
  /** The path segment after /twilio/stream/ that routes a call's stream back here: `<instance>` or `<instance>.w<slot>`. */
  readonly routeKey: string;
  /** Where other instances reach this one for call commands (BRIDGE_INTERNAL_URL); undefined → derived at listen. */
  readonly internalUrl?: string;
  /** How long an agent pre-connected at the webhook (and the webhook's admission reservation) waits for its stream. */
  readonly preconnectTtlMs: number;
  /** A started stream silent this long is pinged; no pong within as long again → closed ('twilio-inactive'). */
  readonly streamIdleMs: number;
  readonly twilio: {
    readonly accountSid?: string;
    readonly authToken?: string;
    /** Caller ID for outbound calls. */
    readonly fromNumber?: string;
    /** Override of https://api.twilio.com (tests point it at a local fake). */
    readonly apiUrl?: string;
    /** Validate X-Twilio-Signature (on whenever authToken is set unless explicitly disabled). */
    readonly validateSignatures: boolean;
  };
  /** Echo agent: energy VAD threshold (dBFS) and the silence that ends an utterance (ms). */
  readonly echo: { readonly vadThresholdDbfs: number; readonly silenceMs: number; readonly maxUtteranceMs: number };
  /**
   * The raw environment, for agent adapters: each reads and validates its own keys
   * (OPENAI_*, GEMINI_*, ELEVENLABS_*, HUME_*, PIPECAT_*) in src/agents/<name>/config.ts;
   * createAgentRegistry() collects their problems into one ConfigError at start.
   */
  readonly env: Readonly<Record<string, string | undefined>>;
}

export class ConfigError extends Error {
  readonly code = 'BRIDGE_ERR_CONFIG';
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

/** localhost, 127.0.0.0/8 or ::1: reachable from this host only. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

export const INSTANCE_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/;

/** The host name made into a valid instance id (letters, digits, '-', '_'; at most 63). */
function defaultInstanceId(): string {
  const id = hostname().replace(/[^A-Za-z0-9_-]+/g, '-').replace(/^[-_]+/, '').slice(0, 63);
  return id === '' ? 'voice-bridge' : id;
}

export function loadConfig(env: Env = process.env): Config {
  const problems: string[] = [];
  const get = (k: string) => {
    const v = env[k];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };
  const int = (k: string, def: number, min: number, max: number): number => {
    const v = get(k);
    if (v === undefined) return def;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) {
      problems.push(`${k}=${JSON.stringify(v)}: must be an integer from ${min} to ${max}`);
      return def;
    }
    return n;
  };
  const num = (k: string, def: number, min: number, max: number): number => {
    const v = get(k);
    if (v === undefined) return def;
    const n = Number(v);
    if (!Number.isFinite(n) || n < min || n > max) {
      problems.push(`${k}=${JSON.stringify(v)}: must be a number from ${min} to ${max}`);
      return def;
    }
    return n;
  };
  const oneOf = <T extends string>(k: string, values: readonly T[], def: T): T => {
    const v = get(k);
    if (v === undefined) return def;
    if (!(values as readonly string[]).includes(v)) {
      problems.push(`${k}=${JSON.stringify(v)}: must be one of ${values.join(', ')}`);
      return def;
    }
    return v as T;
  };
  const bool = (k: string, def: boolean): boolean => {
    const v = get(k);
    if (v === undefined) return def;
    if (['1', 'true', 'yes', 'on'].includes(v.toLowerCase())) return true;
    if (['0', 'false', 'no', 'off'].includes(v.toLowerCase())) return false;
    problems.push(`${k}=${JSON.stringify(v)}: must be 1/0, true/false, yes/no or on/off`);
    return def;
  };
  const url = (k: string, protocols: string[]): string | undefined => {
    const v = get(k);
    if (v === undefined) return undefined;
    try {
      const u = new URL(v);
      if (!protocols.includes(u.protocol)) throw new Error('protocol');
      return v.replace(/\/+$/, '');
    } catch {
      problems.push(`${k}=${JSON.stringify(v)}: must be an absolute ${protocols.join(' or ')} URL`);
      return undefined;
    }
  };

  const accountSid = get('TWILIO_ACCOUNT_SID');
  if (accountSid !== undefined && !/^AC[0-9a-fA-F]{32}$/.test(accountSid)) problems.push('TWILIO_ACCOUNT_SID: must be "AC" followed by 32 hex digits');
  const authToken = get('TWILIO_AUTH_TOKEN');
  const fromNumber = get('TWILIO_FROM_NUMBER');
  if (fromNumber !== undefined && !/^\+[1-9]\d{6,14}$/.test(fromNumber)) problems.push('TWILIO_FROM_NUMBER: must be an E.164 number like +15557654321');
  const validateSignatures = bool('TWILIO_VALIDATE_SIGNATURES', authToken !== undefined);
  if (validateSignatures && authToken === undefined) problems.push('TWILIO_VALIDATE_SIGNATURES=1 needs TWILIO_AUTH_TOKEN');

  // Fail closed: without signature checks anyone who reaches the port can start calls
  // (and spend the agents' minutes), so the default bind is then loopback only, and
  // any other bind needs an explicit BRIDGE_ALLOW_UNSIGNED=1 (warned at start and on /readyz).
  const allowUnsigned = bool('BRIDGE_ALLOW_UNSIGNED', false);
  const host = get('HOST') ?? (validateSignatures ? '0.0.0.0' : '127.0.0.1');
  if (host !== 'localhost' && isIP(host) === 0 && !/^[a-zA-Z0-9.-]+$/.test(host)) problems.push(`HOST=${JSON.stringify(host)}: not an address or host name`);
  else if (!validateSignatures && !isLoopbackHost(host) && !allowUnsigned)
    problems.push(`HOST=${host} without Twilio signature checks: anyone who reaches the port could start calls. Set TWILIO_AUTH_TOKEN (checks on), or BRIDGE_ALLOW_UNSIGNED=1 to accept unsigned requests on a non-loopback address`);

  const instanceId = get('BRIDGE_INSTANCE_ID') ?? defaultInstanceId();
  if (!INSTANCE_ID_RE.test(instanceId)) problems.push(`BRIDGE_INSTANCE_ID=${JSON.stringify(instanceId)}: must be 1–63 letters, digits, '-' or '_', starting with a letter or digit (it is a URL path segment)`);
  const workerSlotRaw = get('BRIDGE_WORKER_SLOT');
  const workerSlot = workerSlotRaw === undefined ? undefined : int('BRIDGE_WORKER_SLOT', 0, 0, 255);

  const config: Config = {
    port: int('PORT', 8080, 0, 65535),
    host,
    publicUrl: url('BRIDGE_PUBLIC_URL', ['https:', 'http:']),
    logLevel: oneOf('BRIDGE_LOG_LEVEL', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const, 'info'),
    dsp: oneOf('BRIDGE_DSP', ['auto', 'native', 'ts'] as const, 'auto'),
    dspPool: int('BRIDGE_DSP_POOL', 0, 0, 16),
    defaultAgent: oneOf('BRIDGE_AGENT', AGENT_NAMES, 'echo'),
    playoutLeadMs: int('BRIDGE_PLAYOUT_LEAD_MS', 2000, 20, 60_000),
    prestartBufferMs: int('BRIDGE_PRESTART_BUFFER_MS', 5000, 0, 60_000),
    maxMessageBytes: int('BRIDGE_MAX_MESSAGE_BYTES', 64 * 1024, 1024, 16 * 1024 * 1024),
    startTimeoutMs: int('BRIDGE_START_TIMEOUT_MS', 10_000, 100, 120_000),
    agentConnectTimeoutMs: int('BRIDGE_AGENT_CONNECT_TIMEOUT_MS', 5000, 100, 60_000),
    hangupDrainTimeoutMs: int('BRIDGE_HANGUP_DRAIN_TIMEOUT_MS', 10_000, 0, 120_000),
    resamplerQuality: int('BRIDGE_RESAMPLER_QUALITY', 7, 0, 10),
    adminToken: get('BRIDGE_ADMIN_TOKEN'),
    unsignedExposed: !validateSignatures && !isLoopbackHost(host),
    instanceId,
    workerSlot,
    routeKey: workerSlot === undefined ? instanceId : `${instanceId}.w${workerSlot}`,
    internalUrl: url('BRIDGE_INTERNAL_URL', ['http:', 'https:']),
    preconnectTtlMs: int('BRIDGE_PRECONNECT_TTL_MS', 30_000, 500, 600_000),
    streamIdleMs: int('BRIDGE_STREAM_IDLE_MS', 5000, 200, 120_000),
    twilio: { accountSid, authToken, fromNumber, apiUrl: url('TWILIO_API_URL', ['https:', 'http:']), validateSignatures },
    echo: {
      vadThresholdDbfs: num('BRIDGE_ECHO_VAD_DBFS', -40, -90, 0),
      silenceMs: int('BRIDGE_ECHO_SILENCE_MS', 600, 100, 10_000),
      maxUtteranceMs: int('BRIDGE_ECHO_MAX_UTTERANCE_MS', 15_000, 1000, 120_000),
    },
    env: Object.freeze({ ...env }),
  };
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(config);
}
