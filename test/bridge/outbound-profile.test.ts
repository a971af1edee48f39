/**
 * Outbound calls by profile, with answering-machine detection (docs/profiles.md), through
 * a real bridge, the fake Twilio REST API and the fake OpenAI Realtime service:
 * POST /calls {"to","profile","machineDetection"} asks Twilio for asynchronous AMD with
 * the callback at /twilio/amd and a stream that names the profile; when Twilio's signed
 * AnsweredBy arrives the call's agent is told who answered. A profile that is not loaded
 * is a 404 problem; a profile and an agent together are a 400.
 */
import { describe, expect, it } from 'vitest';
import { runSimulatedCall } from '../../src/sim/simulator.js';
import { computeSignature } from '../../src/twilio/signature.js';
import { startFakeOpenAi } from '../fakes/openai-realtime.js';
import { startFakeTwilioRest } from '../fakes/twilio-rest.js';
import { profilesFile } from '../profiles/profiles-helpers.js';
import { withBridge } from './helpers.js';
import { until } from '../agents/agent-events.js';

const PUBLIC = 'https://bridge.example.com';
const ADMIN = 'outbound-admin-token';
const TO = '+15557654321';

describe('outbound calls by profile', () => {
  it('POST /calls {to, profile, machineDetection}: async AMD asked of Twilio, the stream names the profile, and the agent is told a machine answered', async () => {
    const rest = await startFakeTwilioRest();
    const fake = await startFakeOpenAi({ replyMs: 200 });
    try {
      const env = {
        ...fake.env,
        TWILIO_ACCOUNT_SID: rest.accountSid,
        TWILIO_AUTH_TOKEN: rest.authToken,
        TWILIO_API_URL: rest.url,
        TWILIO_FROM_NUMBER: '+15550001111',
        BRIDGE_PUBLIC_URL: PUBLIC,
        BRIDGE_ADMIN_TOKEN: ADMIN,
        BRIDGE_PROFILES: profilesFile(`
profiles:
  - name: outreach
    match: { to: ["+15550001111"] }
    agent: openai
    options: { format: pcmu, instructions: "You remind customers of their appointment." }
`),
      };
      await withBridge(env, async (bridge) => {
        const place = (body: object) => fetch(`${bridge.url}/calls`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
        const missing = await place({ to: TO, profile: 'nope' });
        expect(missing.status).toBe(404);
        expect(((await missing.json()) as { code: string }).code).toBe('BRIDGE_ERR_PROFILE_UNKNOWN');
        expect((await place({ to: TO, profile: 'outreach', agent: 'echo' })).status).toBe(400);

        const res = await place({ to: TO, profile: 'outreach', machineDetection: true });
        expect(res.status).toBe(201);
        const placed = (await res.json()) as { callSid: string; profile: string; agent: string; machineDetection: string };
        expect(placed).toMatchObject({ profile: 'outreach', agent: 'openai', machineDetection: 'Enable' });
        const created = rest.requests.find((q) => q.path.endsWith('/Calls.json'))!;
        expect(created.form).toMatchObject({ To: TO, MachineDetection: 'Enable', AsyncAmd: 'true', AsyncAmdStatusCallback: `${PUBLIC}/twilio/amd` });
        const twiml = created.form.Twiml!;
        expect(twiml).toContain('<Parameter name="profile" value="outreach"/>');
        expect(twiml).not.toContain('name="agent"');

        // Twilio opens the stream the TwiML names (with its parameters and stream token).
        const parameters = Object.fromEntries([...twiml.matchAll(/<Parameter name="([^"]+)" value="([^"]*)"\/>/g)].map((m) => [m[1]!, m[2]!]));
        const call = runSimulatedCall({ url: bridge.streamUrl, authToken: rest.authToken, signatureUrl: `${PUBLIC.replace(/^http/, 'ws')}/twilio/stream`, callSid: placed.callSid, customParameters: parameters, audio: new Uint8Array(8000).fill(0xff), fast: true, tailMs: 3000, timeoutMs: 30_000 });
        await until(() => fake.current?.sessionUpdates.length === 1, 'the agent session');
        expect(fake.current!.sessionUpdates[0]!.instructions).toBe('You remind customers of their appointment.');

        // Twilio's asynchronous AMD result, signed.
        const amd = { CallSid: placed.callSid, AccountSid: rest.accountSid, AnsweredBy: 'machine_end_beep' };
        const r = await fetch(`${bridge.url}/twilio/amd`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': computeSignature(rest.authToken, `${PUBLIC}/twilio/amd`, amd) }, body: new URLSearchParams(amd).toString() });
        expect(r.status).toBe(204);
        await until(() => fake.current!.items.some((i) => i.role === 'system'), 'the note to the agent');
        expect(fake.current!.items.find((i) => i.role === 'system')).toEqual({ type: 'message', role: 'system', content: [{ type: 'input_text', text: expect.stringMatching(/answering machine answered .* leave a short message/) }] });
        expect(fake.current!.errorsSent).toEqual([]);
        expect((await call).outcome).toBe('completed');
      });
    } finally {
      await fake.close();
      await rest.close();
    }
  });
});
