/**
 * BRIDGE_GC (src/gc-mode.ts): a bridge with one CPU to itself runs V8's single-threaded GC,
 * whose helper threads would otherwise preempt its event loop on that CPU. Real `voice-bridge
 * start` processes, confined to one CPU with `taskset` (util-linux): the flag reaches the
 * process that serves (a child of `start`, or each cluster worker), the child drains on the
 * parent's signal and exits with it, and a signal that reaches both processes at once (as
 * Ctrl-C and systemd's control-group kill do) starts one drain, not a drain cut short.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cgroupCpus, relaunchArgs, resolveGcMode, SINGLE_THREADED_GC_FLAG } from '../../src/gc-mode.js';
import { runSimulatedCall } from '../../src/sim/simulator.js';
import { ulawClip } from '../bridge/helpers.js';
import { pollUntil, repoRoot, startChildBridge } from './child-bridge.js';

const ONE_CPU = ['taskset', '-c', '0'];

type Readyz = { gc: string; pid: number; worker: number | null; activeCalls: number };
async function readyz(url: string): Promise<Readyz> {
  const r = await fetch(`${url}/readyz`);
  return (await r.json()) as Readyz;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('BRIDGE_GC: which GC a process gets', () => {
  it('counts CPUs from the cgroup quota (v2, then v1), none when unlimited or unreadable', () => {
    const files = (m: Record<string, string>) => (p: string) => m[p];
    expect(cgroupCpus(files({ '/sys/fs/cgroup/cpu.max': 'max 100000\n' }))).toBe(Infinity);
    expect(cgroupCpus(files({ '/sys/fs/cgroup/cpu.max': '150000 100000\n' }))).toBe(1.5);
    expect(cgroupCpus(files({ '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '50000\n', '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000\n' }))).toBe(0.5);
    expect(cgroupCpus(files({ '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '-1\n', '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000\n' }))).toBe(Infinity);
    expect(cgroupCpus(files({}))).toBe(Infinity);
  });

  it('auto: single-threaded at one CPU or less per process; the explicit settings win; relaunch only to add the flag', () => {
    expect(resolveGcMode('auto', 1)).toBe('single-threaded');
    expect(resolveGcMode('auto', 0.5)).toBe('single-threaded');
    expect(resolveGcMode('auto', 1.5)).toBe('parallel');
    expect(resolveGcMode('parallel', 1)).toBe('parallel');
    expect(resolveGcMode('single-threaded', 8)).toBe('single-threaded');
    expect(relaunchArgs('single-threaded', ['--import', 'tsx'], ['/usr/bin/node', 'cli.ts', 'start'])).toEqual([SINGLE_THREADED_GC_FLAG, '--import', 'tsx', 'cli.ts', 'start']);
    expect(relaunchArgs('single-threaded', [SINGLE_THREADED_GC_FLAG], ['/usr/bin/node', 'cli.ts'])).toBeUndefined();
    expect(relaunchArgs('parallel', [], ['/usr/bin/node', 'cli.ts'])).toBeUndefined();
  });
});

describe('BRIDGE_GC in real processes on one CPU', () => {
  it('auto: the bridge serves from a child with the single-threaded GC; SIGTERM to `start` drains it and both exit 0', async () => {
    const b = await startChildBridge({}, [], 30_000, ONE_CPU);
    try {
      const r = await readyz(b.url);
      expect(r.gc).toBe('single-threaded');
      expect(r.pid).not.toBe(b.pid); // the child serves; `start` stands between it and the signals
      b.proc.kill('SIGTERM');
      await b.waitFor(/SIGTERM — draining/); // the parent names the signal it got
      expect(await b.exited).toEqual({ code: 0, signal: null });
      await pollUntil(async () => !alive(r.pid));
    } finally {
      b.kill();
    }
  }, 60_000);

  it('a SIGTERM while the child is still starting is not lost: it drains once up, and both exit 0', async () => {
    const proc = spawn('taskset', ['-c', '0', process.execPath, '--import', 'tsx', join(repoRoot, 'src', 'cli.ts'), 'start'], {
      cwd: repoRoot,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', PORT: '0', HOST: '127.0.0.1', BRIDGE_LOG_LEVEL: 'warn', BRIDGE_LOAD_THRESHOLD: 'off', BRIDGE_DATA_DIR: mkdtempSync(join(tmpdir(), 'vb-child-data-')) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
    try {
      // The moment `start` has spawned its child (its signal handlers are in place by then), and
      // long before the child has loaded its modules and listens to its parent.
      const childrenOf = (pid: number) => readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
      await pollUntil(async () => childrenOf(proc.pid!) !== '', 45_000, 5);
      proc.kill('SIGTERM');
      expect(await exited, out).toEqual({ code: 0, signal: null });
      expect(out).toMatch(/SIGTERM — draining/);
    } finally {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    }
  }, 60_000);

  it('SIGHUP without a profiles file ends the bridge, as it does without the child', async () => {
    const b = await startChildBridge({}, [], 30_000, ONE_CPU);
    try {
      const child = (await readyz(b.url)).pid;
      b.proc.kill('SIGHUP');
      expect(await b.exited).toEqual({ code: 128 + 1, signal: null }); // the child ended by SIGHUP
      await pollUntil(async () => !alive(child));
    } finally {
      b.kill();
    }
  }, 60_000);

  it('BRIDGE_GC=parallel: no child, node\'s default GC', async () => {
    const b = await startChildBridge({ BRIDGE_GC: 'parallel' }, [], 30_000, ONE_CPU);
    try {
      const r = await readyz(b.url);
      expect(r).toMatchObject({ gc: 'parallel', pid: b.pid });
      b.proc.kill('SIGTERM');
      expect(await b.exited).toEqual({ code: 0, signal: null });
    } finally {
      b.kill();
    }
  }, 60_000);

  it('a SIGTERM that reaches both processes starts one drain: a live call is not cut short', async () => {
    const b = await startChildBridge({ BRIDGE_GC: 'single-threaded', BRIDGE_DRAIN_TIMEOUT_MS: '3000', BRIDGE_LOG_LEVEL: 'info' }, [], 30_000);
    try {
      const child = (await readyz(b.url)).pid;
      const clip = await ulawClip('caller-barge-in.8k-ulaw.wav');
      const call = runSimulatedCall({ url: b.streamUrl, audio: clip, customParameters: { format: 'ulaw' }, tailMs: 60_000, timeoutMs: 90_000 });
      await pollUntil(async () => (await readyz(b.url)).activeCalls === 1);
      // As systemd's control-group kill and a terminal's Ctrl-C do: the signal reaches both at once.
      process.kill(child, 'SIGTERM');
      b.proc.kill('SIGTERM');
      const report = (await b.waitFor(/[^\n]*"msg":"drained"[^\n]*/, 45_000))[0];
      // Drained at the timeout (3 s), with the goodbye: not hurried by the second delivery.
      expect(report).toMatch(/"closedAtTimeout":1/);
      expect(report).toMatch(/"timedOut":true/);
      expect(Number(/"durationMs":(\d+)/.exec(report)![1])).toBeGreaterThanOrEqual(3000);
      expect((await call).outcome).toBe('server-closed');
      expect(await b.exited).toEqual({ code: 0, signal: null });
    } finally {
      b.kill();
    }
  }, 90_000);

  it('a cluster on one CPU: each worker runs the single-threaded GC', async () => {
    const b = await startChildBridge({}, ['--workers', '2'], 45_000, ONE_CPU);
    try {
      const r = await readyz(b.url);
      expect(r.gc).toBe('single-threaded');
      expect(r.worker).not.toBeNull();
      b.proc.kill('SIGTERM');
      expect((await b.exited).code).toBe(0);
    } finally {
      b.kill();
    }
  }, 90_000);
});
