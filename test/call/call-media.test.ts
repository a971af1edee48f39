/**
 * A call's media with the DSP worker pool (BRIDGE_DSP_POOL): results come back a batch
 * later, so some are in flight when the call's media closes — an agent that failed, a
 * call that ends. Those results are dropped (the pool forgets a closed call, and the media
 * ignores anything after close): nothing reaches the agent or Playout after close(), while
 * the same operations left open do arrive.
 *
 * Inline, an agent may end the call while it takes caller PCM: the media closes inside
 * toAgent, and caller() must still return normally (it runs in the socket's message handler).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pcm16 } from '../../src/agents/agent.js';
import { CallMedia } from '../../src/call/call-media.js';
import { Playout } from '../../src/call/playout.js';
import { DspPool } from '../../src/dsp/pool/dsp-pool.js';
import { backends } from '../helpers/backends.js';

describe.each(backends.map((b) => [b.name, b] as const))('CallMedia on the DSP pool (%s)', (name, dsp) => {
  let pool: DspPool;
  beforeAll(async () => {
    pool = await DspPool.start({ threads: 1, backend: name });
  });
  afterAll(async () => {
    await pool.close();
  });

  function open(onHeld?: () => void) {
    const toAgent: number[] = [];
    const playout = new Playout({ streamSid: 'MZ' + 'c'.repeat(32), send: () => undefined, leadMs: 60_000 });
    const failures: string[] = [];
    const media = new CallMedia({
      dsp,
      pool,
      quality: 7,
      agentIn: pcm16(24000),
      agentOut: pcm16(24000),
      playout,
      toAgent: (pcm) => toAgent.push(pcm.length),
      onSpeech: () => undefined,
      onPoolFailure: (reason) => failures.push(reason),
      ...(onHeld ? { onHeld } : {}),
    });
    return { media, playout, toAgent, failures };
  }

  /** Five caller frames and 200 ms of agent audio, all handed to the pool (none back yet). */
  function feed(media: CallMedia): void {
    const frame = new Uint8Array(160).fill(0x35);
    for (let seq = 0; seq < 5; seq++) media.caller(frame, seq, seq * 20, seq * 20);
    media.agent(new Int16Array(4800).fill(2500), 24000, 'r1');
  }

  it('results in flight when the media closes reach neither the agent nor Playout', async () => {
    const c = open();
    feed(c.media);
    expect(c.toAgent).toEqual([]); // in flight: the batch has not come back
    c.media.close();
    await pool.settled();
    expect(c.toAgent).toEqual([]);
    expect(c.playout.stats.framesQueued).toBe(0);
    expect(c.failures).toEqual([]);
  });

  it('the same operations left open arrive a batch later (what the case above drops)', async () => {
    const c = open();
    feed(c.media);
    await pool.settled();
    expect(c.toAgent.reduce((n, s) => n + s, 0)).toBeGreaterThanOrEqual(4 * 480);
    expect(c.playout.stats.framesQueued).toBeGreaterThanOrEqual(9); // 200 ms less the resampler's delay
    c.media.close();
    await pool.settled();
  });

  it('a frame the worker holds for a gap: its result asks for the clock (onHeld), poll() releases it with the gap concealed, then nothing is due', async () => {
    let held = 0;
    const c = open(() => held++);
    const frame = new Uint8Array(160).fill(0x35);
    for (const seq of [1, 2, 3, 5]) c.media.caller(frame, seq, (seq - 1) * 20, (seq - 1) * 20);
    await pool.settled();
    const inOrder = c.toAgent.reduce((n, s) => n + s, 0);
    expect(held).toBeGreaterThan(0); // frame 5 waits for 4
    expect(c.media.needsPoll).toBe(true);
    // Ticks past the gap's deadline, as the clock gives them while needsPoll holds.
    for (let now = 100; c.media.needsPoll && now < 2000; now += 20) {
      c.media.poll(now);
      await pool.settled();
    }
    expect(c.media.needsPoll).toBe(false);
    expect(c.toAgent.reduce((n, s) => n + s, 0) - inOrder).toBe(2 * 480); // frame 4 concealed, then 5
    c.media.close();
    await pool.settled();
  });
});

describe.each(backends.map((b) => [b.name, b] as const))('CallMedia inline (%s)', (_name, dsp) => {
  it('an agent that ends the call while taking caller PCM (the media closes inside toAgent): caller() returns normally, nothing more reaches the agent', () => {
    const playout = new Playout({ streamSid: 'MZ' + 'd'.repeat(32), send: () => undefined, leadMs: 60_000 });
    const taken: number[] = [];
    const held: number[] = [];
    let media: CallMedia | undefined = undefined;
    media = new CallMedia({
      dsp,
      quality: 7,
      agentIn: pcm16(16000),
      agentOut: pcm16(16000),
      playout,
      toAgent: (pcm) => {
        taken.push(pcm.length);
        if (taken.length === 2) media!.close(); // the agent failed: the session leaves streaming
      },
      onSpeech: () => undefined,
      onPoolFailure: () => undefined,
      onHeld: () => held.push(1),
    });
    const frame = new Uint8Array(160).fill(0x35);
    for (let seq = 1; seq <= 4; seq++) expect(() => media.caller(frame, seq, (seq - 1) * 20, (seq - 1) * 20)).not.toThrow();
    expect(taken).toEqual([320, 320]);
    expect(held).toEqual([]); // in-order frames never ask for the clock
    expect(media.needsPoll).toBe(false);
  });
});
