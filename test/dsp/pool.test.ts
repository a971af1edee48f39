/**
 * The DSP pool (BRIDGE_DSP_POOL) against the inline path it replaces, on both backends:
 * the same seeded caller frames (lost, reordered, duplicated, late) and the same agent
 * chunks give byte-identical agent PCM and μ-law, batched many calls per task; a reset
 * drops results still in flight; closing calls frees the workers' state; a worker
 * that dies fails its calls through onFailed, and the pool keeps serving.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from '../helpers/backends.js';
import { encodeUlaw } from '../../src/dsp/ts/g711.js';
import { DspPool } from '../../src/dsp/pool/dsp-pool.js';
import { inlineReference, type BatchedPaths } from '../../src/dsp/pool/inline-reference.js';
import { rng } from '../helpers/rng.js';

interface Arrival {
  seq: number;
  atMs: number;
  payload: Uint8Array;
}

/** A caller's frames as the network delivers them: jitter, 5% lost, some swapped, some duplicated, one very late. */
function callerArrivals(seed: number, frames: number): Arrival[] {
  const r = rng(seed);
  const out: Arrival[] = [];
  for (let seq = 0; seq < frames; seq++) {
    if (r() < 0.05) continue;
    const pcm = new Int16Array(160);
    for (let i = 0; i < 160; i++) pcm[i] = Math.round(8000 * Math.sin(((seq * 160 + i) * (300 + 50 * (seed % 7))) / 8000 * 2 * Math.PI) + 500 * (r() - 0.5));
    const payload = new Uint8Array(160);
    encodeUlaw(pcm, payload);
    let atMs = seq * 20 + r() * 15;
    if (r() < 0.05) atMs += 25; // lands after its successor: reordered
    if (r() < 0.01) atMs += 300; // too late to be played
    out.push({ seq, atMs, payload });
    if (r() < 0.02) out.push({ seq, atMs: atMs + 3, payload });
  }
  return out.sort((a, b) => a.atMs - b.atMs);
}

/** Agent audio: 24 kHz chunks of random size, a response end, a barge-in, another response. */
function agentChunk(r: () => number, tick: number): Int16Array {
  const n = Math.floor(r() * 1400);
  const pcm = new Int16Array(n);
  for (let i = 0; i < n; i++) pcm[i] = Math.round(6000 * Math.sin(((tick * 480 + i) * 440) / 24000 * 2 * Math.PI));
  return pcm;
}

interface Output {
  agentPcm: Buffer;
  /** Samples per sink call: the agent sees the same chunking, not just the same bytes. */
  chunks: number[];
  ulaw: Buffer;
  failed: string[];
}

/**
 * Drives one call through `paths` tick by tick (20 ms). `settle` runs after every tick
 * when `perTick` (so a reset finds nothing in flight and outputs can be compared with
 * inline), else only at the end (many ticks' records go out in few batches).
 */
async function driveCall(paths: BatchedPaths, seed: number, o: { ticks: number; resets: boolean; settle: () => Promise<void>; perTick: boolean }): Promise<Output> {
  const arrivals = callerArrivals(seed, o.ticks);
  const r = rng(seed ^ 0x5eed);
  const pcmOut: Buffer[] = [];
  const chunks: number[] = [];
  const ulawOut: Buffer[] = [];
  const failed: string[] = [];
  const call = paths.openCall((reason) => failed.push(reason));
  const inbound = call.openInbound({ toHz: 24000, quality: 7 }, (pcm) => {
    chunks.push(pcm.length);
    pcmOut.push(Buffer.from(pcm.buffer.slice(pcm.byteOffset, pcm.byteOffset + pcm.byteLength)));
  });
  const outbound = call.openOutbound({ fromHz: 24000, quality: 7 }, (u, off, n) => ulawOut.push(Buffer.from(u.subarray(off, off + n))));
  let next = 0;
  for (let tick = 1; tick <= o.ticks + 20; tick++) {
    const now = tick * 20;
    while (next < arrivals.length && arrivals[next]!.atMs <= now) {
      const a = arrivals[next++]!;
      inbound.push(a.payload, a.seq, a.seq * 20, a.atMs);
    }
    // A stalled stretch (no tick polls): held frames pile up and come out in one burst.
    if (tick < 100 || tick >= 112) inbound.poll(now);
    if (tick % 60 === 59) outbound.flush();
    else if (o.resets && tick % 90 === 45) outbound.reset();
    else outbound.push(agentChunk(r, tick));
    if (o.perTick) await o.settle();
  }
  outbound.flush();
  await o.settle();
  call.close();
  return { agentPcm: Buffer.concat(pcmOut), chunks, ulaw: Buffer.concat(ulawOut), failed };
}

const noSettle = async (): Promise<void> => undefined;

