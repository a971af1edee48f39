/**
 * OpenTelemetry traces (docs/operations/observability.md, "Traces"): a `call` span per
 * call, a `turn` span per turn and a `tool <name>` span per tool call, exported over
 * OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT (or …_TRACES_ENDPOINT) is set.
 *
 * This module is all that the bridge loads without tracing: the settings are read
 * here, and the OpenTelemetry SDK and exporter (src/telemetry/otel.ts) are imported
 * only when tracing is on, so a bridge without an endpoint starts as before.
 */
import type { CallTrace, CallTraceInfo } from '../call/hooks.js';
import { tracesConfigFromEnv } from './config.js';

export { tracesConfigFromEnv, TRACES_FLUSH_MS, type TracesConfig, type TracesSetting } from './config.js';
export { startToolCall, traceToolCall, openCallTraces, type ToolCallSpan, type ToolCallOptions } from './tools.js';


export interface Telemetry {
  /** Where spans go, and how. */
  readonly url: string;
  readonly protocol: string;
  /** CallManagerDeps.traceFor: one trace per call (undefined when the sampler drops the call). */
  traceFor(info: CallTraceInfo): CallTrace | undefined;
  /** Ends whatever is still open, flushes the exporter (bounded, default TRACES_FLUSH_MS) and stops it. Idempotent. */
  shutdown(timeoutMs?: number): Promise<void>;
}

export interface TelemetryDeps {
  /** BRIDGE_INSTANCE_ID, the stream route key (<instance> or <instance>.w<slot>) and the worker slot. */
  instanceId: string;
  routeKey: string;
  workerSlot: number | undefined;
  serviceVersion?: string;
  log?: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
}

let sdkLoaded = false;

/** Whether this process has loaded the OpenTelemetry SDK (only a bridge with tracing on does). */
export function tracingSdkLoaded(): boolean {
  return sdkLoaded;
}

/**
 * Tracing from the environment: undefined when it is off (no endpoint, OTEL_SDK_DISABLED,
 * OTEL_TRACES_EXPORTER=none) — nothing is loaded then. Throws ConfigError for a malformed
 * OTEL_* value.
 */
export async function startTelemetry(env: Readonly<Record<string, string | undefined>>, deps: TelemetryDeps): Promise<Telemetry | undefined> {
  const setting = tracesConfigFromEnv(env);
  if (!setting.enabled) return undefined;
  for (const w of setting.warnings) deps.log?.('warn', w);
  sdkLoaded = true;
  const { startOtlpTracing } = await import('./otel.js');
  return startOtlpTracing(setting.config, deps);
}
