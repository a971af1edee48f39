/**
 * The recording tap on its own, driven the way the call core drives it: caller frames
 * arrive ~20 ms after their timestamp, agent frames are sent up to 80 ms before they
 * play, a barge-in clears what was sent but not yet played. The clock is the test's,
 * so every expectation is exact to the sample.
 */
import { readFile, writeFile, rm, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readWav } from '../../src/audio/wav.js';
import { ULAW_DECODE } from '../../src/dsp/ts/g711.js';
import { ConfigError } from '../../src/config.js';
import { createRecorder, recordingBaseName } from '../../src/recording/recorder.js';
import { RecordingError, RecordingErrorCodes } from '../../src/recording/recording-error.js';
import { channels, frameOf, LOUD, nonZero, runTicks, SILENT, testRecorder, type TestRecorder } from './helpers.js';

const LOUD_PCM = ULAW_DECODE[LOUD]!; // +32124
let r: TestRecorder | undefined;
afterEach(async () => {
  await r?.cleanup();
  r = undefined;
});

/** Bounded wait for the tap's write queue to empty. */
async function drained(tap: { queuedBytes: number }): Promise<void> {
  for (let i = 0; i < 2000 && tap.queuedBytes > 0; i++) await new Promise((res) => setTimeout(res, 2));
  expect(tap.queuedBytes).toBe(0);
}

/** Samples i in [from, to) for each range, as a sorted list. */
function ranges(...rs: [number, number][]): number[] {
  const out: number[] = [];
  for (const [a, b] of rs) for (let i = a; i < b; i++) out.push(i);
  return out;
}

/**
 * A playout like src/call/playout.ts: each tick it tops Twilio's buffer up to `leadMs`
 * ahead of now, one 20 ms frame at a time, and reports each frame with its play time.
 */
class FakePlayout {
  bufferedUntil = 0;
  constructor(readonly send: (frame: Uint8Array, playAtMs: number) => void, readonly leadMs = 80) {}
  tick(now: number, frameAt: (playAtMs: number) => Uint8Array): void {
    if (this.bufferedUntil < now) this.bufferedUntil = now;
    while (this.bufferedUntil + 20 <= now + this.leadMs) {
      this.send(frameAt(this.bufferedUntil), this.bufferedUntil);
      this.bufferedUntil += 20;
    }
  }
  clear(): void {
    this.bufferedUntil = 0;
  }
}

describe('recording tap: time alignment', () => {
  it('a caller click at 1.00 s and an agent click played at 2.00 s land at samples 8000 (left) and 16000 (right)', async () => {
    r = await testRecorder();
    const tap = r.tap();
    const silent = frameOf(SILENT);
    const click = frameOf(SILENT);
    click[0] = LOUD;
    const midClick = frameOf(SILENT);
    midClick[80] = LOUD; // 10 ms into the frame at 1.50 s: sample 12080
    const playout = new FakePlayout((f, at) => tap.agent(f, at));
    runTicks(r.clock, 20, 3000, (t) => {
      const ts = t - 20; // frame [ts, ts + 20) arrives once it has been spoken
      tap.caller(ts === 1000 ? click : ts === 1500 ? midClick : silent, ts);
      playout.tick(t, (playAt) => (playAt === 2000 ? click : silent)); // sent at 1940, played at 2000
    });
    const path = await tap.close();
    expect(path).toBe(join(r.dir, `CA${'1'.padStart(32, '0')}.wav`));
    const wav = await readWav(path!);
    expect(wav).toMatchObject({ sampleRateHz: 8000, channels: 2, encoding: 'pcm16' });
    const { left, right } = channels(wav.data as Int16Array);
    expect(nonZero(left)).toEqual([8000, 12080]);
    expect(left[8000]).toBe(LOUD_PCM);
    expect(nonZero(right)).toEqual([16000]);
    expect(right[16000]).toBe(LOUD_PCM);
    // The file runs to the last audio it was given: the agent's frames sent up to 80 ms ahead at close (2980 + 80 ms).
    expect(left.length).toBe(3060 * 8);
    expect(tap.stats).toMatchObject({ lateSamples: 0, rejectedFrames: 0, forcedCommits: 0, droppedBytes: 0, state: 'closed' });
  });

  it('gaps in caller timestamps are silence; a frame up to 500 ms late still lands at its time, later ones are counted and left out', async () => {
    r = await testRecorder();
    const tap = r.tap();
    const loud = frameOf(LOUD);
    runTicks(r.clock, 20, 3020, (t) => {
      const ts = t - 20;
      if (ts < 1000 || ts >= 1500) tap.caller(loud, ts); // no frames for [1000, 1500)
      if (t === 1700) tap.caller(loud, 1460); // 240 ms late
    });
    r.clock.ms = 3100;
    tap.caller(frameOf(0x90), 500); // 2.6 s late: that time is already on its way to disk
    await tap.close();
    const wav = await readWav(tap.path!);
    const { left, right } = channels(wav.data as Int16Array);
    expect(nonZero(left)).toEqual(ranges([0, 8000], [11680, 11840], [12000, 24000]));
    expect(left[4000]).toBe(LOUD_PCM); // the late 0x90 frame did not overwrite what was written
    expect(nonZero(right)).toEqual([]);
    expect(tap.stats.lateSamples).toBe(160);
  });
});

