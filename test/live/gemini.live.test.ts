/**
 * Live smoke test against the real Gemini Live API (`npm run test:live`; not part of
 * `npm test`). Needs GEMINI_API_KEY (and network). Fails — never skips — without it.
 *
 * It speaks a recorded question (the 8 kHz fixture, upsampled ×2 to 16 kHz) in real
 * time, then silence, and expects the model to answer with 24 kHz audio and finish
 * the turn; then it checks that what the adapter sends besides audio (a DTMF note as
 * realtimeInput.text, and a barge-in note as a model-role clientContent turn) does
 * not make the service close the session. Optional: GEMINI_MODEL / GEMINI_VOICE / GEMINI_LIVE_URL as in production.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createGeminiAgentFactory } from '../../src/agents/gemini/index.js';
import type { GeminiLiveSession } from '../../src/agents/gemini/session.js';
import type { BridgeError } from '../../src/errors.js';
import type { Transcript } from '../../src/agents/agent.js';
import { readWav } from '../../src/audio/wav.js';
import { ULAW_DECODE } from '../../src/dsp/ts/g711.js';
import { on } from '../agents/agent-events.js';

const KEY = process.env.GEMINI_API_KEY?.trim();

async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('gemini live (real service)', () => {
  it('answers a spoken question with 24 kHz audio; DTMF and barge-in notes are accepted', async () => {
    if (!KEY) {
      throw new Error('GEMINI_API_KEY is not set: the Gemini live smoke test needs a real key (export GEMINI_API_KEY=… and run npm run test:live)');
    }
    const { factory, problems } = createGeminiAgentFactory({ ...process.env, GEMINI_CONNECT_TIMEOUT_MS: process.env.GEMINI_CONNECT_TIMEOUT_MS ?? '15000' });
    expect(problems).toEqual([]);
    const session = factory.create({ callSid: 'CAlive' + '0'.repeat(28), parameters: { instructions: 'You are a phone agent for a shop. Answer in one short sentence.' } }) as GeminiLiveSession;
    let samples = 0;
    let responses = 0;
    const errors: { e: BridgeError; fatal: boolean }[] = [];
    const transcripts: Transcript[] = [];
    on(session, 'audio', (a) => (samples += a.data.length));
    on(session, 'responseDone', () => responses++);
    on(session, 'error', ({ error: e, fatal }) => errors.push({ e, fatal }));
    on(session, 'transcript', (t) => transcripts.push({ role: t.role, text: t.text, final: t.final }));
    try {
      await session.connect(AbortSignal.timeout(20_000));

      const wav = await readWav(join(import.meta.dirname, '..', 'fixtures', 'caller-order-status.8k-ulaw.wav'));
      const ulaw = wav.data as Uint8Array;
      const frame = new Int16Array(320); // 20 ms at 16 kHz
      const frames = Math.ceil(ulaw.length / 160) + 100; // the question, then 2 s of silence
      const t0 = performance.now();
      for (let n = 0; n < frames; n++) {
        for (let i = 0; i < 160; i++) {
          const k = n * 160 + i;
          const a = k < ulaw.length ? ULAW_DECODE[ulaw[k]!]! : 0;
          const b = k + 1 < ulaw.length ? ULAW_DECODE[ulaw[k + 1]!]! : 0;
          frame[2 * i] = a;
          frame[2 * i + 1] = (a + b) >> 1;
        }
        session.sendAudio(frame);
        const wait = t0 + (n + 1) * 20 - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
      await waitFor(() => responses > 0, 25_000, 'a complete spoken answer (responseDone)');
      expect(samples / 24_000).toBeGreaterThan(0.3);
      console.log(`gemini live: ${(samples / 24_000).toFixed(2)} s of answer; transcripts: ${JSON.stringify(transcripts)}`);

      session.sendDtmf('5');
      session.interrupt({ heardMs: 400 });
      await new Promise((r) => setTimeout(r, 3000));
      expect(session.state).toBe('open');
      expect(errors.filter((x) => x.fatal)).toEqual([]);
    } finally {
      await session.close('live test done');
    }
  });
});