describe.each(backends.map((b) => [b.name, b] as const))('DSP pool parity with the inline path (%s)', (name, dsp) => {
  let pool: DspPool;
  beforeAll(async () => {
    pool = await DspPool.start({ threads: 2, backend: name });
  });
  afterAll(async () => {
    await pool.close();
  });
  const inline = inlineReference(dsp);

  it('one call, batched (settled only at the end): identical agent PCM and μ-law', async () => {
    const want = await driveCall(inline, 11, { ticks: 250, resets: false, settle: noSettle, perTick: false });
    const got = await driveCall(pool, 11, { ticks: 250, resets: false, settle: () => pool.settled(), perTick: false });
    expect(want.agentPcm.length).toBeGreaterThan(250 * 480); // the run really produced audio
    expect(want.ulaw.length).toBeGreaterThan(100 * 160);
    expect(got.failed).toEqual([]);
    expect(got.chunks).toEqual(want.chunks);
    expect(Math.max(...want.chunks)).toBeGreaterThan(480 * 2); // the burst released several frames at once
    expect(got.agentPcm.equals(want.agentPcm)).toBe(true);
    expect(got.ulaw.equals(want.ulaw)).toBe(true);
  });

  it('eight concurrent calls on two workers, with barge-in resets: each identical to its inline run', async () => {
    const seeds = [1, 2, 3, 4, 5, 6, 7, 8];
    const want = await Promise.all(seeds.map((s) => driveCall(inline, s, { ticks: 200, resets: true, settle: noSettle, perTick: true })));
    const batchesBefore = pool.stats().batches;
    const got = await Promise.all(seeds.map((s) => driveCall(pool, s, { ticks: 200, resets: true, settle: () => pool.settled(), perTick: true })));
    const st = pool.stats();
    // Batched: far fewer tasks than records (8 calls × ~4 records per tick).
    expect(st.batches - batchesBefore).toBeLessThan(8 * 220);
    for (let i = 0; i < seeds.length; i++) {
      expect(got[i]!.failed).toEqual([]);
      expect(got[i]!.agentPcm.length).toBeGreaterThan(0);
      expect(got[i]!.chunks).toEqual(want[i]!.chunks);
      expect(got[i]!.agentPcm.equals(want[i]!.agentPcm)).toBe(true);
      expect(got[i]!.ulaw.equals(want[i]!.ulaw)).toBe(true);
    }
  });

  it('reset drops the frames still in flight: nothing pushed before it reaches the sink', async () => {
    const frames: number[] = [];
    const call = pool.openCall(() => undefined);
    const out = call.openOutbound({ fromHz: 24000 }, (_u, _off, n) => frames.push(n));
    const before = new Int16Array(4800).fill(3000); // 200 ms
    out.push(before);
    out.flush();
    expect(out.pending).toBe(2);
    out.reset(); // barge-in before the batch came back
    expect(out.pending).toBe(0);
    const after = new Int16Array(480 * 3).fill(-2000); // 60 ms
    out.push(after);
    await pool.settled();
    // Only the push after the reset was delivered: 3 whole frames (the resampler holds its tail).
    expect(frames.length).toBe(1);
    expect(frames[0]! % 160).toBe(0);
    expect(frames[0]!).toBeLessThanOrEqual(480);
    expect(frames[0]!).toBeGreaterThanOrEqual(320);
    expect(out.pending).toBe(0);
    call.close();
    await pool.settled();
  });

  it('whenIdle runs once the frames of every operation so far have reached the sink (the session ends a response then)', async () => {
    const seen: string[] = [];
    const call = pool.openCall(() => undefined);
    const out = call.openOutbound({ fromHz: 24000 }, (_u, _off, n) => seen.push(`frames ${n}`));
    out.push(new Int16Array(4800).fill(3000));
    out.flush();
    out.whenIdle(() => seen.push('idle'));
    expect(seen).toEqual([]); // nothing back yet: the batch is in flight
    await pool.settled();
    expect(seen.at(-1)).toBe('idle');
    expect(seen.filter((e) => e.startsWith('frames'))).toHaveLength(2); // push, then the flush's tail
    out.whenIdle(() => seen.push('idle at once'));
    expect(seen.at(-1)).toBe('idle at once');
    call.close();
    await pool.settled();
  });
});