describe('recording tap: barge-in', () => {
  it('agent audio sent but cleared before it played is not in the recording; the next response is', async () => {
    r = await testRecorder();
    const tap = r.tap();
    const loud = frameOf(LOUD);
    const silent = frameOf(SILENT);
    const playout = new FakePlayout((f, at) => tap.agent(f, at));
    runTicks(r.clock, 20, 4000, (t) => {
      tap.caller(silent, t - 20);
      if (t === 2500) {
        // Barge-in: Twilio had [2500, 2560) buffered and drops it.
        playout.clear();
        tap.cleared(2500);
      }
      const talking = (t >= 1000 && t < 2500) || (t >= 3000 && t < 3500);
      if (talking) playout.tick(t, () => loud);
    });
    await tap.close();
    const { right } = channels((await readWav(tap.path!)).data as Int16Array);
    // First response: 1000 → 2500 (not the 60 ms sent beyond); second: 3000 → 3560 (sent up to 60 ms ahead, all played).
    expect(nonZero(right)).toEqual(ranges([8000, 20000], [24000, 28480]));
    expect(tap.stats.clears).toBe(1);
    expect(tap.stats.clearedSamples).toBe(60 * 8);
  });

  it('a clear that comes after the agent audio ended removes nothing', async () => {
    r = await testRecorder();
    const tap = r.tap();
    r.clock.ms = 1000;
    tap.agent(frameOf(LOUD, 800), 1000); // 100 ms, played 1000 → 1100
    r.clock.ms = 1200;
    tap.cleared(1200);
    await tap.close();
    const { right } = channels((await readWav(tap.path!)).data as Int16Array);
    expect(nonZero(right)).toEqual(ranges([8000, 8800]));
    expect(tap.stats.clearedSamples).toBe(0);
  });
});

