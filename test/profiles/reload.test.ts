/**
 * The profiles file of a running bridge is reloaded (docs/profiles.md): on change — also
 * when an editor replaces it by rename — and on SIGHUP, without touching live calls; a
 * bad file keeps the previous profiles, logs every problem with BRIDGE_ERR_PROFILES and
 * is counted. A bad file at start is a configuration error (exit 78).
 */
import { writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { ReloadOutcome } from '../../src/profiles/live-profiles.js';
import { getJson, ulawClip, withBridge } from '../bridge/helpers.js';
import { echoedExactly, startChildBridge } from '../lifecycle/child-bridge.js';
import { runCli } from '../helpers/run-cli.js';
import { metricValue, profilesFile, replaceByRename, streamOf, voiceWebhook } from './profiles-helpers.js';

const TO = '+15557650000';
const profilesNamed = (name: string) => `profiles:\n  - name: ${name}\n    match: { to: "*" }\n    agent: echo\n    options: { format: ulaw }\n`;

describe('profiles reload', () => {
  it('on change (a file renamed over the old one): a live call keeps its profile and completes; the next call gets the new one', async () => {
    const file = profilesFile(profilesNamed('first'));
    const said = await ulawClip('caller-barge-in.8k-ulaw.wav'); // 2.48 s
    await withBridge({ BRIDGE_PROFILES: file }, async (bridge) => {
      const profiles = bridge.profiles!;
      expect(profiles.current.map((p) => p.name)).toEqual(['first']);
      const hook = await voiceWebhook(bridge.url, TO);
      expect(hook.parameters.profile).toBe('first');
      // Real time: the call lasts ~6 s, so the reload lands while it is live.
      const call = streamOf(hook, { audio: said, tailMs: 3500, timeoutMs: 30_000 });
      await waitForState(bridge.url, hook.callSid, 'streaming');

      const reloaded = once(profiles, 'reload') as Promise<[ReloadOutcome]>;
      replaceByRename(file, profilesNamed('second'));
      const [outcome] = await reloaded;
      expect(outcome).toMatchObject({ result: 'ok', trigger: 'change', names: ['second'] });
      expect((await getJson(`${bridge.url}/calls/${hook.callSid}`)).body.state).toBe('streaming');

      const r = await call;
      expect(r.outcome).toBe('completed');
      expect(echoedExactly(r, said)).toBe(true); // the agent went on answering across the reload
      expect((await getJson(`${bridge.url}/calls/${hook.callSid}`)).body).toMatchObject({ endReason: 'twilio-stop', customParameters: { profile: 'first' } });

      const next = await voiceWebhook(bridge.url, TO);
      expect(next.parameters.profile).toBe('second');
      const metrics = await (await fetch(`${bridge.url}/metrics`)).text();
      expect(metricValue(metrics, 'voice_bridge_profiles_reloads_total', { result: 'ok' })).toBe(1);
      expect(metricValue(metrics, 'voice_bridge_profiles_reloads_total', { result: 'error' })).toBe(0);
      expect(metricValue(metrics, 'voice_bridge_profiles_loaded')).toBe(1);
    });
  }, 40_000);

  it('a broken file keeps the previous profiles, logs every problem at error level with BRIDGE_ERR_PROFILES, and is counted; fixing it loads it', async () => {
    const file = profilesFile(profilesNamed('first'));
    const lines: Record<string, any>[] = [];
    const logger = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, any>) });
    await withBridge({ BRIDGE_PROFILES: file }, async (bridge) => {
      const profiles = bridge.profiles!;
      let reloaded = once(profiles, 'reload') as Promise<[ReloadOutcome]>;
      writeFileSync(file, 'profiles:\n  - name: broken\n    match: { to: "*" }\n    agent: nosuch\n    colour: blue\n');
      const [bad] = await reloaded;
      expect(bad).toMatchObject({ result: 'error', trigger: 'change', kept: ['first'] });
      expect(bad.result === 'error' && bad.problems).toEqual([expect.stringMatching(/^profiles\[0\]\.colour: unknown key/), expect.stringMatching(/^profiles\[0\]\.agent: must be one of echo/)]);
      expect(profiles.current.map((p) => p.name)).toEqual(['first']);
      expect((await voiceWebhook(bridge.url, TO)).parameters.profile).toBe('first');
      const refused = lines.find((l) => l.code === 'BRIDGE_ERR_PROFILES');
      expect(refused).toMatchObject({ level: 50, file, trigger: 'change', kept: ['first'] });
      expect(refused!.problems).toHaveLength(2);
      let metrics = await (await fetch(`${bridge.url}/metrics`)).text();
      expect(metricValue(metrics, 'voice_bridge_profiles_reloads_total', { result: 'error' })).toBe(1);
      expect(metricValue(metrics, 'voice_bridge_profiles_loaded')).toBe(1);

      reloaded = once(profiles, 'reload') as Promise<[ReloadOutcome]>;
      writeFileSync(file, profilesNamed('fixed'));
      expect((await reloaded)[0]).toMatchObject({ result: 'ok', names: ['fixed'] });
      expect((await voiceWebhook(bridge.url, TO)).parameters.profile).toBe('fixed');
      metrics = await (await fetch(`${bridge.url}/metrics`)).text();
      expect(metricValue(metrics, 'voice_bridge_profiles_reloads_total', { result: 'ok' })).toBe(1);
    }, { logger });
  }, 30_000);

  it('SIGHUP reloads the file in a running `voice-bridge start`, and a bad file on SIGHUP keeps the previous profiles', async () => {
    const file = profilesFile(profilesNamed('first'));
    const b = await startChildBridge({ BRIDGE_PROFILES: file, BRIDGE_LOG_LEVEL: 'info' });
    try {
      expect((await voiceWebhook(b.url, TO)).parameters.profile).toBe('first');
      // Same text: the watch does not reload it; only the signal does.
      b.proc.kill('SIGHUP');
      await b.waitFor(/"trigger":"signal"[^\n]*"msg":"profiles reloaded: 1 from/);
      expect(b.proc.exitCode).toBeNull(); // SIGHUP no longer ends the process

      writeFileSync(file, 'profiles: []\n');
      b.proc.kill('SIGHUP');
      await b.waitFor(/"code":"BRIDGE_ERR_PROFILES"[^\n]*"trigger":"signal"/);
      expect((await voiceWebhook(b.url, TO)).parameters.profile).toBe('first');
    } finally {
      b.kill();
    }
  }, 60_000);

  it('--workers 2: SIGHUP to the primary reloads the file in every worker, and the primary stays up', async () => {
    const file = profilesFile(profilesNamed('first'));
    const b = await startChildBridge({ BRIDGE_PROFILES: file, BRIDGE_LOG_LEVEL: 'info' }, ['--workers', '2'], 60_000);
    try {
      replaceByRename(file, profilesNamed('second'));
      b.proc.kill('SIGHUP');
      await b.waitFor(/SIGHUP — workers reload the profiles file/);
      // Each worker reloads on its own (the change, the forwarded signal): two by signal.
      await b.waitFor(/"trigger":"signal"[^\n]*profiles reloaded[\s\S]*"trigger":"signal"[^\n]*profiles reloaded/, 20_000);
      expect(b.proc.exitCode).toBeNull();
      for (let i = 0; i < 4; i++) expect((await voiceWebhook(b.url, TO)).parameters.profile).toBe('second');
    } finally {
      b.kill();
    }
  }, 90_000);

  it('a bad profiles file at start is a configuration error: every problem listed, exit 78', async () => {
    const file = profilesFile('profiles:\n  - name: a\n    match: { to: "*" }\n    agent: nosuch\n  - name: a\n    match: { to: "*" }\n    agent: echo\n');
    const r = await runCli(['start'], { PORT: '0', HOST: '127.0.0.1', BRIDGE_PROFILES: file, BRIDGE_LOG_LEVEL: 'warn' });
    expect(r.code).toBe(78);
    expect(r.stderr).toContain(`invalid profiles file ${file}`);
    expect(r.stderr).toMatch(/profiles\[0\]\.agent: must be one of echo/);
    expect(r.stderr).toMatch(/profiles\[1\]\.name: duplicate profile name "a"/);
  }, 30_000);
});

/** Polls GET /calls/:sid until the call is in `state` (bounded). */
async function waitForState(url: string, callSid: string, state: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while ((await getJson(`${url}/calls/${callSid}`)).body?.state !== state) {
    if (Date.now() > deadline) throw new Error(`call ${callSid} never reached ${state}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
