/**
 * Live smoke test against a real Pipecat server (`npm run test:live`; not part of `npm test`).
 *
 * Needs PIPECAT_URL pointing at a Pipecat bot whose WebSocket transport uses
 * `serializer=ProtobufFrameSerializer()` (e.g. WebsocketServerTransport on
 * ws://127.0.0.1:8765, or a FastAPI /ws endpoint), with STT → LLM → TTS that answers
 * speech. Optional: PIPECAT_SAMPLE_RATE (match the pipeline's audio_in/out rate),
 * PIPECAT_AUTH_TOKEN. The caller says the order-status fixture; the bot must answer
 * with audio in our declared format, and a response must end.
 */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { createPipecatAgentFactory } from '../../src/agents/pipecat/index.js';
import type { PipecatAgentSession } from '../../src/agents/pipecat/session.js';
import { loadDsp } from '../../src/dsp/load.js';
import type { BridgeError } from '../../src/errors.js';
import { readUlawFixture } from '../helpers/read-fixture.js';
import { on } from '../agents/agent-events.js';

const url = process.env.PIPECAT_URL?.trim();

describe('pipecat live', () => {
  it('a real Pipecat server hears the caller and answers with audio', async () => {
    if (!url) {
      throw new Error(
        'PIPECAT_URL is not set: the Pipecat live test needs a running Pipecat bot whose WebSocket transport uses ProtobufFrameSerializer, e.g. PIPECAT_URL=ws://127.0.0.1:8765 npm run test:live',
      );
    }
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (k.startsWith('PIPECAT_') && v !== undefined) env[k] = v;
    const config = loadConfig({ BRIDGE_LOG_LEVEL: 'silent', ...env });
    const { factory, problems } = createPipecatAgentFactory(config);
    expect(problems).toEqual([]);
    const session = factory.create({ callSid: 'CA' + 'f'.repeat(32), parameters: {} }) as PipecatAgentSession;
    const errors: BridgeError[] = [];
    let audioSamples = 0;
    let done = 0;
    const transcripts: string[] = [];
    on(session, 'error', ({ error: e }) => errors.push(e));
    on(session, 'audio', (a) => (audioSamples += a.data.length));
    on(session, 'responseDone', () => done++);
    on(session, 'transcript', (t) => transcripts.push(`${t.role}: ${t.text}`));
    await session.connect(AbortSignal.timeout(10_000));
    try {
      // The caller's words at the session's rate, sent in real time (20 ms frames), then silence.
      const rate = session.inputFormat.sampleRateHz;
      const fixture = readUlawFixture('caller-order-status.8k-ulaw.wav');
      const dsp = await loadDsp({ backend: 'auto' });
      const rs = dsp.createResampler({ fromHz: 8000, toHz: rate });
      const pcm = new Int16Array(rs.maxOutput(fixture.pcm.length));
      const n = rs.process(fixture.pcm, pcm);
      rs.close();
      const frame = rate / 50;
      const silenceFrames = 50 * 8;
      const total = Math.ceil(n / frame) + silenceFrames;
      const t0 = Date.now();
      for (let k = 0; k < total && !session.closed; k++) {
        const chunk = k * frame < n ? pcm.slice(k * frame, Math.min(n, (k + 1) * frame)) : new Int16Array(frame);
        session.sendAudio(chunk);
        await new Promise((r) => setTimeout(r, Math.max(0, t0 + (k + 1) * 20 - Date.now())));
        if (done > 0 && k * frame >= n) break; // answered after the caller finished
      }
      const deadline = Date.now() + 20_000;
      while (done === 0 && !session.closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      console.log(`pipecat live: ${((audioSamples / rate) * 1000).toFixed(0)} ms of bot audio, ${done} response(s); transcripts: ${JSON.stringify(transcripts)}; stats: ${JSON.stringify(session.stats)}`);
      expect(errors.map((e) => `${e.code}: ${e.message}`)).toEqual([]);
      expect(session.closed).toBe(false);
      expect(audioSamples).toBeGreaterThan(rate / 2); // at least half a second of speech
      expect(done).toBeGreaterThan(0);
    } finally {
      await session.close('live test done');
    }
  });
});