describe('recording tap: the file', () => {
  it('close() patches the header: RIFF and data sizes match the audio, the file reads back with readWav', async () => {
    r = await testRecorder();
    const tap = r.tap();
    const loud = frameOf(LOUD);
    // Exactly 10 s of caller audio, a second at a time with the event loop free in between (as in a real call).
    for (let s = 0; s < 10; s++) {
      runTicks(r.clock, s * 1000 + 20, s * 1000 + 1020, (t) => tap.caller(loud, t - 20));
      await drained(tap);
    }
    const path = await tap.close();
    expect(await tap.close()).toBe(path); // idempotent
    const bytes = await readFile(path!);
    const dataBytes = 10_000 * 8 * 4;
    expect(bytes.length).toBe(44 + dataBytes);
    expect(bytes.toString('latin1', 0, 4)).toBe('RIFF');
    expect(bytes.readUInt32LE(4)).toBe(36 + dataBytes);
    expect(bytes.toString('latin1', 8, 16)).toBe('WAVEfmt ');
    expect(bytes.readUInt16LE(20)).toBe(1); // PCM
    expect(bytes.readUInt16LE(22)).toBe(2); // channels
    expect(bytes.readUInt32LE(24)).toBe(8000);
    expect(bytes.readUInt32LE(28)).toBe(32000); // byte rate
    expect(bytes.readUInt16LE(32)).toBe(4); // block align
    expect(bytes.readUInt16LE(34)).toBe(16);
    expect(bytes.toString('latin1', 36, 40)).toBe('data');
    expect(bytes.readUInt32LE(40)).toBe(dataBytes);
    const wav = await readWav(path!);
    expect(wav.data.length).toBe(10_000 * 8 * 2);
    expect(r.recorder.stats()).toMatchObject({ active: 0, completed: 1, failed: 0, writtenBytes: dataBytes, droppedMs: 0 });
  });

  it('file names come from the CallSid with safe characters only; a second stream of one call gets its own file', async () => {
    r = await testRecorder();
    expect(recordingBaseName('CA0123456789abcdef0123456789abcdef')).toBe('CA0123456789abcdef0123456789abcdef');
    expect(recordingBaseName('../../etc/passwd')).toBe('call______etc_passwd');
    expect(recordingBaseName('')).toBe('call');
    expect(recordingBaseName('x'.repeat(200))).toHaveLength(64);
    const hostile = r.tap('../../etc/passwd\0;rm -rf');
    const a = r.tap('CAsame');
    const b = r.tap('CAsame');
    const paths = await Promise.all([hostile.close(), a.close(), b.close()]);
    expect(paths.map((p) => dirname(p!))).toEqual([r.dir, r.dir, r.dir]);
    expect(basename(paths[0]!)).toBe('call______etc_passwd__rm_-rf.wav');
    expect(new Set([basename(paths[1]!), basename(paths[2]!)])).toEqual(new Set(['CAsame.wav', 'CAsame-2.wav']));
    for (const p of paths) expect((await readWav(p!)).data.length).toBe(0); // empty but valid
  });

  it('hostile timestamps (negative, NaN, hours ahead of the clock) are counted, not recorded, and do not grow the file', async () => {
    r = await testRecorder();
    const tap = r.tap();
    r.clock.ms = 100;
    const loud = frameOf(LOUD);
    tap.caller(loud, -20);
    tap.caller(loud, Number.NaN);
    tap.caller(loud, 1e12);
    tap.agent(loud, 3_600_000);
    tap.caller(loud, 40);
    tap.cleared(Number.NaN);
    await tap.close();
    expect(tap.stats.rejectedFrames).toBe(4);
    const { left } = channels((await readWav(tap.path!)).data as Int16Array);
    expect(left.length).toBe(60 * 8);
    expect(nonZero(left)).toEqual(ranges([320, 480]));
  });
});

