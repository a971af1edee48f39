/**
 * Whole calls through a real bridge on 127.0.0.1 with the simulator in Twilio's
 * role and the built-in echo agent: the caller hears their own words back,
 * correctly encoded, at the right level and timing — through the full DSP path
 * (μ-law → jitter buffer → 24 kHz → agent → 24 kHz → 8 kHz → μ-law) and through the
 * μ-law passthrough path.
 */
import { describe, expect, it } from 'vitest';
import { runSimulatedCall } from '../../src/sim/simulator.js';
import { decode, findAligned, getJson, rms, ulawClip, withBridge } from './helpers.js';

const SILENCE_MS = 600; // BRIDGE_ECHO_SILENCE_MS default: the pause that ends the caller's turn

describe('a whole call with the echo agent', () => {
  it.each([
    ['PCM16 at 24 kHz (full DSP path both ways)', { rate: '24000' }, 0.97],
    ['PCM16 at 8 kHz (jitter buffer, no resampling)', {}, 0.999],
  ])('%s: the caller hears their words back', async (_name, params, minCorr) => {
    const clip = await ulawClip('caller-barge-in.8k-ulaw.wav'); // 2.48 s of speech from the first sample
    await withBridge({}, async (bridge, held) => {
      const r = await runSimulatedCall({ url: bridge.streamUrl, audio: clip, customParameters: params, tailMs: 4500, timeoutMs: 20_000 });
      expect(r.outcome).toBe('completed');
      expect(r.protocolErrors).toEqual([]);
      expect(r.gaps).toEqual([]);
      expect(r.framesSent).toBe(Math.ceil(clip.length / 160) + 4500 / 20); // the clip, then the silent tail

      // The reply: one contiguous segment, starting after the caller's turn ends.
      expect(r.heardSegments.length).toBe(1);
      const seg = r.heardSegments[0]!;
      const clipEndMs = (clip.length / 8000) * 1000;
      expect(seg.startMs).toBeGreaterThan(clipEndMs);
      // Caller's last word, the VAD's silence window, then ~100 ms of playout lead and pacing.
      expect(seg.startMs).toBeLessThan(clipEndMs + SILENCE_MS + 600 + held.slackMs());

      // Same words, same level: correlate the heard reply with the caller's clip.
      const heard = decode(r.heard);
      const said = decode(clip);
      const reply = heard.subarray(Math.round(seg.startMs * 8) - 400, Math.round(seg.endMs * 8) + 400);
      const speech = said.subarray(0, Math.min(said.length, reply.length - 800));
      const { lag, corr } = findAligned(reply, speech, 1600);
      expect(corr).toBeGreaterThan(minCorr);
      const levelDb = 20 * Math.log10(rms(reply, lag, lag + speech.length) / rms(speech));
      expect(Math.abs(levelDb)).toBeLessThan(0.5);

      // The bridge's own record of the call.
      const rec = await getJson(`${bridge.url}/calls/${r.callSid}`);
      expect(rec.status).toBe(200);
      expect(rec.body).toMatchObject({ callSid: r.callSid, streamSid: r.streamSid, agent: 'echo', state: 'closed', endReason: 'twilio-stop' });
      expect(rec.body.framesIn).toBe(r.framesSent);
      expect(rec.body.playout.framesSent).toBe(r.bytesReceived / 160);
      expect(rec.body.playout.underruns).toBe(0);
      expect(rec.body.transcripts.map((t: { role: string }) => t.role)).toEqual(['caller', 'agent']);
    });
  });

  it('μ-law passthrough (format=ulaw): no DSP, the reply is byte-for-byte what the caller said', async () => {
    const clip = await ulawClip('caller-barge-in.8k-ulaw.wav');
    await withBridge({}, async (bridge) => {
      const r = await runSimulatedCall({ url: bridge.streamUrl, audio: clip, customParameters: { format: 'ulaw' }, tailMs: 4500, timeoutMs: 20_000 });
      expect(r.outcome).toBe('completed');
      // Everything played, segment by segment (a loaded machine may split playout; the bytes must still match).
      const reply = Buffer.concat(r.heardSegments.map((s) => r.heard.subarray(Math.round(s.startMs * 8), Math.round(s.endMs * 8))));
      // The echo replays the utterance the VAD found: a contiguous run of the clip.
      const at = Buffer.from(clip).indexOf(Buffer.from(reply.subarray(0, 800)));
      expect(at).toBeGreaterThanOrEqual(0);
      expect(Buffer.from(reply).equals(Buffer.from(clip.subarray(at, at + reply.length)))).toBe(true);
      expect(reply.length).toBeGreaterThan(clip.length * 0.8);
      const rec = await getJson(`${bridge.url}/calls/${r.callSid}`);
      expect(rec.body.jitter).toBeNull(); // no inbound pipeline: no DSP ran
    });
  });

  it('health, readiness (with the DSP backend in use) and the list of active calls', async () => {
    await withBridge({}, async (bridge) => {
      expect((await getJson(`${bridge.url}/healthz`)).body).toEqual({ status: 'ok' });
      const ready = await getJson(`${bridge.url}/readyz`);
      expect(ready.status).toBe(200);
      expect(ready.body.ready).toBe(true);
      expect(['native', 'ts']).toContain(ready.body.dsp.backend);
      if (process.env.BRIDGE_DSP === 'native') expect(ready.body.dsp).toMatchObject({ backend: 'native', fallbackReason: null });
      expect(ready.body.agents).toContain('echo');
      expect((await getJson(`${bridge.url}/calls`)).body).toEqual({ calls: [] });
      expect((await getJson(`${bridge.url}/calls/CAnope`)).status).toBe(404);
    });
  });
});
