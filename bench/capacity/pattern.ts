/**
 * The conversation every simulated call follows, shared by the load generator (the
 * caller's side) and the fake agent (which "hears" it by counting the frames it
 * receives, so it needs no real VAD): caller frame k of a call is pattern frame
 * (offset + k) mod length, and the offset travels to the agent in the call's
 * `instructions` parameter ("cap:<call index>:<offset>").
 *
 * One cycle, 17.4 s, at 20 ms per frame:
 *
 * ```text
 *  caller: [turn A 5.76 s]  ·····3.2 s·····  [turn B 2.48 s] ··1.24 s··  [turn C 1.5 s]  ·····3.2 s·····
 *  agent:                  ↳ 0.25 s, 2.4 s reply             ↳ 0.25 s, reply … cut ↑      ↳ 0.25 s, 2.4 s reply
 *                                                                  barge-in 1 s into the reply
 * ```
 *
 * Turn A and B are the espeak-ng caller clips in test/fixtures; turn C is the first
 * 1.5 s of turn A. The agent starts a reply THINK_MS after each turn's last frame and
 * streams it at real time in 20 ms chunks; turn C starts while the reply to turn B is
 * playing, so every cycle has one barge-in.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseWav } from '../../src/audio/wav.js';

export const FRAME_MS = 20;
export const FRAME_BYTES = 160;
/** The agent's "think time" after a caller turn: not counted as bridge delay. */
export const THINK_MS = 250;

export const Flag = {
  None: 0,
  /** First speech frame of a caller turn. */
  SpeechStart: 1,
  /** Last speech frame of a caller turn: the agent replies after it. */
  TurnEnd: 2,
  /** This turn starts while the agent is speaking (a barge-in). */
  BargeIn: 4,
} as const;

export interface Pattern {
  /** 160-byte μ-law frames, base64 (pre-encoded once). */
  framesB64: string[];
  flags: Uint8Array;
  /** At a TurnEnd frame: how many 20 ms chunks the agent's reply has. */
  replyChunks: Uint16Array;
  length: number;
}

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const fixture = (name: string) => join(root, 'test', 'fixtures', name);

/** A fixture WAV's samples as bytes (μ-law bytes, or PCM16 little-endian), through the project's WAV reader. */
export function wavBytes(path: string): Uint8Array {
  const d = parseWav(readFileSync(path)).data;
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

export function buildPattern(): Pattern {
  const a = wavBytes(fixture('caller-order-status.8k-ulaw.wav'));
  const b = wavBytes(fixture('caller-barge-in.8k-ulaw.wav'));
  const c = a.subarray(0, 1.5 * 8000);
  const silence = (ms: number) => new Uint8Array((ms / 1000) * 8000).fill(0xff);
  const parts: { audio: Uint8Array; speech: boolean; reply?: number; barge?: boolean }[] = [
    { audio: a, speech: true, reply: 120 },
    { audio: silence(3200), speech: false },
    { audio: b, speech: true, reply: 200 },
    { audio: silence(1240), speech: false },
    { audio: c, speech: true, reply: 120, barge: true },
    { audio: silence(3200), speech: false },
  ];
  const framesB64: string[] = [];
  const flags: number[] = [];
  const replies: number[] = [];
  for (const p of parts) {
    const n = Math.ceil(p.audio.length / FRAME_BYTES);
    for (let k = 0; k < n; k++) {
      const f = new Uint8Array(FRAME_BYTES).fill(0xff);
      f.set(p.audio.subarray(k * FRAME_BYTES, Math.min(p.audio.length, (k + 1) * FRAME_BYTES)));
      framesB64.push(Buffer.from(f).toString('base64'));
      let fl: number = Flag.None;
      if (p.speech && k === 0) fl |= Flag.SpeechStart | (p.barge ? Flag.BargeIn : 0);
      if (p.speech && k === n - 1) fl |= Flag.TurnEnd;
      flags.push(fl);
      replies.push(p.speech && k === n - 1 ? p.reply! : 0);
    }
  }
  return { framesB64, flags: Uint8Array.from(flags), replyChunks: Uint16Array.from(replies), length: framesB64.length };
}

/**
 * A clock every process on this machine shares (CLOCK_MONOTONIC through process.hrtime),
 * in ms. Not performance.now() plus an offset: on this VM the two drift apart by about
 * 0.3 ms per second (measured), which showed up as negative delays between processes.
 */
export function monoClock(): () => number {
  return () => Number(process.hrtime.bigint()) / 1e6;
}

/** Nearest-rank percentile of an unsorted list (sorts a copy). */
export function percentile(xs: ArrayLike<number>, p: number): number | null {
  if (xs.length === 0) return null;
  const s = Float64Array.from(xs as ArrayLike<number>).sort();
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

export const PHASES = 10;
const PHASE_MS = FRAME_MS / PHASES;

/**
 * The one shared drift-free clock of the load generator and of the fake agent. Calls
 * are spread over the 20 ms frame period like real ones (which start at random
 * moments): it ticks every 2 ms and serves one of PHASES groups per tick, so the
 * bridge never gets every call's frame in one burst; a late tick serves every group
 * it passed, as a network would deliver. It records its own lateness.
 */
export class PhaseClock {
  #next: number;
  #tick = 0;
  #lateMax = 0;
  readonly #lates: number[] = [];

  constructor(
    readonly now: () => number,
    readonly onPhase: (phase: number, t: number) => void,
  ) {
    this.#next = now() + PHASE_MS;
    setTimeout(this.#run, PHASE_MS);
  }

  #run = (): void => {
    const t = this.now();
    const late = t - this.#next;
    this.#lates.push(late);
    if (late > this.#lateMax) this.#lateMax = late;
    const first = this.#tick;
    while (this.#next <= t) {
      this.#next += PHASE_MS;
      this.#tick++;
    }
    for (let pt = first; pt < this.#tick; pt++) this.onPhase(pt % PHASES, t);
    setTimeout(this.#run, Math.max(0, this.#next - this.now()));
  };

  /** Lateness since the last call: max and p99 (ms). */
  takeLag(): { lagMaxMs: number; lagP99Ms: number | null } {
    const r = { lagMaxMs: this.#lateMax, lagP99Ms: percentile(this.#lates, 99) };
    this.#lateMax = 0;
    this.#lates.length = 0;
    return r;
  }
}
