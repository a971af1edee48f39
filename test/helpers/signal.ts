/**
 * Signal utilities for resampler quality tests (method after http://mega-nerd.com/SRC/quality.html).
 *
 * Conventions: 0 dBFS is a sine of amplitude 32767; "power" of a tone is A²/2
 * in LSB²; levels and ratios are in dB (10·log10 of power ratios).
 *
 * - tones()/sine(): int16 test signals (rounded, saturated).
 * - toneAmplitude(): Goertzel (the DTFT at one exact, not necessarily bin-
 *   centred frequency) over a window; with a long 4-term Blackman–Harris window
 *   a tone's leakage 1 kHz away is far below −140 dB, so rejections of ~120 dB
 *   can be read next to a full-scale tone.
 * - thdN(): least-squares fit of the tone (cos, sin and DC at the exact
 *   frequency), then the residual's power inside a band, from a Hann-windowed
 *   FFT of the residual (the tone is already gone, so leakage no longer matters).
 * - snrDb(): SNR of a processed signal against a reference shifted by a known delay.
 */

export const FULL_SCALE = 32767;

export function dbfsToAmplitude(dbfs: number): number {
  return FULL_SCALE * 10 ** (dbfs / 20);
}

export function powerToDb(p: number): number {
  return 10 * Math.log10(p);
}

export interface Tone {
  freqHz: number;
  dbfs: number;
  /** Initial phase in radians; default 0. */
  phase?: number;
}

/** Sum of sines, rounded to int16 (saturating). */
export function tones(n: number, rateHz: number, list: readonly Tone[]): Int16Array {
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) {
    let v = 0;
    for (const t of list) v += dbfsToAmplitude(t.dbfs) * Math.sin((2 * Math.PI * t.freqHz * i) / rateHz + (t.phase ?? 0));
    out[i] = Math.max(-32768, Math.min(32767, Math.round(v)));
  }
  return out;
}

/** One sine at `dbfs` (0 dBFS = amplitude 32767), rounded to int16. */
export function sine(n: number, freqHz: number, rateHz: number, dbfs: number, phase = 0): Int16Array {
  return tones(n, rateHz, [{ freqHz, dbfs, phase }]);
}

export type WindowName = 'rect' | 'hann' | 'blackman-harris';

const windowCache = new Map<string, Float64Array>();

/** Periodic windows of length n. 'blackman-harris' is the 4-term minimum (−92 dB sidelobes, Harris 1978). */
export function makeWindow(name: WindowName, n: number): Float64Array {
  const key = `${name}:${n}`;
  const hit = windowCache.get(key);
  if (hit !== undefined) return hit;
  const w = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const x = (2 * Math.PI * i) / n;
    switch (name) {
      case 'rect':
        w[i] = 1;
        break;
      case 'hann':
        w[i] = 0.5 - 0.5 * Math.cos(x);
        break;
      case 'blackman-harris':
        w[i] = 0.35875 - 0.48829 * Math.cos(x) + 0.14128 * Math.cos(2 * x) - 0.01168 * Math.cos(3 * x);
        break;
    }
  }
  windowCache.set(key, w);
  return w;
}

export interface Span {
  /** First sample analysed (skip the filter's start-up transient); default 0. */
  start?: number;
  /** Samples analysed; default to the end. */
  length?: number;
}

function span(x: ArrayLike<number>, s: Span | undefined): [number, number] {
  const start = s?.start ?? 0;
  const length = s?.length ?? x.length - start;
  if (start < 0 || length <= 0 || start + length > x.length) {
    throw new Error(`analysis span [${start}, ${start + length}) outside signal of ${x.length}`);
  }
  return [start, length];
}

/**
 * Amplitude of the component at exactly `freqHz` (Goertzel over a window):
 * 2·|Σ x[n]·w[n]·e^{−jωn}| / Σ w. Equals A for a sine of amplitude A.
 */
