/**
 * Trace export settings from the standard OpenTelemetry environment variables
 * (read from the bridge's env, validated once at start; no OpenTelemetry code is
 * loaded here). Tracing is on when an OTLP endpoint is set and the SDK is not
 * disabled:
 *
 *   OTEL_EXPORTER_OTLP_TRACES_ENDPOINT   the traces URL, used as is
 *   OTEL_EXPORTER_OTLP_ENDPOINT          base URL; traces go to <base>/v1/traces
 *   OTEL_SDK_DISABLED=true               off, whatever else is set
 *   OTEL_TRACES_EXPORTER                 `otlp` (default) or `none` (off)
 *   OTEL_EXPORTER_OTLP[_TRACES]_PROTOCOL http/protobuf (default) or http/json; grpc is refused
 *   OTEL_EXPORTER_OTLP[_TRACES]_HEADERS  k=v,k2=v2 (values percent-decoded), the signal's own win
 *   OTEL_EXPORTER_OTLP[_TRACES]_TIMEOUT  ms per export (default 10000)
 *   OTEL_EXPORTER_OTLP[_TRACES]_COMPRESSION gzip or none
 *   OTEL_SERVICE_NAME                    default voice-bridge
 *   OTEL_RESOURCE_ATTRIBUTES             k=v,… on every span's resource
 *   OTEL_TRACES_SAMPLER[_ARG]            always_on, always_off, traceidratio, parentbased_* (default parentbased_always_on)
 *   OTEL_BSP_SCHEDULE_DELAY, OTEL_BSP_MAX_QUEUE_SIZE, OTEL_BSP_MAX_EXPORT_BATCH_SIZE, OTEL_BSP_EXPORT_TIMEOUT
 *
 * Each is declared in src/env-schema.ts (docs, defaults); the checks are here, since
 * they apply only when tracing is on. A malformed value is a configuration error
 * (exit 78 at start: loadConfig runs tracesProblems) like any BRIDGE_* variable,
 * except OTEL_RESOURCE_ATTRIBUTES, which the specification says to drop whole with a
 * warning.
 */
import { ConfigError } from '../config-error.js';
import { parseInteger, rawValue } from '../env-schema.js';
import { piiLoggingEnabled } from '../log.js';

export type OtlpProtocol = 'http/protobuf' | 'http/json';
export type SamplerName = 'always_on' | 'always_off' | 'traceidratio' | 'parentbased_always_on' | 'parentbased_always_off' | 'parentbased_traceidratio';
const SAMPLERS: readonly SamplerName[] = ['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'];

export const DEFAULT_SERVICE_NAME = 'voice-bridge';
/** Bound on the exporter's last flush at drain/shutdown (ms). */
export const TRACES_FLUSH_MS = 5000;

export interface TracesConfig {
  /** Where spans are POSTed (…/v1/traces). */
  readonly url: string;
  readonly protocol: OtlpProtocol;
  readonly headers: Readonly<Record<string, string>>;
  readonly timeoutMs: number;
  readonly compression: 'gzip' | 'none' | undefined;
  readonly serviceName: string;
  /** From OTEL_RESOURCE_ATTRIBUTES (service.name there loses to OTEL_SERVICE_NAME). */
  readonly resourceAttributes: Readonly<Record<string, string>>;
  readonly sampler: { readonly name: SamplerName; readonly ratio: number };
  readonly batch: { readonly scheduledDelayMillis?: number; readonly maxQueueSize?: number; readonly maxExportBatchSize?: number; readonly exportTimeoutMillis?: number };
  /** BRIDGE_LOG_PII: caller and callee numbers on the call span. */
  readonly pii: boolean;
}

export type TracesSetting =
  | { readonly enabled: false; readonly reason: string }
  | { readonly enabled: true; readonly config: TracesConfig; readonly warnings: readonly string[] };

type Env = Readonly<Record<string, string | undefined>>;

