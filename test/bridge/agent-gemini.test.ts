/**
 * A whole call through a real bridge to the Gemini Live adapter and its fake service:
 * the simulator plays Twilio and the caller, the fake's activity detection answers
 * the caller (24 kHz audio → 8 kHz μ-law at the caller) and reports the caller talking
 * over the reply (`interrupted`); the bridge clears Twilio's buffer and the adapter
 * tells the service how much of the reply the caller actually heard.
 */
import { describe, expect, it } from 'vitest';
import { runSimulatedCall } from '../../src/sim/simulator.js';
import { startFakeGemini } from '../fakes/gemini.js';
import { expectHeardAtClear, getJson, ulawClip, withBridge } from './helpers.js';

describe('a call with the gemini agent', () => {
  it('the caller hears the reply; talking over it clears Twilio and the service learns the heard position', async () => {
    const clip = await ulawClip('caller-barge-in.8k-ulaw.wav'); // 2.48 s of speech from the first sample
    // Reply 700 ms after the caller stops, 3 s long; the caller talks over it at 4.5 s.
    const fake = await startFakeGemini({ autoReply: { replyMs: 3000, silenceMs: 700 } });
    try {
      await withBridge({ ...fake.env }, async (bridge, held) => {
        const r = await runSimulatedCall({
          url: bridge.streamUrl,
          audio: clip,
          customParameters: { agent: 'gemini', voice: 'Kore' },
          bargeInAtMs: 4500,
          bargeInAudio: clip,
          tailMs: 4000,
          timeoutMs: 30_000,
        });
        expect(r.outcome).toBe('completed');
        expect(r.protocolErrors).toEqual([]);

        // The caller heard the agent: the first reply starts after the caller's turn.
        expect(r.heardSegments.length).toBeGreaterThanOrEqual(1);
        const first = r.heardSegments[0]!;
        expect(first.startMs).toBeGreaterThan(2480);
        expect(first.startMs).toBeLessThan(4500 + held.slackMs());

        // The barge-in: the service's `interrupted` → the bridge cleared Twilio quickly.
        expect(r.clears.length).toBeGreaterThanOrEqual(1);
        const clear = r.clears[0]!;
        expect(r.bargeIn!.reactionMs).not.toBeNull();
        expect(r.bargeIn!.reactionMs!).toBeLessThan(400 + held.slackMs());
        expect(fake.serviceInterruptions()).toBeGreaterThanOrEqual(1);

        // What the bridge measured as heard (acknowledged marks + the clock) is what the service was told.
        const rec = await getJson(`${bridge.url}/calls/${r.callSid}`);
        expect(rec.body).toMatchObject({ agent: 'gemini', state: 'closed', endReason: 'twilio-stop' });
        expect(rec.body.bargeIns).toBeGreaterThanOrEqual(1);
        const told = fake.received().interruptions;
        expect(told.length).toBe(rec.body.bargeIns);
        expect(told.at(-1)!.heardMs).toBe(rec.body.lastHeardMs);
        expectHeardAtClear(told[0]!.heardMs!, r.marks, clear.atMs);
        expect(Math.abs(told[0]!.heardMs! - (clear.atMs - first.startMs))).toBeLessThanOrEqual(80 + held.slackMs());

        // The voice parameter reached the setup; the caller's talk-over was answered too.
        expect((fake.connections()[0]!.setup as any).generationConfig.speechConfig.voiceConfig.prebuiltVoiceConfig.voiceName).toBe('Kore');
        expect(r.heardSegments.some((s) => s.startMs > clear.atMs)).toBe(true);
        const agentLines = rec.body.transcripts.filter((t: { role: string }) => t.role === 'agent').map((t: { text: string }) => t.text);
        expect(agentLines[0]).toMatch(/\[interrupted: the caller heard about \d+ ms\]$/);
      });
    } finally {
      await fake.close();
    }
  });
});
