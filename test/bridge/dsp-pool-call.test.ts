/**
 * Whole calls through a real bridge with BRIDGE_DSP_POOL=1: every frame's DSP runs in
 * the pool's worker thread. The simulator plays Twilio; the caller hears their words
 * back through the full path (μ-law → jitter buffer → 24 kHz → echo → 24 kHz → 8 kHz →
 * μ-law), a barge-in clears what was queued and in flight, and when the calls are
 * over the worker holds no call state.
 */
import { describe, expect, it } from 'vitest';
import { createAgentRegistry } from '../../src/agents/registry.js';
import { AgentSession, pcm16, type AgentFactory, type AudioFormat } from '../../src/agents/agent.js';
import { CallManager, type CallRecord } from '../../src/call/call-manager.js';
import { loadConfig } from '../../src/config.js';
import { dspLoadInfo, loadDsp } from '../../src/dsp/load.js';
import { DspPool } from '../../src/dsp/pool/dsp-pool.js';
import { buildApp } from '../../src/server/app.js';
import { runSimulatedCall } from '../../src/sim/simulator.js';
import { decode, expectHeardAtClear, findAligned, getJson, rms, ulawClip, withBridge } from './helpers.js';

const POOL = { BRIDGE_DSP_POOL: '1' };

async function readyPool(url: string): Promise<{ threads: number; calls: number; workerCalls: number; batches: number; failedBatches: number }> {
  const r = await getJson(`${url}/readyz`);
  return r.body.dspPool;
}

describe('BRIDGE_DSP_POOL=1: a whole echo call with the DSP in a worker thread', () => {
  it('the caller hears their words back (24 kHz both ways), and the worker is empty afterwards', async () => {
    const clip = await ulawClip('caller-barge-in.8k-ulaw.wav'); // 2.48 s of speech from the first sample
    await withBridge(POOL, async (bridge, held) => {
      expect(await readyPool(bridge.url)).toMatchObject({ threads: 1, calls: 0, workerCalls: 0, failedBatches: 0 });
      const r = await runSimulatedCall({ url: bridge.streamUrl, audio: clip, customParameters: { rate: '24000' }, tailMs: 4500, timeoutMs: 20_000 });
      expect(r.outcome).toBe('completed');
      expect(r.protocolErrors).toEqual([]);
      expect(r.gaps).toEqual([]);

      expect(r.heardSegments.length).toBe(1);
      const seg = r.heardSegments[0]!;
      const clipEndMs = (clip.length / 8000) * 1000;
      expect(seg.startMs).toBeGreaterThan(clipEndMs);
      expect(seg.startMs).toBeLessThan(clipEndMs + 600 + 600 + held.slackMs());

      const heard = decode(r.heard);
      const said = decode(clip);
      const reply = heard.subarray(Math.round(seg.startMs * 8) - 400, Math.round(seg.endMs * 8) + 400);
      const speech = said.subarray(0, Math.min(said.length, reply.length - 800));
      const { lag, corr } = findAligned(reply, speech, 1600);
      expect(corr).toBeGreaterThan(0.97);
      expect(Math.abs(20 * Math.log10(rms(reply, lag, lag + speech.length) / rms(speech)))).toBeLessThan(0.5);

      const rec = await getJson(`${bridge.url}/calls/${r.callSid}`);
      expect(rec.body).toMatchObject({ agent: 'echo', state: 'closed', endReason: 'twilio-stop' });
      expect(rec.body.framesIn).toBe(r.framesSent);
      expect(rec.body.playout.framesSent).toBe(r.bytesReceived / 160);
      expect(rec.body.playout.underruns).toBe(0);
      // Jitter statistics as the worker reported them.
      expect(rec.body.jitter.framesIn).toBeGreaterThan(r.framesSent - 5);
      expect(rec.body.jitter.framesOut).toBeGreaterThan(r.framesSent - 10);

      const pool = await readyPool(bridge.url);
      expect(pool.batches).toBeGreaterThan(0);
      expect(pool.failedBatches).toBe(0);
      // The call's pipelines were freed in the worker (the CLOSE rides the next batch).
      for (let i = 0; i < 50 && (await readyPool(bridge.url)).workerCalls !== 0; i++) await new Promise((res) => setTimeout(res, 20));
      expect(await readyPool(bridge.url)).toMatchObject({ calls: 0, workerCalls: 0 });
    });
  });

  it('barge-in: Twilio is cleared, the rest of the reply (queued or still in the worker) never plays', async () => {
    const clip = await ulawClip('caller-order-status.8k-ulaw.wav'); // 5.75 s; the echo replies ~6.4 s in
    const talkOver = await ulawClip('caller-barge-in.8k-ulaw.wav');
    await withBridge(POOL, async (bridge, held) => {
      const r = await runSimulatedCall({ url: bridge.streamUrl, audio: clip, customParameters: { rate: '24000' }, bargeInAtMs: 8000, bargeInAudio: talkOver, fast: true, tailMs: 500, timeoutMs: 30_000 });
      expect(r.outcome).toBe('completed');
      expect(r.clears.length).toBeGreaterThanOrEqual(1);
      const clear = r.clears[0]!;
      expect(r.bargeIn!.reactionMs).not.toBeNull();
      expect(r.bargeIn!.reactionMs!).toBeLessThan(250 + held.slackMs());

      const rec = await getJson(`${bridge.url}/calls/${r.callSid}`);
      expect(rec.body.bargeIns).toBe(1);
      expectHeardAtClear(rec.body.lastHeardMs, r.marks, clear.atMs);
      // Silence from the clear until the caller's next turn is answered.
      const after = decode(r.heard).subarray(Math.round(clear.atMs * 8) + 8, Math.round(clear.atMs * 8) + 8 * 500);
      expect(after.length).toBeGreaterThan(0);
      expect(after.every((v) => v === 0)).toBe(true);
      expect(rec.body.playout.framesCleared + clear.droppedBytes / 160).toBeGreaterThan(0);
      expect((await readyPool(bridge.url)).failedBatches).toBe(0);
    });
  });
});

