/**
 * The package as a user gets it: `npm pack` → install the tarball into an empty folder
 * → `npx voice-bridge start` answers /readyz, with the native DSP core when the
 * repository's addon is built (its prebuilt file ships in the package), the TS core
 * otherwise, saying which; the entry exports the bridge, the agent interface and the DSP.
 *
 * The install takes its dependencies from npm's cache when it has them
 * (--prefer-offline); optional ones (better-sqlite3, a from-source build) are left out:
 * the bridge then says it uses the WASM SQLite driver.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../lifecycle/child-bridge.js';

function sh(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env, timeoutMs = 600_000): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) =>
    execFile(cmd, args, { cwd, env, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (e, stdout, stderr) => (e ? reject(new Error(`${cmd} ${args.join(' ')} failed: ${e.message}\n${stdout}\n${stderr}`)) : resolve({ stdout, stderr }))),
  );
}

let bridge: ChildProcess | undefined;
afterAll(() => {
  // npx and the bridge it started are one process group (detached): nothing outlives the test.
  if (bridge?.pid !== undefined) {
    try {
      process.kill(-bridge.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
});

describe('npm pack → install → start', () => {
  it('the tarball installs into an empty folder, `npx voice-bridge start` is ready, the entry exports the bridge', async () => {
    await sh(process.execPath, [join(repoRoot, 'scripts', 'build-if-stale.mjs')], repoRoot);
    const work = mkdtempSync(join(tmpdir(), 'vb-pack-'));
    const { stdout } = await sh('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], repoRoot);
    const [packed] = JSON.parse(stdout) as [{ filename: string; files: { path: string }[] }];
    const files = new Set(packed.files.map((f) => f.path));
    for (const f of ['scripts/install-native.mjs', 'assets/prompts/apology.8k-ulaw.wav', 'assets/prompts/goodbye.8k-ulaw.wav', 'dist/cli.js', 'dist/index.js', 'dist/index.d.ts', 'native/dsp-node/index.cjs', 'native/Cargo.toml', 'native/dsp-core/src/lib.rs']) expect(files, f).toContain(f);
    const nativeBuilt = existsSync(join(repoRoot, 'native', 'dsp-node', 'voice-bridge-dsp.linux-x64-gnu.node'));
    if (nativeBuilt) expect(files).toContain('native/dsp-node/voice-bridge-dsp.linux-x64-gnu.node');
    expect([...files].filter((f) => f.startsWith('test/') || f.startsWith('native/target/') || f === 'dist/.build-stamp')).toEqual([]);

    const app = join(work, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true, type: 'module' }));
    const env: NodeJS.ProcessEnv = { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' };
    delete env.BRIDGE_DSP_ADDON;
    const install = await sh('npm', ['install', '--prefer-offline', '--omit=optional', '--foreground-scripts', join(work, packed.filename)], app, env);
    // The install hook said what it did with the addon.
    expect(install.stdout + install.stderr).toMatch(nativeBuilt ? /native DSP addon: the prebuilt linux-x64 build loads/ : /\[voice-bridge\] .*(fallback|native DSP addon built)/);

    // The entry: the bridge, the agent interface and the DSP, with types.
    const probe = await sh(process.execPath, ['--input-type=module', '-e', "const m = await import('voice-bridge'); console.log(JSON.stringify(Object.fromEntries(['startBridge','loadDsp','AgentSession','loadConfig','BridgeError'].map((k) => [k, typeof m[k]]))))"], app, env);
    expect(JSON.parse(probe.stdout)).toEqual({ startBridge: 'function', loadDsp: 'function', AgentSession: 'function', loadConfig: 'function', BridgeError: 'function' });
    expect(existsSync(join(app, 'node_modules', 'voice-bridge', 'dist', 'index.d.ts'))).toBe(true);

    // npx voice-bridge start: ready, and says which DSP core it runs.
    const dataDir = mkdtempSync(join(tmpdir(), 'vb-pack-data-'));
    bridge = spawn('npx', ['--no', 'voice-bridge', 'start'], { cwd: app, env: { PATH: env.PATH, HOME: env.HOME, PORT: '0', HOST: '127.0.0.1', BRIDGE_DATA_DIR: dataDir, BRIDGE_LOAD_THRESHOLD: 'off' }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let out = '';
    bridge.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    bridge.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const url = await new Promise<string>((resolve, reject) => {
      const check = () => {
        const m = /listening on (http:\/\/\S+?)(?:\s|$)/.exec(out);
        if (m) resolve(m[1]!);
      };
      bridge!.stdout!.on('data', check);
      bridge!.stderr!.on('data', check);
      bridge!.once('exit', (code) => reject(new Error(`exited ${code} before listening:\n${out}`)));
    });
    const ready = (await (await fetch(`${url}/readyz`)).json()) as { ready: boolean; dsp: { backend: string; fallbackReason: string | null } };
    expect(ready.ready).toBe(true);
    expect(ready.dsp.backend, JSON.stringify(ready.dsp)).toBe(nativeBuilt ? 'native' : 'ts');
    // npm exec re-raises the signal its child got; the bridge itself drains and exits 0.
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => bridge!.once('exit', (code, signal) => r({ code, signal })));
    process.kill(-bridge.pid!, 'SIGTERM'); // the group: npx and the bridge, as a terminal's Ctrl-C or a supervisor would
    expect([{ code: 0, signal: null }, { code: null, signal: 'SIGTERM' }]).toContainEqual(await exited);
  });
});
