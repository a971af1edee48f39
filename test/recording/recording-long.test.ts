/**
 * A 30-minute call through one tap, as fast as the disk takes it: 90,000 caller frames,
 * 15 minutes of agent audio with a barge-in every minute. The heap must not grow with
 * the call (one fixed window, a bounded queue), the file must be exactly 30 minutes of
 * stereo, and audio from the end of the call must be where it belongs.
 */
import { open } from 'node:fs/promises';
import { afterEach, expect, it } from 'vitest';
import { ULAW_DECODE } from '../../src/dsp/ts/g711.js';
import { frameOf, LOUD, testRecorder, type TestRecorder } from './helpers.js';

const CALL_MS = 30 * 60_000;
const gc = (globalThis as { gc?: () => void }).gc;

let r: TestRecorder | undefined;
afterEach(async () => {
  await r?.cleanup();
  r = undefined;
});

/** The caller frame at timestamp ts carries one code, different for neighbouring frames (never silence). */
const callerCode = (ts: number) => 1 + ((ts / 20) % 100);
/** The agent talks in the odd 10-second stretches of the call, until 29:40. */
const talking = (t: number) => Math.floor(t / 10_000) % 2 === 1 && t < CALL_MS - 20_000;
/** Barge-in 5 s into every other talking stretch (at 0:15, 0:55, 1:35 …). */
const bargeInAt = (t: number) => t % 40_000 === 15_000;

it('30 minutes of call: heap and RSS bounded, file exactly 30 min of stereo, audio at its time to the end', async () => {
  r = await testRecorder();
  const tap = r.tap();
  const frames = Array.from({ length: 101 }, (_, c) => frameOf(c));
  const loud = frameOf(LOUD);
  let bufferedUntil = 0;
  const heap: number[] = [];
  const rss: number[] = [];
  let maxQueued = 0;
  let muted = false; // after a barge-in the agent stops until its next stretch
  const started = performance.now();
  for (let t = 20; t <= CALL_MS; t += 20) {
    r.clock.ms = t;
    tap.caller(frames[callerCode(t - 20)]!, t - 20);
    if (bargeInAt(t) && talking(t) && !muted) {
      tap.cleared(t);
      bufferedUntil = 0;
      muted = true;
    }
    if (!talking(t)) muted = false;
    if (talking(t) && !muted) {
      if (bufferedUntil < t) bufferedUntil = t;
      while (bufferedUntil + 20 <= t + 80) {
        tap.agent(loud, bufferedUntil);
        bufferedUntil += 20;
      }
    }
    if (t % 1000 === 0) {
      maxQueued = Math.max(maxQueued, tap.queuedBytes);
      // Let the writes run; wait (bounded) if the disk is behind, as real time would.
      await new Promise((res) => setImmediate(res));
      for (let i = 0; i < 1000 && tap.queuedBytes > 128 * 1024; i++) await new Promise((res) => setTimeout(res, 2));
    }
    if (t % 300_000 === 0) {
      gc?.();
      const m = process.memoryUsage();
      heap.push(m.heapUsed);
      rss.push(m.rss);
    }
  }
  const path = await tap.close();
  const elapsedMs = performance.now() - started;
  const growthMb = (xs: number[]) => (Math.max(...xs.slice(1)) - xs[0]!) / 2 ** 20;
  console.log(
    `30-min call fed in ${Math.round(elapsedMs)} ms; heap after 5/10/…/30 min (MiB): ${heap.map((h) => (h / 2 ** 20).toFixed(1)).join(' ')}; ` +
      `RSS (MiB): ${rss.map((h) => (h / 2 ** 20).toFixed(0)).join(' ')}; max queued ${maxQueued} B`,
  );
  expect(tap.stats).toMatchObject({ droppedBytes: 0, lateSamples: 0, rejectedFrames: 0, forcedCommits: 0, state: 'closed' });
  expect(heap).toHaveLength(6);
  if (gc) expect(growthMb(heap)).toBeLessThan(4); // 57.6 MB of audio went through; the heap does not keep it
  expect(growthMb(rss)).toBeLessThan(64);

  const fh = await open(path!, 'r');
  try {
    const { size } = await fh.stat();
    expect(size).toBe(44 + (CALL_MS / 1000) * 32_000);
    const sample = async (ms: number) => {
      const b = Buffer.alloc(4);
      await fh.read(b, 0, 4, 44 + ms * 8 * 4);
      return { left: b.readInt16LE(0), right: b.readInt16LE(2) };
    };
    // Caller: the code of the frame at that time, from the first minute to the last frame.
    for (const ms of [0, 20, 59_980, 900_000, 1_799_980]) expect((await sample(ms)).left).toBe(ULAW_DECODE[callerCode(ms)]);
    // Agent: talking stretches are there, silences and cleared tails are not.
    expect((await sample(10_000)).right).toBe(ULAW_DECODE[LOUD]); // first stretch starts
    expect((await sample(14_990)).right).toBe(ULAW_DECODE[LOUD]);
    expect((await sample(15_000)).right).toBe(0); // barge-in at 0:15: the 60 ms sent beyond it never played
    expect((await sample(15_050)).right).toBe(0);
    expect((await sample(35_000)).right).toBe(ULAW_DECODE[LOUD]); // no barge-in in this stretch
    expect((await sample(1_734_990)).right).toBe(ULAW_DECODE[LOUD]); // 28:55 barge-in
    expect((await sample(1_735_000)).right).toBe(0);
    expect((await sample(1_755_000)).right).toBe(ULAW_DECODE[LOUD]);
    expect((await sample(1_774_990)).right).toBe(ULAW_DECODE[LOUD]); // 29:35, the last barge-in
    expect((await sample(1_775_000)).right).toBe(0);
    expect((await sample(1_790_000)).right).toBe(0); // the agent is quiet at the end
  } finally {
    await fh.close();
  }
}, 120_000);
