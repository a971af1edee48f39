/** BRIDGE_RECORD=1 through the real start-up path: the call's stereo WAV is on the record. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readWav } from '../../src/audio/wav.js';
import { runSimulatedCall } from '../../src/sim/simulator.js';
import { getJson, ulawClip, withBridge } from './helpers.js';

describe('call recording (BRIDGE_RECORD=1)', () => {
  it('writes a stereo WAV per call and references it from the call record', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vb-rec-'));
    const clip = await ulawClip('caller-barge-in.8k-ulaw.wav');
    await withBridge({ BRIDGE_RECORD: '1', BRIDGE_RECORD_DIR: dir }, async (bridge) => {
      const r = await runSimulatedCall({ url: bridge.streamUrl, audio: clip, customParameters: { format: 'ulaw' }, tailMs: 4500, timeoutMs: 20_000 });
      expect(r.outcome).toBe('completed');
      // The path is on the record once the session has closed its recording.
      let rec = await getJson(`${bridge.url}/calls/${r.callSid}`);
      for (let i = 0; i < 100 && rec.body.state !== 'closed'; i++) {
        await new Promise((res) => setTimeout(res, 20));
        rec = await getJson(`${bridge.url}/calls/${r.callSid}`);
      }
      expect(rec.body.recordingPath).toMatch(new RegExp(`^${dir}/.*${r.callSid}.*\\.wav$`));
      const wav = await readWav(rec.body.recordingPath);
      expect(wav).toMatchObject({ channels: 2, sampleRateHz: 8000, encoding: 'pcm16' });
      const samples = wav.data as Int16Array;
      const frames = samples.length / 2;
      expect(frames / 8000).toBeGreaterThan(r.durationMs / 1000 - 1);
      // Left: the caller spoke during the first 2.5 s; right: the echo played after that.
      const energy = (ch: 0 | 1, fromS: number, toS: number) => {
        let e = 0;
        for (let i = Math.floor(fromS * 8000); i < Math.min(frames, Math.floor(toS * 8000)); i++) e += Math.abs(samples[i * 2 + ch]!);
        return e;
      };
      expect(energy(0, 0, 2.4)).toBeGreaterThan(0);
      expect(energy(1, 0, 2.4)).toBe(0);
      const seg = r.heardSegments[0]!;
      expect(energy(1, seg.startMs / 1000 + 0.1, seg.endMs / 1000 - 0.1)).toBeGreaterThan(0);
    });
  });
});
