/**
 * Two bridge instances (child processes) behind a real nginx on loopback, configured
 * as docs/operations/scaling.md says. Calls through nginx spread across both; one
 * instance is stopped (SIGTERM, SIGKILL after a bound) while calls run on both: the
 * survivor's calls complete untouched, with no gap, and new calls land on the survivor.
 *
 * nginx must be installed (scripts/ci-nginx.sh installs Debian's package): without it
 * this test FAILS — it is never skipped.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runSimulatedCall, type SimulatedCallResult } from '../../src/sim/simulator.js';
import { ulawClip } from '../bridge/helpers.js';
import { callSid, echoedExactly, pollUntil, postVoice, startChildBridge, type ChildBridge } from './child-bridge.js';

function findNginx(): string | undefined {
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/local/sbin', '/usr/local/nginx/sbin']) {
    const p = join(dir, 'nginx');
    if (dir && existsSync(p)) return p;
  }
  return undefined;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** The config from docs/operations/scaling.md, with loopback ports and temp-dir paths. */
function nginxConf(dir: string, listenPort: number, upstreams: number[]): string {
  return `worker_processes 1;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  access_log ${dir}/access.log;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;

  map $http_upgrade $connection_upgrade {
    default upgrade;
    ''      close;
  }

  upstream voice_bridge {
${upstreams.map((p) => `    server 127.0.0.1:${p} max_fails=1 fail_timeout=10s;`).join('\n')}
  }

  server {
    listen 127.0.0.1:${listenPort};

    location / {
      proxy_pass http://voice_bridge;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $http_host;
      proxy_connect_timeout 2s;
      proxy_read_timeout 3600s;
      proxy_send_timeout 3600s;
      proxy_buffering off;
      proxy_next_upstream error timeout http_502 http_503;
      proxy_next_upstream_tries 2;
    }
  }
}
`;
}

async function activeCallSids(b: ChildBridge): Promise<Set<string>> {
  const r = await fetch(`${b.url}/calls`);
  const body = (await r.json()) as { calls: { callSid: string | null }[] };
  return new Set(body.calls.map((c) => c.callSid).filter((s): s is string => s !== null));
}

const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

describe('two instances behind nginx', () => {
  it('calls spread across both; stopping one leaves the other\'s calls untouched and new calls land on the survivor', async () => {
    const nginx = findNginx();
    expect(nginx, 'nginx is not installed: run scripts/ci-nginx.sh (installs Debian\'s nginx)').toBeDefined();

    // A 200 ms playout lead (default 80): the proxy adds a hop, and this 2-core CI box runs other
    // suites beside this one; a scheduling stall under 180 ms must not read as a gap here.
    const a = await startChildBridge({ BRIDGE_DRAIN_TIMEOUT_MS: '1000', BRIDGE_PLAYOUT_LEAD_MS: '200' });
    cleanups.push(() => a.kill());
    const b = await startChildBridge({ BRIDGE_DRAIN_TIMEOUT_MS: '30000', BRIDGE_PLAYOUT_LEAD_MS: '200' });
    cleanups.push(() => b.kill());

    const dir = await mkdtemp(join(tmpdir(), 'vb-nginx-'));
    await chmod(dir, 0o755); // nginx workers run as an unprivileged user when the master is root
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const port = await freePort();
    await writeFile(join(dir, 'nginx.conf'), nginxConf(dir, port, [a.port, b.port]));
    const check = spawnSync(nginx!, ['-t', '-p', dir, '-c', join(dir, 'nginx.conf'), '-g', `daemon off; pid ${dir}/nginx.pid;`], { encoding: 'utf8' });
    expect(check.status, check.stderr).toBe(0);
    const proc: ChildProcess = spawn(nginx!, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', `daemon off; pid ${dir}/nginx.pid;`], { stdio: 'ignore' });
    cleanups.push(() => {
      if (proc.exitCode === null) proc.kill('SIGTERM');
    });
    const lb = `http://127.0.0.1:${port}`;
    const lbStream = `ws://127.0.0.1:${port}/twilio/stream`;
    await pollUntil(async () => (await fetch(`${lb}/healthz`)).ok, 10_000);

    // The webhook through nginx: the TwiML points Twilio back at the public side (Host and proto forwarded).
    const twiml = await postVoice(lb);
    expect(twiml.text).toContain(`<Stream url="ws://127.0.0.1:${port}/twilio/stream"`);

    const clip = await ulawClip('caller-barge-in.8k-ulaw.wav');
    const call = (tailMs: number) => runSimulatedCall({ url: lbStream, audio: clip, callSid: callSid(), customParameters: { format: 'ulaw' }, tailMs, timeoutMs: 60_000 });

    // Four calls: nginx's round robin puts two on each instance.
    const first: Promise<SimulatedCallResult>[] = [];
    for (let i = 0; i < 4; i++) {
      first.push(call(9000));
      await pollUntil(async () => (await activeCallSids(a)).size + (await activeCallSids(b)).size === i + 1, 10_000, 20);
    }
    const onA = await activeCallSids(a);
    const onB = await activeCallSids(b);
    expect(onA.size).toBeGreaterThanOrEqual(1);
    expect(onB.size).toBeGreaterThanOrEqual(1);
    expect(onA.size + onB.size).toBe(4);

    // Stop A: SIGTERM, SIGKILL if it has not exited within a bound.
    a.proc.kill('SIGTERM');
    const killTimer = setTimeout(() => a.kill(), 15_000);
    // While A drains, a new call through nginx lands on B (A's 503 on the upgrade is retried there).
    const during = call(4500);
    const aExit = await a.exited;
    clearTimeout(killTimer);
    expect(aExit).toEqual({ code: 0, signal: null });

    // After A is gone: new calls land on the survivor.
    const later = [call(4500), call(4500)];
    const laterSids = await Promise.all(later.map(async (p) => (await p).callSid));
    const duringRes = await during;
    const firstRes = await Promise.all(first);

    for (const r of firstRes) {
      if (onB.has(r.callSid)) {
        // The survivor's calls: untouched — completed, nothing lost, no gap.
        expect(r.outcome).toBe('completed');
        expect(r.gaps).toEqual([]);
        expect(r.protocolErrors).toEqual([]);
        expect(echoedExactly(r, clip)).toBe(true);
      } else {
        expect(onA.has(r.callSid)).toBe(true);
        expect(r.outcome).toBe('server-closed'); // A's drain timeout: goodbye, then closed
      }
    }
    expect(duringRes.outcome).toBe('completed');
    expect(echoedExactly(duringRes, clip)).toBe(true);
    for (const p of later) {
      const r = await p;
      expect(r.outcome).toBe('completed');
      expect(echoedExactly(r, clip)).toBe(true);
    }
    // Where they ran: B's record of every later call.
    for (const sid of [duringRes.callSid, ...laterSids]) {
      const rec = await fetch(`${b.url}/calls/${sid}`);
      expect(rec.status, `call ${sid} should have run on the survivor`).toBe(200);
    }
    const log = await readFile(join(dir, 'error.log'), 'utf8').catch(() => '');
    expect(log).not.toMatch(/\[emerg\]/);
  });
});
