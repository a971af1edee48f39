/**
 * Live smoke test against a real EVI endpoint (`npm run test:live`, never `npm test`).
 * Needs HUME_API_KEY; HUME_EVI_URL points it at a Hume-compatible endpoint (Hume ended
 * EVI access on api.hume.ai on 2026-11-13, so the default URL is expected to refuse).
 * Missing keys FAIL this test with a clear message: a live run that proves nothing must not pass.
 */
import { describe, expect, it } from 'vitest';
import { createHumeAgentFactory, type HumeSession } from '../../src/agents/hume/index.js';
import { loadConfig } from '../../src/config.js';
import type { BridgeError } from '../../src/errors.js';
import { on } from '../agents/agent-events.js';

describe('hume (live)', () => {
  it('connects, streams caller audio, and EVI answers a DTMF prompt with WAV audio', async () => {
    if (!process.env.HUME_API_KEY?.trim()) {
      throw new Error(
        'HUME_API_KEY is not set: the live Hume EVI test needs a real API key (and HUME_EVI_URL for a Hume-compatible endpoint — EVI access on api.hume.ai ended 2026-11-13). Optional: HUME_CONFIG_ID.',
      );
    }
    const { factory, problems } = createHumeAgentFactory(loadConfig(process.env));
    expect(problems).toEqual([]);
    const session = factory.create({ callSid: 'CA' + 'f'.repeat(32), parameters: {} }) as HumeSession;
    const errors: { error: BridgeError; fatal: boolean }[] = [];
    let samples = 0;
    let done = false;
    on(session, 'error', ({ error: error, fatal }) => errors.push({ error, fatal }));
    on(session, 'audio', (a) => (samples += a.data.length));
    on(session, 'responseDone', () => (done = true));
    try {
      await session.connect(AbortSignal.timeout(15_000));
      expect(session.chatGroupId).toBeTruthy();
      const frame = new Int16Array(session.inputFormat.sampleRateHz / 50); // 20 ms of silence
      for (let i = 0; i < 50; i++) session.sendAudio(frame);
      session.sendDtmf('5');
      const t0 = Date.now();
      const silence = setInterval(() => session.sendAudio(frame), 20); // EVI wants continuous audio
      try {
        while (!done && Date.now() - t0 < 30_000 && !errors.some((e) => e.fatal)) await new Promise((r) => setTimeout(r, 50));
      } finally {
        clearInterval(silence);
      }
      expect(errors.filter((e) => e.fatal)).toEqual([]);
      expect(done).toBe(true);
      expect(samples / session.outputFormat.sampleRateHz).toBeGreaterThan(0.3);
      expect(session.stats.audioFormatErrors).toBe(0);
    } finally {
      await session.close('live test done');
    }
  });
});
