/**
 * A whole call through a real bridge with the `elevenlabs` agent: the simulator in
 * Twilio's role, the ElevenLabs fake in the service's (its greeting as the agent's
 * first message, its own VAD detecting the caller talking over it, the stale-audio
 * quirk after its interruption, and a reply once the caller is quiet).
 *
 * μ-law 8 kHz both ways, so the bridge runs no DSP: what the caller hears must be,
 * byte for byte, what the fake spoke — up to the barge-in, after which nothing of
 * the interrupted greeting (nor the stale chunks) may play.
 */
import { describe, expect, it } from 'vitest';
import { runSimulatedCall } from '../../src/sim/simulator.js';
import { startFakeElevenLabs } from '../fakes/elevenlabs-agents.js';
import { decode, getJson, ulawClip, withBridge } from './helpers.js';

describe('a call with the elevenlabs agent', () => {
  it('the caller hears the greeting, barges in: clear sent, the service told the heard position, the reply plays', async () => {
    const fake = await startFakeElevenLabs({ greetingMs: 4000, bargeInOnSpeech: true, replyMs: 800, pingIntervalMs: 500 });
    const talkOver = await ulawClip('caller-barge-in.8k-ulaw.wav'); // 2.48 s of speech
    const silence = new Uint8Array(8 * 2000).fill(0xff);
    try {
      await withBridge({ ...fake.env }, async (bridge, held) => {
        const r = await runSimulatedCall({
          url: bridge.streamUrl,
          audio: silence,
          bargeInAtMs: 2000,
          bargeInAudio: talkOver,
          customParameters: { agent: 'elevenlabs', first_message: 'Hello, how can I help?' },
          tailMs: 3000,
          timeoutMs: 30_000,
        });
        expect(r.outcome).toBe('completed');
        expect(r.protocolErrors).toEqual([]);

        // The greeting, as overridden by the call's parameter, and heard from the start of the call.
        expect(fake.conversations[0]!.initData).toMatchObject({ conversation_config_override: { agent: { first_message: 'Hello, how can I help?' } } });
        const greeting = r.heardSegments[0]!;
        expect(greeting.startMs).toBeLessThan(500 + held.slackMs());

        // The barge-in: the fake's VAD heard the caller over its greeting; the bridge cleared Twilio quickly.
        expect(r.clears.length).toBeGreaterThanOrEqual(1);
        const clear = r.clears[0]!;
        expect(r.bargeIn!.reactionMs).not.toBeNull();
        expect(r.bargeIn!.reactionMs!).toBeLessThan(500 + held.slackMs());
        expect(clear.droppedBytes).toBeGreaterThan(0); // the rest of the greeting was still buffered

        // Byte for byte what the fake spoke, up to the clear.
        const heardGreeting = r.heard.subarray(Math.round(greeting.startMs * 8), Math.round(clear.atMs * 8));
        const spoken = fake.spoken();
        expect(heardGreeting.length).toBeGreaterThan(8 * 1500);
        expect(Buffer.from(heardGreeting).equals(Buffer.from(spoken.subarray(0, heardGreeting.length)))).toBe(true);

        // Nothing of the interrupted greeting — nor the stale chunks the service sent after its interruption — plays after the clear.
        const reply = r.heardSegments.find((s) => s.startMs > clear.atMs + 100);
        expect(reply).toBeDefined();
        const between = decode(r.heard.subarray(Math.round(clear.atMs * 8) + 8, Math.round(reply!.startMs * 8)));
        expect(between.every((v) => v === 0)).toBe(true);
        // The reply started after the caller's speech ended (2 s + 2.48 s) and the fake's 500 ms of quiet.
        expect(reply!.startMs).toBeGreaterThan(2000 + 2480);

        // The service was told how much of the greeting the caller actually heard: the bridge's acknowledged-mark figure.
        const rec = await getJson(`${bridge.url}/calls/${r.callSid}`);
        expect(rec.body).toMatchObject({ agent: 'elevenlabs', state: 'closed', endReason: 'twilio-stop' });
        expect(rec.body.bargeIns).toBeGreaterThanOrEqual(1);
        const reported = fake.received().interruptions;
        expect(reported.length).toBeGreaterThanOrEqual(1);
        expect(reported[0]!.heardMs).toBeGreaterThan(1000);
        expect(Math.abs(reported[0]!.heardMs! - (clear.atMs - greeting.startMs))).toBeLessThanOrEqual(80 + held.slackMs());
        if (rec.body.bargeIns === 1) expect(reported[0]!.heardMs).toBe(rec.body.lastHeardMs);
        expect(fake.userActivity).toBeGreaterThanOrEqual(1);

        // Caller audio reached the service as μ-law passthrough, every frame; pings were answered.
        expect(fake.received().audioMs).toBeGreaterThanOrEqual((r.framesSent - 5) * 20);
        expect(rec.body.jitter).toBeNull();
        expect(fake.pongs.length).toBeGreaterThan(0);
        expect(rec.body.transcripts.map((t: { role: string }) => t.role)).toEqual(['agent', 'caller', 'agent']);
        expect(fake.received().closed).toBe(true);
      });
    } finally {
      await fake.close();
    }
  });

  it('the agent hangs up with end_call: the goodbye is heard in full before the call ends', async () => {
    const fake = await startFakeElevenLabs({ pingIntervalMs: 0 });
    try {
      await withBridge({ ...fake.env }, async (bridge) => {
        const call = runSimulatedCall({ url: bridge.streamUrl, audio: new Uint8Array(8 * 6000).fill(0xff), customParameters: { agent: 'elevenlabs' }, tailMs: 0, timeoutMs: 20_000 });
        await fake.ready(5000);
        await fake.speak(1500); // the goodbye
        await fake.callTool('end_call');
        const r = await call;
        expect(r.outcome).toBe('server-closed');
        expect(r.close!.reason).toMatch(/^agent-ended:agent called end_call/);
        expect(r.unplayedBytes).toBe(0);
        const heard = r.heardSegments.reduce((ms, s) => ms + (s.endMs - s.startMs), 0);
        expect(heard).toBeGreaterThanOrEqual(1500 - 20);
        expect(fake.toolResults[0]).toMatchObject({ is_error: false });
      });
    } finally {
      await fake.close();
    }
  });
});
