/**
 * Metrics across `voice-bridge start --workers N` (node:cluster).
 *
 * Every worker keeps its own Registry. prom-client's AggregatorRegistry, in the
 * primary, asks each worker over the cluster IPC channel for its metrics as JSON
 * and merges them: counters and histogram buckets summed, gauges by their
 * declared aggregator (active calls summed, event-loop p99 and the DSP info gauge
 * max'ed, prom-client's default metrics by their own choices).
 *
 *   primary                                 worker 1..N
 *   ───────                                 ───────────
 *   startPrimaryMetrics({ port? })          registerWorkerMetricsResponder(metrics)
 *     ├─ GET /metrics on its own port ─┐      ├─ answers prom-client's metrics request
 *     │                                ├──────┤   (its registry as JSON)
 *     └─ answers workers' requests ────┘      └─ GET /metrics on the shared port asks the
 *        (voice-bridge:metrics:req)                primary for the aggregate, so a scrape
 *                                                  that lands on any worker sees the whole
 *                                                  process group, never one worker's slice
 *
 * A scrape of one worker's own numbers through the shared port would look to
 * Prometheus like counters resetting each time it hits another worker: hence the
 * aggregate on every path.
 */
import cluster from 'node:cluster';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AggregatorRegistry, Registry } from 'prom-client';
import type { Metrics } from './metrics.js';
import { ErrorCodes, PROBLEM_CONTENT_TYPE, problemDetails } from '../errors.js';

/** Error codes of this module (declared in src/errors.ts). */
export const MetricsErrorCodes = {
  METRICS_AGGREGATION: ErrorCodes.METRICS_AGGREGATION,
} as const;

const REQ = 'voice-bridge:metrics:req';
const RES = 'voice-bridge:metrics:res';
/** prom-client's own per-request timeout is 5 s; the worker waits a little longer for the primary's answer. */
const WORKER_WAIT_MS = 6_000;

interface AggregateRequest {
  type: typeof REQ;
  id: number;
}
interface AggregateResponse {
  type: typeof RES;
  id: number;
  text?: string;
  error?: string;
}

export class MetricsAggregationError extends Error {
  readonly code = MetricsErrorCodes.METRICS_AGGREGATION;
}

// ── worker side ──────────────────────────────────────────────────────────────

/** Registered workers' metrics → how long their GET /metrics waits for the primary. */
const workerMetrics = new WeakMap<Metrics, number>();
const pending = new Map<number, { resolve: (t: string) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
let nextId = 1;
let workerListener = false;

/**
 * In a cluster worker: lets the primary's AggregatorRegistry read this worker's
 * registry, and makes this process's GET /metrics (registerMetricsRoute) serve the
 * cluster-wide aggregate fetched from the primary. Returns false (and does nothing)
 * outside a cluster worker.
 */
export interface WorkerMetricsOptions {
  /** How long GET /metrics waits for the primary's aggregate (default 6 s; prom-client's own worker timeout is 5 s). */
  primaryTimeoutMs?: number;
}

export function registerWorkerMetricsResponder(metrics: Metrics, options: WorkerMetricsOptions = {}): boolean {
  if (!cluster.isWorker) return false;
  AggregatorRegistry.setRegistries([metrics.registry]);
  new AggregatorRegistry(); // installs prom-client's worker-side listener (idempotent)
  workerMetrics.set(metrics, options.primaryTimeoutMs ?? WORKER_WAIT_MS);
  if (!workerListener) {
    workerListener = true;
    process.on('message', (m: unknown) => {
      const msg = m as Partial<AggregateResponse> | null;
      if (!msg || msg.type !== RES || typeof msg.id !== 'number') return;
      const p = pending.get(msg.id);
      if (!p) return;
      pending.delete(msg.id);
      clearTimeout(p.timer);
      if (typeof msg.text === 'string') p.resolve(msg.text);
      else p.reject(new MetricsAggregationError(msg.error ?? 'no metrics from the primary'));
    });
  }
  return true;
}

function askPrimary(waitMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const id = nextId++;
    const timer = setTimeout(() => {
      pending.delete(id);
      reject(new MetricsAggregationError(`the primary did not answer within ${waitMs} ms (is startPrimaryMetrics() running there?)`));
    }, waitMs);
    pending.set(id, { resolve, reject, timer });
    const req: AggregateRequest = { type: REQ, id };
    try {
      process.send!(req);
    } catch (e) {
      pending.delete(id);
      clearTimeout(timer);
      reject(new MetricsAggregationError(`cannot reach the primary: ${(e as Error).message}`));
    }
  });
}

