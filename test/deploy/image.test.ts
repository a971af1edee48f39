/**
 * The container image without a registry: the Dockerfile is a thin wrapper around
 * scripts/build-image-root.sh, which this test runs as the builder stage does. The
 * runtime tree it makes has production dependencies only, starts with the image's
 * environment and entrypoint, answers the image's HEALTHCHECK command, and drains on
 * the image's STOPSIGNAL. The compose file's bridges and nginx agree on the routing keys.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { repoRoot } from '../lifecycle/child-bridge.js';

const dockerfile = readFileSync(join(repoRoot, 'Dockerfile'), 'utf8');
/** Instructions of the Dockerfile, continuation lines joined, comments dropped. */
const instructions = dockerfile
  .replace(/\\\n/g, ' ')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'))
  .map((l) => {
    const m = /^(\w+)\s+(.*)$/.exec(l)!;
    return { op: m[1]!.toUpperCase(), arg: m[2]! };
  });
const stages = instructions.reduce<{ op: string; arg: string }[][]>((acc, i) => {
  if (i.op === 'FROM') acc.push([]);
  acc[acc.length - 1]!.push(i);
  return acc;
}, []);
const runtime = stages[stages.length - 1]!;
const get = (op: string) => runtime.filter((i) => i.op === op).map((i) => i.arg);

const procs: { kill(sig?: NodeJS.Signals): boolean; exitCode: number | null }[] = [];
afterAll(() => {
  for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
});

