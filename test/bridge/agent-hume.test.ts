/**
 * A whole call through a real bridge with the `hume` agent: the simulator plays
 * Twilio, the fake EVI (test/fakes/hume.ts) answers the caller with 48 kHz WAV chunks
 * (resampled to 24 kHz by the adapter, to 8 kHz μ-law by the bridge), then EVI's VAD
 * hears the caller talk over it: the bridge clears Twilio, and the heard position
 * (from acknowledged marks) reaches EVI as context.
 */
import { describe, expect, it } from 'vitest';
import { runSimulatedCall } from '../../src/sim/simulator.js';
import { startFakeHume } from '../fakes/hume.js';
import { decode, getJson, rms, ulawClip, withBridge } from './helpers.js';

async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('a whole call with the hume agent', () => {
  it('the caller hears EVI, talks over it, Twilio is cleared and EVI learns what was heard', async () => {
    const fake = await startFakeHume({ wavRateHz: 48_000, wavLayout: 'list' });
    const clip = await ulawClip('caller-order-status.8k-ulaw.wav'); // 5.75 s
    const talkOver = await ulawClip('caller-barge-in.8k-ulaw.wav');
    try {
      await withBridge({ ...fake.env }, async (bridge, held) => {
        const BARGE_IN_MS = 2500;
        const call = runSimulatedCall({
          url: bridge.streamUrl,
          audio: clip,
          customParameters: { agent: 'hume', instructions: 'You are a phone agent.' },
          bargeInAtMs: BARGE_IN_MS,
          bargeInAudio: talkOver,
          tailMs: 1000,
          timeoutMs: 30_000,
        });
        // EVI answers once it has heard half a second of the caller (caller audio arrives in real time).
        await waitFor(() => fake.received().audioMs >= 500, 10_000, 'caller audio at EVI');
        await fake.speak(4000, { userText: 'Where is my order?', text: 'Let me check that order for you right away, one moment please.' });
        // EVI's VAD hears the caller talk over the reply.
        await waitFor(() => fake.received().audioMs >= BARGE_IN_MS, 10_000, 'the barge-in moment');
        await fake.interruptFromService();
        const r = await call;

        expect(r.outcome).toBe('completed');
        expect(r.protocolErrors).toEqual([]);
        const c = fake.connections[0]!;
        expect(fake.connections.length).toBe(1);
        expect(c.sessionSettings[0]).toMatchObject({ audio: { encoding: 'linear16', sample_rate: 16_000, channels: 1 }, system_prompt: 'You are a phone agent.' });
        expect(c.errorsSent).toEqual([]);
        // All the caller's audio reached EVI (the whole call, less the agent's connect time).
        expect(c.audioMs).toBeGreaterThan(5750 + 1000 - 1000);

        // The caller heard the reply (a 300 Hz tone at about -12 dBFS), then the clear cut it.
        expect(r.clears.length).toBe(1);
        const clear = r.clears[0]!;
        expect(clear.droppedBytes).toBeGreaterThan(0);
        const reply = r.heardSegments.find((s) => s.startMs < clear.atMs && s.endMs >= clear.atMs - 60)!;
        expect(reply).toBeDefined();
        expect(clear.atMs - reply.startMs).toBeGreaterThan(1000);
        const heard = decode(r.heard);
        const level = rms(heard, Math.round(reply.startMs * 8) + 800, Math.round(clear.atMs * 8) - 800);
        expect(20 * Math.log10(level / 32768)).toBeGreaterThan(-16);
        expect(20 * Math.log10(level / 32768)).toBeLessThan(-12);
        // …and nothing of the interrupted reply plays after the clear.
        const after = heard.subarray(Math.round(clear.atMs * 8) + 8, Math.round(clear.atMs * 8) + 8 * 500);
        expect(after.every((v) => v === 0)).toBe(true);

        // EVI got the heard position the bridge measured from acknowledged marks.
        const rec = await getJson(`${bridge.url}/calls/${r.callSid}`);
        expect(rec.body).toMatchObject({ agent: 'hume', bargeIns: 1, endReason: 'twilio-stop' });
        await waitFor(() => fake.received().interruptions.length === 1, 3000, 'the interruption at EVI');
        const { heardMs } = fake.received().interruptions[0]!;
        expect(heardMs).toBe(rec.body.lastHeardMs);
        expect(Math.abs(heardMs! - (clear.atMs - reply.startMs))).toBeLessThanOrEqual(60 + held.slackMs());
        const ctx = c.sessionSettings.at(-1)!.context;
        expect(ctx.type).toBe('temporary');
        expect(ctx.text).toMatch(/roughly: "Let me check/);
        expect(rec.body.transcripts).toEqual([
          { role: 'caller', text: 'Where is my order?', final: true },
          { role: 'agent', text: 'Let me check that order for you right away, one moment please.', final: true },
        ]);
        await waitFor(() => fake.received().closed, 3000, 'the adapter to close its socket');
      });
    } finally {
      await fake.close();
    }
  });
});