describe('DSP pool worker state', () => {
  const name = backends[0]!.name;

  it('closing calls frees their pipelines in the workers (the count goes back to 0)', async () => {
    const pool = await DspPool.start({ threads: 2, backend: name });
    try {
      const frame = new Uint8Array(160).fill(0xd5);
      const calls = Array.from({ length: 10 }, () => pool.openCall(() => undefined));
      const got = new Array<number>(10).fill(0);
      calls.forEach((c, i) => {
        const inb = c.openInbound({ toHz: 16000 }, (pcm) => (got[i]! += pcm.length));
        c.openOutbound({ fromHz: 16000 }, () => undefined).push(new Int16Array(320));
        for (let seq = 0; seq < 5; seq++) inb.push(frame, seq, seq * 20, seq * 20);
      });
      await pool.settled();
      expect(got.every((n) => n > 0)).toBe(true);
      expect(pool.stats()).toMatchObject({ calls: 10, workerCalls: 10 });
      for (const c of calls.slice(0, 4)) c.close();
      await pool.settled();
      expect(pool.stats()).toMatchObject({ calls: 6, workerCalls: 6 });
      for (const c of calls.slice(4)) c.close();
      for (const c of calls) c.close(); // idempotent
      await pool.settled();
      expect(pool.stats()).toMatchObject({ calls: 0, workerCalls: 0 });
    } finally {
      await pool.close();
    }
  });

  it('bad arguments fail the call, not the pool: a bad rate fails at open, a short frame in the worker', async () => {
    const pool = await DspPool.start({ threads: 1, backend: name });
    try {
      const a = pool.openCall(() => undefined);
      expect(() => a.openInbound({ toHz: 0 }, () => undefined)).toThrow(/toHz/);
      a.close();
      const failed: string[] = [];
      const b = pool.openCall((reason) => failed.push(reason));
      const inb = b.openInbound({ toHz: 16000 }, () => undefined);
      inb.push(new Uint8Array(7), 0, 0, 0);
      inb.push(new Uint8Array(160), 1, 20, 20);
      await pool.settled();
      expect(failed.length).toBe(1);
      expect(failed[0]).toMatch(/^dsp-error: /);
      b.close();
      await pool.settled();
      // The worker is fine: another call works.
      const c = pool.openCall(() => undefined);
      let samples = 0;
      c.openInbound({ toHz: 16000 }, (pcm) => (samples += pcm.length)).push(new Uint8Array(160).fill(0xff), 0, 0, 0);
      await pool.settled();
      expect(samples).toBeGreaterThan(0);
      c.close();
      await pool.settled();
      expect(pool.stats().workerCalls).toBe(0);
    } finally {
      await pool.close();
    }
  });

  it('a worker that dies fails its calls through onFailed, the others go on, and new calls work', async () => {
    const pool = await DspPool.start({ threads: 2, backend: name });
    try {
      const failed = new Map<number, string>();
      const calls = [0, 1, 2, 3].map((i) => pool.openCall((reason) => failed.set(i, reason)));
      const ins = calls.map((c) => c.openInbound({ toHz: 16000 }, () => undefined));
      ins.forEach((inb) => inb.push(new Uint8Array(160).fill(0xff), 0, 0, 0));
      await pool.settled();
      const threadIds = pool.threads.map((t) => t.threadId);
      expect(threadIds.length).toBe(2);
      // Kill one worker while a batch is on its way to it.
      ins.forEach((inb) => inb.push(new Uint8Array(160).fill(0xff), 1, 20, 20));
      await pool.threads[0]!.terminate();
      // Calls on the dead worker's lane fail (now, or on their next batch); the process stays up.
      for (let seq = 2; seq < 10 && failed.size < 2; seq++) {
        ins.forEach((inb) => inb.push(new Uint8Array(160).fill(0xff), seq, seq * 20, seq * 20));
        await pool.settled();
      }
      expect(failed.size).toBe(2);
      for (const reason of failed.values()) expect(reason).toMatch(/^dsp-(worker-failed|error): /);
      // Calls were spread over both lanes: the two on the healthy lane did not fail.
      expect([...failed.keys()].sort()).not.toEqual([0, 1, 2, 3]);
      for (const c of calls) c.close();
      // A new call after the crash gets working DSP (the lane re-bound to a fresh worker).
      const fresh = [0, 1].map(() => pool.openCall(() => undefined));
      const got = [0, 0];
      fresh.forEach((c, i) => c.openInbound({ toHz: 16000 }, (pcm) => (got[i]! += pcm.length)).push(new Uint8Array(160).fill(0xff), 0, 0, 0));
      await pool.settled();
      expect(got.every((n) => n > 0)).toBe(true);
      for (const c of fresh) c.close();
    } finally {
      await pool.close();
    }
  });
});

describe('BRIDGE_DSP_POOL', () => {
  it('is 0 (inline) by default, 1–16 worker threads when set, and anything else is a config problem', async () => {
    const { loadConfig, ConfigError } = await import('../../src/config.js');
    expect(loadConfig({}).dspPool).toBe(0);
    expect(loadConfig({ BRIDGE_DSP_POOL: '4' }).dspPool).toBe(4);
    for (const bad of ['17', '-1', '1.5', 'yes']) {
      let err: unknown;
      try {
        loadConfig({ BRIDGE_DSP_POOL: bad });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as InstanceType<typeof ConfigError>).problems).toEqual([`BRIDGE_DSP_POOL=${JSON.stringify(bad)}: must be an integer from 0 to 16`]);
    }
  });
});
