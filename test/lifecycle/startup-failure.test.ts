/**
 * A bridge that cannot start (its port is taken) rejects with the error and releases
 * what it had opened — the DSP pool's worker threads, the call store's worker — so a
 * supervisor sees the process exit instead of a half-started one that never does.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from './child-bridge.js';

describe('start-up failure', () => {
  it('port in use: startBridge rejects with EADDRINUSE and the process exits by itself', async () => {
    const proc = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'test', 'lifecycle', 'fixtures', 'start-on-busy-port.ts')], {
      cwd: repoRoot,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', BRIDGE_DSP: process.env.BRIDGE_DSP ?? 'auto', BRIDGE_DATA_DIR: mkdtempSync(join(tmpdir(), 'vb-startfail-')) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exit = await new Promise<number | 'hung'>((resolve) => {
      const t = setTimeout(() => {
        proc.kill('SIGKILL');
        resolve('hung');
      }, 20_000);
      proc.once('exit', (code) => {
        clearTimeout(t);
        resolve(code ?? -1);
      });
    });
    expect(out).toContain('REJECTED EADDRINUSE');
    expect(exit).toBe(0);
  }, 30_000);
});
