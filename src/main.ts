/**
 * Process entry for `voice-bridge start` / `npm start`: config (validated once),
 * DSP backend, agents, calls, admission, HTTP server. SIGTERM/SIGINT drain
 * (src/lifecycle/drain.ts): /readyz 503 at once, new calls refused politely, active
 * calls run to their end or to BRIDGE_DRAIN_TIMEOUT_MS and then hear a goodbye,
 * onDrained hooks run (call records flushed), exit 0. A second signal cuts the wait short.
 */
import { transferTwiml } from './twilio/stream-twiml.js';
import { turnLatencyTrace } from './metrics/turns.js';
import { bothTraces } from './call/hooks.js';
import { packageVersion } from './version.js';
import cluster from 'node:cluster';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readWav } from './audio/wav.js';
import { loadConfig, ConfigError, type Config } from './config.js';
import { loadDsp, dspLoadInfo } from './dsp/load.js';
import { DspPool } from './dsp/pool/dsp-pool.js';
import { createAgentRegistry } from './agents/registry.js';
import type { AgentFactory } from './agents/agent.js';
import { CallManager } from './call/call-manager.js';
import { buildApp } from './server/app.js';
import { TwilioRest } from './twilio/rest.js';
import { createTtsService } from './agents/elevenlabs/tts/service.js';
import { createRecorder } from './recording/recorder.js';
import { openCallStore } from './store/call-store.js';
import { loadStoreConfig } from './store/store-config.js';
import { EventDeliverer, profileEventTarget } from './events/event-deliverer.js';
import { wireCallEvents } from './events/call-events.js';
import type { AppTool } from './tools/app-tools.js';
import type { BridgeEvent } from './events/event.js';
import type { ToolResult } from './tools/run-tool.js';
import { createMetrics, metricsRoutes, registerWorkerMetricsResponder } from './metrics/index.js';
import { callLogger, createLogger, lifecycleLogger, logFields } from './log.js';
import { startTelemetry } from './telemetry/index.js';
import type { Logger } from 'pino';
import { loadLifecycleConfig, type LifecycleConfig } from './lifecycle/lifecycle-config.js';
import { LoadMonitor } from './lifecycle/load-monitor.js';
import { Admission } from './lifecycle/admission.js';
import { RateLimiter } from './lifecycle/rate-limiter.js';
import { drain, type DrainReport } from './lifecycle/drain.js';
import { acceptHandedConnections, RoutingMessages } from './cluster-routing.js';
import { rawValue } from './env-schema.js';
import { LiveProfiles } from './profiles/live-profiles.js';
import { ProfilesError } from './profiles/profiles-error.js';
import { ErrorCodes } from './errors.js';
import { GC_CHILD_ENV, GC_CHILD_LISTENING, gcModeOfThisProcess } from './gc-mode.js';

export interface RunningBridge {
  /** http://host:port */
  url: string;
  /** ws://host:port/twilio/stream */
  streamUrl: string;
  config: Config;
  lifecycle: LifecycleConfig;
  admission: Admission;
  /** The profiles file in force (BRIDGE_PROFILES), reloaded on change; `reload('signal')` is what SIGHUP does. Absent without one. */
  profiles?: LiveProfiles;
  /**
   * The call events of profile calls (call.started, tool.called, call.transferred,
   * call.ended — docs/events.md), in this process, whether or not the profile has an
   * events.url; returns the function that unsubscribes. For apps that embed the bridge.
   */
  onEvent(listener: (event: BridgeEvent) => void): () => void;
  /**
   * Graceful stop: refuse new calls, let active ones finish (up to BRIDGE_DRAIN_TIMEOUT_MS,
   * or until `signal` aborts), goodbye + close the rest, run onDrained, close the server.
   */
  drain(signal?: AbortSignal): Promise<DrainReport>;
  /** Immediate stop: active calls are closed now ('shutting-down'); onDrained still runs. */
  close(): Promise<void>;
}

