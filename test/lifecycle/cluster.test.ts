/**
 * `voice-bridge start --workers 2` as a real child process: two workers share the
 * port; a killed worker is restarted; a call on a worker survives its sibling's
 * crash; SIGTERM to the primary drains every worker (the active call completes) and
 * the primary exits 0. And the metrics hook: workers get the primary's aggregate.
 */
import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runSimulatedCall } from '../../src/sim/simulator.js';
import { ulawClip } from '../bridge/helpers.js';
import { echoedExactly, pollUntil, repoRoot, startChildBridge, type ChildBridge } from './child-bridge.js';

const children: ChildBridge[] = [];
afterEach(() => {
  for (const c of children.splice(0)) c.kill();
});

/** GET on a fresh connection (no keep-alive), so the primary hands it to the next worker. */
function readyzFresh(url: string): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/readyz`, { agent: false, headers: { connection: 'close' } }, (res) => {
      let s = '';
      res.on('data', (d: Buffer) => (s += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(s) }));
    });
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

async function workerPids(url: string, tries = 12): Promise<Set<number>> {
  const pids = new Set<number>();
  for (let i = 0; i < tries; i++) pids.add((await readyzFresh(url)).body.pid);
  return pids;
}

describe('voice-bridge start --workers 2', () => {
  it('shares the port, restarts a crashed worker, drains all on SIGTERM and exits 0', async () => {
    const b = await startChildBridge({ BRIDGE_DRAIN_TIMEOUT_MS: '30000' }, ['--workers', '2']);
    children.push(b);
    await b.waitFor(/cluster: 2 workers \(primary pid \d+\) listening/);
    const pids = await pollUntil(async () => {
      const p = await workerPids(b.url);
      return p.size === 2 ? p : undefined;
    }, 20_000);
    expect(pids.has(b.pid)).toBe(false);

    // A call on one worker; the other worker is killed under it: the call goes on.
    const clip = await ulawClip('caller-barge-in.8k-ulaw.wav');
    const call = runSimulatedCall({ url: b.streamUrl, audio: clip, customParameters: { format: 'ulaw' }, tailMs: 6000, timeoutMs: 40_000 });
    const busy = await pollUntil(async () => {
      const r = await readyzFresh(b.url);
      return r.body.activeCalls === 1 ? (r.body.pid as number) : undefined;
    }, 10_000, 20);
    const idle = [...pids].find((p) => p !== busy)!;
    process.kill(idle, 'SIGKILL');
    await b.waitFor(new RegExp(`worker ${idle} died \\(SIGKILL\\); restarting`));
    const after = await pollUntil(async () => {
      const p = await workerPids(b.url);
      return p.size === 2 && !p.has(idle) ? p : undefined;
    }, 20_000);
    expect(after.has(busy)).toBe(true);

    b.proc.kill('SIGTERM');
    await b.waitFor(/SIGTERM — draining 2 workers/);
    const done = await call;
    expect(done.outcome).toBe('completed');
    // All of the echo heard, byte for byte (gaps not asserted: the restarted worker compiles
    // TypeScript at start-up, which can starve a tick on a loaded 2-core box).
    expect(echoedExactly(done, clip)).toBe(true);
    const exit = await Promise.race([b.exited, new Promise<never>((_, rej) => setTimeout(() => rej(new Error('no exit')), 20_000))]);
    expect(exit).toEqual({ code: 0, signal: null });
    // Only the killed worker "died"; the drained ones exited as asked and were not restarted.
    expect(b.output().match(/died/g)?.length).toBe(1);
  });

  it('rejects a bad --workers value with exit 2', async () => {
    const p = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'src', 'cli.ts'), 'start', '--workers', 'many'], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((r) => p.once('exit', r));
    expect(code).toBe(2);
    expect(err).toContain('--workers must be an integer');
  });

  it('metrics hook: a worker gets the aggregate from the primary over IPC', async () => {
    const p = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'fixtures', 'cluster-metrics-entry.ts')], {
      cwd: repoRoot,
      env: { PATH: process.env.PATH ?? '', BRIDGE_LOG_LEVEL: 'warn', PORT: '0', HOST: '127.0.0.1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    try {
      await pollUntil(async () => (out.match(/got \[text\/plain; version=0\.0\.4\] aggregate from primary \d+ #\d/g)?.length ?? 0) === 2, 20_000);
      p.kill('SIGTERM');
      const code = await new Promise<number | null>((r) => p.once('exit', r));
      expect(code).toBe(0);
      expect(out).toContain('primary exit 0');
    } finally {
      if (p.exitCode === null) p.kill('SIGKILL');
    }
  });
});
