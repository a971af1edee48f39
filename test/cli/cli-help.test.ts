/**
 * Every command answers --help and --version (exit 0, usage on stdout, no stack
 * trace); a bad option is a usage error (exit 2, the message and the usage on stderr).
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { run } from '../../src/cli.js';
import { repoRoot } from '../lifecycle/child-bridge.js';

const version = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
const COMMANDS = ['start', 'simulate', 'call', 'doctor', 'tts', 'calls', 'profiles'];

let out: string;
let err: string;
beforeEach(() => {
  out = '';
  err = '';
  vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void (out += a.join(' ') + '\n'));
  vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void (err += a.join(' ') + '\n'));
});
afterEach(() => vi.restoreAllMocks());

describe('voice-bridge CLI help and version', () => {
  it('--help, -h and "help <command>" print each command\'s usage and exit 0, without running it', async () => {
    for (const cmd of COMMANDS) {
      for (const argv of [[cmd, '--help'], [cmd, '-h'], ['help', cmd], [cmd, '--agent', 'x', '--help']]) {
        out = '';
        expect(await run(argv), argv.join(' ')).toBe(0);
        expect(out, argv.join(' ')).toMatch(new RegExp(`^usage: voice-bridge ${cmd}\\b`));
      }
    }
    for (const argv of [['--help'], ['-h'], ['help']]) {
      out = '';
      expect(await run(argv)).toBe(0);
      for (const cmd of COMMANDS) expect(out).toMatch(new RegExp(`\\n  ${cmd}\\s+\\S`));
    }
    expect(err).toBe('');
  });

  it('--version and -V print the package version, alone or after any command', async () => {
    for (const argv of [['--version'], ['-V'], ...COMMANDS.map((c) => [c, '--version'])]) {
      out = '';
      expect(await run(argv), argv.join(' ')).toBe(0);
      expect(out).toBe(`${version}\n`);
    }
  });

  it('an unknown option or command is a usage error (exit 2) that names it, with the usage', async () => {
    expect(await run(['call', '+15551234567', '--bogus'])).toBe(2);
    expect(err).toMatch(/voice-bridge call: Unknown option '--bogus'/);
    expect(err).toMatch(/usage: voice-bridge call/);
    err = '';
    expect(await run(['start', '--workers'])).toBe(2);
    expect(err).toMatch(/voice-bridge start: .*--workers/);
    err = '';
    expect(await run(['frobnicate'])).toBe(2);
    expect(err).toMatch(/unknown command "frobnicate"/);
    expect(err + out).not.toMatch(/\n\s+at /); // no stack trace
  });

  it('as a process: "call --help" and "--version" exit 0 with no stack trace', async () => {
    const cli = (args: string[]) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
        execFile(process.execPath, ['--import', 'tsx', join(repoRoot, 'src', 'cli.ts'), ...args], { cwd: repoRoot, timeout: 60_000 }, (e, stdout, stderr) => resolve({ code: e ? ((e as { code?: number }).code ?? 1) : 0, stdout, stderr })),
      );
    const [help, ver] = await Promise.all([cli(['call', '--help']), cli(['--version'])]);
    expect(help).toMatchObject({ code: 0, stderr: '' });
    expect(help.stdout).toMatch(/^usage: voice-bridge call/);
    expect(ver).toEqual({ code: 0, stdout: `${version}\n`, stderr: '' });
  });
});
