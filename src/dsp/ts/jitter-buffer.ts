/**
 * Jitter buffer for 20 ms 8 kHz G.711 frames with PLC — the TypeScript twin of
 * `native/dsp-core/src/jitter.rs`. Same algorithm, same operation order; for the same
 * calls both produce bit-identical PCM and identical stats (test/dsp/ts-jitter.test.ts
 * asserts the checksums pinned by the Rust `parity_*` tests).
 *
 * Algorithm (full rationale and sources in the header of jitter.rs):
 * - Release is driven by arrivals, never by a playout clock: position `next` is
 *   released as soon as its frame is held, so in-order audio is never delayed and
 *   clock skew cannot accumulate delay. A missing position is waited for only while a
 *   later frame is held, until `missingSince + target` (missingSince = arrival of the
 *   first later frame), then concealed by the PLC (60 ms), then Silence (zeros).
 * - Position = round(unwrapped(timestamp − first) / 20); u32 timestamps are unwrapped
 *   against the highest seen (signed 32-bit difference). seq is not used for position.
 * - Target: NetEQ-style (WebRTC `modules/audio_coding/neteq/delay_manager.cc`) 0.95
 *   quantile of a forgetting histogram (factor 0.983) of reorder lateness in 20 ms
 *   buckets (bucket 0 = exactly 0 ms, bucket k = (20(k−1), 20k] ms), clamped to
 *   [min, max]; starts at initialDelayMs.
 * - Forward gap > maxGapFillFrames, or backward jump > max(capacity, maxGapFillFrames)
 *   frames → Resync (held frames discarded, counted lost).
 * - A ring of capacityFrames tagged slots; a frame ≥ next + capacity forces the release
 *   (concealment) of older positions; nothing allocates after construction.
 *
 *   per slot (tagged with a position p):
 *     EMPTY ──later frame arrives──► MISSING(since) ──frame arrives──► HELD(arrival)
 *       │                  now ≥ since+target or p < forceUntil │              pop │
 *       └──frame arrives──► HELD                                ▼                  ▼
 *                               CONCEALED ──frame arrives (Late)──► LATE_SEEN   RELEASED
 */
import { BridgeError, ErrorCodes } from '../../errors.js';
import {
  FrameKind,
  PushResult,
  type JitterBuffer,
  type JitterBufferOptions,
  type JitterStats,
} from '../backend.js';
import { ALAW_DECODE, ULAW_DECODE } from './g711.js';
import { Plc } from './plc.js';

const FRAME = 160;
const FRAME_MS = 20.0;
const FORGET = 0.983;
const QUANTILE = 0.95;
export const MAX_CAPACITY_FRAMES = 3000;
export const MAX_DELAY_LIMIT_MS = 10_000;
export const MAX_GAP_FILL_LIMIT = 3000;

const EMPTY = 0;
const MISSING = 1;
const HELD = 2;
const RELEASED = 3;
const CONCEALED = 4;
const LATE_SEEN = 5;
const NO_TAG = -1;

function isU32(x: unknown): x is number {
  return typeof x === 'number' && Number.isInteger(x) && x >= 0 && x <= 0xffffffff;
}

function optU32(name: string, v: unknown, dflt: number): number {
  if (v === undefined) return dflt;
  if (!isU32(v)) throw new BridgeError(ErrorCodes.DSP_ARGUMENT, `${name} must be an integer ≥ 0, got ${String(v)}`);
  return v;
}

export class TsJitterBuffer implements JitterBuffer {
  private readonly cap: number;
  private readonly initialDelayMs: number;
  private readonly minDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly maxGapFill: number;
  private decodeTable: Int16Array;
  private payload: Uint8Array;
  private tag: Float64Array;
  private state: Uint8Array;
  private time: Float64Array;
  private hist: Float64Array;
  private plc = new Plc();
  private closed = false;

