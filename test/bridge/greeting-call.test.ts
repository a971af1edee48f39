/**
 * A profile's `greeting` through a real bridge, the way Twilio places the call (voice
 * webhook, which pre-connects the agent, then the stream): the caller never says a word
 * (silence only, and the fakes answer nothing on their own), yet the greeting reaches
 * the caller — so it came first — and the simulator and the call record both report the
 * time from `start` to its first audio. OpenAI greets when the stream starts;
 * ElevenLabs speaks its first_message as the pre-connected conversation opens — here
 * before the stream comes, as when Twilio is slow — and that audio is kept for the call.
 */
import { describe, expect, it } from 'vitest';
import { startFakeOpenAi } from '../fakes/openai-realtime.js';
import { startFakeElevenLabs } from '../fakes/elevenlabs-agents.js';
import { profilesFile, streamOf, voiceWebhook } from '../profiles/profiles-helpers.js';
import { decode, getJson, withBridge } from './helpers.js';

const TO = '+15557650000';
const GREETING = 'Thanks for calling Acme, how can I help?';
const profile = (agent: string, options: string) => `
profiles:
  - name: front-desk
    match: { to: ["${TO}"] }
    agent: ${agent}
    options: ${options}
    greeting: ${JSON.stringify(GREETING)}
`;

const loudMs = (ulaw: Uint8Array) => decode(ulaw).filter((x) => Math.abs(x) > 0.02).length / 8;

describe('greeting: the agent speaks first, through the bridge', () => {
  for (const agent of ['openai', 'elevenlabs'] as const) {
    it(`${agent}: heard without the caller saying anything; start → first greeting audio in the simulator and the record`, async () => {
      const fake = agent === 'openai' ? await startFakeOpenAi({ replyMs: 800 }) : await startFakeElevenLabs();
      try {
        const options = agent === 'openai' ? '{ format: pcmu }' : '{}';
        await withBridge({ ...fake.env, BRIDGE_PROFILES: profilesFile(profile(agent, options)) }, async (bridge) => {
          const hook = await voiceWebhook(bridge.url, TO);
          expect(hook.parameters.profile).toBe('front-desk');
          if (agent === 'elevenlabs') {
            // Twilio is slow to open the stream: the pre-connected conversation has already spoken its
            // first message when the stream comes. That audio is kept for the call, not lost.
            const f = fake as Awaited<ReturnType<typeof startFakeElevenLabs>>;
            for (const end = Date.now() + 10_000; f.replies.length === 0 && Date.now() < end; ) await new Promise((res) => setTimeout(res, 10));
            expect(f.replies).toEqual([GREETING]);
          }
          const r = await streamOf(hook, { audio: new Uint8Array(8000).fill(0xff), fast: true, tailMs: 2500, timeoutMs: 20_000 });
          expect(r.outcome).toBe('completed');
          expect(r.firstAgentAudioMs).not.toBeNull();
          expect(loudMs(r.heard)).toBeGreaterThan(500); // the greeting (600–800 ms of tone), heard
          const rec = await getJson(`${bridge.url}/calls/${hook.callSid}`);
          expect(rec.body.timeToFirstAgentAudioMs).toEqual(expect.any(Number));
          if (agent === 'openai') {
            const f = fake as Awaited<ReturnType<typeof startFakeOpenAi>>;
            expect(f.connections).toHaveLength(1); // the pre-connected session greeted
            expect(f.connections[0]!.responseCreates[0]!.response.instructions).toContain(JSON.stringify(GREETING));
          } else expect((fake as Awaited<ReturnType<typeof startFakeElevenLabs>>).replies[0]).toBe(GREETING);
        });
      } finally {
        await fake.close();
      }
    });
  }
});
