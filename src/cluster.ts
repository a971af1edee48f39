/**
 * `voice-bridge start --workers N`: N bridge processes sharing one port (node:cluster).
 *
 * ```text
 *                    ┌──────────── primary (no calls; owns the listening socket) ────────────┐
 *   SIGTERM/SIGINT ─►│ 1st: IPC 'drain' to every worker · 2nd: IPC 'hurry' (end the wait)    │
 *   SIGHUP ─────────►│ IPC 'reload-profiles' to every worker (with BRIDGE_PROFILES set)      │
 *                    │ a worker that dies unasked is restarted (backoff 0.5 s → 30 s)        │
 *                    │ exits when every worker has exited: 0 if all exited 0                 │
 *                    │ metrics: answers a worker's 'metrics-req' with the aggregate (hook)  │
 *                    └────┬──────────────────────┬───────────────────────┬───────────────────┘
 *                     worker 1               worker 2      …         worker N   (each: startBridge + drain)
 * ```
 *
 * The primary owns the listening socket and hands each connection to a worker
 * (src/cluster-routing.ts): a Media Stream whose URL ends in `<instance>.w<slot>` —
 * the key the voice webhook of that worker put in its TwiML — goes to that worker,
 * where its agent is already connected; everything else is balanced round robin.
 * A call's Media Stream is one long WebSocket, so it stays on the worker that
 * accepted it. Each worker runs the full bridge with its own admission: the limits
 * (BRIDGE_MAX_CALLS, the load gate) are per worker, and its own call-record outbox.
 *
 * Signals reach workers through IPC, not by re-sending the signal: Ctrl-C in a
 * terminal already signals the whole process group, and a re-sent signal would
 * look like a second one. A worker signalled directly (kill <pid>) still drains.
 * Each worker loads and watches the profiles file (BRIDGE_PROFILES) itself; SIGHUP to
 * the primary asks every worker to reload it (a worker SIGHUPed directly reloads too).
 *
 * Metrics across workers: the primary holds an aggregator (`ClusterOptions.metrics`,
 * e.g. prom-client's `AggregatorRegistry.clusterMetrics()`); a worker serving
 * `GET /metrics` calls `requestClusterMetrics()` and gets the aggregate of all
 * workers through the primary.
 */
import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { loadConfig, ConfigError, EX_CONFIG, type Config } from './config.js';
import { rawValue } from './env-schema.js';
import { createLogger, lifecycleLogger } from './log.js';
import { ConnectionRouter, RoutingMessages } from './cluster-routing.js';
import { loadLifecycleConfig } from './lifecycle/lifecycle-config.js';
import { main } from './main.js';
import { startPrimaryMetrics } from './metrics/cluster.js';
import { loadProfilesFile } from './profiles/load.js';
import { ProfilesError } from './profiles/profiles-error.js';
import { SINGLE_THREADED_GC_FLAG, effectiveCpus, relaunchArgs, resolveGcMode, runGcChild, type GcMode, type GcSetting } from './gc-mode.js';

/** IPC messages between the primary and the workers. */
export const ClusterMessages = {
  DRAIN: 'voice-bridge:drain',
  HURRY: 'voice-bridge:hurry',
  METRICS_REQ: 'voice-bridge:metrics-req',
  METRICS_RES: 'voice-bridge:metrics-res',
  /** Reload the profiles file (what SIGHUP does to a single process; src/main.ts). */
  RELOAD_PROFILES: 'voice-bridge:reload-profiles',
} as const;

export interface ClusterMetrics {
  contentType: string;
  body: string;
}

export interface ClusterOptions {
  workers: number;
  env?: Record<string, string | undefined>;
  /** Aggregates every worker's metrics (runs in the primary). */
  metrics?: { aggregate(): Promise<ClusterMetrics> };
  /** Bound on the whole shutdown after the first signal; workers still up then are killed. Default: drain timeout + 30 s. */
  shutdownTimeoutMs?: number;
  /** The primary's logger (default: JSON lines on stdout, like the workers'). */
  logger?: Logger;
}

const RESTART_MIN_MS = 500;
const RESTART_MAX_MS = 30_000;
/** A worker that lived this long is healthy again: its next restart starts from RESTART_MIN_MS. */
const HEALTHY_AFTER_MS = 10_000;

/** The primary: forks, restarts, forwards the drain, exits when all workers have. Resolves to the exit code. */
export function runPrimary(o: ClusterOptions): Promise<number> {
  const env = o.env ?? process.env;
  let lifecycle;
  let config: Config;
  try {
    // Validate once here: a bad configuration must not become a restart loop.
    config = loadConfig(env);
    lifecycle = loadLifecycleConfig(config.env);
    const profilesFile = rawValue(config.env, 'BRIDGE_PROFILES');
    if (profilesFile !== undefined) loadProfilesFile(profilesFile, config.env);
  } catch (e) {
    // Before there is a logger: one plain line on stderr.
    console.error((e as Error).message);
    return Promise.resolve(e instanceof ConfigError || e instanceof ProfilesError ? EX_CONFIG : 1);
  }
  const log = o.logger ?? createLogger(config);
  const router = new ConnectionRouter(config.instanceId);
  return router.listen(config.port, config.host).then(
    (at) => runWorkers(o, env, log, lifecycle, config, router, at.address),
    (e: Error) => {
      log.fatal({ err: e, host: config.host, port: config.port }, `voice-bridge cluster: cannot listen on ${config.host}:${config.port}`);
      return 1;
    },
  );
}

