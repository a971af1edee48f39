/**
 * Packet-loss concealment for 8 kHz PCM16 — the TypeScript twin of
 * `native/dsp-core/src/plc.rs`. Same algorithm, same operation order, f64 numbers,
 * only + − × ÷ and sqrt, rounding by Math.floor(x + 0.5) then clamping to int16, so
 * both produce bit-identical output (test/dsp/ts-plc.test.ts checks the shared
 * checksum). The algorithm, its G.711 Appendix I parameters and the zero-delay entry
 * (mirrored real tail cross-faded into the pitch repetition) are described, with the
 * state machine, in the header of plc.rs; in short:
 *
 *   good(frame): if erasing, cross-fade the continuing synthesis into the frame over
 *                min(P/4 + 32·(e−1), 80) samples; append the frame to the 390-sample history.
 *   conceal(out), per sample t of the erasure:
 *     t=0        pitch P (normalised cross-correlation, lags 40–120, coarse 2:1 then ±1),
 *                repeat the last period, entry cross-fade from the mirrored tail over P/4;
 *     t=80, 160  extend to 2, 3 periods (OLA over P/4, phase kept);
 *     t≥80       gain 1 − (t−80)/400;   t ≥ 480 (60 ms): zeros, returns false.
 */

export const PLC_SUBFRAME = 80;
const PITCH_MIN = 40;
const PITCH_MAX = 120;
export const PLC_HISTORY_LEN = 3 * PITCH_MAX + PITCH_MAX / 4; // 390 = 48.75 ms
const CORR_LEN = 160;
const ENERGY_FLOOR = 250.0;
const MAX_ERASED = 480;
const ATTEN_DIV = 400.0;
const RECOVERY_STEP = 32;

/** Nearest integer (halves up), clamped to int16 — identical to `round_i16` in plc.rs. */
export function roundI16(x: number): number {
  const r = Math.floor(x + 0.5);
  if (r >= 32767) return 32767;
  if (r <= -32768) return -32768;
  return r;
}

export class Plc {
  private readonly hist = new Int16Array(PLC_HISTORY_LEN);
  /** Samples concealed in the current erasure (0 = not erasing). */
  private erased = 0;
  private pitch = PITCH_MIN;
  private ovl = PITCH_MIN / 4;
  private periods = 1;
  private pos = 0;
  private oldPeriods = 1;
  private oldPos = 0;
  private switchJ = Number.MAX_SAFE_INTEGER;

  reset(): void {
    this.hist.fill(0);
    this.erased = 0;
    this.pitch = PITCH_MIN;
    this.ovl = PITCH_MIN / 4;
    this.periods = 1;
    this.pos = 0;
    this.oldPeriods = 1;
    this.oldPos = 0;
    this.switchJ = Number.MAX_SAFE_INTEGER;
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
      const blocks = Math.floor((this.erased + PLC_SUBFRAME - 1) / PLC_SUBFRAME);
      let olen = this.ovl + RECOVERY_STEP * (blocks - 1);
      if (olen > PLC_SUBFRAME) olen = PLC_SUBFRAME;
      if (olen > length) olen = length;
      const denom = olen + 1;
      for (let k = 0; k < olen; k++) {
        const s = this.nextSynth();
        const wi = (k + 1) / denom;
        const wo = 1.0 - wi;
        frame[k] = roundI16(wo * s + wi * frame[k]!);
      }
      this.erased = 0;
      this.switchJ = Number.MAX_SAFE_INTEGER;
    }
    const n = length;
    const hist = this.hist;
    if (n >= PLC_HISTORY_LEN) {
      for (let i = 0; i < PLC_HISTORY_LEN; i++) hist[i] = frame[n - PLC_HISTORY_LEN + i]!;
    } else {
      hist.copyWithin(0, n);
      for (let i = 0; i < n; i++) hist[PLC_HISTORY_LEN - n + i] = frame[i]!;
    }
  }

  /** Fills `out` (its first `length` samples) with concealment; returns false when all of it is silence (past 60 ms). */
  conceal(out: Int16Array, length: number = out.length): boolean {
    let audible = false;
    const n = length;
    for (let i = 0; i < n; i++) {
      if (this.erased < MAX_ERASED) audible = true;
      out[i] = roundI16(this.nextSynth());
    }
    return audible;
  }

  private nextSynth(): number {
    const t = this.erased;
    if (t >= MAX_ERASED) {
      if (t < 0xffffffff) this.erased = t + 1;
      return 0.0;
    }
    if (t === 0) {
      this.startErasure();
    } else if (t === PLC_SUBFRAME || t === 2 * PLC_SUBFRAME) {
      this.oldPeriods = this.periods;
      this.oldPos = this.pos;
      this.periods += 1;
      this.pos %= this.pitch;
      this.switchJ = 0;
    }
    let v = this.segment(this.periods, this.pos);
    this.pos += 1;
    if (this.pos === this.periods * this.pitch) this.pos = 0;
    if (this.switchJ < this.ovl) {
      const old = this.segment(this.oldPeriods, this.oldPos);
      this.oldPos += 1;
      if (this.oldPos === this.oldPeriods * this.pitch) this.oldPos = 0;
      const wi = (this.switchJ + 1) / (this.ovl + 1);
      const wo = 1.0 - wi;
      v = wo * old + wi * v;
      this.switchJ += 1;
    }
    if (t < this.ovl) {
      const c = this.hist[PLC_HISTORY_LEN - 1 - t]!;
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
    this.pitch = this.estimatePitch();
    this.ovl = this.pitch >> 2;
    this.periods = 1;
    this.pos = 0;
    this.switchJ = Number.MAX_SAFE_INTEGER;
  }

  private segment(n: number, i: number): number {
    const len = n * this.pitch;
    const start = PLC_HISTORY_LEN - len;
    const a = this.hist[start + i]!;
    const tail = len - this.ovl;
    if (i < tail) return a;
    const j = i - tail;
    const b = this.hist[start - this.ovl + j]!;
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
