/**
 * Live smoke test against the real OpenAI Realtime API (GA). Run with
 * `OPENAI_API_KEY=… npm run test:live`; not part of `npm test`. It fails — never
 * skips — when the key is missing. Other OPENAI_* variables apply as in production.
 *
 * One call's worth: connect (GA session.update accepted with μ-law both ways), say the
 * order-status clip at real-time pace, expect a spoken answer (μ-law audio tagged by
 * response, responseDone) and both transcripts; then a DTMF digit as text; then
 * barge-in: interrupt({ heardMs }) must not produce a service error (the truncate is
 * within the item's audio); close.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readWav } from '../../src/audio/wav.js';
import { createOpenAiAgentFactory } from '../../src/agents/openai/index.js';
import type { AgentAudio, Transcript } from '../../src/agents/agent.js';
import type { BridgeError } from '../../src/errors.js';
import { on } from '../agents/agent-events.js';

const until = async (cond: () => boolean, what: string, timeoutMs: number) => {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

describe('live: OpenAI Realtime (GA)', () => {
  it('answers a caller over μ-law, reports transcripts, takes DTMF text and a barge-in without errors', async () => {
    if (!process.env.OPENAI_API_KEY) throw new Error('OPENAI_API_KEY is not set: the live OpenAI test needs a real key (export OPENAI_API_KEY=sk-… and run npm run test:live)');
    const { factory, problems } = createOpenAiAgentFactory(process.env);
    expect(problems).toEqual([]);
    const s = factory.create({ callSid: 'CA' + '0'.repeat(32), parameters: { format: 'pcmu' } });
    const audio: AgentAudio[] = [];
    const errors: BridgeError[] = [];
    const transcripts: Transcript[] = [];
    const done: string[] = [];
    on(s, 'audio', (a) => audio.push(a));
    on(s, 'error', ({ error: e }) => errors.push(e));
    on(s, 'transcript', (t) => transcripts.push({ role: t.role, text: t.text, final: t.final }));
    on(s, 'responseDone', (r) => done.push(r.responseId ?? ''));
    try {
      await s.connect(AbortSignal.timeout(10_000));
      const clip = await readWav(join(import.meta.dirname, '..', 'fixtures', 'caller-order-status.8k-ulaw.wav'));
      const ulaw = clip.data as Uint8Array;
      const frames = Math.ceil(ulaw.length / 160) + 75; // the clip, then 1.5 s of silence
      const t0 = performance.now();
      for (let k = 0; k < frames; k++) {
        const wait = t0 + k * 20 - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        const f = new Uint8Array(160).fill(0xff);
        f.set(ulaw.subarray(k * 160, k * 160 + 160));
        s.sendAudio(f);
      }
      await until(() => done.length >= 1 && audio.length > 0, 'a spoken answer', 30_000);
      expect(audio.every((a) => a.data instanceof Uint8Array && typeof a.responseId === 'string')).toBe(true);
      await until(() => transcripts.some((t) => t.role === 'agent'), 'the agent transcript', 15_000);

      s.sendDtmf('5');
      await until(() => done.length >= 2, 'an answer to the digit', 30_000);
      s.interrupt({ heardMs: 300 });
      await new Promise((r) => setTimeout(r, 1500)); // let a service error about the truncate arrive, if any
      expect(errors.map((e) => `${e.code}: ${e.message}`)).toEqual([]);
    } finally {
      await s.close('live test done');
    }
  });
});