/** How long a shutdown waits for the database to take the last call records (they stay in the outbox otherwise). */
const RECORDS_FLUSH_MS = 15_000;
/** How long a shutdown waits for pending call events to be delivered (they stay in the events outbox otherwise). */
const EVENTS_FLUSH_MS = 3_000;

const APOLOGY_TWIML = `<?xml version="1.0" encoding="UTF-8"?><Response><Say>Sorry, we can't continue this call right now. Please try again later. Goodbye.</Say><Hangup/></Response>`;

/** A bundled prompt (assets/prompts): the apology, played when REST is not configured; the drain's goodbye. */
async function loadPrompt(name: 'apology' | 'goodbye'): Promise<Uint8Array | undefined> {
  try {
    const here = dirname(fileURLToPath(import.meta.url));
    const w = await readWav(join(here, '..', 'assets', 'prompts', `${name}.8k-ulaw.wav`));
    return w.encoding === 'ulaw' && w.sampleRateHz === 8000 ? (w.data as Uint8Array) : undefined;
  } catch {
    return undefined;
  }
}

export interface StartOptions {
  port?: number;
  host?: string;
  /** Extra agents (e.g. a local fake of a provider) registered beside the built-in ones. */
  extraAgents?: AgentFactory[];
  /** Run once the calls are done, on drain() and close(), before the server closes (the call-record store flushes here). */
  onDrained?: () => Promise<void>;
  /** The logger (default: one from the configuration, JSON lines on stdout). */
  logger?: Logger;
  /**
   * Tools as functions of the embedding app, offered to the calls of every profile (or
   * those they name) beside the profile's own tools (src/tools/app-tools.ts, docs/tools.md).
   */
  tools?: readonly AppTool[];
}