  private started = false;
  private topTs = 0;
  private topUnw = 0;
  private highest = 0;
  private next = 0;
  private forceUntil = 0;
  private held = 0;
  private lastNow = 0;
  private target = 0;
  private framesIn = 0;
  private framesOut = 0;
  private duplicate = 0;
  private late = 0;
  private lost = 0;
  private concealed = 0;
  private resyncs = 0;
  private currentDelayMs = 0;

  constructor(options: JitterBufferOptions = {}) {
    const codec = options.codec ?? 'ulaw';
    if (codec !== 'ulaw' && codec !== 'alaw') {
      throw new BridgeError(ErrorCodes.DSP_ARGUMENT, `codec must be 'ulaw' or 'alaw', got ${String(codec)}`);
    }
    this.cap = optU32('capacityFrames', options.capacityFrames, 50);
    this.initialDelayMs = optU32('initialDelayMs', options.initialDelayMs, 20);
    this.minDelayMs = optU32('minDelayMs', options.minDelayMs, 0);
    this.maxDelayMs = optU32('maxDelayMs', options.maxDelayMs, 200);
    this.maxGapFill = optU32('maxGapFillFrames', options.maxGapFillFrames, 50);
    if (this.cap === 0 || this.cap > MAX_CAPACITY_FRAMES) {
      throw new BridgeError(ErrorCodes.DSP_ARGUMENT, `capacityFrames must be 1–${MAX_CAPACITY_FRAMES}`);
    }
    if (this.minDelayMs > this.maxDelayMs || this.maxDelayMs > MAX_DELAY_LIMIT_MS) {
      throw new BridgeError(ErrorCodes.DSP_ARGUMENT, `need minDelayMs ≤ maxDelayMs ≤ ${MAX_DELAY_LIMIT_MS}`);
    }
    if (this.initialDelayMs < this.minDelayMs || this.initialDelayMs > this.maxDelayMs) {
      throw new BridgeError(ErrorCodes.DSP_ARGUMENT, 'initialDelayMs must lie within [minDelayMs, maxDelayMs]');
    }
    if (this.maxGapFill > MAX_GAP_FILL_LIMIT) {
      throw new BridgeError(ErrorCodes.DSP_ARGUMENT, `maxGapFillFrames must be ≤ ${MAX_GAP_FILL_LIMIT}`);
    }
    this.decodeTable = codec === 'ulaw' ? ULAW_DECODE : ALAW_DECODE;
    this.payload = new Uint8Array(this.cap * FRAME);
    this.tag = new Float64Array(this.cap);
    this.state = new Uint8Array(this.cap);
    this.time = new Float64Array(this.cap);
    this.hist = new Float64Array(Math.floor((this.maxDelayMs + 19) / 20) + 1);
    this.reset();
  }

  reset(): void {
    this.checkOpen();
    this.tag.fill(NO_TAG);
    this.state.fill(EMPTY);
    this.time.fill(0);
    this.hist.fill(0);
    this.hist[this.bucket(this.initialDelayMs)] = 1.0;
    this.plc.reset();
    this.started = false;
    this.topTs = 0;
    this.topUnw = 0;
    this.highest = 0;
    this.next = 0;
    this.forceUntil = 0;
    this.held = 0;
    this.lastNow = 0;
    this.target = this.initialDelayMs;
    this.framesIn = 0;
    this.framesOut = 0;
    this.duplicate = 0;
    this.late = 0;
    this.lost = 0;
    this.concealed = 0;
    this.resyncs = 0;
    this.currentDelayMs = 0;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.payload = new Uint8Array(0);
    this.tag = new Float64Array(0);
    this.state = new Uint8Array(0);
    this.time = new Float64Array(0);
    this.hist = new Float64Array(0);
  }

  /** Frames held waiting for a gap (polled every tick by the call: no stats object built). */
  get bufferedFrames(): number {
    this.checkOpen();
    return this.held;
  }

  stats(): JitterStats {
    this.checkOpen();
    return {
      framesIn: this.framesIn,
      framesOut: this.framesOut,
      duplicate: this.duplicate,
      late: this.late,
      lost: this.lost,
      concealed: this.concealed,
      resyncs: this.resyncs,
      bufferedFrames: this.held,
      currentDelayMs: this.currentDelayMs,
      targetDelayMs: this.target,
    };
  }

