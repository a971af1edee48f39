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

describe('metrics aggregated across cluster workers', () => {
  let child: ChildProcess;
  let info: { metricsUrl: string; appUrl: string };

  beforeAll(async () => {
    child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'cluster-fixture.ts'), String(WORKERS)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    info = await new Promise((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`cluster fixture not ready in 30 s; stderr: ${stderr}`)), 30_000);
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const line = out.split('\n').find((l) => l.startsWith('{'));
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
  }, 40_000);

  afterAll(async () => {
    if (!child || child.exitCode !== null) return;
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGTERM');
    const code = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 10_000))]);
    if (code === 'timeout') child.kill('SIGKILL');
    expect(code).toBe(0);
  });

  function expectSums(s: Sample[]): void {
    // Worker i contributes i+1 of each: 1 + 2 = 3 calls.
    expect(sample(s, 'voice_bridge_calls_started_total', { agent: 'echo' })).toBe(3);
    expect(sample(s, 'voice_bridge_calls_ended_total', { agent: 'echo', reason: 'twilio-stop' })).toBe(3);
    expect(sample(s, 'voice_bridge_frames_total', { direction: 'in' })).toBe(300);
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
    expect(sample(s, 'voice_bridge_dsp_backend', { backend: 'ts', requested: 'auto', simd: '', fallback: 'native addon not built' })).toBe(1);
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
