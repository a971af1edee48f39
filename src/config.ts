/**
 * Configuration from environment variables, read and validated once at start.
 * Every variable is declared in src/env-schema.ts (type, default, range, doc; the
 * README's "Environment variables" table and .env.example are generated from it).
 * loadConfig() reads the bridge's own keys and runs every module's reader too
 * (lifecycle, call records, recording, traces, each agent, TTS), so one start lists
 * every problem at once (ConfigError.problems) and exits 78, never just the first.
 */
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { ConfigError } from './config-error.js';
import { readEnv, type EnvReading } from './env-schema.js';
import { readLifecycleConfig } from './lifecycle/lifecycle-config.js';
import { readStoreConfig } from './store/store-config.js';
import { readRecordingSettings } from './recording/recorder.js';
import { tracesProblems } from './telemetry/config.js';
import { readOpenAiConfig } from './agents/openai/config.js';
import { readGeminiConfig } from './agents/gemini/config.js';
import { readElevenLabsAgentConfig } from './agents/elevenlabs/config.js';
import { readElevenLabsTtsConfig } from './agents/elevenlabs/tts/config.js';
import { readHumeConfig } from './agents/hume/config.js';
import { readPipecatConfig } from './agents/pipecat/config.js';

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
   * The raw environment, for the modules with settings of their own (lifecycle, call
   * records, recording, traces, each agent adapter in src/agents/<name>/config.ts, TTS):
   * each reads its keys through readEnv() (src/env-schema.ts). loadConfig() has already
   * run every one of those readers, so they find no problem after it.
   */
  readonly env: Readonly<Record<string, string | undefined>>;
}

export { ConfigError, EX_CONFIG } from './config-error.js';

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

/** The agents' readers: which agents the environment configures, and their problems. */
const AGENT_READERS: Record<Exclude<AgentName, 'echo'>, (env: Env) => { config: unknown; problems: string[] }> = {
  openai: readOpenAiConfig,
  gemini: readGeminiConfig,
  elevenlabs: readElevenLabsAgentConfig,
  hume: readHumeConfig,
  pipecat: readPipecatConfig,
};

/**
 * Every problem of every module's settings, in one list (duplicates once): the
 * bridge's own keys (`own`), then lifecycle, call records, recording, traces, each
 * agent and TTS.
 */
function everyProblem(env: Env, own: string[], defaultAgent: AgentName): string[] {
  const problems = [...own];
  problems.push(...readLifecycleConfig(env).problems);
  problems.push(...readStoreConfig(env).problems);
  problems.push(...readRecordingSettings(env).problems);
  problems.push(...tracesProblems(env));
  for (const [name, read] of Object.entries(AGENT_READERS)) {
    const r = read(env);
    problems.push(...r.problems);
    if (name === defaultAgent && r.config === undefined && r.problems.length === 0) problems.push(`BRIDGE_AGENT=${name}: that agent is not configured (set its keys)`);
  }
  problems.push(...readElevenLabsTtsConfig(env).problems);
  return [...new Set(problems)];
}

/**
 * The bridge's configuration; throws ConfigError listing every problem of every
 * module's settings (see everyProblem), so a start that passes this is not refused
 * later by one of them.
 */
export function loadConfig(env: Env = process.env): Config {
  const { values: e, problems }: EnvReading = readEnv(env, 'server', 'twilio', 'calls', 'echo', 'dsp', 'logging', 'cluster');

  const accountSid = e.TWILIO_ACCOUNT_SID;
  const authToken = e.TWILIO_AUTH_TOKEN;
  const fromNumber = e.TWILIO_FROM_NUMBER;
  const validateSignatures = e.TWILIO_VALIDATE_SIGNATURES ?? authToken !== undefined;
  if (validateSignatures && authToken === undefined) problems.push('TWILIO_VALIDATE_SIGNATURES=1 needs TWILIO_AUTH_TOKEN');

  // Fail closed: without signature checks anyone who reaches the port can start calls
  // (and spend the agents' minutes), so the default bind is then loopback only, and
  // any other bind needs an explicit BRIDGE_ALLOW_UNSIGNED=1 (warned at start and on /readyz).
  const allowUnsigned = e.BRIDGE_ALLOW_UNSIGNED;
  const host = e.HOST ?? (validateSignatures ? '0.0.0.0' : '127.0.0.1');
  if (host !== 'localhost' && isIP(host) === 0 && !/^[a-zA-Z0-9.-]+$/.test(host)) problems.push(`HOST=${JSON.stringify(host)}: not an address or host name`);
  else if (!validateSignatures && !isLoopbackHost(host) && !allowUnsigned)
    problems.push(`HOST=${host} without Twilio signature checks: anyone who reaches the port could start calls. Set TWILIO_AUTH_TOKEN (checks on), or BRIDGE_ALLOW_UNSIGNED=1 to accept unsigned requests on a non-loopback address`);

  const instanceId = e.BRIDGE_INSTANCE_ID ?? defaultInstanceId();
  const workerSlot = e.BRIDGE_WORKER_SLOT;
  const trimUrl = (u: string | undefined) => u?.replace(/\/+$/, '');

  const config: Config = {
    port: e.PORT,
    host,
    publicUrl: trimUrl(e.BRIDGE_PUBLIC_URL),
    logLevel: e.BRIDGE_LOG_LEVEL,
    dsp: e.BRIDGE_DSP,
    dspPool: e.BRIDGE_DSP_POOL,
    defaultAgent: e.BRIDGE_AGENT,
    playoutLeadMs: e.BRIDGE_PLAYOUT_LEAD_MS,
    prestartBufferMs: e.BRIDGE_PRESTART_BUFFER_MS,
    maxMessageBytes: e.BRIDGE_MAX_MESSAGE_BYTES,
    startTimeoutMs: e.BRIDGE_START_TIMEOUT_MS,
    agentConnectTimeoutMs: e.BRIDGE_AGENT_CONNECT_TIMEOUT_MS,
    hangupDrainTimeoutMs: e.BRIDGE_HANGUP_DRAIN_TIMEOUT_MS,
    resamplerQuality: e.BRIDGE_RESAMPLER_QUALITY,
    adminToken: e.BRIDGE_ADMIN_TOKEN,
    unsignedExposed: !validateSignatures && !isLoopbackHost(host),
    instanceId,
    workerSlot,
    routeKey: workerSlot === undefined ? instanceId : `${instanceId}.w${workerSlot}`,
    internalUrl: trimUrl(e.BRIDGE_INTERNAL_URL),
    preconnectTtlMs: e.BRIDGE_PRECONNECT_TTL_MS,
    streamIdleMs: e.BRIDGE_STREAM_IDLE_MS,
    twilio: { accountSid, authToken, fromNumber, apiUrl: trimUrl(e.TWILIO_API_URL), validateSignatures },
    echo: {
      vadThresholdDbfs: e.BRIDGE_ECHO_VAD_DBFS,
      silenceMs: e.BRIDGE_ECHO_SILENCE_MS,
      maxUtteranceMs: e.BRIDGE_ECHO_MAX_UTTERANCE_MS,
    },
    env: Object.freeze({ ...env }),
  };
  const all = everyProblem(env, problems, config.defaultAgent);
  if (all.length > 0) throw new ConfigError(all);
  return Object.freeze(config);
}
