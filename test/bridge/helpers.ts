/** Shared helpers for the end-to-end bridge tests: a real bridge on 127.0.0.1:0. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readWav } from '../../src/audio/wav.js';
import { startBridge, type RunningBridge, type StartOptions } from '../../src/main.js';
import { ULAW_DECODE } from '../../src/dsp/ts/g711.js';
import { watchHeldUp, type HeldUp } from '../helpers/held-up.js';

export const fixtures = join(import.meta.dirname, '..', 'fixtures');

export async function ulawClip(name: string): Promise<Uint8Array> {
  const w = await readWav(join(fixtures, name));
  if (w.encoding !== 'ulaw' || w.sampleRateHz !== 8000) throw new Error(`${name} is not 8 kHz μ-law`);
  return w.data as Uint8Array;
}

export function decode(ulaw: Uint8Array): Float64Array {
  const out = new Float64Array(ulaw.length);
  for (let i = 0; i < ulaw.length; i++) out[i] = ULAW_DECODE[ulaw[i]!]!;
  return out;
}

export function rms(x: Float64Array, from = 0, to = x.length): number {
  let s = 0;
  for (let i = from; i < to; i++) s += x[i]! * x[i]!;
  return Math.sqrt(s / Math.max(1, to - from));
}

/**
 * Best normalised cross-correlation of `needle` inside `hay` over lags [0, maxLag],
 * computed on 2:1 decimated signals first and refined around the best lag.
 */
export function findAligned(hay: Float64Array, needle: Float64Array, maxLag: number): { lag: number; corr: number } {
  const corrAt = (lag: number): number => {
    let xy = 0;
    let xx = 0;
    let yy = 0;
    const n = Math.min(needle.length, hay.length - lag);
    for (let i = 0; i < n; i++) {
      const a = hay[lag + i]!;
      const b = needle[i]!;
      xy += a * b;
      xx += a * a;
      yy += b * b;
    }
    return xx > 0 && yy > 0 ? xy / Math.sqrt(xx * yy) : 0;
  };
  let best = { lag: 0, corr: -1 };
  for (let lag = 0; lag <= maxLag; lag += 8) {
    const c = corrAt(lag);
    if (c > best.corr) best = { lag, corr: c };
  }
  for (let lag = Math.max(0, best.lag - 8); lag <= best.lag + 8; lag++) {
    const c = corrAt(lag);
    if (c > best.corr) best = { lag, corr: c };
  }
  return best;
}

/**
 * A bridge in this process for `fn`, closed afterwards. `held` watches this process's event loop
 * while `fn` runs (test/helpers/held-up.ts): the bridge, the simulator and the fakes all share
 * it, so a timing bound adds `held.slackMs()` — exact on an idle machine, and on a loaded one
 * failing only on lateness the stalls do not explain.
 */
export async function withBridge<T>(env: Record<string, string>, fn: (b: RunningBridge, held: HeldUp) => Promise<T>, options: StartOptions = {}): Promise<T> {
  // Call records go to a fresh temp dir per bridge (SQLite), never to ./data.
  const dataDir = mkdtempSync(join(tmpdir(), 'vb-data-'));
  // BRIDGE_DSP_POOL=N in the test environment runs these bridges with the DSP worker pool.
  // The load gate is off unless a test sets it (test/lifecycle/admission.test.ts): on a busy CI box it
  // would refuse webhooks that a test of something else relies on.
  const bridge = await startBridge({ BRIDGE_LOG_LEVEL: 'silent', BRIDGE_DSP: process.env.BRIDGE_DSP ?? 'auto', BRIDGE_DSP_POOL: process.env.BRIDGE_DSP_POOL ?? '0', BRIDGE_DATA_DIR: dataDir, BRIDGE_LOAD_THRESHOLD: 'off', ...env }, { port: 0, host: '127.0.0.1', ...options });
  const held = watchHeldUp();
  try {
    return await fn(bridge, held);
  } finally {
    held.stop();
    await bridge.close();
  }
}

export async function getJson(url: string): Promise<{ status: number; body: any }> {
  const r = await fetch(url);
  return { status: r.status, body: await r.json().catch(() => null) };
}

/** Mark names are r<response>.<endMs>.<n>: the end position of the response's audio. */
export function markEndMs(name: string): number {
  const m = /^r\d+\.(\d+)\.\d+$/.exec(name);
  if (!m) throw new Error(`unexpected mark name ${name}`);
  return Number(m[1]);
}

/**
 * The heard positions consistent with the simulator's view at a clear. At least the end
 * of the last mark it echoed before the clear, or of the one before (an echo can still be
 * in flight when the bridge decides the barge-in); the bridge then adds the time since
 * the echo it has, so at most the last echoed position plus the time from that echo to
 * the clear's arrival (the simulator plays on in real time; the bridge decided a little
 * earlier), plus one frame for the two clocks.
 */
export function heardRangeAtClear(marks: { name: string; echoedAtMs: number | null; viaClear: boolean }[], clearAtMs: number): { min: number; max: number } {
  const played = marks.filter((m) => !m.viaClear && m.echoedAtMs !== null && m.echoedAtMs <= clearAtMs);
  if (played.length === 0) return { min: 0, max: 20 };
  const ends = played.slice(-2).map((m) => markEndMs(m.name));
  const last = played.at(-1)!;
  return { min: Math.min(...ends), max: markEndMs(last.name) + (clearAtMs - last.echoedAtMs!) + 20 };
}

/** Asserts a barge-in's heard position is within heardRangeAtClear. */
export function expectHeardAtClear(heardMs: number, marks: Parameters<typeof heardRangeAtClear>[0], clearAtMs: number): void {
  const { min, max } = heardRangeAtClear(marks, clearAtMs);
  if (heardMs < min || heardMs > max) throw new Error(`heardMs ${heardMs} outside [${min}, ${max}] (acknowledged marks … played by the clear)`);
}