describe('recording tap: a slow disk never blocks the frame path', () => {
  it('when the write queue is full, data is dropped with one counted warning; the file keeps its timeline', async () => {
    // 1 s of queue per call; the test does not yield to the event loop for 10 s of call,
    // so no write can finish: the disk is, as far as the tap can tell, stalled.
    r = await testRecorder({ maxQueuedMsPerCall: 1000 });
    const tap = r.tap();
    const loud = frameOf(LOUD);
    // CPU time, not wall time: the loop never yields, and a loaded machine descheduling it is not the tap's cost.
    const cpu0 = process.cpuUsage();
    runTicks(r.clock, 20, 10_020, (t) => tap.caller(loud, t - 20));
    const cpu = process.cpuUsage(cpu0);
    const perFrameUs = (cpu.user + cpu.system) / 500;
    expect(tap.stats.droppedBytes).toBeGreaterThan(0);
    expect(tap.queuedBytes).toBeLessThanOrEqual(1000 * 32);
    const warnings = r.logs.filter((l) => l.fields?.code === RecordingErrorCodes.DROPPED);
    expect(warnings).toHaveLength(1);
    // The disk catches up (bounded wait on the queue draining), then the call goes on.
    await drained(tap);
    const click = frameOf(LOUD);
    click.fill(0x90, 1); // a distinct frame at 10.4 s
    runTicks(r.clock, 10_020, 12_020, (t) => tap.caller(t - 20 === 10_400 ? click : loud, t - 20));
    await tap.close();
    const { left } = channels((await readWav(tap.path!)).data as Int16Array);
    expect(left.length).toBe(12_000 * 8);
    // Every sample is either what the caller sent or a dropped (zero) one, and the zeros are exactly the dropped data.
    let zeros = 0;
    for (let i = 0; i < left.length; i++) if (left[i] === 0) zeros++;
    expect(zeros).toBe(tap.stats.droppedBytes / 4);
    // After the drops, audio is still at its time.
    expect(left[10_400 * 8]).toBe(LOUD_PCM);
    expect(left[10_400 * 8 + 1]).toBe(ULAW_DECODE[0x90]);
    expect(left[10_420 * 8]).toBe(LOUD_PCM);
    expect(r.logs.filter((l) => l.fields?.code === RecordingErrorCodes.DROPPED).at(-1)!.fields!.droppedMs).toBe(tap.stats.droppedBytes / 32);
    expect(perFrameUs).toBeLessThan(100); // measured ~1 µs: a bound that only a tap doing disk work on the frame path breaks
  });
});

describe('recording failures never reach the call', () => {
  it('a directory that disappears: the tap records nothing, close() resolves undefined, one BRIDGE_ERR_RECORDING_IO warning', async () => {
    r = await testRecorder();
    await rm(r.dir, { recursive: true });
    const tap = r.tap();
    runTicks(r.clock, 20, 3000, (t) => {
      tap.caller(frameOf(LOUD), t - 20);
      tap.agent(frameOf(LOUD), t + 60);
    });
    expect(await tap.close()).toBeUndefined();
    expect(r.logs.filter((l) => l.fields?.code === RecordingErrorCodes.IO)).toHaveLength(1);
    expect(r.recorder.stats()).toMatchObject({ active: 0, completed: 0, failed: 1 });
  });

  it('start-up checks: a bad BRIDGE_RECORD value is a ConfigError, an unusable directory BRIDGE_ERR_RECORDING_DIR; off means no taps and no directory', async () => {
    r = await testRecorder();
    expect(() => createRecorder({ env: { BRIDGE_RECORD: 'maybe' } })).toThrow(ConfigError);
    const file = join(r.dir, 'a-file');
    await writeFile(file, 'x');
    let err: unknown;
    try {
      createRecorder({ env: { BRIDGE_RECORD: '1', BRIDGE_RECORD_DIR: file } });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(RecordingError);
    expect((err as RecordingError).code).toBe('BRIDGE_ERR_RECORDING_DIR');
    const offDir = join(r.dir, 'not-created');
    const off = createRecorder({ env: { BRIDGE_RECORD_DIR: offDir } });
    expect(off.enabled).toBe(false);
    expect(off.tapFor({ callSid: 'CA1', streamSid: 'MZ1' })).toBeUndefined();
    expect(existsSync(offDir)).toBe(false);
    const nested = join(r.dir, 'a', 'b');
    const on = createRecorder({ env: { BRIDGE_RECORD: 'true', BRIDGE_RECORD_DIR: nested } });
    expect(on).toMatchObject({ enabled: true, dir: nested });
    expect((await stat(nested)).isDirectory()).toBe(true);
    expect(createRecorder({ env: {} }).dir).toBe(join(process.cwd(), 'data', 'recordings'));
  });
});
