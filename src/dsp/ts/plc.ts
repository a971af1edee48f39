/**
 * Packet-loss concealment for 8 kHz PCM16 — the TypeScript twin of
 * `native/dsp-core/src/plc.rs`. Same algorithm, same operation order, f64 numbers,
 * only + − × ÷ and sqrt, rounding by Math.floor(x + 0.5) then clamping to int16, so
 * both produce bit-identical output (test/dsp/ts-plc.test.ts checks the shared
 * checksums). The algorithm, its G.711 Appendix I parameters, the repetition policy
 * (with the PESQ measurements that chose it) and the zero-delay entry (mirrored real
 * tail cross-faded into the pitch repetition) are described, with the state machine,
 * in the header of plc.rs; in short:
 *
 *   history:     the last 280 samples handed on — received, recovered and concealed.
 *   good(frame): if erasing, cross-fade the continuing synthesis into the frame over
 *                P/4 samples; append the frame to the history.
 *   conceal(out), per sample t of the erasure:
 *     t=0        pitch P (normalised cross-correlation, lags 40–120, coarse 2:1 then ±1),
 *                snapshot the last P + P/4 samples, repeat the last period (one period
 *                for the whole erasure), entry cross-fade from the mirrored tail over P/4;
 *     t≥80       gain 1 − (t−80)/400;   t ≥ 480 (60 ms): zeros, returns false;
 *   then append `out` to the history.
 */

export const PLC_SUBFRAME = 80;
const PITCH_MIN = 40;
const PITCH_MAX = 120;
const CORR_LEN = 160;
/** What the pitch search reads: the last 20 ms and up to PITCH_MAX samples before them. */
export const PLC_HISTORY_LEN = CORR_LEN + PITCH_MAX; // 280 = 35 ms
/** What the synthesis reads: the longest period and the ¼ period before it. */
const SNAP_LEN = PITCH_MAX + PITCH_MAX / 4; // 150
const ENERGY_FLOOR = 250.0;
const MAX_ERASED = 480;
const ATTEN_DIV = 400.0;

/** Nearest integer (halves up), clamped to int16 — identical to `round_i16` in plc.rs. */
export function roundI16(x: number): number {
  const r = Math.floor(x + 0.5);
  if (r >= 32767) return 32767;
  if (r <= -32768) return -32768;
  return r;
}

export class Plc {
  /** The last PLC_HISTORY_LEN samples handed on (received, recovered or concealed). */
  private readonly hist = new Int16Array(PLC_HISTORY_LEN);
  /** The end of the history when the current erasure started: what synthesis reads. */
  private readonly snap = new Int16Array(SNAP_LEN);
  /** Samples concealed in the current erasure (0 = not erasing). */
  private erased = 0;
  private pitch = PITCH_MIN;
  private ovl = PITCH_MIN / 4;
  /** Read position in the repeated period. */
  private pos = 0;

  reset(): void {
    this.hist.fill(0);
    this.snap.fill(0);
    this.erased = 0;
    this.pitch = PITCH_MIN;
    this.ovl = PITCH_MIN / 4;
    this.pos = 0;
  }

  /** True while an erasure is in progress (the last call was conceal). */
  get isConcealing(): boolean {
    return this.erased > 0;
  }

  /**
   * A received frame (normally a multiple of 80 samples); modified in place by the
   * recovery OLA. `length` (default: all of it) lets callers pass a larger buffer without
   * allocating a subarray view per frame.
   */
  good(frame: Int16Array, length: number = frame.length): void {
    if (this.erased > 0) {
      const olen = this.ovl < length ? this.ovl : length;
      const denom = olen + 1;
      for (let k = 0; k < olen; k++) {
        const s = this.nextSynth();
        const wi = (k + 1) / denom;
        const wo = 1.0 - wi;
        frame[k] = roundI16(wo * s + wi * frame[k]!);
      }
      this.erased = 0;
    }
    this.append(frame, length);
  }