describe('container image', () => {
  it('Dockerfile: a builder that runs scripts/build-image-root.sh, a runtime stage without a toolchain, non-root, HEALTHCHECK on /healthz, STOPSIGNAL SIGTERM', () => {
    expect(stages).toHaveLength(2);
    expect(stages[0]!.filter((i) => i.op === 'RUN').map((i) => i.arg)).toContainEqual('bash scripts/build-image-root.sh /app');
    expect(get('RUN').join(' ')).not.toMatch(/apt-get|npm|cargo|rustup/);
    expect(get('USER')).toEqual(['node']);
    expect(get('HEALTHCHECK')[0]).toMatch(/\/healthz/);
    expect(get('STOPSIGNAL')).toEqual(['SIGTERM']);
    expect(existsSync(join(repoRoot, '.dockerignore'))).toBe(true);
  });

  it('the runtime tree: production dependencies only, starts with the image\'s env and entrypoint, healthy by the HEALTHCHECK command, exits 0 on SIGTERM', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'vb-image-')), 'app');
    await new Promise<void>((resolve, reject) =>
      execFile('bash', [join(repoRoot, 'scripts', 'build-image-root.sh'), out], { cwd: repoRoot, timeout: 900_000, maxBuffer: 64 * 1024 * 1024 }, (e, so, se) => (e ? reject(new Error(`${e.message}\n${so}\n${se}`)) : resolve())),
    );
    const pkg = join(out, 'node_modules', 'voice-bridge');
    expect(existsSync(join(pkg, 'dist', 'cli.js'))).toBe(true);
    expect(existsSync(join(pkg, 'native', 'dsp-node', 'voice-bridge-dsp.linux-x64-gnu.node'))).toBe(true);
    for (const dev of ['typescript', 'vitest', 'tsx', '@napi-rs/cli', 'tinybench']) expect(existsSync(join(out, 'node_modules', dev)), dev).toBe(false);

    // The image's environment (ENV), with a free port and a data dir of the test's.
    const env: Record<string, string> = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' };
    for (const e of get('ENV')) for (const m of e.matchAll(/(\w+)=(\S+)/g)) env[m[1]!] = m[2]!;
    expect(env).toMatchObject({ NODE_ENV: 'production', HOST: '0.0.0.0', BRIDGE_DATA_DIR: '/data' });
    Object.assign(env, { PORT: '0', BRIDGE_DATA_DIR: mkdtempSync(join(tmpdir(), 'vb-image-data-')), TWILIO_AUTH_TOKEN: 'test-token', BRIDGE_LOAD_THRESHOLD: 'off' });
    const entry = JSON.parse(get('ENTRYPOINT')[0]!) as string[];
    const cmd = JSON.parse(get('CMD')[0]!) as string[];
    expect(entry).toEqual(['node', '/app/node_modules/voice-bridge/dist/cli.js']);
    const p = spawn(process.execPath, [entry[1]!.replace('/app', out), ...cmd], { cwd: env.BRIDGE_DATA_DIR, env, stdio: ['ignore', 'pipe', 'pipe'] });
    procs.push(p);
    let log = '';
    p.stdout.on('data', (d: Buffer) => (log += d.toString()));
    p.stderr.on('data', (d: Buffer) => (log += d.toString()));
    const exited = new Promise<{ code: number | null; signal: string | null }>((r) => p.once('exit', (code, signal) => r({ code, signal })));
    const port = await new Promise<string>((resolve, reject) => {
      const check = () => {
        const m = /listening on http:\/\/\S+?:(\d+)/.exec(log);
        if (m) resolve(m[1]!);
      };
      p.stdout.on('data', check);
      p.stderr.on('data', check);
      void exited.then((x) => reject(new Error(`exited ${JSON.stringify(x)} before listening:\n${log}`)));
    });
    // The HEALTHCHECK command, as the container runtime would run it.
    const hc = JSON.parse(/CMD (\[.*\])$/.exec(get('HEALTHCHECK')[0]!)![1]!) as string[];
    expect(hc[0]).toBe('node');
    const health = await new Promise<number>((resolve) => execFile(process.execPath, hc.slice(1), { env: { ...env, PORT: port }, timeout: 30_000 }, (e) => resolve(e ? ((e as { code?: number }).code ?? 1) : 0)));
    expect(health, log).toBe(0);
    const ready = (await (await fetch(`http://127.0.0.1:${port}/readyz`)).json()) as { dsp: { backend: string } };
    expect(ready.dsp.backend).toBe('native');
    p.kill(get('STOPSIGNAL')[0] as NodeJS.Signals);
    expect(await exited, log).toEqual({ code: 0, signal: null });
  }, 900_000); // the build: the addon (cargo), TypeScript, and better-sqlite3 from source

  it('compose: two bridges whose instance ids are nginx\'s routing keys, PostgreSQL with a health check, nginx trusted as the only proxy', () => {
    const compose = parse(readFileSync(join(repoRoot, 'deploy', 'compose', 'compose.yaml'), 'utf8'), { merge: true }) as { services: Record<string, { environment?: Record<string, string>; depends_on?: unknown; healthcheck?: unknown; networks?: { default?: { ipv4_address?: string } } }> };
    const nginx = readFileSync(join(repoRoot, 'deploy', 'compose', 'nginx.conf'), 'utf8');
    const bridges = Object.entries(compose.services).filter(([, s]) => s.environment?.BRIDGE_INSTANCE_ID);
    expect(bridges.map(([n]) => n)).toEqual(['bridge-a', 'bridge-b']);
    for (const [name, s] of bridges) {
      const id = s.environment!.BRIDGE_INSTANCE_ID!;
      expect(nginx).toMatch(new RegExp(`\\n\\s+${id}\\s+voice_bridge_\\w+;`));
      expect(nginx).toMatch(new RegExp(`server ${name}:8080 max_fails`));
      expect(s.environment!.DATABASE_URL).toMatch(/^postgres:\/\/.*@postgres:5432\//);
      expect(s.environment!.BRIDGE_TRUST_PROXY).toBe(compose.services.nginx!.networks!.default!.ipv4_address);
    }
    expect(compose.services.postgres!.healthcheck).toBeDefined();
    // The proxy settings are the tested ones (docs/operations/nginx/voice-bridge.conf, test/lifecycle/nginx.test.ts).
    const directives = (conf: string) => [...conf.matchAll(/^\s*(proxy_[a-z_]+ [^;]+;)/gm)].map((m) => m[1]!.replace(/\s+/g, ' '));
    expect(directives(nginx)).toEqual(directives(readFileSync(join(repoRoot, 'docs', 'operations', 'nginx', 'voice-bridge.conf'), 'utf8')));
  });
});
