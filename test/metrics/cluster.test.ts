/**
 * Metrics across real node:cluster workers (the shape of `voice-bridge start
 * --workers N`): the primary's aggregate sums counters and histograms over the
 * workers, keeps info/max gauges at 1, and a scrape of the shared port — whichever
 * worker takes it — serves the same cluster-wide numbers.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseExposition, sample, scrape, type Sample } from './harness.js';

const WORKERS = 2;

interface Fixture {
  child: ChildProcess;
  info: { metricsUrl: string; appUrl: string };
}

async function startFixture(mode: 'normal' | 'no-primary-metrics'): Promise<Fixture> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'cluster-fixture.ts'), String(WORKERS), mode], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const info = await new Promise<Fixture['info']>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`cluster fixture not ready in 30 s; stderr: ${stderr}`));
    }, 30_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').slice(0, -1).find((l) => l.startsWith('{')); // complete lines only
      if (line) {
        clearTimeout(timer);
        resolve(JSON.parse(line));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`cluster fixture exited (${code}); stderr: ${stderr}`));
    });
  });
  return { child, info };
}

async function stopFixture(f: Fixture | undefined): Promise<void> {
  if (!f || f.child.exitCode !== null) return;
  const exited = new Promise<number | null>((r) => f.child.once('exit', (code) => r(code)));
  f.child.kill('SIGTERM');
  const code = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 10_000))]);
  if (code === 'timeout') f.child.kill('SIGKILL');
  expect(code).toBe(0);
}

describe('metrics aggregated across cluster workers', () => {
  let f: Fixture;
  let info: Fixture['info'];

  beforeAll(async () => {
    f = await startFixture('normal');
    info = f.info;
  }, 40_000);

  afterAll(() => stopFixture(f));

  function expectSums(s: Sample[]): void {
    // Worker i contributes i+1 of each: 1 + 2 = 3 calls.
    expect(sample(s, 'voice_bridge_calls_started_total', { agent: 'echo' })).toBe(3);
    expect(sample(s, 'voice_bridge_calls_ended_total', { agent: 'echo', reason: 'twilio-stop' })).toBe(3);
    expect(sample(s, 'voice_bridge_frames_total', { direction: 'inbound' })).toBe(300);
    expect(sample(s, 'voice_bridge_jitter_late_frames_total')).toBe(9);
    expect(sample(s, 'voice_bridge_jitter_lost_frames_total')).toBe(3);
    expect(sample(s, 'voice_bridge_jitter_concealed_frames_total')).toBe(6);
    expect(sample(s, 'voice_bridge_playout_underruns_total')).toBe(3);
    expect(sample(s, 'voice_bridge_frame_processing_seconds_count', { direction: 'inbound' })).toBe(300);
    expect(sample(s, 'voice_bridge_frame_processing_seconds_bucket', { direction: 'inbound', le: '0.000005' })).toBe(300);
    expect(sample(s, 'voice_bridge_barge_ins_total', { source: 'api' })).toBe(WORKERS);
    expect(sample(s, 'voice_bridge_agent_connect_seconds_count', { agent: 'echo', preconnected: 'false' })).toBe(WORKERS);
    expect(sample(s, 'voice_bridge_call_duration_seconds_sum', { agent: 'echo' })).toBe(6);
    // Gauges: active calls summed (10 + 20); the info gauge stays 1 (max), not N.
    expect(sample(s, 'voice_bridge_active_calls')).toBe(30);
    expect(sample(s, 'voice_bridge_dsp_info', { backend: 'ts', requested: 'auto', simd: '', fallback: 'addon-missing' })).toBe(1);
    // prom-client's default metrics come through too (CPU summed over the workers).
    expect(sample(s, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
    expect(sample(s, 'nodejs_eventloop_lag_seconds')).toBeGreaterThanOrEqual(0);
  }

  it("the primary's own /metrics port serves the sum over the workers", async () => {
    const r = await scrape(info.metricsUrl);
    expect(r.status).toBe(200);
    expect(r.contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(r.parsed.types.get('voice_bridge_frame_processing_seconds')).toBe('histogram');
    expect(r.parsed.types.get('voice_bridge_calls_ended_total')).toBe('counter');
    expectSums(r.parsed.samples);
  });

  it('GET /metrics on the shared port gives the same aggregate, whichever worker answers', async () => {
    const seen = new Set<string>();
    for (let k = 0; k < 20 && seen.size < WORKERS; k++) {
      const res = await fetch(`${info.appUrl}/metrics`, { signal: AbortSignal.timeout(10_000) });
      const text = await res.text();
      expect(res.status).toBe(200);
      seen.add(res.headers.get('x-worker') ?? '?');
      expectSums(parseExposition(text).samples);
    }
    expect(seen.size).toBe(WORKERS);
  });
});

describe('a worker whose primary does not aggregate', () => {
  let f: Fixture;
  beforeAll(async () => {
    f = await startFixture('no-primary-metrics');
  }, 40_000);
  afterAll(() => stopFixture(f));

  it('GET /metrics answers 503 BRIDGE_ERR_METRICS_AGGREGATION (bounded), never a partial slice', async () => {
    const res = await fetch(`${f.info.appUrl}/metrics`, { signal: AbortSignal.timeout(10_000) });
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ code: 'BRIDGE_ERR_METRICS_AGGREGATION' });
  });
});
