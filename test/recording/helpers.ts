/** Shared helpers for the recording tests: a recorder on a temp dir with a clock the test drives. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRecorder, type Recorder, type RecorderOptions } from '../../src/recording/recorder.js';
import type { RecordingTap } from '../../src/recording/recording-tap.js';

export const FRAME = 160;
/** μ-law codes: 0xFF decodes to 0 (silence), 0x80 to +32124, 0x00 to −32124. */
export const SILENT = 0xff;
export const LOUD = 0x80;

export interface LogLine {
  level: string;
  msg: string;
  fields?: Record<string, unknown>;
}

export interface TestRecorder {
  dir: string;
  recorder: Recorder;
  logs: LogLine[];
  /** The test's clock (ms); advance it as the call runs. */
  clock: { ms: number };
  tap(callSid?: string): RecordingTap;
  cleanup(): Promise<void>;
}

export async function testRecorder(options: RecorderOptions = {}, env: Record<string, string> = {}): Promise<TestRecorder> {
  const dir = await mkdtemp(join(tmpdir(), 'vb-rec-'));
  const logs: LogLine[] = [];
  const clock = { ms: 0 };
  const recorder = createRecorder(
    { env: { BRIDGE_RECORD: '1', BRIDGE_RECORD_DIR: dir, ...env } },
    { now: () => clock.ms, log: (level, msg, fields) => logs.push({ level, msg, ...(fields ? { fields } : {}) }), ...options },
  );
  let n = 0;
  return {
    dir,
    recorder,
    logs,
    clock,
    tap: (callSid = `CA${String(++n).padStart(32, '0')}`) => recorder.tapFor({ callSid, streamSid: `MZ${callSid.slice(2)}` }) as RecordingTap,
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

export function frameOf(code: number, length = FRAME): Uint8Array {
  return new Uint8Array(length).fill(code);
}

/** Left and right channels of an interleaved stereo Int16Array. */
export function channels(data: Int16Array): { left: Int16Array; right: Int16Array } {
  const n = data.length / 2;
  const left = new Int16Array(n);
  const right = new Int16Array(n);
  for (let i = 0; i < n; i++) {
    left[i] = data[2 * i]!;
    right[i] = data[2 * i + 1]!;
  }
  return { left, right };
}

/** Indices of the non-zero samples of a channel. */
export function nonZero(x: Int16Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < x.length; i++) if (x[i] !== 0) out.push(i);
  return out;
}

/** Runs `steps` 20 ms ticks of a call: at each tick the clock advances and `fn(tMs)` feeds the tap. */
export function runTicks(clock: { ms: number }, fromMs: number, toMs: number, fn: (tMs: number) => void): void {
  for (let t = fromMs; t < toMs; t += 20) {
    clock.ms = t;
    fn(t);
  }
}