export async function startBridge(env: Record<string, string | undefined> = process.env, options: StartOptions = {}): Promise<RunningBridge> {
  const { extraAgents = [], onDrained, logger: givenLogger, tools: appTools, ...overrides } = options;
  const config = { ...loadConfig(env), ...Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)) } as Config;
  const lifecycle = loadLifecycleConfig(config.env);
  // Before anything is opened: a bad profiles file is a configuration error (ProfilesError, exit 78).
  const profilesFile = rawValue(config.env, 'BRIDGE_PROFILES');
  const profiles = profilesFile === undefined ? undefined : LiveProfiles.load(profilesFile, config.env);
  const logger = givenLogger ?? createLogger(config);
  // OpenTelemetry traces when an OTLP endpoint is set; nothing of the SDK is loaded otherwise.
  const telemetry = await startTelemetry(config.env, { instanceId: config.instanceId, routeKey: config.routeKey, workerSlot: config.workerSlot, serviceVersion: packageVersion(), log: (level, msg, fields) => logger[level](fields ?? {}, msg) });
  const dsp = await loadDsp({ backend: config.dsp });
  const info = dspLoadInfo();
  logger.info({ dsp: info }, info?.fallbackReason ? `DSP backend: ts (fallback: ${info.fallbackReason})` : `DSP backend: ${dsp.name}`);
  const gc = gcModeOfThisProcess();
  logger.info({ gc }, `V8 GC: ${gc} (BRIDGE_GC)`);
  // Experimental (BRIDGE_DSP_POOL=N): the same backend, in N worker threads, batched.
  const pool = config.dspPool > 0 ? await DspPool.start({ threads: config.dspPool, backend: dsp.name, log: (level, msg, fields) => logger[level](fields ?? {}, msg) }) : undefined;
  if (pool) logger.info({ threads: config.dspPool, backend: dsp.name }, `DSP pool: ${config.dspPool} worker thread(s), batched`);
  const agents = createAgentRegistry(config);
  for (const f of extraAgents) agents.register(f);
  const rest =
    config.twilio.accountSid && config.twilio.authToken
      ? new TwilioRest({ accountSid: config.twilio.accountSid, authToken: config.twilio.authToken, apiUrl: config.twilio.apiUrl })
      : undefined;
  const store = await openCallStore(config, {
    log: (level, msg, fields) => logger[level](fields ?? {}, msg),
    identity: { instanceId: config.instanceId, worker: config.workerSlot ?? -1, routeKey: config.routeKey, internalUrl: config.internalUrl ?? null },
  });
  const recorder = createRecorder(config, { log: (level, msg, fields) => logger[level](fields ?? {}, msg), leadMs: config.playoutLeadMs });
  if (recorder.enabled) logger.info({ dir: recorder.dir }, 'recording every call (BRIDGE_RECORD=1)');
  const tts = createTtsService(config);
  if (tts) logger.info({ voiceId: tts.voiceId, model: tts.modelId, greeting: tts.greeting !== undefined }, 'ElevenLabs TTS on');
  const metrics = createMetrics({ dspInfo: dspLoadInfo, knownAgents: () => agents.names(), build: { version: packageVersion() }, storeStats: () => store.stats() });
  if (profiles) {
    logger.info({ file: profiles.file, profiles: profiles.current.map((p) => p.name) }, `profiles: ${profiles.current.length} from ${profiles.file}`);
    metrics.setProfilesLoaded(() => profiles.current.length);
    profiles.on('reload', (r) => {
      metrics.onProfilesReload(r.result);
      if (r.result === 'ok') logger.info({ file: r.file, trigger: r.trigger, profiles: r.names }, `profiles reloaded: ${r.names.length} from ${r.file}`);
      // Every problem, at error level: the file on disk is not what runs (the previous profiles stay).
      else logger.error({ code: ErrorCodes.PROFILES, file: r.file, trigger: r.trigger, problems: r.problems, kept: r.kept }, `profiles file refused, the previous ${r.kept.length} profile(s) stay: ${r.problems.join('; ')}`);
    });
    profiles.watch();
  }
  // Call events (docs/events.md) to each profile's events.url, from a durable outbox in the
  // data dir (src/events/call-events.ts emits them from the call manager's events).
  const events = profiles ? new EventDeliverer({ dir: loadStoreConfig(config.env).dataDir, workerSlot: config.workerSlot, target: (name) => profileEventTarget(profiles.byName(name)), log: (level, msg, fields) => logger[level](fields ?? {}, msg) }) : undefined;
  if (events) {
    await events.start();
    metrics.setEventStats(() => events.stats());
  }
  let toolEvent: ((r: ToolResult, call: { callSid: string; profile: string }) => void) | undefined;
  const calls = new CallManager({
    config,
    dsp,
    profiles,
    pool,
    agents,
    endCallViaRest: rest
      ? async (callSid) => {
          await rest.endCall(callSid);
          return true;
        }
      : undefined,
    apologizeViaRest: rest
      ? async (callSid) => {
          await rest.updateCallTwiml(callSid, APOLOGY_TWIML);
          return true;
        }
      : undefined,
    transferViaRest: rest
      ? async (callSid, to, callerId) => {
          await rest.updateCallTwiml(callSid, transferTwiml(to, callerId));
        }
      : undefined,
    ...(appTools ? { appTools } : {}),
    onToolResult: (r, call) => {
      metrics.onToolCall(r);
      toolEvent?.(r, call);
    },
    apologyPrompt: await loadPrompt('apology'),
    greeting: tts?.greeting ? (signal) => tts.speak(tts.greeting!, signal) : undefined,
    tapFor: recorder.enabled ? recorder.tapFor : undefined,
    observer: metrics.observer,
    // Every call's turns feed the latency histogram; traced calls also feed OpenTelemetry.
    traceFor: (info) => bothTraces(turnLatencyTrace(info, metrics.onTurn), telemetry?.traceFor(info)),
    log: (level, msg, fields) => logger[level](fields ?? {}, msg),
    preconnectTtlMs: config.preconnectTtlMs,
    streamIdleMs: config.streamIdleMs,
  });
  // call.started, tool.called, call.transferred, call.ended: to the profile's events.url, and to in-process listeners.
  const eventListeners = new Set<(event: BridgeEvent) => void>();
  const toListeners = (e: BridgeEvent) => {
    for (const l of eventListeners) l(e);
  };
  if (profiles) toolEvent = wireCallEvents(calls, events ? [(e) => void events.enqueue(e), toListeners] : [toListeners], (msg, err) => logger.warn({ err }, msg));
  calls.on('callStarted', metrics.onCallStarted);
  calls.on('callEnded', metrics.onCallEnded);
  calls.on('preconnect', metrics.onPreconnect);
  // A row from the stream's start (in progress), completed at its end: a crash leaves 'interrupted', never nothing.
  calls.on('callStarted', (s) => store.record(s.record));
  calls.on('callEnded', (r) => store.record(r));
  calls.on('callEnded', (r) => callLogger(logger, r).info(logFields(r), 'call ended'));
  metrics.setActiveCalls(() => calls.activeCount);
  metrics.setLiveCalls(() => calls.list());
  const monitor = new LoadMonitor({ threshold: lifecycle.loadThreshold, windowMs: lifecycle.loadWindowMs });
  const admission = new Admission({
    activeCalls: () => calls.startedCount,
    maxCalls: lifecycle.maxCalls,
    monitor,
    reservationTtlMs: config.preconnectTtlMs,
    maxPendingStreams: lifecycle.maxPendingStreams,
    maxPendingPerSource: lifecycle.maxPendingPerSource,
  });
  // A webhook's reservation ends with its pre-connect: the stream went elsewhere or never came.
  calls.on('preconnect', (e) => {
    if (e.outcome === 'expired') admission.release(e.callSid);
  });
  monitor.onChange((overloaded) => logger.warn({ load: monitor.snapshot() }, overloaded ? 'overloaded: refusing new calls' : 'load back under the threshold: taking calls'));
  const webhookLimiter = lifecycle.webhookRatePerMin > 0 ? new RateLimiter({ ratePerMin: lifecycle.webhookRatePerMin }) : undefined;
  const app = await buildApp({ config, calls, agents, dspInfo: dspLoadInfo, dspPool: pool ? () => pool.stats() : undefined, rest, tts, store, logger: false, admission, webhookLimiter, observe: { refused: metrics.onRefused, response: metrics.onHttpResponse }, profiles, trustProxy: lifecycle.trustProxy, httpTimeoutMs: lifecycle.httpTimeoutMs, log: (level, msg, fields) => logger[level](fields ?? {}, msg) });
  await app.register(metricsRoutes, { metrics });
  registerWorkerMetricsResponder(metrics);
  const closeServer = async () => {
    profiles?.close();
    monitor.stop();
    await app.close();
    tts?.close();
    metrics.close();
    await store.close();
    await events?.close(); // what is pending stays in the events outbox for the next start
    await pool?.close();
    await telemetry?.shutdown(); // the last spans, bounded (TRACES_FLUSH_MS)
  };
  let address: string;
  // A worker of `start --workers N`: the primary owns the port and hands connections over (src/cluster-routing.ts).
  const handed = cluster.isWorker && env.BRIDGE_CLUSTER_ROUTED === '1' && env.BRIDGE_CLUSTER_URL !== undefined;
  try {
    if (handed) {
      await app.ready();
      acceptHandedConnections(app.server);
      address = env.BRIDGE_CLUSTER_URL!;
    } else address = await app.listen({ port: config.port, host: config.host });
  } catch (e) {
    // E.g. the port is taken: release what was opened (the DSP pool's threads, the
    // store's worker) so the caller gets the error, not a process that never exits.
    await closeServer().catch(() => undefined);
    throw e;
  }
  monitor.start();
  if (config.unsignedExposed) logger.warn({ host: config.host }, 'Twilio signature checks are OFF on a non-loopback address (BRIDGE_ALLOW_UNSIGNED=1): anyone who reaches this port can start calls');
  else if (!config.twilio.validateSignatures) logger.info({ host: config.host }, 'no TWILIO_AUTH_TOKEN: signature checks off, listening on loopback only (set TWILIO_AUTH_TOKEN to take real calls)');
  if (config.internalUrl === undefined) store.setInternalUrl(internalUrlFor(address, config.host));
  if (handed) process.send?.({ type: RoutingMessages.READY });
  logger.info({ address, agents: agents.available(), maxCalls: lifecycle.maxCalls ?? null, loadThreshold: lifecycle.loadThreshold ?? null }, cluster.isWorker ? 'voice-bridge worker serving' : 'voice-bridge listening');
  const goodbye = await loadPrompt('goodbye');
  let stopping: Promise<DrainReport> | undefined;
  const stop = (timeoutMs: number, signal?: AbortSignal) =>
    (stopping ??= drain({
      calls,
      admission,
      timeoutMs,
      goodbye,
      // Call records first (flushed from the outbox to the database), then the caller's hook.
      onDrained: [
        async () => {
          // Bounded: a database that is away keeps the records in the outbox for the next start.
          if (!(await store.flush(RECORDS_FLUSH_MS))) logger.warn({ outboxDepth: store.stats().outboxDepth }, 'call records still in the outbox at exit (the database did not take them in time); the next start replays them');
        },
        async () => {
          // Bounded: events a receiver did not take in time stay in the outbox for the next start.
          if (events && !(await events.flush(EVENTS_FLUSH_MS))) logger.warn({ pending: events.stats().pending }, 'call events still pending at exit (their receiver did not take them in time); the next start delivers them');
        },
        ...(onDrained ? [onDrained] : []),
      ],
      closeServer,
      signal,
      log: (level, msg, fields) => logger[level](fields ?? {}, msg),
    }));
  return {
    url: address,
    streamUrl: `${address.replace(/^http/, 'ws')}/twilio/stream`,
    config,
    lifecycle,
    admission,
    ...(profiles ? { profiles } : {}),
    onEvent(listener) {
      eventListeners.add(listener);
      return () => void eventListeners.delete(listener);
    },
    drain: (signal) => stop(lifecycle.drainTimeoutMs, signal),
    async close() {
      if (!stopping) {
        admission.startDraining();
        await calls.shutdown('shutting-down');
      }
      await stop(0);
    },
  };
}