/** W3C-baggage-like `key=value` lists (OTEL_EXPORTER_OTLP_HEADERS, OTEL_RESOURCE_ATTRIBUTES); undefined when malformed. */
export function parseKeyValueList(text: string): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  for (const item of text.split(',')) {
    if (item.trim() === '') continue;
    const eq = item.indexOf('=');
    if (eq <= 0) return undefined;
    const key = item.slice(0, eq).trim();
    let value: string;
    try {
      value = decodeURIComponent(item.slice(eq + 1).trim());
    } catch {
      return undefined;
    }
    if (key === '') return undefined;
    out[key] = value;
  }
  return out;
}

/** The traces URL: the signal's own endpoint as is, else the base endpoint + /v1/traces. */
function tracesUrl(signal: string | undefined, base: string | undefined): string | undefined {
  if (signal !== undefined) return signal;
  if (base === undefined) return undefined;
  return `${base}${base.endsWith('/') ? '' : '/'}v1/traces`;
}

/** The problems of the OTEL_* settings (none when tracing is off). */
export function tracesProblems(env: Env): string[] {
  return readTraces(env).problems;
}

/** The trace export settings; throws ConfigError listing every bad OTEL_* value. */
export function tracesConfigFromEnv(env: Env): TracesSetting {
  const { setting, problems } = readTraces(env);
  if (problems.length > 0) throw new ConfigError(problems);
  return setting;
}