describe('BRIDGE_DSP_POOL: a worker that dies mid-call', () => {
  it('ends that call with a dsp-failed reason; the process and the next call are fine', async () => {
    // Wired as main.ts does, so the test holds the pool and can kill its worker.
    const config = loadConfig({ BRIDGE_LOG_LEVEL: 'silent', BRIDGE_DSP: process.env.BRIDGE_DSP ?? 'auto' });
    const dsp = await loadDsp({ backend: config.dsp });
    const pool = await DspPool.start({ threads: 1, backend: dsp.name });
    const agents = createAgentRegistry(config);
    const calls = new CallManager({ config, dsp, pool, agents });
    const ended: CallRecord[] = [];
    calls.on('callEnded', (r) => ended.push(r));
    // Kill the worker once the first call's pipelines live there: the worker has reported
    // the call in a batch result. (Killing at 'streaming' raced the batch that creates
    // them: a replacement worker could take that batch and the call went on.)
    let killed = false;
    calls.once('callStarted', ({ callSid }) => {
      calls.session(callSid)!.on('state', (st) => {
        if (st !== 'streaming') return;
        const kill = () => {
          if (killed) return;
          if (pool.stats().workerCalls < 1) return void setTimeout(kill, 5);
          killed = true;
          void pool.threads[0]!.terminate();
        };
        kill();
      });
    });
    const app = await buildApp({ config, calls, agents, dspInfo: dspLoadInfo, logger: false });
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    const streamUrl = `${url.replace(/^http/, 'ws')}/twilio/stream`;
    try {
      const clip = await ulawClip('caller-order-status.8k-ulaw.wav');
      const r = await runSimulatedCall({ url: streamUrl, audio: clip, customParameters: { rate: '24000' }, tailMs: 1000, timeoutMs: 20_000 });
      expect(killed).toBe(true);
      expect(r.outcome).toBe('server-closed');
      expect(r.close!.reason).toMatch(/^dsp-failed:dsp-(worker-failed|error): /);
      expect(ended.length).toBe(1);
      expect(ended[0]!.endReason).toMatch(/^dsp-failed:/);

      // The pool replaced its worker: the next call hears its words back.
      const short = await ulawClip('caller-barge-in.8k-ulaw.wav');
      const r2 = await runSimulatedCall({ url: streamUrl, audio: short, customParameters: { rate: '24000' }, tailMs: 4500, timeoutMs: 20_000 });
      expect(r2.outcome).toBe('completed');
      // The whole reply (~2.4 s of the echo) comes back; a loaded box may split it with a gap, never lose it.
      const heardMs = r2.heardSegments.reduce((n, seg) => n + seg.endMs - seg.startMs, 0);
      expect(heardMs).toBeGreaterThan(1800);
      expect(ended.at(-1)!.endReason).toBe('twilio-stop');
    } finally {
      await calls.shutdown();
      await app.close();
      await pool.close();
    }
  });
});

/** An agent whose PCM rate no DSP accepts (7 Hz): creating the call's pipelines fails. */
class OddRateAgent extends AgentSession {
  readonly inputFormat: AudioFormat = pcm16(7);
  readonly outputFormat: AudioFormat = pcm16(7);
  readonly hasVad = true;
  async connect(): Promise<void> {}
  sendAudio(): void {}
  interrupt(): void {}
  sendDtmf(): void {}
  async close(reason: string): Promise<void> {
    this.emitEvent({ type: 'closed', reason });
  }
}
const oddRate: AgentFactory = { name: 'odd-rate', available: true, create: () => new OddRateAgent() };

describe('pipelines the DSP refuses', () => {
  it.each([
    ['inline', { BRIDGE_DSP_POOL: '0' }, /^dsp-failed:BRIDGE_ERR_DSP_RATE$/],
    ['pool', POOL, /^dsp-failed:dsp-error: /],
  ])('%s: that call ends with a dsp-failed reason; the bridge keeps serving', async (_mode, env, reason) => {
    const clip = await ulawClip('caller-barge-in.8k-ulaw.wav');
    await withBridge(
      env,
      async (bridge) => {
        const r = await runSimulatedCall({ url: bridge.streamUrl, audio: clip, customParameters: { agent: 'odd-rate' }, tailMs: 15_000, timeoutMs: 30_000 });
        // The caller hears the bundled apology, then the bridge hangs up with the reason.
        expect(r.outcome).toBe('server-closed');
        expect(r.close!.reason).toMatch(reason);
        expect(r.heardSegments.length).toBeGreaterThan(0);
        const ok = await runSimulatedCall({ url: bridge.streamUrl, audio: clip, customParameters: { rate: '16000' }, tailMs: 4500, timeoutMs: 20_000 });
        expect(ok.outcome).toBe('completed');
        expect(ok.heardSegments.length).toBe(1);
      },
      { extraAgents: [oddRate] },
    );
  });
});
