/**
 * Live smoke test of the `elevenlabs` agent against the real ElevenLabs Agents
 * service (`npm run test:live`; not part of `npm test`).
 *
 * Needs ELEVENLABS_AGENT_ID (and ELEVENLABS_API_KEY for a private agent). Best with
 * an agent whose input and output formats are ulaw_8000 (the bridge's passthrough);
 * other raw formats work too (the test reports the mismatch). Fails — does not skip —
 * when the id is missing.
 *
 * What it checks: the conversation starts (metadata with raw formats), caller audio
 * is accepted, a keypad press (sent as a user_message) makes the agent speak, its
 * audio arrives in the announced format, a response ends (responseDone), no fatal
 * error, close() closes.
 */
import { describe, expect, it } from 'vitest';
import { createElevenLabsAgentFactory, type ElevenLabsAgentSession } from '../../src/agents/elevenlabs/index.js';
import type { AgentAudio } from '../../src/agents/agent.js';
import type { BridgeError } from '../../src/errors.js';
import { on } from '../agents/agent-events.js';

async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('live: ElevenLabs Agents', () => {
  it('a conversation: connect, caller audio, the agent answers a keypad press, close', async () => {
    if (!process.env.ELEVENLABS_AGENT_ID) {
      throw new Error('ELEVENLABS_AGENT_ID is not set: the live ElevenLabs Agents test needs an agent id (and ELEVENLABS_API_KEY for a private agent)');
    }
    const { factory, problems } = createElevenLabsAgentFactory(process.env);
    expect(problems).toEqual([]);
    expect(factory.available).toBe(true);
    const session = factory.create({ callSid: 'CA' + '0'.repeat(32), parameters: {} }) as ElevenLabsAgentSession;
    const audio: AgentAudio[] = [];
    const errors: Array<{ e: BridgeError; fatal: boolean }> = [];
    const done: string[] = [];
    on(session, 'audio', (a) => audio.push({ data: a.data.slice(), sampleRateHz: a.sampleRateHz, responseId: a.responseId }));
    on(session, 'error', ({ error: e, fatal }) => errors.push({ e, fatal }));
    on(session, 'responseDone', ({ responseId }) => done.push(responseId ?? ''));
    try {
      await session.connect(AbortSignal.timeout(15_000));
      expect(session.conversationId).toBeTruthy();
      const fmt = session.inputFormat;
      const frameLen = fmt.encoding === 'ulaw' ? 160 : fmt.sampleRateHz / 50;
      // 2 s of silence at real-time pace, then "1" on the keypad.
      for (let i = 0; i < 100; i++) {
        session.sendAudio(fmt.encoding === 'ulaw' ? new Uint8Array(frameLen).fill(0xff) : new Int16Array(frameLen));
        await new Promise((r) => setTimeout(r, 20));
      }
      session.sendDtmf('1');
      await waitFor(() => done.length > 0, 30_000, 'a complete agent response');
      expect(audio.length).toBeGreaterThan(0);
      for (const a of audio) expect(a.data).toBeInstanceOf(session.outputFormat.encoding === 'ulaw' ? Uint8Array : Int16Array);
      expect(session.stats.badAudioDropped).toBe(0);
      expect(errors.filter((x) => x.fatal).map((x) => x.e.message)).toEqual([]);
      for (const x of errors) console.warn(`non-fatal: ${x.e.code} ${x.e.message}`);
    } finally {
      await session.close('live test done');
    }
  });
});