function readTraces(env: Env): { setting: TracesSetting; problems: string[] } {
  const get = (k: string): string | undefined => rawValue(env, k);
  /** The traces-specific variable, else the general OTLP one. */
  const otlp = (suffix: string): [string, string | undefined] => {
    const specific = `OTEL_EXPORTER_OTLP_TRACES_${suffix}`;
    const general = `OTEL_EXPORTER_OTLP_${suffix}`;
    return get(specific) !== undefined ? [specific, get(specific)] : [general, get(general)];
  };

  const off = (reason: string) => ({ setting: { enabled: false, reason } as const, problems: [] });
  if (get('OTEL_SDK_DISABLED')?.toLowerCase() === 'true') return off('OTEL_SDK_DISABLED=true');
  const exporters = (get('OTEL_TRACES_EXPORTER') ?? 'otlp').toLowerCase().split(',').map((s) => s.trim());
  if (exporters.includes('none')) return off('OTEL_TRACES_EXPORTER=none');
  const url = tracesUrl(get('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'), get('OTEL_EXPORTER_OTLP_ENDPOINT'));
  if (url === undefined) return off('no OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');

  const problems: string[] = [];
  const warnings: string[] = [];
  const endpointKey = get('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT') !== undefined ? 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT' : 'OTEL_EXPORTER_OTLP_ENDPOINT';
  try {
    const u = new URL(url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') problems.push(`${endpointKey}=${JSON.stringify(get(endpointKey))}: must be an http:// or https:// URL (OTLP over HTTP)`);
  } catch {
    problems.push(`${endpointKey}=${JSON.stringify(get(endpointKey))}: not a URL`);
  }
  if (!exporters.includes('otlp')) problems.push(`OTEL_TRACES_EXPORTER=${JSON.stringify(get('OTEL_TRACES_EXPORTER'))}: only otlp (or none) is supported`);

  const [protocolKey, protocolRaw] = otlp('PROTOCOL');
  const protocol = (protocolRaw ?? 'http/protobuf').toLowerCase();
  if (protocol !== 'http/protobuf' && protocol !== 'http/json') {
    problems.push(`${protocolKey}=${JSON.stringify(protocolRaw)}: must be http/protobuf or http/json${protocol === 'grpc' ? ' (this bridge exports OTLP over HTTP only; point the endpoint at the collector\'s HTTP port, usually 4318)' : ''}`);
  }

  // General headers first, the traces-specific ones over them.
  const headers: Record<string, string> = {};
  for (const key of ['OTEL_EXPORTER_OTLP_HEADERS', 'OTEL_EXPORTER_OTLP_TRACES_HEADERS']) {
    const raw = get(key);
    if (raw === undefined) continue;
    const parsed = parseKeyValueList(raw);
    // The value may carry credentials: never quoted back.
    if (parsed === undefined) problems.push(`${key}: must be a comma-separated list of key=value pairs (values percent-encoded)`);
    else Object.assign(headers, parsed);
  }

  const [timeoutKey, timeoutRaw] = otlp('TIMEOUT');
  let timeoutMs = 10_000;
  if (timeoutRaw !== undefined) {
    const n = parseInteger(timeoutRaw) ?? NaN;
    if (!Number.isInteger(n) || n < 1 || n > 600_000) problems.push(`${timeoutKey}=${JSON.stringify(timeoutRaw)}: must be an integer number of ms from 1 to 600000`);
    else timeoutMs = n;
  }

  const [compressionKey, compressionRaw] = otlp('COMPRESSION');
  const compression = compressionRaw?.toLowerCase();
  if (compression !== undefined && compression !== 'gzip' && compression !== 'none') problems.push(`${compressionKey}=${JSON.stringify(compressionRaw)}: must be gzip or none`);

  const samplerRaw = get('OTEL_TRACES_SAMPLER')?.toLowerCase() ?? 'parentbased_always_on';
  if (!(SAMPLERS as readonly string[]).includes(samplerRaw)) problems.push(`OTEL_TRACES_SAMPLER=${JSON.stringify(get('OTEL_TRACES_SAMPLER'))}: must be one of ${SAMPLERS.join(', ')}`);
  let ratio = 1;
  const ratioRaw = get('OTEL_TRACES_SAMPLER_ARG');
  if (ratioRaw !== undefined && samplerRaw.endsWith('traceidratio')) {
    const n = Number(ratioRaw);
    if (!Number.isFinite(n) || n < 0 || n > 1) problems.push(`OTEL_TRACES_SAMPLER_ARG=${JSON.stringify(ratioRaw)}: must be a number from 0 to 1`);
    else ratio = n;
  }

  const batch: Record<string, number> = {};
  for (const [key, field, min] of [
    ['OTEL_BSP_SCHEDULE_DELAY', 'scheduledDelayMillis', 0],
    ['OTEL_BSP_MAX_QUEUE_SIZE', 'maxQueueSize', 1],
    ['OTEL_BSP_MAX_EXPORT_BATCH_SIZE', 'maxExportBatchSize', 1],
    ['OTEL_BSP_EXPORT_TIMEOUT', 'exportTimeoutMillis', 1],
  ] as const) {
    const raw = get(key);
    if (raw === undefined) continue;
    const n = parseInteger(raw) ?? NaN;
    if (!Number.isInteger(n) || n < min || n > 10_000_000) problems.push(`${key}=${JSON.stringify(raw)}: must be an integer from ${min} to 10000000`);
    else batch[field] = n;
  }

  let resourceAttributes: Record<string, string> = {};
  const resourceRaw = get('OTEL_RESOURCE_ATTRIBUTES');
  if (resourceRaw !== undefined) {
    const parsed = parseKeyValueList(resourceRaw);
    if (parsed === undefined) warnings.push('OTEL_RESOURCE_ATTRIBUTES is not a comma-separated list of key=value pairs: ignored');
    else resourceAttributes = parsed;
  }

  const setting: TracesSetting = {
    enabled: true,
    warnings,
    config: {
      url,
      protocol: protocol as OtlpProtocol,
      headers,
      timeoutMs,
      compression: compression as 'gzip' | 'none' | undefined,
      serviceName: get('OTEL_SERVICE_NAME') ?? resourceAttributes['service.name'] ?? DEFAULT_SERVICE_NAME,
      resourceAttributes,
      sampler: { name: samplerRaw as SamplerName, ratio },
      batch,
      pii: piiLoggingEnabled(env),
    },
  };
  return { setting, problems };
}