  push(payload: Uint8Array, seq: number, timestampMs: number, nowMs: number): PushResult {
    this.checkOpen();
    if (!(payload instanceof Uint8Array)) {
      throw new BridgeError(ErrorCodes.DSP_ARGUMENT, 'payload must be a Uint8Array');
    }
    if (payload.length !== FRAME) {
      throw new BridgeError(ErrorCodes.DSP_FRAME_SIZE, `G.711 frame must be ${FRAME} bytes, got ${payload.length}`);
    }
    if (!isU32(seq) || !isU32(timestampMs)) {
      throw new BridgeError(ErrorCodes.DSP_ARGUMENT, 'seq and timestampMs must be unsigned 32-bit integers');
    }
    if (!Number.isFinite(nowMs)) throw new BridgeError(ErrorCodes.DSP_ARGUMENT, 'nowMs must be finite');
    this.framesIn += 1;
    this.lastNow = nowMs;
    if (!this.started) {
      this.startAt(payload, timestampMs, nowMs);
      return PushResult.Accepted;
    }
    const diff = (timestampMs - this.topTs) | 0;
    const unw = this.topUnw + diff;
    const index = Math.floor((unw + 10) / 20);
    const backLimit = Math.max(this.cap, this.maxGapFill);
    if (index - this.highest - 1 > this.maxGapFill || this.highest - index > backLimit) {
      this.resyncs += 1;
      this.lost += this.held;
      this.startAt(payload, timestampMs, nowMs);
      return PushResult.Resync;
    }
    if (diff > 0) {
      this.topTs = timestampMs;
      this.topUnw = unw;
    }
    const s = this.slot(index);
    const tag = this.tag;
    const state = this.state;
    if (index < this.next) {
      if (tag[s] === index && state[s] !== EMPTY) {
        if (state[s] === CONCEALED) {
          state[s] = LATE_SEEN;
          this.late += 1;
          this.lost -= 1;
          this.record(nowMs - this.time[s]!);
          return PushResult.Late;
        }
        this.duplicate += 1;
        return PushResult.Duplicate;
      }
      this.late += 1;
      this.record(Infinity);
      return PushResult.Late;
    }
    let lateness = 0.0;
    if (tag[s] === index) {
      if (state[s] === HELD) {
        this.duplicate += 1;
        return PushResult.Duplicate;
      }
      if (state[s] === MISSING) lateness = nowMs - this.time[s]!;
    } else if (tag[s]! > index && (state[s] === HELD || state[s] === MISSING)) {
      this.late += 1;
      this.record(Infinity);
      return PushResult.Late;
    }
    const cap = this.cap;
    if (index >= this.next + cap && index - cap + 1 > this.forceUntil) this.forceUntil = index - cap + 1;
    if (index > this.highest) {
      let p = this.highest + 1;
      if (p < index - cap + 1) p = index - cap + 1;
      if (p < this.next) p = this.next;
      for (; p < index; p++) this.claim(this.slot(p), p, MISSING, nowMs);
      this.highest = index;
    }
    this.claim(s, index, HELD, nowMs);
    this.held += 1;
    this.payload.set(payload, s * FRAME);
    this.record(lateness);
    return PushResult.Accepted;
  }

  pop(nowMs: number, dst: Int16Array): FrameKind {
    this.checkOpen();
    this.checkDst(dst);
    if (!Number.isFinite(nowMs)) throw new BridgeError(ErrorCodes.DSP_ARGUMENT, 'nowMs must be finite');
    this.lastNow = nowMs;
    if (!this.started || this.held === 0) return FrameKind.None;
    const s = this.slot(this.next);
    const tagged = this.tag[s] === this.next;
    if (tagged && this.state[s] === HELD) return this.release(s, nowMs, dst);
    const due =
      this.next < this.forceUntil ||
      !(tagged && this.state[s] === MISSING) ||
      nowMs >= this.time[s]! + this.target;
    if (!due) return FrameKind.None;
    return this.concealNext(s, dst);
  }