/** Where other instances reach this one (call commands): the bound address, with the host name for a wildcard bind. */
function internalUrlFor(address: string, host: string): string {
  const u = new URL(address);
  if (host === '0.0.0.0' || host === '::' || host === '') u.hostname = hostname();
  return u.origin;
}

export async function main(env: Record<string, string | undefined> = process.env): Promise<number> {
  let bridge: RunningBridge;
  // A cluster worker told to drain while it is still starting (a restart during a
  // shutdown) must not miss it: remember it, act on it once up.
  let drainAsked: NodeJS.Signals | 'drain' | undefined;
  // Likewise a reload of the profiles (the primary's forward of SIGHUP) that comes after
  // this worker said it is ready but before its handlers below are in place.
  let reloadAsked = false;
  const early = (m: { type?: string; signal?: NodeJS.Signals } | null) => {
    if (m?.type === 'voice-bridge:drain') drainAsked = m.signal ?? 'drain';
    else if (m?.type === 'voice-bridge:reload-profiles') reloadAsked = true;
  };
  // Told what to do over IPC: a cluster worker by its primary, the single-threaded-GC child of
  // `start` by its parent (src/gc-mode.ts). Signals then only start the drain.
  const supervised = cluster.isWorker || env[GC_CHILD_ENV] === '1';
  if (supervised) process.on('message', early);
  if (env[GC_CHILD_ENV] === '1') process.send?.({ type: GC_CHILD_LISTENING });
  // Every line of a running bridge is a JSON log line on stdout. A configuration error
  // comes before there is a logger: one plain line on stderr, exit 78.
  let logger: Logger | undefined;
  try {
    logger = createLogger(loadConfig(env));
    bridge = await startBridge(env, { logger });
  } catch (e) {
    if (e instanceof ConfigError || e instanceof ProfilesError) {
      console.error(e.message);
      return 78; // EX_CONFIG
    }
    if (logger) logger.fatal({ err: e }, 'voice-bridge failed to start');
    else console.error(`voice-bridge failed to start: ${(e as Error).message}`);
    return 1;
  }
  const announce = lifecycleLogger(logger);
  // Signal handlers first, then the line that says we are up: whoever waits for that line
  // may signal at once.
  const stopped = new Promise<void>((resolve) => {
    const hurry = new AbortController();
    // In a cluster worker (src/cluster.ts) the primary says 'drain' and 'hurry' over IPC;
    // a signal then only starts the drain (Ctrl-C reaches the whole process group).
    // The same for the child `start` runs with the single-threaded GC (src/gc-mode.ts).
    const worker = supervised;
    let draining = false;
    const onSignal = (sig: NodeJS.Signals | 'drain') => {
      if (draining) {
        if (worker) return;
        announce.info({ signal: sig }, `voice-bridge: ${sig} again — closing the remaining calls now`);
        hurry.abort();
        return;
      }
      draining = true;
      announce.info({ signal: sig, drainTimeoutMs: bridge.lifecycle.drainTimeoutMs }, `voice-bridge${cluster.isWorker ? ` worker ${process.pid}` : ''}: ${sig} — draining (up to ${bridge.lifecycle.drainTimeoutMs} ms)`);
      void bridge.drain(hurry.signal).then(
        () => resolve(),
        (e: unknown) => {
          logger.error({ err: e }, 'voice-bridge: drain failed');
          resolve();
        },
      );
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    // SIGHUP reloads the profiles file (live calls keep theirs). Without one, SIGHUP
    // keeps its default (the process ends), as before profiles existed.
    if (bridge.profiles) process.on('SIGHUP', () => bridge.profiles?.reload('signal'));
    if (worker) {
      process.off('message', early);
      process.on('message', (m: { type?: string; signal?: NodeJS.Signals } | null) => {
        // (the GC child's parent names the signal it got: the log line says it, as without the child)
        if (m?.type === 'voice-bridge:drain') onSignal(m.signal ?? 'drain');
        else if (m?.type === 'voice-bridge:hurry') hurry.abort();
        else if (m?.type === 'voice-bridge:reload-profiles') bridge.profiles?.reload('signal'); // the primary's forward of SIGHUP (src/cluster.ts)
      });
      if (drainAsked) onSignal(drainAsked);
      if (reloadAsked) bridge.profiles?.reload('signal');
      // The GC child's parent went away without a word (killed): drain as if told to.
      if (!cluster.isWorker) {
        if (process.connected) process.once('disconnect', () => onSignal('drain'));
        else onSignal('drain'); // gone while this child started
      }
    }
  });
  // A cluster worker is not the listener: the primary says "listening on" once every
  // worker is ready, and a worker's own line would tell a caller to start too early.
  if (cluster.isWorker) announce.info({ url: bridge.url, worker: env.BRIDGE_WORKER_SLOT }, `voice-bridge worker ${env.BRIDGE_WORKER_SLOT ?? '?'} ready`);
  else announce.info({ url: bridge.url }, `voice-bridge listening on ${bridge.url} — point your Twilio number's voice webhook at <public URL>/twilio/voice`);
  await stopped;
  return 0;
}
