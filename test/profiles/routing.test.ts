/**
 * Calls routed by profile (docs/profiles.md), through a real bridge on 127.0.0.1: the
 * voice webhook picks the profile (`?profile=`, else `To`, else the default), its TwiML
 * names only the profile, and the agent gets the profile's agent and options — whole,
 * at any length — on the pre-connect path and on the stream's. Without BRIDGE_PROFILES
 * the webhook behaves as it always did; an agent option too long for a query string is
 * refused with a problem, not dropped.
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { startFakeOpenAi } from '../fakes/openai-realtime.js';
import { getJson, ulawClip, withBridge } from '../bridge/helpers.js';
import { echoedExactly, pollUntil } from '../lifecycle/child-bridge.js';
import { metricValue, profilesFile, streamOf, voiceWebhook } from './profiles-helpers.js';

const SUPPORT_TO = '+15557650000';
const SALES_TO = '+15550002222';
// Far longer than a query string carries (the webhook refuses options over 500 characters).
const LONG_INSTRUCTIONS = `You are Acme's phone assistant. ${'Be brief, kind and exact; confirm order numbers digit by digit. '.repeat(60)}End of instructions.`;

const PROFILES = `
profiles:
  - name: support
    match: { to: ["${SUPPORT_TO}"] }
    agent: openai
    options:
      voice: marin
      format: pcmu
      instructions: ${JSON.stringify(LONG_INSTRUCTIONS)}
  - name: sales
    match: { to: ["${SALES_TO}"] }
    agent: echo
    options: { format: ulaw }
  - name: fallback
    match: { to: "*" }
    agent: echo
    options: { format: ulaw }
`;

const ADMIN = 'profiles-test-admin-token';

describe('calls routed by profile', () => {
  it('`To` picks the profile: the TwiML names only it, and the agent — pre-connected at the webhook — gets its agent and every option, however long', async () => {
    expect(LONG_INSTRUCTIONS.length).toBeGreaterThan(3000);
    const fake = await startFakeOpenAi({});
    try {
      await withBridge({ ...fake.env, BRIDGE_PROFILES: profilesFile(PROFILES), BRIDGE_ADMIN_TOKEN: ADMIN }, async (bridge) => {
        const hook = await voiceWebhook(bridge.url, SUPPORT_TO);
        expect(hook.status).toBe(200);
        // Only the profile's name travels (plus the call's own numbers): no agent, no options.
        expect(hook.parameters).toEqual({ profile: 'support', vb_from: '+15551230000', vb_to: SUPPORT_TO });
        expect(hook.text).not.toContain('instructions');
        // Pre-connected at the webhook, before any stream, with the profile's options.
        const c = await pollUntil(async () => fake.connections[0]?.sessionUpdates[0] !== undefined && fake.connections[0]);
        expect(c.sessionUpdates[0]).toMatchObject({ instructions: LONG_INSTRUCTIONS, audio: { output: { voice: 'marin' } } });

        const r = await streamOf(hook, { audio: new Uint8Array(8000).fill(0xff), fast: true, tailMs: 200, timeoutMs: 20_000 });
        expect(r.outcome).toBe('completed');
        expect(fake.connections).toHaveLength(1); // the pre-connected session was adopted
        const rec = (await fetch(`${bridge.url}/calls/${hook.callSid}`, { headers: { authorization: `Bearer ${ADMIN}` } }).then((x) => x.json())) as unknown;
        expect(rec).toMatchObject({ agent: 'openai', agentPreconnected: true, customParameters: { profile: 'support' } });
        // The call record says which profile answered.
        const stored = await pollUntil(async () => {
          const res = await fetch(`${bridge.url}/calls/history/${hook.callSid}`, { headers: { authorization: `Bearer ${ADMIN}` } });
          const body = res.status === 200 ? ((await res.json()) as { recordState?: string; profile?: string }) : undefined;
          return body?.recordState === 'completed' && body;
        });
        expect(stored).toMatchObject({ agent: 'openai', profile: 'support' });
      });
    } finally {
      await fake.close();
    }
  }, 40_000);

  it('the stream side looks the profile up by name: a stream without a webhook gets the same agent and options', async () => {
    const fake = await startFakeOpenAi({});
    try {
      await withBridge({ ...fake.env, BRIDGE_PROFILES: profilesFile(PROFILES) }, async (bridge) => {
        const hook = await voiceWebhook(bridge.url, SUPPORT_TO);
        // Another CallSid: nothing was prepared for it here (as when the stream lands on another process).
        const r = await streamOf({ ...hook, callSid: 'CA' + 'f'.repeat(32) }, { audio: new Uint8Array(4000).fill(0xff), fast: true, tailMs: 200, timeoutMs: 20_000 });
        expect(r.outcome).toBe('completed');
        expect(fake.connections).toHaveLength(2);
        expect(fake.connections[1]!.sessionUpdates[0]).toMatchObject({ instructions: LONG_INSTRUCTIONS, audio: { output: { voice: 'marin' } } });
        expect((await getJson(`${bridge.url}/calls/${r.callSid}`)).body).toMatchObject({ agent: 'openai', agentPreconnected: false });
      });
    } finally {
      await fake.close();
    }
  }, 40_000);

  it('a stream naming a profile this process does not have is not given another agent: the call ends agent-unknown', async () => {
    await withBridge({ BRIDGE_PROFILES: profilesFile(PROFILES) }, async (bridge) => {
      const hook = await voiceWebhook(bridge.url, SALES_TO);
      const r = await streamOf({ ...hook, parameters: { ...hook.parameters, profile: 'removed-since' } }, { audio: new Uint8Array(8000).fill(0xff), tailMs: 20_000, timeoutMs: 30_000 });
      // The bridge ends the call after its apology, long before the caller would.
      expect(r.outcome).toBe('server-closed');
      const rec = await pollUntil(async () => {
        const body = (await getJson(`${bridge.url}/calls/${hook.callSid}`)).body as { state?: string; endReason?: string; agent?: string | null };
        return body?.state === 'closed' && body;
      }, 15_000);
      expect(rec).toMatchObject({ endReason: 'agent-unknown', agent: null, apology: 'prompt' });
    });
  }, 40_000);

  it('`?profile=NAME` comes first, the default profile answers other numbers, and the profile\'s options reach the echo agent (μ-law passthrough)', async () => {
    const said = await ulawClip('caller-barge-in.8k-ulaw.wav');
    await withBridge({ BRIDGE_PROFILES: profilesFile(PROFILES) }, async (bridge) => {
      // The support number, but ?profile=sales: the name wins.
      const named = await voiceWebhook(bridge.url, SUPPORT_TO, 'profile=sales');
      expect(named.parameters.profile).toBe('sales');
      expect(named.parameters.agent).toBeUndefined();
      const other = await voiceWebhook(bridge.url, '+15553334444');
      expect(other.parameters.profile).toBe('fallback');
      const byNumber = await voiceWebhook(bridge.url, SALES_TO);
      expect(byNumber.parameters.profile).toBe('sales');

      const r = await streamOf(named, { audio: said, fast: true, tailMs: 2500, timeoutMs: 30_000 });
      expect(r.outcome).toBe('completed');
      // format: ulaw from the profile reached the echo agent: what came back is what was said, byte for byte.
      expect(echoedExactly(r, said)).toBe(true);
      expect((await getJson(`${bridge.url}/calls/${named.callSid}`)).body).toMatchObject({ agent: 'echo', jitter: null, customParameters: { profile: 'sales' } });
    });
  }, 40_000);

  it('an unknown `?profile=` is refused (never another profile), counted, and logged with its code', async () => {
    const lines: Record<string, unknown>[] = [];
    await withBridge({ BRIDGE_PROFILES: profilesFile(PROFILES) }, async (bridge) => {
      const hook = await voiceWebhook(bridge.url, SUPPORT_TO, 'profile=nosuch');
      expect(hook.status).toBe(200); // Twilio reads TwiML: a polite refusal
      expect(hook.text).toContain('<Say>');
      expect(hook.text).toContain('<Hangup/>');
      expect(hook.text).not.toContain('<Stream');
      const metrics = await (await fetch(`${bridge.url}/metrics`)).text();
      expect(metricValue(metrics, 'voice_bridge_calls_refused_total', { stage: 'webhook', reason: 'profile-unknown' })).toBe(1);
    }, { logger: lineLogger(lines) });
    expect(lines.find((l) => l.msg === 'call refused at the voice webhook')).toMatchObject({ reason: 'profile-unknown', code: 'BRIDGE_ERR_PROFILE_UNKNOWN', profile: 'nosuch' });
  });

  it('without BRIDGE_PROFILES the webhook is unchanged: ?agent= and the query options travel as <Parameter>s; ?profile= is refused', async () => {
    await withBridge({}, async (bridge) => {
      const hook = await voiceWebhook(bridge.url, SUPPORT_TO, 'agent=echo&format=ulaw&voice=marin');
      expect(hook.parameters).toEqual({ agent: 'echo', vb_from: '+15551230000', vb_to: SUPPORT_TO, format: 'ulaw', voice: 'marin' });
      const said = await ulawClip('caller-barge-in.8k-ulaw.wav');
      const r = await streamOf(hook, { audio: said, fast: true, tailMs: 2500, timeoutMs: 30_000 });
      expect(r.outcome).toBe('completed');
      expect(echoedExactly(r, said)).toBe(true);
      const rec = (await getJson(`${bridge.url}/calls/${hook.callSid}`)).body;
      expect(rec).toMatchObject({ agent: 'echo', agentPreconnected: true });
      expect(rec.customParameters.profile).toBeUndefined();
      const named = await voiceWebhook(bridge.url, SUPPORT_TO, 'profile=support');
      expect(named.text).not.toContain('<Stream');
      const metrics = await (await fetch(`${bridge.url}/metrics`)).text();
      expect(metricValue(metrics, 'voice_bridge_profiles_loaded')).toBe(0);
    });
  }, 40_000);

  it('an agent option over 500 characters is refused with a problem (400, its code), logged, and never dropped into a call', async () => {
    const lines: Record<string, unknown>[] = [];
    await withBridge({}, async (bridge) => {
      const ok = await voiceWebhook(bridge.url, SUPPORT_TO, `agent=echo&instructions=${'a'.repeat(500)}`);
      expect(ok.status).toBe(200);
      expect(ok.parameters.instructions).toHaveLength(500);
      const tooLong = await voiceWebhook(bridge.url, SUPPORT_TO, `agent=echo&instructions=${'a'.repeat(501)}`);
      expect(tooLong.status).toBe(400);
      expect(tooLong.contentType).toMatch(/^application\/problem\+json/);
      const problem = JSON.parse(tooLong.text) as { code: string; detail: string; option: string };
      expect(problem).toMatchObject({ code: 'BRIDGE_ERR_WEBHOOK_OPTION_TOO_LONG', status: 400, option: 'instructions' });
      expect(problem.detail).toContain('profile');
      expect(problem.detail).toContain('501');
      const metrics = await (await fetch(`${bridge.url}/metrics`)).text();
      expect(metricValue(metrics, 'voice_bridge_calls_refused_total', { stage: 'webhook', reason: 'option-too-long' })).toBe(1);
    }, { logger: lineLogger(lines) });
    expect(lines.find((l) => l.msg === 'call refused at the voice webhook')).toMatchObject({ reason: 'option-too-long', code: 'BRIDGE_ERR_WEBHOOK_OPTION_TOO_LONG', option: 'instructions', chars: 501 });
  });
});

/** A pino logger whose JSON lines land in `lines`. */
function lineLogger(lines: Record<string, unknown>[]) {
  return pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
}