function runWorkers(o: ClusterOptions, env: Record<string, string | undefined>, log: Logger, lifecycle: ReturnType<typeof loadLifecycleConfig>, config: Config, router: ConnectionRouter, address: string): Promise<number> {
  // Other instances reach a worker through the primary's port plus the route header.
  const u = new URL(address);
  if (config.host === '0.0.0.0' || config.host === '::') u.hostname = hostname();
  const internalUrl = config.internalUrl ?? u.origin;
  const shutdownTimeoutMs = o.shutdownTimeoutMs ?? lifecycle.drainTimeoutMs + 30_000;
  const backoff = new Map<number, number>(); // slot → next restart delay
  const startedAt = new Map<Worker, { slot: number; at: number }>();
  let stopping = false;
  let worstExit = 0;
  let announced = false;
  const readySlots = new Set<number>();
  // Listening, draining, a worker's death: written whatever BRIDGE_LOG_LEVEL says (supervisors wait for them).
  const announce = lifecycleLogger(log);

  return new Promise<number>((resolve) => {
    const fork = (slot: number) => {
      const w = cluster.fork({
        ...env,
        BRIDGE_WORKER_SLOT: String(slot),
        BRIDGE_INSTANCE_ID: config.instanceId,
        BRIDGE_INTERNAL_URL: internalUrl,
        BRIDGE_CLUSTER_ROUTED: '1',
        BRIDGE_CLUSTER_URL: address,
      });
      startedAt.set(w, { slot, at: Date.now() });
      w.on('message', (m: unknown) => void onMessage(w, m));
    };
    const onMessage = async (w: Worker, m: unknown) => {
      const msg = m as { type?: string; id?: number };
      if (msg?.type === RoutingMessages.READY) {
        const slot = startedAt.get(w)?.slot;
        if (slot !== undefined) router.setReady(slot, w);
        readySlots.add(slot ?? -1);
        // "listening" once every worker takes connections: a caller of the first ready
        // worker alone would put every call of a start-up burst on one process.
        if (!announced && readySlots.size >= o.workers) {
          announced = true;
          announce.info({ workers: o.workers, address }, `voice-bridge cluster: ${o.workers} workers (primary pid ${process.pid}) listening on ${address}`);
        }
        return;
      }
      if (msg?.type !== ClusterMessages.METRICS_REQ) return;
      try {
        if (!o.metrics) throw new Error('no metrics aggregator in the primary');
        const r = await o.metrics.aggregate();
        if (w.isConnected()) w.send({ type: ClusterMessages.METRICS_RES, id: msg.id, ...r });
      } catch (e) {
        if (w.isConnected()) w.send({ type: ClusterMessages.METRICS_RES, id: msg.id, error: (e as Error).message });
      }
    };
    cluster.on('exit', (w, code, signal) => {
      const info = startedAt.get(w);
      startedAt.delete(w);
      router.remove(w);
      if (stopping) {
        if (code !== 0) worstExit = 1;
        // Our own list, not cluster.workers: node:cluster removes a worker from that only
        // once it has both exited and disconnected, and 'exit' can come first — the last
        // worker's exit would then leave the primary waiting for its kill timer.
        if (startedAt.size === 0) finish();
        return;
      }
      if (code === EX_CONFIG) {
        log.error({ workerPid: w.process.pid, slot: info?.slot ?? null, code }, `voice-bridge cluster: worker ${w.process.pid} exited with a configuration error; stopping`);
        worstExit = EX_CONFIG;
        stopAll();
        return;
      }
      const slot = info?.slot ?? 0;
      const lived = info ? Date.now() - info.at : 0;
      const delayMs = lived >= HEALTHY_AFTER_MS ? RESTART_MIN_MS : (backoff.get(slot) ?? RESTART_MIN_MS);
      backoff.set(slot, Math.min(RESTART_MAX_MS, delayMs * 2));
      announce.warn({ workerPid: w.process.pid, slot, signal, code, restartInMs: delayMs }, `voice-bridge cluster: worker ${w.process.pid} died (${signal ?? `code ${code}`}); restarting in ${delayMs} ms`);
      setTimeout(() => {
        if (!stopping) fork(slot);
      }, delayMs);
    });

    let killTimer: NodeJS.Timeout | undefined;
    const finish = () => {
      clearTimeout(killTimer);
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      process.off('SIGHUP', onHangup);
      void router.close().then(() => resolve(worstExit));
    };
    const send = (type: string) => {
      for (const w of Object.values(cluster.workers ?? {})) if (w?.isConnected()) w.send({ type });
    };
    const stopAll = () => {
      stopping = true;
      send(ClusterMessages.DRAIN);
      killTimer = setTimeout(() => {
        log.error({ shutdownTimeoutMs }, 'voice-bridge cluster: shutdown bound reached; killing the remaining workers');
        worstExit = 1;
        for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGKILL');
      }, shutdownTimeoutMs);
      killTimer.unref();
      if (startedAt.size === 0) finish();
    };
    let signals = 0;
    const onSignal = (sig: NodeJS.Signals) => {
      if (++signals === 1) {
        const workers = Object.keys(cluster.workers ?? {}).length;
        announce.info({ signal: sig, workers }, `voice-bridge cluster: ${sig} — draining ${workers} workers`);
        stopAll();
      } else {
        announce.info({ signal: sig }, `voice-bridge cluster: ${sig} again — workers close their calls now`);
        send(ClusterMessages.HURRY);
      }
    };
    // SIGHUP: every worker reloads its profiles. Only with a profiles file: without one
    // SIGHUP keeps its default (the primary ends), as before profiles existed.
    const onHangup = () => {
      announce.info({ signal: 'SIGHUP' }, 'voice-bridge cluster: SIGHUP — workers reload the profiles file');
      send(ClusterMessages.RELOAD_PROFILES);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    if (rawValue(config.env, 'BRIDGE_PROFILES') !== undefined) process.on('SIGHUP', onHangup);
    for (let i = 0; i < o.workers; i++) fork(i);
  });
}

let metricsSeq = 0;

/** In a worker: the aggregate of all workers' metrics, from the primary's aggregator (bounded). */
export function requestClusterMetrics(timeoutMs = 5000): Promise<ClusterMetrics> {
  if (!cluster.isWorker || !process.send) return Promise.reject(new Error('not a cluster worker'));
  const id = ++metricsSeq;
  return new Promise((resolve, reject) => {
    const onMessage = (m: unknown) => {
      const msg = m as { type?: string; id?: number; error?: string } & Partial<ClusterMetrics>;
      if (msg?.type !== ClusterMessages.METRICS_RES || msg.id !== id) return;
      done();
      if (msg.error !== undefined) reject(new Error(msg.error));
      else resolve({ contentType: msg.contentType ?? 'text/plain', body: msg.body ?? '' });
    };
    const t = setTimeout(() => {
      done();
      reject(new Error(`no metrics from the cluster primary within ${timeoutMs} ms`));
    }, timeoutMs);
    const done = () => {
      clearTimeout(t);
      process.off('message', onMessage);
    };
    process.on('message', onMessage);
    process.send!({ type: ClusterMessages.METRICS_REQ, id });
  });
}

/** `voice-bridge start [--workers N|auto]`: one process, or a primary with N workers. */
export async function startCommand(argv: string[], options: Omit<ClusterOptions, 'workers'> = {}): Promise<number> {
  if (cluster.isWorker) return main(options.env ?? process.env);
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: { workers: { type: 'string', short: 'w' } } }));
  } catch (e) {
    console.error(`voice-bridge start: ${(e as Error).message}`);
    return 2;
  }
  const env = options.env ?? process.env;
  const raw = values.workers ?? rawValue(env, 'BRIDGE_WORKERS');
  let workers = 1;
  if (raw !== undefined && raw !== '') {
    workers = raw === 'auto' ? availableParallelism() : /^\d+$/.test(raw) ? Number(raw) : NaN;
    if (!Number.isInteger(workers) || workers < 1 || workers > 256) {
      // A bad BRIDGE_WORKERS is a configuration problem like any other: one process
      // reads the configuration and lists it with the rest (exit 78). A bad flag is usage.
      if (values.workers === undefined) return main(env);
      console.error(`voice-bridge start: --workers must be an integer from 1 to 256, or "auto" (got ${JSON.stringify(raw)})`);
      return 2;
    }
  }
  if (workers === 1) {
    // One process: with one CPU to itself, its GC runs single-threaded — a flag for node's
    // command line, so the bridge runs in a child that has it (src/gc-mode.ts).
    const relaunch = relaunchArgs(gcModeFor(env, 1));
    return relaunch ? runGcChild(relaunch, env) : main(env);
  }
  // Each worker gets its share of the CPUs: at one or less, its GC runs single-threaded.
  if (gcModeFor(env, workers) === 'single-threaded') cluster.setupPrimary({ execArgv: [...process.execArgv.filter((a) => a !== SINGLE_THREADED_GC_FLAG), SINGLE_THREADED_GC_FLAG] });
  // Workers' GET /metrics asks the primary for the cluster-wide aggregate (src/metrics/cluster.ts).
  const primaryMetrics = options.metrics ? undefined : await startPrimaryMetrics();
  try {
    return await runPrimary({ ...options, workers });
  } finally {
    await primaryMetrics?.close();
  }
}

/** BRIDGE_GC for processes that each get 1/`processes` of this one's CPUs (a bad value: 'auto' here; the worker's configuration check reports it). */
function gcModeFor(env: Record<string, string | undefined>, processes: number): GcMode {
  const raw = rawValue(env, 'BRIDGE_GC');
  const setting: GcSetting = raw === 'parallel' || raw === 'single-threaded' ? raw : 'auto';
  return resolveGcMode(setting, effectiveCpus() / processes);
}
