/**
 * Live smoke test of the ElevenLabs TTS client against the real service
 * (`npm run test:live`). Needs ELEVENLABS_API_KEY and ELEVENLABS_VOICE_ID (a voice
 * on that account); ELEVENLABS_TTS_MODEL / ELEVENLABS_TTS_URL are honoured. Fails,
 * never skips, when they are missing. Costs a few dozen characters of quota.
 */
import { describe, expect, it } from 'vitest';
import { ElevenLabsTtsClient } from '../../src/agents/elevenlabs/tts/client.js';
import { readElevenLabsTtsEnv } from '../../src/agents/elevenlabs/tts/config.js';
import { ULAW_DECODE } from '../../src/dsp/ts/g711.js';

function liveClient(): ElevenLabsTtsClient {
  const { env, problems } = readElevenLabsTtsEnv(process.env);
  const missing = [env.apiKey === undefined ? 'ELEVENLABS_API_KEY' : '', env.voiceId === undefined ? 'ELEVENLABS_VOICE_ID' : ''].filter(Boolean);
  if (missing.length > 0) throw new Error(`ElevenLabs TTS live test: set ${missing.join(' and ')} (a key and a voice id of that account) to run it`);
  if (problems.length > 0) throw new Error(`ElevenLabs TTS live test: bad configuration:\n  - ${problems.join('\n  - ')}`);
  return new ElevenLabsTtsClient({ apiKey: env.apiKey!, voiceId: env.voiceId!, baseUrl: env.baseUrl, modelId: env.modelId, totalTimeoutMs: 30_000 });
}

function rmsOf(ulaw: Uint8Array): number {
  let s = 0;
  for (const b of ulaw) s += ULAW_DECODE[b]! ** 2;
  return Math.sqrt(s / Math.max(1, ulaw.length));
}

describe('ElevenLabs TTS (live)', () => {
  it('speaks a sentence as header-less μ-law 8 kHz, streams it, then serves it from the cache', async () => {
    const tts = liveClient();
    try {
      const text = 'Hello from voice bridge. This is a live test.';
      const chunks: Uint8Array[] = [];
      const total = await tts.stream(text, (c) => void chunks.push(c), { signal: AbortSignal.timeout(45_000) });
      const seconds = total / 8000;
      // About 3 s of speech: anything between 1 and 10 s is a real utterance at 8 kHz μ-law.
      expect(seconds).toBeGreaterThan(1);
      expect(seconds).toBeLessThan(10);
      expect(chunks.length).toBeGreaterThan(0);
      const audio = new Uint8Array(total);
      let at = 0;
      for (const c of chunks) {
        audio.set(c, at);
        at += c.length;
      }
      // No container bytes at the front, and it is not silence (a wrong format decodes as noise or silence).
      expect(String.fromCharCode(...audio.subarray(0, 4))).not.toBe('RIFF');
      expect(rmsOf(audio)).toBeGreaterThan(300);
      const before = tts.stats().connections;
      const again = await tts.synthesize(text, { signal: AbortSignal.timeout(5000) });
      expect(tts.stats().connections).toBe(before);
      expect(again.length).toBe(total);
    } finally {
      tts.close();
    }
  });

  it('a wrong key is refused as BRIDGE_ERR_AGENT_AUTH', async () => {
    const { env } = readElevenLabsTtsEnv(process.env);
    if (env.voiceId === undefined) throw new Error('ElevenLabs TTS live test: set ELEVENLABS_VOICE_ID');
    const bad = new ElevenLabsTtsClient({ apiKey: 'sk_invalid_key_for_test', voiceId: env.voiceId, baseUrl: env.baseUrl, modelId: env.modelId });
    try {
      const e = await bad.synthesize('Hello.', { signal: AbortSignal.timeout(20_000) }).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(e).toMatchObject({ code: 'BRIDGE_ERR_AGENT_AUTH' });
    } finally {
      bad.close();
    }
  });
});
