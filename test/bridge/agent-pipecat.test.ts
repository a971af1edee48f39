/**
 * A whole call through a real bridge with the simulator in Twilio's role and the
 * fake Pipecat server as the agent (`?agent=pipecat`): the fake's VAD hears the
 * caller, answers in real time like Pipecat's output transport, and — when the caller
 * talks over it — sends an InterruptionFrame. The bridge must clear Twilio's buffer
 * and tell the server how much of the reply the caller actually heard.
 */
import { describe, expect, it } from 'vitest';
import { runSimulatedCall } from '../../src/sim/simulator.js';
import { startFakePipecat } from '../fakes/pipecat-server.js';
import { decode, getJson, rms, ulawClip, withBridge } from './helpers.js';

describe('a call with the pipecat agent', () => {
  it('the caller hears the bot; talking over it clears Twilio and the server learns the heard position', async () => {
    const clip = await ulawClip('caller-barge-in.8k-ulaw.wav'); // 2.48 s of speech from the first sample
    const fake = await startFakePipecat({ realtime: true, autoAnswer: { replyMs: 4000, silenceMs: 600 } });
    try {
      await withBridge({ ...fake.env }, async (bridge, held) => {
        const bargeInAtMs = 4800; // the reply starts ~2.7 s in: the caller hears ~2 s of it first
        const r = await runSimulatedCall({
          url: bridge.streamUrl,
          audio: clip,
          customParameters: { agent: 'pipecat' },
          bargeInAtMs,
          bargeInAudio: clip,
          tailMs: 1500,
          timeoutMs: 30_000,
        });
        expect(r.outcome).toBe('completed');
        expect(r.protocolErrors).toEqual([]);

        // The caller heard the bot (its 300 Hz tone at amplitude 8000), after their own turn.
        // (The reply arrives paced in real time, as Pipecat sends it; it may be heard in a few segments.)
        const replyStartMs = r.heardSegments.find((s) => s.startMs > 1000 && s.startMs < bargeInAtMs)?.startMs;
        expect(replyStartMs).toBeDefined();
        const heard = decode(r.heard);
        expect(rms(heard, Math.round(replyStartMs! * 8) + 80, Math.round(replyStartMs! * 8) + 4080)).toBeGreaterThan(4000);

        // Barge-in: the fake's VAD (60 ms) → InterruptionFrame → the bridge's clear.
        expect(r.clears.length).toBeGreaterThanOrEqual(1);
        expect(r.bargeIn!.clearAtMs).not.toBeNull();
        expect(r.bargeIn!.reactionMs!).toBeLessThan(400 + held.slackMs());
        // Nothing of the interrupted reply plays after the clear.
        const clearAt = r.bargeIn!.clearAtMs!;
        expect(heard.subarray(Math.round(clearAt * 8) + 8, Math.round(clearAt * 8) + 8 * 400).every((v) => v === 0)).toBe(true);

        // The server got the interruption with the heard position the bridge measured from Twilio's marks.
        const rec = await getJson(`${bridge.url}/calls/${r.callSid}`);
        expect(rec.body.agent).toBe('pipecat');
        expect(rec.body.bargeIns).toBe(1);
        const interruptions = fake.received().interruptions;
        expect(interruptions.length).toBe(1);
        expect(interruptions[0]!.heardMs).toBe(rec.body.lastHeardMs);
        // …which matches what the caller actually heard of the reply (marks are per chunk: within ~100 ms).
        expect(Math.abs(interruptions[0]!.heardMs! - (clearAt - replyStartMs!))).toBeLessThanOrEqual(120 + held.slackMs());
        expect(interruptions[0]!.heardMs!).toBeGreaterThan(500);

        // Caller audio reached the server at its rate; transcripts both ways.
        expect(fake.received().audioFormatErrors).toEqual([]);
        expect(fake.received().audioMs).toBeGreaterThan(4000);
        const roles = rec.body.transcripts.map((t: { role: string; text: string }) => `${t.role}:${t.text}`);
        expect(roles).toContain('caller:caller utterance 1');
        expect(roles).toContain('agent:reply 1 [interrupted]');
      });
    } finally {
      await fake.close();
    }
  });
});