  /** End-of-call flush: releases the next held position ignoring deadlines (gaps concealed); None when nothing is held. */
  popForced(dst: Int16Array): FrameKind {
    this.checkOpen();
    this.checkDst(dst);
    if (!this.started || this.held === 0) return FrameKind.None;
    const s = this.slot(this.next);
    if (this.tag[s] === this.next && this.state[s] === HELD) return this.release(s, this.lastNow, dst);
    return this.concealNext(s, dst);
  }

  private checkOpen(): void {
    if (this.closed) throw new BridgeError(ErrorCodes.DSP_CLOSED, 'jitter buffer is closed');
  }

  private checkDst(dst: Int16Array): void {
    if (!(dst instanceof Int16Array)) throw new BridgeError(ErrorCodes.DSP_ARGUMENT, 'dst must be an Int16Array');
    if (dst.length < FRAME) {
      throw new BridgeError(ErrorCodes.DSP_DST_TOO_SMALL, `destination holds ${dst.length}, needs ${FRAME}`);
    }
  }

  private startAt(payload: Uint8Array, ts: number, nowMs: number): void {
    this.tag.fill(NO_TAG);
    this.state.fill(EMPTY);
    this.started = true;
    this.topTs = ts;
    this.topUnw = 0;
    this.highest = 0;
    this.next = 0;
    this.forceUntil = 0;
    this.state[0] = HELD;
    this.tag[0] = 0;
    this.time[0] = nowMs;
    this.payload.set(payload, 0);
    this.held = 1;
    this.record(0.0);
  }

  private slot(p: number): number {
    return ((p % this.cap) + this.cap) % this.cap;
  }

  private claim(s: number, p: number, st: number, nowMs: number): void {
    if (this.state[s] === HELD && this.tag[s] !== p) this.held -= 1;
    this.tag[s] = p;
    this.state[s] = st;
    this.time[s] = nowMs;
  }

  private release(s: number, nowMs: number, dst: Int16Array): FrameKind {
    const table = this.decodeTable;
    const src = this.payload;
    const base = s * FRAME;
    for (let i = 0; i < FRAME; i++) dst[i] = table[src[base + i]!]!;
    this.plc.good(dst, FRAME);
    this.state[s] = RELEASED;
    this.held -= 1;
    this.framesOut += 1;
    this.currentDelayMs = nowMs - this.time[s]!;
    this.next += 1;
    return FrameKind.Normal;
  }

  private concealNext(s: number, dst: Int16Array): FrameKind {
    const audible = this.plc.conceal(dst, FRAME);
    const p = this.next;
    const ownedByNewer = this.tag[s]! > p && this.state[s] !== EMPTY;
    if (!ownedByNewer) {
      if (!(this.tag[s] === p && this.state[s] === MISSING)) this.time[s] = this.lastNow;
      this.tag[s] = p;
      this.state[s] = CONCEALED;
    }
    this.lost += 1;
    this.concealed += 1;
    this.framesOut += 1;
    this.next += 1;
    return audible ? FrameKind.Concealed : FrameKind.Silence;
  }

  private bucket(latenessMs: number): number {
    const top = this.hist.length - 1;
    if (Number.isNaN(latenessMs) || latenessMs <= 0) return 0;
    const b = Math.ceil(latenessMs / FRAME_MS);
    return b >= top ? top : b;
  }

  private record(latenessMs: number): void {
    const h = this.hist;
    const b = this.bucket(latenessMs);
    for (let i = 0; i < h.length; i++) h[i] = h[i]! * FORGET;
    h[b] = h[b]! + (1.0 - FORGET);
    let cum = 0.0;
    let k = h.length - 1;
    for (let i = 0; i < h.length; i++) {
      cum += h[i]!;
      if (cum >= QUANTILE) {
        k = i;
        break;
      }
    }
    let t = k * FRAME_MS;
    if (t < this.minDelayMs) t = this.minDelayMs;
    if (t > this.maxDelayMs) t = this.maxDelayMs;
    this.target = t;
  }
}
