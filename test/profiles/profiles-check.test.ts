/**
 * `voice-bridge profiles check FILE` as a real process (node --import tsx src/cli.ts):
 * exit 0 with `ok: N profiles (names…)`, or every problem on stderr and exit 78 (EX_CONFIG).
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli, tmpFile as tmpFileIn } from '../helpers/run-cli.js';

const fixtures = join(import.meta.dirname, 'fixtures');

const check = (args: string[], env: Record<string, string> = {}) => runCli(['profiles', ...args], env);

const tmpFile = (name: string, text: string) => tmpFileIn('vb-profiles-check-', name, text);

describe('voice-bridge profiles check', () => {
  it('a valid file: "ok: N profiles (names…)", exit 0', async () => {
    const file = tmpFile('p.json', JSON.stringify({ profiles: [{ name: 'support', match: { to: ['+15550001111'] }, agent: 'echo' }, { name: 'fallback', match: { to: '*' }, agent: 'echo' }] }));
    const r = await check(['check', file]);
    expect(r).toEqual({ code: 0, stdout: 'ok: 2 profiles (support, fallback)\n', stderr: '' });
  }, 60_000);

  it("the issue's example: its ${VAR} comes from the environment, or from --env-file", async () => {
    const ok = await check(['check', join(fixtures, 'issue-example.yaml')], { ACME_WEBHOOK_SECRET: 'whsec-test' });
    expect(ok).toEqual({ code: 0, stdout: 'ok: 1 profile (support)\n', stderr: '' });
    const envFile = tmpFile('.env', 'ACME_WEBHOOK_SECRET=from-file\n');
    expect((await check(['check', join(fixtures, 'issue-example.yaml'), '--env-file', envFile])).code).toBe(0);
    const unset = await check(['check', join(fixtures, 'issue-example.yaml')]);
    expect(unset.code).toBe(78);
    expect(unset.stderr).toContain('profiles[0].secret: ${ACME_WEBHOOK_SECRET}: ACME_WEBHOOK_SECRET is not set in the environment (or empty)');
  }, 60_000);

  it('a bad file: every problem on stderr, nothing on stdout, exit 78', async () => {
    const file = tmpFile(
      'p.yaml',
      `profiles:
  - name: support
    match: { to: ["+15550001111"] }
    agent: openai
    tools:
      - { name: lookup_order, description: d }
      - { builtin: transfer_call, to: ["555"] }
  - name: support
    match: { to: "*" }
    agent: echo
    colour: blue
`,
    );
    const r = await check(['check', file]);
    expect(r.code).toBe(78);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      [
        `invalid profiles file ${file}:`,
        '  - profiles[0].tools[0].url: missing (required)',
        '  - profiles[0].tools[1].to[0]: must be an E.164 number like +15550002222 or a sip: URI like sip:desk@pbx.example.com',
        '  - profiles[1].colour: unknown key; allowed here: name, match, agent, options, greeting, tools, events, secret',
        '  - profiles[1].name: duplicate profile name "support" (also profiles[0])',
        '',
      ].join('\n'),
    );
  }, 60_000);

  it('without FILE it checks BRIDGE_PROFILES; a missing file is exit 78; no FILE at all, or no subcommand, is a usage error (2)', async () => {
    const file = tmpFile('p.yaml', 'profiles:\n  - { name: only, match: { to: "*" }, agent: echo }\n');
    expect(await check(['check'], { BRIDGE_PROFILES: file })).toMatchObject({ code: 0, stdout: 'ok: 1 profile (only)\n' });
    const missing = await check(['check', join(tmpdir(), 'vb-no-such-profiles.yaml')]);
    expect(missing.code).toBe(78);
    expect(missing.stderr).toContain('cannot be read: ENOENT');
    const noFile = await check(['check']);
    expect(noFile.code).toBe(2);
    expect(noFile.stderr).toContain('give FILE, or set BRIDGE_PROFILES');
    const noSub = await check([]);
    expect(noSub.code).toBe(2);
    expect(noSub.stderr).toContain('usage: voice-bridge profiles check [FILE]');
  }, 60_000);
});
