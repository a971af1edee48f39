/**
 * A real `voice-bridge start` in a child process (node --import tsx src/cli.ts start),
 * for the lifecycle tests: signals, exit codes, several instances, cluster workers.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';

export const repoRoot = join(import.meta.dirname, '..', '..');

export interface ChildBridge {
  proc: ChildProcess;
  pid: number;
  url: string;
  streamUrl: string;
  port: number;
  /** Everything the process wrote so far (stdout + stderr). */
  output(): string;
  /** What it wrote on stdout alone (the JSON log lines in server mode). */
  stdout(): string;
  /** Resolves when the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves when `re` matches the output (rejects after `timeoutMs`). */
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** SIGKILL if still running (test clean-up). */
  kill(): void;
}

/** `launcher`: a command the bridge runs under (e.g. `['taskset', '-c', '0']`); `pid` is then the launcher's. */
export async function startChildBridge(env: Record<string, string>, args: string[] = [], startTimeoutMs = 30_000, launcher: string[] = []): Promise<ChildBridge> {
  const [cmd, ...pre] = [...launcher, process.execPath];
  const proc = spawn(cmd!, [...pre, '--import', 'tsx', join(repoRoot, 'src', 'cli.ts'), 'start', ...args], {
    cwd: repoRoot,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      PORT: '0',
      HOST: '127.0.0.1',
      BRIDGE_LOG_LEVEL: 'warn',
      BRIDGE_DSP: process.env.BRIDGE_DSP ?? 'auto',
      // The load gate off unless a test sets it: a busy CI box would refuse the calls a test relies on.
      BRIDGE_LOAD_THRESHOLD: 'off',
      // Call records in a throwaway dir, never the repository's ./data.
      BRIDGE_DATA_DIR: mkdtempSync(join(tmpdir(), 'vb-child-data-')),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const waiters = new Set<() => void>();
  const onData = (d: Buffer) => {
    out += d.toString();
    for (const w of [...waiters]) w();
  };
  let stdout = '';
  proc.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  proc.stdout!.on('data', onData);
  proc.stderr!.on('data', onData);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    proc.once('exit', (code, signal) => {
      for (const w of [...waiters]) w();
      resolve({ code, signal });
    });
  });
  const waitFor = (re: RegExp, timeoutMs = 15_000) =>
    new Promise<RegExpMatchArray>((resolve, reject) => {
      const check = () => {
        const m = out.match(re);
        if (m) {
          cleanup();
          resolve(m);
        } else if (proc.exitCode !== null || proc.signalCode !== null) {
          cleanup();
          reject(new Error(`process exited before ${re} appeared; output:\n${out}`));
        }
      };
      const t = setTimeout(() => {
        cleanup();
        reject(new Error(`${re} did not appear within ${timeoutMs} ms; output:\n${out}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(t);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });
  const kill = () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  };
  let m: RegExpMatchArray;
  try {
    m = await waitFor(/listening on (http:\/\/[^\s:]+:(\d+))/, startTimeoutMs);
  } catch (e) {
    kill();
    throw e;
  }
  const url = m[1]!;
  return { proc, pid: proc.pid!, url, streamUrl: `${url.replace(/^http/, 'ws')}/twilio/stream`, port: Number(m[2]), output: () => out, stdout: () => stdout, exited, waitFor, kill };
}

/**
 * A bound on waiting for a state that is a guard against a hang, not a speed check: never
 * tighter than this, so a loaded box (three Node versions in a row in CI, helpers beside
 * them) is not mistaken for a broken bridge. It stays under the 60 s test timeout so a
 * real hang still fails with this message.
 */
const WAIT_FLOOR_MS = 45_000;

/** Polls `fn` every `everyMs` until it returns a truthy value (bounded by at least WAIT_FLOOR_MS). */
export async function pollUntil<T>(fn: () => Promise<T | undefined | false>, timeoutMs = WAIT_FLOOR_MS, everyMs = 50): Promise<T> {
  timeoutMs = Math.max(timeoutMs, WAIT_FLOOR_MS);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export function form(params: Record<string, string>): string {
  return new URLSearchParams(params).toString();
}

export function callSid(): string {
  return 'CA' + Array.from({ length: 32 }, () => Math.floor(Math.random() * 16).toString(16)).join('');
}

export async function postVoice(baseUrl: string, sid = callSid(), headers: Record<string, string> = {}): Promise<{ status: number; text: string; headers: Headers }> {
  const r = await fetch(`${baseUrl}/twilio/voice`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: form({ CallSid: sid, From: '+15551230000', To: '+15557650000' }) });
  return { status: r.status, text: await r.text(), headers: r.headers };
}

/** μ-law passthrough echo: everything the caller heard is a contiguous run of what they said — nothing lost or altered. */
export function echoedExactly(r: EchoedCall, said: Uint8Array): boolean {
  return echoMismatch(r, said) === undefined;
}

type EchoedCall = { heard: Uint8Array; heardSegments: { startMs: number; endMs: number }[]; durationMs?: number; unplayedBytes?: number; gaps?: { atMs: number; durationMs: number }[] };

/**
 * Why what the caller heard is not an exact echo of what they said (undefined when it is), with
 * the call's timing, so a failure says whether audio was altered or only cut short.
 */
export function echoMismatch(r: EchoedCall, said: Uint8Array): string | undefined {
  const reply = Buffer.concat(r.heardSegments.map((s) => r.heard.subarray(Math.round(s.startMs * 8), Math.round(s.endMs * 8))));
  const timing = `heard segments ${JSON.stringify(r.heardSegments)}, call ${r.durationMs} ms, unplayed ${r.unplayedBytes} B, gaps ${JSON.stringify(r.gaps ?? [])}`;
  if (reply.length < said.length * 0.8) return `heard ${reply.length} B of agent audio, under 80 % of the ${said.length} B said; ${timing}`;
  const at = Buffer.from(said).indexOf(Buffer.from(reply.subarray(0, 800)));
  if (at < 0) return `the first 100 ms heard is nowhere in what was said; ${timing}`;
  if (!Buffer.from(reply).equals(Buffer.from(said.subarray(at, at + reply.length)))) return `heard audio differs from what was said (from byte ${at}); ${timing}`;
  return undefined;
}