/** What GET /metrics serves: the cluster aggregate in a registered worker, else this process's registry. */
export function metricsText(metrics: Metrics): Promise<string> {
  const waitMs = workerMetrics.get(metrics);
  return waitMs !== undefined ? askPrimary(waitMs) : metrics.registry.metrics();
}

// ── primary side ─────────────────────────────────────────────────────────────

let aggregator: AggregatorRegistry<typeof Registry.PROMETHEUS_CONTENT_TYPE> | undefined;

/** In the cluster primary: all connected workers' metrics, aggregated (Prometheus text). Rejects after prom-client's 5 s if a worker does not answer. */
export function aggregatedMetrics(): Promise<string> {
  aggregator ??= new AggregatorRegistry();
  return aggregator.clusterMetrics();
}

export interface PrimaryMetrics {
  /** http://host:port of the primary's own metrics server, when a port was given. */
  readonly url: string | undefined;
  readonly contentType: string;
  metrics(): Promise<string>;
  close(): Promise<void>;
}

export interface PrimaryMetricsOptions {
  /** Serve GET /metrics on this port from the primary (0: any free port). Omit for none. */
  port?: number;
  host?: string;
}

/**
 * In the cluster primary: answers the workers' aggregate requests (so GET /metrics
 * on the shared port is cluster-wide) and, with `port`, serves GET /metrics itself.
 */
export async function startPrimaryMetrics(options: PrimaryMetricsOptions = {}): Promise<PrimaryMetrics> {
  if (!cluster.isPrimary) throw new Error('startPrimaryMetrics() runs in the cluster primary');
  const contentType = Registry.PROMETHEUS_CONTENT_TYPE;
  const onMessage = (worker: import('node:cluster').Worker, m: unknown): void => {
    const msg = m as Partial<AggregateRequest> | null;
    if (!msg || msg.type !== REQ || typeof msg.id !== 'number') return;
    const id = msg.id;
    const reply = (r: Omit<AggregateResponse, 'type' | 'id'>): void => {
      if (!worker.isConnected()) return;
      try {
        worker.send({ type: RES, id, ...r } satisfies AggregateResponse);
      } catch {
        /* the worker went away; it times out on its side */
      }
    };
    aggregatedMetrics().then(
      (text) => reply({ text }),
      (e: unknown) => reply({ error: (e as Error).message }),
    );
  };
  cluster.on('message', onMessage);

  let server: Server | undefined;
  let url: string | undefined;
  if (options.port !== undefined) {
    server = createServer((req, res) => {
      if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
        res.writeHead(404, { 'content-type': PROBLEM_CONTENT_TYPE }).end(JSON.stringify(problemDetails(ErrorCodes.NOT_FOUND, 'this port serves GET /metrics only')));
        return;
      }
      aggregatedMetrics().then(
        (text) => res.writeHead(200, { 'content-type': contentType }).end(text),
        (e: unknown) =>
          res
            .writeHead(503, { 'content-type': PROBLEM_CONTENT_TYPE })
            .end(JSON.stringify(problemDetails(MetricsErrorCodes.METRICS_AGGREGATION, (e as Error).message))),
      );
    });
    const host = options.host ?? '127.0.0.1';
    await new Promise<void>((resolve, reject) => {
      server!.once('error', reject);
      server!.listen(options.port, host, () => {
        server!.off('error', reject);
        resolve();
      });
    });
    const a = server.address() as AddressInfo;
    url = `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
  }

  return {
    url,
    contentType,
    metrics: aggregatedMetrics,
    async close() {
      cluster.off('message', onMessage);
      if (server) {
        server.closeAllConnections();
        await new Promise<void>((r) => server!.close(() => r()));
      }
    },
  };
}
