/**
 * A whole call through a real bridge with the OpenAI adapter and the fake Realtime
 * service: the simulator plays Twilio, the fake's VAD hears the caller's turns and
 * answers each one (faster than real time, as the service does), and the caller
 * talks over the second answer. Checks what the caller heard, the `clear`, and that
 * the service was told the heard position of the right item (conversation.item.truncate),
 * on the μ-law passthrough path (no DSP) and on the PCM16 24 kHz path.
 */
import { describe, expect, it } from 'vitest';
import { runSimulatedCall } from '../../src/sim/simulator.js';
import { startFakeOpenAi } from '../fakes/openai-realtime.js';
import { getJson, ulawClip, withBridge } from './helpers.js';

const silence = (ms: number) => new Uint8Array(ms * 8).fill(0xff);
const concat = (...parts: Uint8Array[]) => Uint8Array.from(Buffer.concat(parts));

describe('a call with the openai agent (fake Realtime service)', () => {
  it.each([
    ['pcmu', 'μ-law passthrough'],
    ['pcm24k', 'PCM16 24 kHz through the DSP'],
  ])('format=%s (%s): the caller hears the answers; barge-in clears Twilio and truncates the answer at the heard position', async (format) => {
    const turn = await ulawClip('caller-barge-in.8k-ulaw.wav'); // 2.48 s of speech
    // Turn 1 (0–2.5 s) → a 2 s answer; turn 2 (5.5–8 s) → a 4 s answer from ~8.5 s, barged into at 10 s.
    const caller = concat(turn, silence(3000), turn);
    const bargeInAtMs = 10_000;
    const replies = [2000, 4000, 1500];
    const fake = await startFakeOpenAi({ vad: true, autoAnswer: true, replyMs: replies });
    try {
      await withBridge({ ...fake.env, BRIDGE_AGENT: 'openai' }, async (bridge, held) => {
        const r = await runSimulatedCall({ url: bridge.streamUrl, audio: caller, customParameters: { agent: 'openai', format }, bargeInAtMs, bargeInAudio: turn, tailMs: 3000, timeoutMs: 40_000 });
        expect(r.outcome).toBe('completed');
        expect(r.protocolErrors).toEqual([]);
        const c = fake.connections[0]!;
        expect(fake.connections).toHaveLength(1);
        expect(c.inputFormat).toBe(format === 'pcmu' ? 'audio/pcmu' : 'audio/pcm');
        expect(c.userTurns).toBe(3);
        // Generated 10× faster than real time: answer 2 was complete at the service long before the
        // caller talked over it — the case where a stale start time truncates past the item's audio (the Twilio sample's bug; see src/agents/openai/session.ts).
        expect(c.responses.map((x) => x.status)).toEqual(['completed', 'completed', 'completed']);

        // The caller heard three answers; the first in full.
        expect(r.heardSegments.length).toBe(3);
        const [first, second, third] = r.heardSegments as [{ startMs: number; endMs: number }, { startMs: number; endMs: number }, { startMs: number; endMs: number }];
        expect(first.startMs).toBeGreaterThan(2480);
        expect(first.startMs).toBeLessThan(2480 + 500 + 600 + held.slackMs()); // VAD silence + pacing
        expect(first.endMs - first.startMs).toBeGreaterThanOrEqual(2000 - 20);
        if (format === 'pcmu') {
          // passthrough: byte for byte what the service sent
          const start = Math.round(first.startMs * 8);
          expect(Buffer.from(r.heard.subarray(start, start + 16000))).toEqual(fake.audioFor('audio/pcmu', 2000));
          const rec = await getJson(`${bridge.url}/calls/${r.callSid}`);
          expect(rec.body.jitter).toBeNull(); // no DSP ran
        }

        // Barge-in: a clear soon after the caller starts talking over answer 2.
        expect(second.startMs).toBeLessThan(bargeInAtMs);
        expect(r.clears.length).toBeGreaterThanOrEqual(1);
        const clear = r.clears[0]!;
        expect(clear.atMs).toBeGreaterThan(bargeInAtMs);
        expect(r.bargeIn!.reactionMs!).toBeLessThan(400 + held.slackMs());
        expect(second.endMs).toBeLessThanOrEqual(clear.atMs + 20);

        // The service was told what was heard of answer 2 — its own item, the acknowledged position.
        const rec = await getJson(`${bridge.url}/calls/${r.callSid}`);
        expect(rec.body).toMatchObject({ agent: 'openai', bargeIns: 1, state: 'closed', endReason: 'twilio-stop' });
        expect(c.truncates).toEqual([{ itemId: c.responses[1]!.itemId, audioEndMs: rec.body.lastHeardMs, ok: true }]);
        expect(Math.abs(rec.body.lastHeardMs - (clear.atMs - second.startMs))).toBeLessThanOrEqual(80 + held.slackMs());
        expect(fake.received().interruptions).toEqual([{ heardMs: rec.body.lastHeardMs }]);

        // The rest of answer 2 never played; answer 3 came after the caller's barge-in turn.
        expect(third.startMs).toBeGreaterThan(bargeInAtMs + 2480);
        expect(third.endMs - third.startMs).toBeGreaterThanOrEqual(1500 - 20);
        expect(c.errorsSent.filter((e) => e.code !== 'response_cancel_not_active')).toEqual([]);
        // transcripts of both sides reached the call record
        const roles = rec.body.transcripts.map((t: { role: string }) => t.role);
        expect(roles.filter((x: string) => x === 'caller')).toHaveLength(3);
        expect(roles.filter((x: string) => x === 'agent')).toHaveLength(3);
      });
    } finally {
      await fake.close();
    }
  });
});