  /**
   * Fills `out` (its first `length` samples) with concealment and appends it to the
   * history; returns false when all of it is silence (past 60 ms).
   */
  conceal(out: Int16Array, length: number = out.length): boolean {
    let audible = false;
    const n = length;
    for (let i = 0; i < n; i++) {
      if (this.erased < MAX_ERASED) audible = true;
      out[i] = roundI16(this.nextSynth());
    }
    this.append(out, n);
    return audible;
  }

  private append(x: Int16Array, n: number): void {
    const hist = this.hist;
    if (n >= PLC_HISTORY_LEN) {
      for (let i = 0; i < PLC_HISTORY_LEN; i++) hist[i] = x[n - PLC_HISTORY_LEN + i]!;
    } else {
      hist.copyWithin(0, n);
      for (let i = 0; i < n; i++) hist[PLC_HISTORY_LEN - n + i] = x[i]!;
    }
  }

  private nextSynth(): number {
    const t = this.erased;
    if (t >= MAX_ERASED) {
      if (t < 0xffffffff) this.erased = t + 1;
      return 0.0;
    }
    if (t === 0) this.startErasure();
    let v = this.segment(this.pos);
    this.pos += 1;
    if (this.pos === this.pitch) this.pos = 0;
    if (t < this.ovl) {
      const c = this.snap[SNAP_LEN - 1 - t]!;
      const wi = (t + 1) / (this.ovl + 1);
      const wo = 1.0 - wi;
      v = wo * c + wi * v;
    }
    if (t >= PLC_SUBFRAME) {
      const g = 1.0 - (t - PLC_SUBFRAME) / ATTEN_DIV;
      v *= g;
    }
    this.erased = t + 1;
    return v;
  }

  private startErasure(): void {
    for (let i = 0; i < SNAP_LEN; i++) this.snap[i] = this.hist[PLC_HISTORY_LEN - SNAP_LEN + i]!;
    this.pitch = this.estimatePitch();
    this.ovl = this.pitch >> 2;
    this.pos = 0;
  }

  /** Sample i of the last period before the erasure, its end cross-faded with the ¼ period before it. */
  private segment(i: number): number {
    const start = SNAP_LEN - this.pitch;
    const a = this.snap[start + i]!;
    const tail = this.pitch - this.ovl;
    if (i < tail) return a;
    const j = i - tail;
    const b = this.snap[start - this.ovl + j]!;
    const wi = (j + 1) / (this.ovl + 1);
    const wo = 1.0 - wi;
    return wo * a + wi * b;
  }

  private score(lag: number, step: number): number {
    const h = this.hist;
    const base = PLC_HISTORY_LEN - CORR_LEN;
    let corr = 0.0;
    let energy = 0.0;
    for (let i = 0; i < CORR_LEN; i += step) {
      const a = h[base + i]!;
      const b = h[base + i - lag]!;
      corr += a * b;
      energy += b * b;
    }
    if (energy < ENERGY_FLOOR) energy = ENERGY_FLOOR;
    return corr / Math.sqrt(energy);
  }

  private estimatePitch(): number {
    let bestLag = PITCH_MIN;
    let best = -Infinity;
    for (let lag = PITCH_MIN; lag <= PITCH_MAX; lag += 2) {
      const s = this.score(lag, 2);
      if (s > best) {
        best = s;
        bestLag = lag;
      }
    }
    const lo = bestLag > PITCH_MIN ? bestLag - 1 : PITCH_MIN;
    const hi = bestLag < PITCH_MAX ? bestLag + 1 : PITCH_MAX;
    let fineLag = lo;
    best = -Infinity;
    for (let lag = lo; lag <= hi; lag++) {
      const s = this.score(lag, 1);
      if (s > best) {
        best = s;
        fineLag = lag;
      }
    }
    return fineLag;
  }
}