export function toneAmplitude(
  x: ArrayLike<number>,
  freqHz: number,
  rateHz: number,
  opts?: Span & { window?: WindowName },
): number {
  const [start, n] = span(x, opts);
  const w = makeWindow(opts?.window ?? 'blackman-harris', n);
  const omega = (2 * Math.PI * freqHz) / rateHz;
  const c = 2 * Math.cos(omega);
  let s1 = 0;
  let s2 = 0;
  let wsum = 0;
  for (let i = 0; i < n; i++) {
    const wi = w[i]!;
    wsum += wi;
    const s0 = x[start + i]! * wi + c * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  // |X(ω)|² from the last two Goertzel states (valid for any real ω).
  const mag2 = s1 * s1 + s2 * s2 - c * s1 * s2;
  return (2 * Math.sqrt(Math.max(0, mag2))) / wsum;
}

/** Power (A²/2) of the component at `freqHz`, in dB re 1 LSB². */
export function tonePowerDb(x: ArrayLike<number>, freqHz: number, rateHz: number, opts?: Span & { window?: WindowName }): number {
  const a = toneAmplitude(x, freqHz, rateHz, opts);
  return powerToDb((a * a) / 2);
}

export interface ToneFit {
  amplitude: number;
  /** Phase of a sine: x ≈ amplitude·sin(ωn + phase) + dc, n counted from the span start. */
  phase: number;
  dc: number;
  /** x − fit over the span. */
  residual: Float64Array;
}

/** Least-squares fit of a·cos(ωn) + b·sin(ωn) + c at an exact frequency (3×3 normal equations). */
export function fitTone(x: ArrayLike<number>, freqHz: number, rateHz: number, opts?: Span): ToneFit {
  const [start, n] = span(x, opts);
  const omega = (2 * Math.PI * freqHz) / rateHz;
  const cs = new Float64Array(n);
  const sn = new Float64Array(n);
  let scc = 0, sss = 0, scs = 0, sc = 0, ss = 0, sxc = 0, sxs = 0, sx = 0;
  for (let i = 0; i < n; i++) {
    const c = Math.cos(omega * i);
    const s = Math.sin(omega * i);
    const v = x[start + i]!;
    cs[i] = c;
    sn[i] = s;
    scc += c * c; sss += s * s; scs += c * s; sc += c; ss += s;
    sxc += v * c; sxs += v * s; sx += v;
  }
  // Solve [[scc, scs, sc], [scs, sss, ss], [sc, ss, n]] · [a, b, d] = [sxc, sxs, sx] (Cramer).
  const m = [scc, scs, sc, scs, sss, ss, sc, ss, n] as const;
  const det3 = (q: readonly number[]): number =>
    q[0]! * (q[4]! * q[8]! - q[5]! * q[7]!) - q[1]! * (q[3]! * q[8]! - q[5]! * q[6]!) + q[2]! * (q[3]! * q[7]! - q[4]! * q[6]!);
  const det = det3(m);
  const a = det3([sxc, m[1], m[2], sxs, m[4], m[5], sx, m[7], m[8]]) / det;
  const b = det3([m[0], sxc, m[2], m[3], sxs, m[5], m[6], sx, m[8]]) / det;
  const d = det3([m[0], m[1], sxc, m[3], m[4], sxs, m[6], m[7], sx]) / det;
  const residual = new Float64Array(n);
  for (let i = 0; i < n; i++) residual[i] = x[start + i]! - (a * cs[i]! + b * sn[i]! + d);
  return { amplitude: Math.hypot(a, b), phase: Math.atan2(a, b), dc: d, residual };
}

/** In-place radix-2 complex FFT (re, im of a power-of-two length). */
export function fft(re: Float64Array, im: Float64Array): void {
  const n = re.length;
  if ((n & (n - 1)) !== 0 || im.length !== n) throw new Error('fft: length must be a power of two');
  for (let i = 1, j = 0; i < n; i++) {
    let bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) {
      [re[i], re[j]] = [re[j]!, re[i]!];
      [im[i], im[j]] = [im[j]!, im[i]!];
    }
  }
  for (let len = 2; len <= n; len <<= 1) {
    const ang = (-2 * Math.PI) / len;
    const wr = Math.cos(ang);
    const wi = Math.sin(ang);
    for (let i = 0; i < n; i += len) {
      let cr = 1;
      let ci = 0;
      for (let k = 0; k < len / 2; k++) {
        const a = i + k;
        const b = a + len / 2;
        const tr = re[b]! * cr - im[b]! * ci;
        const ti = re[b]! * ci + im[b]! * cr;
        re[b] = re[a]! - tr;
        im[b] = im[a]! - ti;
        re[a] = re[a]! + tr;
        im[a] = im[a]! + ti;
        const ncr = cr * wr - ci * wi;
        ci = cr * wi + ci * wr;
        cr = ncr;
      }
    }
  }
}

/**
 * Power of a (broadband) signal inside [loHz, hiHz], from a Hann-windowed
 * periodogram over a power-of-two length. Scaled so white noise of variance σ²
 * over the full band gives σ²·(band width)/(rate/2).
 */
export function bandPower(x: ArrayLike<number>, rateHz: number, loHz: number, hiHz: number): number {
  let n = 1;
  while (n * 2 <= x.length) n *= 2;
  const w = makeWindow('hann', n);
  const re = new Float64Array(n);
  const im = new Float64Array(n);
  let w2 = 0;
  for (let i = 0; i < n; i++) {
    re[i] = x[i]! * w[i]!;
    w2 += w[i]! * w[i]!;
  }
  fft(re, im);
  let sum = 0;
  for (let k = 0; k <= n / 2; k++) {
    const f = (k * rateHz) / n;
    if (f < loHz || f > hiHz) continue;
    // Bins 1..n/2−1 stand for both ±f.
    const both = k === 0 || k === n / 2 ? 1 : 2;
    sum += (both * (re[k]! * re[k]! + im[k]! * im[k]!)) / w2;
  }
  return sum / n;
}

/**
 * THD+N of a tone in dB (positive = the tone is that much above everything
 * else): tone power over the power of the fit residual (harmonics, noise,
 * spurs, DC) inside [loHz, hiHz].
 */
export function thdN(
  x: ArrayLike<number>,
  freqHz: number,
  rateHz: number,
  opts: Span & { loHz?: number; hiHz?: number },
): number {
  const fit = fitTone(x, freqHz, rateHz, opts);
  const tonePower = (fit.amplitude * fit.amplitude) / 2;
  const rest = bandPower(fit.residual, rateHz, opts.loHz ?? 0, opts.hiHz ?? rateHz / 2);
  return powerToDb(tonePower / rest);
}

/**
 * SNR in dB of `test` against `ref` delayed by `delay` samples: compares
 * ref[i] with test[i + delay] for i in the span (of ref).
 */
export function snrDb(ref: ArrayLike<number>, test: ArrayLike<number>, delay: number, opts?: Span): number {
  const [start, n] = span(ref, opts);
  if (start + delay < 0 || start + n + delay > test.length) throw new Error('snrDb: delayed span outside the test signal');
  let ps = 0;
  let pe = 0;
  for (let i = start; i < start + n; i++) {
    const r = ref[i]!;
    const e = r - test[i + delay]!;
    ps += r * r;
    pe += e * e;
  }
  return pe === 0 ? Infinity : powerToDb(ps / pe);
}

/**
 * Index of the first sample where a and b differ (the shorter length if one is
 * a prefix of the other), or −1 if identical. Use instead of toEqual on long
 * arrays: vitest's deep equality is slow there and its diff unreadable.
 */
export function firstDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}
