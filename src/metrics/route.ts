/**
 * GET /metrics on the bridge's fastify app: Prometheus text (0.0.4). In a cluster
 * worker registered with registerWorkerMetricsResponder(), the cluster-wide
 * aggregate from the primary; otherwise this process's registry.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { MetricsErrorCodes, metricsText } from './cluster.js';
import type { Metrics } from './metrics.js';

export interface MetricsRouteOptions {
  /** Default '/metrics'. */
  path?: string;
  /** Runs before the handler (e.g. the admin-token check) when scrapes must be authenticated. */
  preHandler?: (req: FastifyRequest, reply: FastifyReply) => Promise<unknown> | void;
}

export function registerMetricsRoute(app: FastifyInstance, metrics: Metrics, options: MetricsRouteOptions = {}): void {
  app.get(options.path ?? '/metrics', { ...(options.preHandler ? { preHandler: options.preHandler } : {}) }, async (_req, reply) => {
    try {
      const text = await metricsText(metrics);
      return reply.code(200).header('content-type', metrics.contentType).header('cache-control', 'no-store').send(text);
    } catch (e) {
      return reply.code(503).send({ error: MetricsErrorCodes.METRICS_AGGREGATION, message: (e as Error).message });
    }
  });
}
