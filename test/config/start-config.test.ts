/**
 * The configuration as a real `voice-bridge start` process sees it (node --import tsx
 * src/cli.ts start): one start reports every problem and exits 78 (EX_CONFIG), and
 * --env-file values are used, with the real environment winning.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { run } from '../../src/cli.js';
import { applyEnvFiles, EnvFileError, takeEnvFileOption } from '../../src/env-file.js';
import { runCli, tmpFile as tmpFileIn } from '../helpers/run-cli.js';
import { postVoice, startChildBridge, type ChildBridge } from '../lifecycle/child-bridge.js';

/** Runs `voice-bridge start …` to its exit; resolves with the code and what it wrote. */
const runStart = (env: Record<string, string>, args: string[] = []) =>
  runCli(['start', ...args], { HOST: '127.0.0.1', BRIDGE_DATA_DIR: mkdtempSync(join(tmpdir(), 'vb-config-data-')), ...env });

const tmpFile = (name: string, text: string) => tmpFileIn('vb-env-file-', name, text);

let bridge: ChildBridge | undefined;
afterEach(async () => {
  if (bridge) {
    bridge.proc.kill('SIGTERM');
    await bridge.exited;
    bridge = undefined;
  }
});

describe('voice-bridge start: one configuration pass', () => {
  it('PORT=abc BRIDGE_RECORD=maybe DATABASE_URL=bogus: one start reports all three and exits 78', async () => {
    const r = await runStart({ PORT: 'abc', BRIDGE_RECORD: 'maybe', DATABASE_URL: 'bogus' });
    expect(r.code).toBe(78);
    expect(r.stderr).toContain('PORT="abc": must be an integer from 0 to 65535');
    expect(r.stderr).toContain('BRIDGE_RECORD="maybe": must be 1/0, true/false, yes/no or on/off');
    expect(r.stderr).toContain('DATABASE_URL: must be a postgres://');
    expect(r.stderr).not.toContain('bogus'); // the URL may carry a password: named, never quoted
    expect(r.stdout).toBe('');
  }, 60_000);

  it('a bad BRIDGE_WORKERS is listed with the other problems (78), like any variable (a bad --workers flag stays a usage error, exit 2: test/lifecycle/cluster.test.ts)', async () => {
    const r = await runStart({ BRIDGE_WORKERS: 'many', PORT: 'abc' });
    expect(r.code).toBe(78);
    expect(r.stderr).toContain('BRIDGE_WORKERS="many": must be an integer from 1 to 256, or "auto"');
    expect(r.stderr).toContain('PORT="abc"');
  }, 60_000);

  it('--env-file: the file\'s values are used, and a variable already in the environment wins over it', async () => {
    const file = tmpFile('.env', ['# a comment', 'PORT=abc', 'BRIDGE_RECORD=maybe', 'export BRIDGE_ECHO_SILENCE_MS="5"', ''].join('\n'));
    const r = await runStart({ PORT: '0', BRIDGE_ECHO_SILENCE_MS: '700' }, ['--env-file', file]);
    expect(r.code).toBe(78);
    expect(r.stderr).toContain('BRIDGE_RECORD="maybe"'); // from the file
    expect(r.stderr).not.toContain('PORT='); // the environment's PORT=0 won
    expect(r.stderr).not.toContain('BRIDGE_ECHO_SILENCE_MS');
  }, 60_000);

  it('--env-file: a bridge starts with the file\'s settings (its instance id routes the streams)', async () => {
    const file = tmpFile('bridge.env', 'BRIDGE_INSTANCE_ID=from-env-file\nPORT=1\n');
    bridge = await startChildBridge({ PORT: '0' }, [`--env-file=${file}`]);
    expect(bridge.port).not.toBe(1);
    const twiml = await postVoice(bridge.url);
    expect(twiml.status).toBe(200);
    expect(twiml.text).toContain('/twilio/stream/from-env-file');
  }, 60_000);

  it('--env-file with a missing file stops the start instead of starting without it', async () => {
    const missing = join(tmpdir(), 'no-such-dir-vb', '.env');
    // In process: the CLI's own check, a configuration error.
    expect(await run(['start', '--env-file', missing])).toBe(78);
    // As a process, Node itself may get there first: it scans the script's arguments for
    // --env-file too (nodejs/node#54232) and exits 9 on a missing file. Either way, no start.
    const r = await runStart({ PORT: '0' }, ['--env-file', missing]);
    expect([9, 78]).toContain(r.code);
    expect(r.stderr).toContain(missing);
    expect(r.stdout).toBe('');
  }, 60_000);
});

describe('env files', () => {
  it('takeEnvFileOption takes every --env-file (both spellings) and leaves the rest', () => {
    expect(takeEnvFileOption(['--workers', '2', '--env-file', 'a.env', '--env-file=b.env'])).toEqual({ argv: ['--workers', '2'], paths: ['a.env', 'b.env'] });
    expect(() => takeEnvFileOption(['--env-file'])).toThrow(EnvFileError);
    expect(() => takeEnvFileOption(['--env-file='])).toThrow(EnvFileError);
  });

  it('applyEnvFiles: the environment wins, a later file wins over an earlier one, quotes and comments as dotenv', () => {
    const a = tmpFile('a.env', 'A=from-a\nB=from-a\nC="quoted # not a comment"\n# D=commented\n');
    const b = tmpFile('b.env', "B=from-b\nE='single'\n");
    const env: NodeJS.ProcessEnv = { A: 'real' };
    expect(applyEnvFiles([a, b], env).sort()).toEqual(['B', 'C', 'E']);
    expect(env).toEqual({ A: 'real', B: 'from-b', C: 'quoted # not a comment', E: 'single' });
  });
});
