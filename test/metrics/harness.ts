/**
 * A real bridge assembled the way main.ts will wire it (config → DSP → agents →
 * CallManager with the metrics observer → buildApp + GET /metrics) on 127.0.0.1:0,
 * until the wiring lands in startBridge. Nothing here is mocked: the fastify app,
 * the CallManager, the DSP backend and the echo agent are the real ones.
 */
import type { FastifyInstance } from 'fastify';
import { createAgentRegistry } from '../../src/agents/registry.js';
import type { AgentFactory } from '../../src/agents/agent.js';
import { CallManager, type CallRecord } from '../../src/call/call-manager.js';
import { loadConfig } from '../../src/config.js';
import { dspLoadInfo, loadDsp } from '../../src/dsp/load.js';
import { createMetrics, registerMetricsRoute, type Metrics } from '../../src/metrics/index.js';
import { buildApp } from '../../src/server/app.js';

export interface MetricsBridge {
  url: string;
  streamUrl: string;
  calls: CallManager;
  metrics: Metrics;
  app: FastifyInstance;
  /** Every CallRecord emitted by `callEnded`, in order. */
  ended: CallRecord[];
  /** Resolves once `n` calls have ended (bounded). */
  endedCount(n: number, timeoutMs?: number): Promise<CallRecord[]>;
  startedCount(n: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

function waitFor(cond: () => boolean, emitter: CallManager, event: 'callStarted' | 'callEnded', timeoutMs: number, what: string): Promise<void> {
  if (cond()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, check);
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
    }, timeoutMs);
    function check(): void {
      if (!cond()) return;
      clearTimeout(timer);
      emitter.off(event, check);
      resolve();
    }
    emitter.on(event, check);
  });
}

export async function startMetricsBridge(env: Record<string, string> = {}, extraAgents: AgentFactory[] = []): Promise<MetricsBridge> {
  const config = loadConfig({ BRIDGE_LOG_LEVEL: 'silent', BRIDGE_DSP: process.env.BRIDGE_DSP ?? 'auto', ...env });
  const dsp = await loadDsp({ backend: config.dsp });
  const agents = createAgentRegistry(config);
  for (const f of extraAgents) agents.register(f);
  const metrics = createMetrics({ dspInfo: dspLoadInfo, knownAgents: () => agents.names() });
  const calls = new CallManager({ config, dsp, agents, observer: metrics.observer });
  calls.on('callStarted', metrics.onCallStarted);
  calls.on('callEnded', metrics.onCallEnded);
  metrics.setActiveCalls(() => calls.activeCount);
  metrics.setLiveCalls(() => calls.list());
  const ended: CallRecord[] = [];
  let started = 0;
  calls.on('callEnded', (r) => ended.push(r));
  calls.on('callStarted', () => started++);
  const app = await buildApp({ config, calls, agents, dspInfo: dspLoadInfo, logger: false });
  registerMetricsRoute(app, metrics);
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  return {
    url,
    streamUrl: `${url.replace(/^http/, 'ws')}/twilio/stream`,
    calls,
    metrics,
    app,
    ended,
    async endedCount(n, timeoutMs = 30_000) {
      await waitFor(() => ended.length >= n, calls, 'callEnded', timeoutMs, `${n} ended calls`);
      return ended;
    },
    startedCount(n, timeoutMs = 30_000) {
      return waitFor(() => started >= n, calls, 'callStarted', timeoutMs, `${n} started calls`);
    },
    async close() {
      await calls.shutdown();
      await app.close();
      metrics.close();
    },
  };
}

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Prometheus text exposition 0.0.4, parsed strictly enough to catch malformed lines. */
export function parseExposition(text: string): { types: Map<string, string>; help: Map<string, string>; samples: Sample[] } {
  const types = new Map<string, string>();
  const help = new Map<string, string>();
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    let m = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (m) {
      types.set(m[1]!, m[2]!);
      continue;
    }
    m = /^# HELP (\S+) (.*)$/.exec(line);
    if (m) {
      help.set(m[1]!, m[2]!);
      continue;
    }
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`malformed exposition line: ${line}`);
    const labels: Record<string, string> = {};
    if (m[2]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/gy;
      let lm: RegExpExecArray | null;
      let consumed = 0;
      while ((lm = re.exec(m[2])) !== null) {
        labels[lm[1]!] = lm[2]!.replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
        consumed = re.lastIndex;
      }
      if (consumed !== m[2].length) throw new Error(`malformed labels: ${line}`);
    }
    const v = m[3] === '+Inf' ? Infinity : m[3] === '-Inf' ? -Infinity : Number(m[3]);
    if (Number.isNaN(v) && m[3] !== 'NaN') throw new Error(`malformed value: ${line}`);
    samples.push({ name: m[1]!, labels, value: v });
  }
  return { types, help, samples };
}

/** The sample with exactly these labels (others ignored when `partial`). */
export function sample(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const want = Object.entries(labels);
  const s = samples.find((x) => x.name === name && want.every(([k, v]) => x.labels[k] === v) && Object.keys(x.labels).length === want.length);
  return s?.value;
}

export async function scrape(url: string): Promise<{ status: number; contentType: string | null; text: string; parsed: ReturnType<typeof parseExposition> }> {
  const r = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(10_000) });
  const text = await r.text();
  return { status: r.status, contentType: r.headers.get('content-type'), text, parsed: r.status === 200 ? parseExposition(text) : { types: new Map(), help: new Map(), samples: [] } };
}
