/** Observability: Prometheus metrics for the bridge (see docs/operations/observability.md). */
export { createMetrics, METRIC_PREFIX, FRAME_BUCKETS_S, type Metrics, type MetricsOptions, type CallStartedInfo, type LiveCallStats } from './metrics.js';
export { metricsRoutes, registerMetricsRoute, type MetricsRouteOptions } from './route.js';
export {
  registerWorkerMetricsResponder,
  startPrimaryMetrics,
  aggregatedMetrics,
  metricsText,
  MetricsErrorCodes,
  MetricsAggregationError,
  type PrimaryMetrics,
  type PrimaryMetricsOptions,
  type WorkerMetricsOptions,
} from './cluster.js';
export { normaliseEndReason, MAX_AGENT_VALUES, MAX_REASON_VALUES } from './labels.js';
