/** GET /metrics through the real start-up path, after a real call. */
import { describe, expect, it } from 'vitest';
import { runSimulatedCall } from '../../src/sim/simulator.js';
import { ulawClip, withBridge } from './helpers.js';

describe('metrics (startBridge wiring)', () => {
  it('counts a finished call by agent and end reason, its frames, and the DSP backend', async () => {
    const clip = (await ulawClip('caller-barge-in.8k-ulaw.wav')).subarray(0, 8000);
    await withBridge({}, async (bridge) => {
      const r = await runSimulatedCall({ url: bridge.streamUrl, audio: clip, customParameters: { rate: '16000' }, fast: true, tailMs: 300, timeoutMs: 10_000 });
      expect(r.outcome).toBe('completed');
      let text = '';
      for (let i = 0; i < 50 && !/calls_ended_total\{[^}]*agent="echo"[^}]*\} 1/.test(text); i++) {
        text = await (await fetch(`${bridge.url}/metrics`)).text();
        await new Promise((res) => setTimeout(res, 20));
      }
      expect(text).toMatch(/voice_bridge_calls_ended_total\{[^}]*agent="echo"[^}]*reason="twilio-stop"[^}]*\} 1/);
      expect(text).toMatch(/voice_bridge_active_calls 0/);
      expect(text).toMatch(/voice_bridge_frame_processing_seconds_count\{direction="inbound"\} [1-9]/);
      expect(text).toMatch(/voice_bridge_dsp_info\{[^}]*backend="(native|ts)"/);
      expect(text).toMatch(/process_cpu_user_seconds_total/);
    });
  });
});
