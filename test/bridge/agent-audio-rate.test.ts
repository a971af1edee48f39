/**
 * Agent audio says its own sample rate, and the call's outbound path resamples it —
 * no adapter runs DSP of its own (Hume's WAV chunks carry their rate; a Pipecat bot may
 * send another rate than the one configured). One response whose first half comes at
 * 48 kHz and second half at 16 kHz, from an agent that declared 24 kHz: the caller hears
 * both halves, whole, at the right pitch — inline and with the DSP worker pool.
 */
import { describe, expect, it } from 'vitest';
import { AgentSession, pcm16, type AgentFactory, type AudioFormat } from '../../src/agents/agent.js';
import { runSimulatedCall } from '../../src/sim/simulator.js';
import { decode, withBridge } from './helpers.js';

const tone = (hz: number, rateHz: number, ms: number): Int16Array => {
  const n = (rateHz * ms) / 1000;
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.round(6000 * Math.sin((2 * Math.PI * hz * i) / rateHz));
  return out;
};

/** Speaks one response as soon as it connects: 500 ms of 300 Hz at 48 kHz, then 500 ms of 500 Hz at 16 kHz, in 100 ms chunks. */
class RateChanger extends AgentSession {
  readonly inputFormat: AudioFormat = pcm16(16000);
  readonly outputFormat: AudioFormat = pcm16(24000);
  readonly hasVad = true;
  async connect(): Promise<void> {
    setImmediate(() => {
      for (const [hz, rate] of [
        [300, 48_000],
        [500, 16_000],
      ] as const) {
        const t = tone(hz, rate, 500);
        for (let at = 0; at < t.length; at += rate / 10) this.emitEvent({ type: 'audio', data: t.slice(at, at + rate / 10), sampleRateHz: rate, responseId: 'r1' });
      }
      this.emitEvent({ type: 'responseDone', responseId: 'r1' });
    });
  }
  sendAudio(): void {}
  interrupt(): void {}
  sendDtmf(): void {}
  async close(reason: string): Promise<void> {
    this.emitEvent({ type: 'closed', reason });
  }
}

const factory: AgentFactory = { name: 'rates', available: true, create: () => new RateChanger() };

/** Zero crossings per second / 2 over [fromMs, toMs) of 8 kHz samples. */
function pitchHz(x: Float64Array, fromMs: number, toMs: number): number {
  let crossings = 0;
  for (let i = fromMs * 8 + 1; i < toMs * 8; i++) if (x[i - 1]! < 0 !== x[i]! < 0) crossings++;
  return crossings / ((toMs - fromMs) / 1000) / 2;
}

describe('agent audio at its own rate: the call resamples', () => {
  for (const [mode, env] of [
    ['inline', { BRIDGE_DSP_POOL: '0' }],
    ['DSP pool', { BRIDGE_DSP_POOL: '1' }],
  ] as const) {
    it(`${mode}: 48 kHz then 16 kHz chunks of one response from a 24 kHz agent are heard whole, at pitch`, async () => {
      await withBridge(
        env,
        async (bridge) => {
          const r = await runSimulatedCall({ url: bridge.streamUrl, audio: new Uint8Array(8000).fill(0xff), customParameters: { agent: 'rates' }, fast: true, tailMs: 2500, timeoutMs: 20_000 });
          expect(r.outcome).toBe('completed');
          const x = decode(r.heard);
          const loud = (i: number) => Math.abs(x[i]!) > 0.02;
          let start = 0;
          while (start < x.length && !loud(start)) start++;
          let end = x.length;
          while (end > start && !loud(end - 1)) end--;
          const ms = (end - start) / 8;
          // The whole response (1000 ms), give or take the resampler's filter edges and the frame padding at the rate change.
          expect(ms).toBeGreaterThan(970);
          expect(ms).toBeLessThan(1030);
          const s = start / 8;
          expect(pitchHz(x, s + 50, s + 450)).toBeCloseTo(300, -1);
          expect(pitchHz(x, s + 560, s + 960)).toBeCloseTo(500, -1);
        },
        { extraAgents: [factory] },
      );
    });
  }
});
