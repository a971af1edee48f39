/**
 * A recording abandoned mid-call (the disk refuses a write) leaves no unreferenced
 * WAV of caller audio behind: the partial file is deleted and the call record has no
 * recording path (before: the file stayed, pointed at by nothing). A real bridge
 * process whose file size limit (RLIMIT_FSIZE, `ulimit -f`) stands in for a full
 * disk: a write past it fails with EFBIG (Node ignores SIGXFSZ).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runSimulatedCall } from '../../src/sim/simulator.js';
import { ulawClip } from '../bridge/helpers.js';
import { pollUntil, repoRoot } from '../lifecycle/child-bridge.js';

const procs: ReturnType<typeof spawn>[] = [];
afterEach(() => {
  for (const p of procs.splice(0)) if (p.exitCode === null) p.kill('SIGKILL');
});

describe('abandoned recordings', () => {
  it('a write the disk refuses mid-call: the call goes on, the partial WAV is deleted, the record names no recording', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vb-rec-full-'));
    // 96 KiB per file: a stereo 8 kHz recording (32 KB/s) passes it after about 3 s.
    const p = spawn('bash', ['-c', `ulimit -f 96; exec "${process.execPath}" --import tsx src/cli.ts start`], {
      cwd: repoRoot,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', PORT: '0', HOST: '127.0.0.1', BRIDGE_LOG_LEVEL: 'warn', BRIDGE_RECORD: '1', BRIDGE_RECORD_DIR: dir, BRIDGE_CALL_RECORDS: 'off', BRIDGE_DSP: process.env.BRIDGE_DSP ?? 'auto' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    procs.push(p);
    let out = '';
    p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const url = await pollUntil(async () => /listening on (http:\/\/[^\s]+:\d+)/.exec(out)?.[1], 30_000, 50);
    const clip = await ulawClip('caller-order-status.8k-ulaw.wav'); // ~5.7 s
    const r = await runSimulatedCall({ url: `${url.replace(/^http/, 'ws')}/twilio/stream`, audio: clip, customParameters: { format: 'ulaw' }, tailMs: 2000, timeoutMs: 40_000 });
    expect(r.outcome).toBe('completed'); // the call itself is unaffected
    expect(out).toMatch(/recording abandoned: could not write the file/);
    const rec = await pollUntil(async () => {
      const body = (await (await fetch(`${url}/calls/${r.callSid}`)).json()) as { state?: string; recordingPath?: string | null };
      return body.state === 'closed' ? body : undefined;
    }, 10_000, 50);
    expect(rec.recordingPath ?? null).toBeNull();
    expect(readdirSync(dir).filter((f) => f.endsWith('.wav'))).toEqual([]); // before: the partial WAV stayed
  });
});
