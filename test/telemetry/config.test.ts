/** The OTEL_* environment, as the bridge reads it (src/telemetry/config.ts). */
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config.js';
import { parseKeyValueList, tracesConfigFromEnv, type TracesConfig } from '../../src/telemetry/config.js';
import { failureCode } from '../../src/telemetry/otel.js';

const on = (env: Record<string, string>): TracesConfig => {
  const s = tracesConfigFromEnv(env);
  if (!s.enabled) throw new Error(`tracing off: ${s.reason}`);
  return s.config;
};
const problems = (env: Record<string, string>): string[] => {
  try {
    tracesConfigFromEnv(env);
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
  throw new Error('no ConfigError');
};

describe('tracesConfigFromEnv', () => {
  it('is off without an endpoint, with OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none', () => {
    expect(tracesConfigFromEnv({})).toMatchObject({ enabled: false });
    expect(tracesConfigFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: '  ' })).toMatchObject({ enabled: false });
    expect(tracesConfigFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'TRUE' })).toEqual({ enabled: false, reason: 'OTEL_SDK_DISABLED=true' });
    expect(tracesConfigFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'false' })).toMatchObject({ enabled: true });
    expect(tracesConfigFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_EXPORTER: 'none' })).toEqual({ enabled: false, reason: 'OTEL_TRACES_EXPORTER=none' });
  });

  it('builds the traces URL: <base>/v1/traces from OTEL_EXPORTER_OTLP_ENDPOINT, the signal endpoint as is', () => {
    expect(on({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }).url).toBe('http://collector:4318/v1/traces');
    expect(on({ OTEL_EXPORTER_OTLP_ENDPOINT: 'https://otel.example.com/otlp/' }).url).toBe('https://otel.example.com/otlp/v1/traces');
    expect(on({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://b:9999/custom' }).url).toBe('http://b:9999/custom');
  });

  it('defaults: http/protobuf, 10 s, service voice-bridge, parentbased_always_on, no PII', () => {
    expect(on({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' })).toEqual({
      url: 'http://c:4318/v1/traces',
      protocol: 'http/protobuf',
      headers: {},
      timeoutMs: 10_000,
      compression: undefined,
      serviceName: 'voice-bridge',
      resourceAttributes: {},
      sampler: { name: 'parentbased_always_on', ratio: 1 },
      batch: {},
      pii: false,
    });
  });

  it('reads protocol, headers, timeout, compression, resource, sampler, batch settings and BRIDGE_LOG_PII; the traces-specific variables win', () => {
    const c = on({
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
      OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json',
      OTEL_EXPORTER_OTLP_HEADERS: 'api-key=a%2Cb , x-a=1',
      OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'x-a=2',
      OTEL_EXPORTER_OTLP_TIMEOUT: '2500',
      OTEL_EXPORTER_OTLP_TRACES_COMPRESSION: 'gzip',
      OTEL_RESOURCE_ATTRIBUTES: 'service.name=from-attrs,k8s.pod.name=bridge-0',
      OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
      OTEL_TRACES_SAMPLER_ARG: '0.25',
      OTEL_BSP_SCHEDULE_DELAY: '200',
      OTEL_BSP_MAX_QUEUE_SIZE: '4096',
      BRIDGE_LOG_PII: '1',
    });
    expect(c).toMatchObject({
      protocol: 'http/json',
      headers: { 'api-key': 'a,b', 'x-a': '2' },
      timeoutMs: 2500,
      compression: 'gzip',
      serviceName: 'from-attrs',
      resourceAttributes: { 'service.name': 'from-attrs', 'k8s.pod.name': 'bridge-0' },
      sampler: { name: 'parentbased_traceidratio', ratio: 0.25 },
      batch: { scheduledDelayMillis: 200, maxQueueSize: 4096 },
      pii: true,
    });
    expect(on({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SERVICE_NAME: 'mine', OTEL_RESOURCE_ATTRIBUTES: 'service.name=theirs' }).serviceName).toBe('mine');
  });

  it('a malformed OTEL_RESOURCE_ATTRIBUTES is dropped with a warning (the specification says so)', () => {
    const s = tracesConfigFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_RESOURCE_ATTRIBUTES: 'novalue' });
    expect(s).toMatchObject({ enabled: true, config: { resourceAttributes: {} }, warnings: [expect.stringContaining('OTEL_RESOURCE_ATTRIBUTES')] });
  });

  it('refuses what it cannot honour, every problem at once, without quoting header values', () => {
    const p = problems({
      OTEL_EXPORTER_OTLP_ENDPOINT: 'grpc://c:4317',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
      OTEL_EXPORTER_OTLP_HEADERS: 'Authorization',
      OTEL_EXPORTER_OTLP_TIMEOUT: '0',
      OTEL_EXPORTER_OTLP_COMPRESSION: 'zstd',
      OTEL_TRACES_SAMPLER: 'sometimes',
      OTEL_BSP_MAX_QUEUE_SIZE: '-1',
    });
    expect(p).toHaveLength(7);
    expect(p.join('\n')).toMatch(/OTEL_EXPORTER_OTLP_ENDPOINT="grpc:\/\/c:4317": must be an http/);
    expect(p.join('\n')).toMatch(/OTEL_EXPORTER_OTLP_PROTOCOL="grpc": must be http\/protobuf or http\/json \(this bridge exports OTLP over HTTP only/);
    expect(p.join('\n')).not.toMatch(/Authorization/);
    expect(problems({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_EXPORTER: 'console' })).toEqual([expect.stringMatching(/only otlp \(or none\)/)]);
    expect(problems({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'not a url' })).toEqual([expect.stringMatching(/^OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="not a url": not a URL/)]);
    expect(problems({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '2' })).toEqual([expect.stringMatching(/OTEL_TRACES_SAMPLER_ARG="2"/)]);
  });
});

describe('parseKeyValueList', () => {
  it('percent-decodes values, trims, skips empty items, rejects items without a key', () => {
    expect(parseKeyValueList('a=1, b = x%20y ,,c=')).toEqual({ a: '1', b: 'x y', c: '' });
    expect(parseKeyValueList('=1')).toBeUndefined();
    expect(parseKeyValueList('a=%E0%A4%A')).toBeUndefined();
  });
});

describe('failureCode (the call span status from its end reason)', () => {
  it('gives the BRIDGE_ERR_* code of an agent or DSP failure, nothing for a normal end', () => {
    expect(failureCode('agent-connect-failed:BRIDGE_ERR_AGENT_AUTH')).toBe('BRIDGE_ERR_AGENT_AUTH');
    expect(failureCode('agent-connect-timeout')).toBe('BRIDGE_ERR_AGENT_TIMEOUT');
    expect(failureCode('agent-error:BRIDGE_ERR_AGENT_RATE_LIMIT')).toBe('BRIDGE_ERR_AGENT_RATE_LIMIT');
    expect(failureCode('agent-closed:server went away')).toBe('BRIDGE_ERR_AGENT_CLOSED');
    expect(failureCode('agent-unknown')).toBe('BRIDGE_ERR_AGENT_UNKNOWN');
    expect(failureCode('dsp-failed:BRIDGE_ERR_DSP_CLOSED')).toBe('BRIDGE_ERR_DSP_CLOSED');
    for (const ok of ['twilio-stop', 'agent-ended:caller pressed #', 'shutting-down', 'drain-timeout', null]) expect(failureCode(ok)).toBeUndefined();
  });
});
