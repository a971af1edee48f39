/**
 * GET /metrics on the bridge's fastify app: Prometheus text (0.0.4). In a cluster
 * worker registered with registerWorkerMetricsResponder(), the cluster-wide
 * aggregate from the primary; otherwise this process's registry. A failed aggregate
 * is thrown as an HttpProblem (503 BRIDGE_ERR_METRICS_AGGREGATION), which the app's
 * error handler answers as problem details.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { HttpProblem } from '../errors.js';
import { MetricsErrorCodes, metricsText } from './cluster.js';
import type { Metrics } from './metrics.js';

export interface MetricsRouteOptions {
  /** Default '/metrics'. */
  path?: string;
  /** An auth check run at onRequest (e.g. the admin-token check) when scrapes must be authenticated; throws to refuse. */
  onRequest?: (req: FastifyRequest) => Promise<void>;
}

/** A fastify plugin: `app.register(metricsRoutes, { metrics })`. */
export async function metricsRoutes(app: FastifyInstance, options: MetricsRouteOptions & { metrics: Metrics }): Promise<void> {
  registerMetricsRoute(app, options.metrics, options);
}

export function registerMetricsRoute(app: FastifyInstance, metrics: Metrics, options: MetricsRouteOptions = {}): void {
  app.get(options.path ?? '/metrics', { ...(options.onRequest ? { onRequest: options.onRequest } : {}) }, async (_req, reply) => {
    let text: string;
    try {
      text = await metricsText(metrics);
    } catch (e) {
      throw new HttpProblem(MetricsErrorCodes.METRICS_AGGREGATION, (e as Error).message);
    }
    return reply.code(200).header('content-type', metrics.contentType).header('cache-control', 'no-store').send(text);
  });
}
