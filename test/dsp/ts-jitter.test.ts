import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { TsJitterBuffer } from '../../src/dsp/ts/jitter-buffer.js';
import { FrameKind, PushResult, type JitterBufferOptions } from '../../src/dsp/backend.js';
import { ULAW_DECODE, encodeUlawSample } from '../../src/dsp/ts/g711.js';
import { BridgeError, ErrorCodes } from '../../src/errors.js';

/** The speech fixture (espeak-ng μ-law WAV, test/fixtures/README.md), decoded then re-encoded (as the Rust tests do). */
function fixtureUlaw(): Uint8Array {
  const wav = readFileSync(new URL('../fixtures/caller-order-status.8k-ulaw.wav', import.meta.url));
  let i = 12;
  while (i + 8 <= wav.length) {
    const id = wav.toString('latin1', i, i + 4);
    const len = wav.readUInt32LE(i + 4);
    if (id === 'data') {
      const data = wav.subarray(i + 8, Math.min(i + 8 + len, wav.length));
      const out = new Uint8Array(data.length);
      for (let k = 0; k < data.length; k++) out[k] = encodeUlawSample(ULAW_DECODE[data[k]!]!);
      return out;
    }
    i += 8 + len + (len & 1);
  }
  throw new Error('no data chunk');
}

const DATA = fixtureUlaw();
const NFRAMES = Math.floor(DATA.length / 160);
const { Normal: N, Concealed: C, Silence: S } = FrameKind;

class H {
  jb: TsJitterBuffer;
  out = new Int16Array(160);
  constructor(opts: JitterBufferOptions = {}) {
    this.jb = new TsJitterBuffer(opts);
  }
  frame(k: number): Uint8Array {
    const i = k % NFRAMES;
    return DATA.subarray(i * 160, i * 160 + 160);
  }
  pushTs(k: number, ts: number, now: number): PushResult {
    return this.jb.push(this.frame(k), k >>> 0, ts >>> 0, now);
  }
  push(k: number, now: number): PushResult {
    return this.pushTs(k, (k * 20) >>> 0, now);
  }
  pop(now: number): FrameKind {
    return this.jb.pop(now, this.out);
  }
  drain(now: number): FrameKind[] {
    const v: FrameKind[] = [];
    for (;;) {
      const k = this.pop(now);
      if (k === FrameKind.None) return v;
      v.push(k);
    }
  }
  forcedAll(): FrameKind[] {
    const v: FrameKind[] = [];
    for (;;) {
      const k = this.jb.popForced(this.out);
      if (k === FrameKind.None) return v;
      v.push(k);
    }
  }
}

function decoded(h: H, k: number): number[] {
  return Array.from(h.frame(k), (c) => ULAW_DECODE[c]!);
}

function expectCode(fn: () => unknown, code: string): void {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(BridgeError);
    expect((e as BridgeError).code).toBe(code);
    return;
  }
  throw new Error(`expected ${code}`);
}

describe('TsJitterBuffer', () => {
  it('releases in-order frames at once, decoded', () => {
    const h = new H();
    for (let k = 0; k < 10; k++) {
      expect(h.push(k, k * 20)).toBe(PushResult.Accepted);
      expect(h.drain(k * 20)).toEqual([N]);
      expect(Array.from(h.out)).toEqual(decoded(h, k));
    }
    const s = h.jb.stats();
    expect([s.framesIn, s.framesOut, s.bufferedFrames, s.currentDelayMs]).toEqual([10, 10, 0, 0]);
  });

  it('restores a reorder within the target', () => {
    const h = new H();
    h.push(0, 0);
    expect(h.drain(0)).toEqual([N]);
    h.push(2, 40);
    expect(h.drain(40)).toEqual([]);
    expect(h.drain(49)).toEqual([]);
    expect(h.push(1, 50)).toBe(PushResult.Accepted);
    expect(h.pop(50)).toBe(N);
    expect(Array.from(h.out)).toEqual(decoded(h, 1));
    expect(h.drain(50)).toEqual([N]);
    const s = h.jb.stats();
    expect([s.lost, s.concealed, s.late, s.currentDelayMs]).toEqual([0, 0, 0, 10]);
  });

  it('detects duplicates, held and released', () => {
    const h = new H();
    h.push(0, 0);
    expect(h.push(0, 1)).toBe(PushResult.Duplicate);
    h.drain(1);
    expect(h.push(0, 2)).toBe(PushResult.Duplicate);
    h.push(2, 40);
    expect(h.push(2, 41)).toBe(PushResult.Duplicate);
    const s = h.jb.stats();
    expect([s.duplicate, s.framesIn, s.bufferedFrames]).toEqual([3, 5, 1]);
  });

  it('releases a burst after a stall together', () => {
    const h = new H();
    h.push(0, 0);
    h.drain(0);
    for (let k = 1; k <= 25; k++) h.push(k, 520);
    expect(h.drain(520)).toEqual(new Array(25).fill(N));
    expect(h.jb.stats().concealed).toBe(0);
  });

  it('conceals a gap after the target, PLC then silence', () => {
    const h = new H();
    for (let k = 0; k < 20; k++) {
      h.push(k, k * 20);
      h.drain(k * 20);
    }
    h.push(25, 500);
    const target = h.jb.stats().targetDelayMs;
    expect(target).toBeGreaterThanOrEqual(0);
    expect(target).toBeLessThanOrEqual(20);
    if (target > 0) expect(h.drain(500 + target - 0.5)).toEqual([]);
    expect(h.drain(500 + target)).toEqual([C, C, C, S, S, N]);
    const s = h.jb.stats();
    expect([s.lost, s.concealed, s.framesOut, s.bufferedFrames]).toEqual([5, 5, 26, 0]);
  });

  it('counts a late arrival after concealment; remembers released positions while it can', () => {
    const h = new H();
    h.push(0, 0);
    h.drain(0);
    h.push(2, 40);
    expect(h.drain(60)).toEqual([C, N]);
    expect(h.push(1, 75)).toBe(PushResult.Late);
    expect(h.push(1, 76)).toBe(PushResult.Duplicate);
    let s = h.jb.stats();
    expect([s.late, s.lost, s.concealed, s.duplicate]).toEqual([1, 0, 1, 1]);
    const h2 = new H({ capacityFrames: 10 });
    for (let k = 0; k < 200; k++) {
      h2.push(k, k * 20);
      h2.drain(k * 20);
    }
    expect(h2.push(195, 4000)).toBe(PushResult.Duplicate);
    expect(h2.push(170, 4000)).toBe(PushResult.Late);
    expect(h2.push(100, 4000)).toBe(PushResult.Resync);
    s = h2.jb.stats();
    expect([s.duplicate, s.late, s.resyncs]).toEqual([1, 1, 1]);
  });

  it('fills a long outage up to maxGapFillFrames, resyncs beyond, and on a restart', () => {
    const h = new H();
    h.push(0, 0);
    h.drain(0);
    expect(h.push(51, 1020)).toBe(PushResult.Accepted);
    const kinds = h.drain(2000);
    expect(kinds.length).toBe(51);
    expect(kinds.slice(0, 3)).toEqual([C, C, C]);
    expect(kinds.slice(3, 50).every((k) => k === S)).toBe(true);
    expect(kinds[50]).toBe(N);
    expect(h.push(103, 2060)).toBe(PushResult.Resync);
    expect(h.drain(2060)).toEqual([N]);
    expect(h.push(104, 2080)).toBe(PushResult.Accepted);
    expect(h.drain(2080)).toEqual([N]);
    expect(h.push(1, 2100)).toBe(PushResult.Resync);
    const s = h.jb.stats();
    expect([s.resyncs, s.lost, s.concealed]).toEqual([2, 50, 50]);
  });

  it('handles timestamp and sequence wrap', () => {
    const h = new H();
    const t0 = 0xffffffff - 99;
    for (let k = 0; k < 12; k++) {
      if (k === 7) continue;
      expect(h.pushTs(k, t0 + 20 * k, k * 20)).toBe(PushResult.Accepted);
    }
    expect(h.drain(1000)).toEqual([N, N, N, N, N, N, N, C, N, N, N, N]);
    expect(h.jb.stats().resyncs).toBe(0);
    const h2 = new H();
    h2.pushTs(0, 0xffffffff - 19, 0);
    h2.drain(0);
    h2.pushTs(2, 20, 40);
    h2.pushTs(1, 0, 45);
    expect(h2.drain(45)).toEqual([N, N]);
  });

  it('does not drift with sender clock skew of ±1 % over 10 minutes', () => {
    for (const rate of [1.01, 0.99]) {
      const h = new H();
      const n = 30_000;
      let earlyMax = 0;
      let lateMax = 0;
      let maxBuf = 0;
      let expectedLost = 0;
      for (let k = 0; k < n; k++) {
        if (k % 97 === 50) {
          expectedLost++;
          continue;
        }
        const now = (k * 20.0) / rate;
        expect(h.push(k, now)).toBe(PushResult.Accepted);
        maxBuf = Math.max(maxBuf, h.jb.stats().bufferedFrames);
        h.drain(now);
        const d = h.jb.stats().currentDelayMs;
        if (k < 3000) earlyMax = Math.max(earlyMax, d);
        else if (k >= n - 3000) lateMax = Math.max(lateMax, d);
      }
      const s = h.jb.stats();
      expect(s.framesOut).toBe(n);
      expect(s.lost).toBe(expectedLost);
      expect(s.late + s.duplicate + s.resyncs).toBe(0);
      expect(maxBuf).toBeLessThanOrEqual(3);
      expect(earlyMax).toBeLessThanOrEqual(40);
      expect(lateMax).toBeLessThanOrEqual(earlyMax);
    }
  });

  it('stays bounded under a flood of far-future frames', () => {
    const h = new H({ capacityFrames: 10 });
    h.push(0, 0);
    h.drain(0);
    for (let i = 1; i < 500; i++) {
      expect(h.push(i * 7, 1)).toBe(PushResult.Accepted);
      expect(h.jb.stats().bufferedFrames).toBeLessThanOrEqual(10);
    }
    const kinds = h.drain(1);
    let s = h.jb.stats();
    expect(s.framesOut).toBe(1 + kinds.length);
    expect(s.bufferedFrames).toBeLessThanOrEqual(2);
    h.forcedAll();
    s = h.jb.stats();
    expect(s.framesOut).toBe(1 + 499 * 7);
    expect(s.bufferedFrames).toBe(0);
    expect(s.concealed).toBe(s.lost);
    expect(s.framesOut - s.concealed).toBe(3);
  });

  it('forces a gap out on ring overflow without dropping held audio', () => {
    const h = new H({ capacityFrames: 8, initialDelayMs: 200, maxDelayMs: 200 });
    h.push(0, 0);
    h.drain(0);
    for (let k = 2; k <= 9; k++) {
      h.push(k, k * 20);
      h.drain(k * 20);
    }
    const s = h.jb.stats();
    expect([s.framesOut, s.concealed, s.bufferedFrames]).toEqual([10, 1, 0]);
  });

  it('popForced flushes held frames and conceals gaps', () => {
    const h = new H({ initialDelayMs: 200 });
    h.push(0, 0);
    h.push(3, 60);
    h.push(4, 80);
    expect(h.drain(80)).toEqual([N]);
    expect(h.forcedAll()).toEqual([C, C, N, N]);
  });

  it('adapts the target up under reordering and back down when it stops', () => {
    const h = new H();
    let now = 0;
    let k = 0;
    while (k < 1000) {
      now += 20;
      if (k % 5 === 1) {
        h.push(k + 1, now);
        h.drain(now);
        h.push(k, now + 50);
        h.drain(now + 50);
        now += 50;
        k += 2;
        continue;
      }
      h.push(k, now);
      h.drain(now);
      k++;
    }
    let s = h.jb.stats();
    expect(s.targetDelayMs).toBe(60);
    const lateAfterAdapt = s.late;
    expect(lateAfterAdapt).toBeLessThan(60);
    for (let i = 0; i < 400; i++) {
      now += 20;
      h.push(k, now);
      h.drain(now);
      k++;
    }
    s = h.jb.stats();
    expect(s.targetDelayMs).toBe(0);
    expect(s.late).toBe(lateAfterAdapt);
  });

  it('validates arguments, leaves state unchanged on errors, and throws after close()', () => {
    const bad: JitterBufferOptions[] = [
      { capacityFrames: 0 },
      { capacityFrames: 3001 },
      { capacityFrames: 1.5 },
      { minDelayMs: 100, maxDelayMs: 50, initialDelayMs: 50 },
      { initialDelayMs: 300 },
      { maxDelayMs: 20_000 },
      { maxGapFillFrames: 5000 },
      { codec: 'opus' as 'ulaw' },
    ];
    for (const o of bad) expectCode(() => new TsJitterBuffer(o), ErrorCodes.DSP_ARGUMENT);
    const jb = new TsJitterBuffer();
    expectCode(() => jb.push(new Uint8Array(159), 0, 0, 0), ErrorCodes.DSP_FRAME_SIZE);
    expectCode(() => jb.push(new Uint8Array(160), -1, 0, 0), ErrorCodes.DSP_ARGUMENT);
    expectCode(() => jb.push(new Uint8Array(160), 0, 2 ** 32, 0), ErrorCodes.DSP_ARGUMENT);
    expectCode(() => jb.push(new Uint8Array(160), 0, 0, NaN), ErrorCodes.DSP_ARGUMENT);
    expect(jb.stats().framesIn).toBe(0);
    jb.push(new Uint8Array(160).fill(0xff), 0, 0, 0);
    expectCode(() => jb.pop(0, new Int16Array(159)), ErrorCodes.DSP_DST_TOO_SMALL);
    expectCode(() => jb.popForced(new Int16Array(159)), ErrorCodes.DSP_DST_TOO_SMALL);
    expect(jb.stats().bufferedFrames).toBe(1);
    const out = new Int16Array(320).fill(1);
    expect(jb.pop(0, out)).toBe(N);
    expect(out.subarray(0, 160).every((x) => x === 0)).toBe(true);
    expect(out[160]).toBe(1);
    jb.reset();
    expect(jb.stats().framesIn).toBe(0);
    expect(jb.pop(0, out)).toBe(FrameKind.None);
    jb.close();
    jb.close();
    expectCode(() => jb.pop(0, out), ErrorCodes.DSP_CLOSED);
    expectCode(() => jb.push(new Uint8Array(160), 0, 0, 0), ErrorCodes.DSP_CLOSED);
    expectCode(() => jb.stats(), ErrorCodes.DSP_CLOSED);
  });

  it('decodes A-law', () => {
    const jb = new TsJitterBuffer({ codec: 'alaw' });
    jb.push(new Uint8Array(160).fill(0xd5), 0, 0, 0);
    const out = new Int16Array(160);
    jb.pop(0, out);
    expect(out.every((x) => x === 8)).toBe(true);
  });
});

// ---- parity with native/dsp-core/src/jitter.rs (same generator and driver) ----

class Rng {
  constructor(private s: number) {}
  next(): number {
    let s = this.s;
    s = (s ^ (s << 13)) >>> 0;
    s = (s ^ (s >>> 17)) >>> 0;
    s = (s ^ (s << 5)) >>> 0;
    this.s = s;
    return s;
  }
  f(): number {
    return this.next() / 4294967296.0;
  }
}

class Fnv {
  h = 0x811c9dc5;
  private readonly dv = new DataView(new ArrayBuffer(8));
  byte(b: number): void {
    this.h = Math.imul(this.h ^ b, 16777619) >>> 0;
  }
  u32(v: number): void {
    for (let i = 0; i < 4; i++) this.byte((v >>> (8 * i)) & 0xff);
  }
  f64(v: number): void {
    this.dv.setFloat64(0, v, true);
    for (let i = 0; i < 8; i++) this.byte(this.dv.getUint8(i));
  }
  pcm(x: Int16Array): void {
    for (let i = 0; i < x.length; i++) {
      const u = x[i]! & 0xffff;
      this.byte(u & 0xff);
      this.byte(u >>> 8);
    }
  }
}

function runScenario(seed: number, opts: JitterBufferOptions): { checksum: number; jb: TsJitterBuffer } {
  const rng = new Rng(seed);
  const n = 3000;
  const ts0 = 2 ** 32 - 30_000;
  const ev: [number, number, number][] = [];
  const tsOf = (k: number): number => {
    const off = k >= 2000 ? 5_000_000 : 0;
    const j = rng.next() % 3;
    return (ts0 + 20 * k + off + j - 1) >>> 0;
  };
  let now = 1000.0;
  let k = 0;
  while (k < n) {
    now += 19.94 + (rng.f() - 0.5) * 6.0;
    const r = rng.f();
    if (r < 0.03) {
      k += 1;
    } else if (r < 0.06 && k + 1 < n) {
      const t1 = tsOf(k + 1);
      ev.push([now, k + 1, t1]);
      const t0 = tsOf(k);
      ev.push([now + rng.f() * 90.0, k, t0]);
      k += 2;
    } else if (r < 0.07) {
      const t = tsOf(k);
      ev.push([now, k, t]);
      ev.push([now + 1.5, k, t]);
      k += 1;
    } else if (r < 0.08) {
      const m = 3 + (rng.next() % 12);
      const at = now + m * 20.0;
      for (let i = 0; i < m && k < n; i++) {
        const t = tsOf(k);
        ev.push([at, k, t]);
        k += 1;
      }
      now = at;
    } else if (r < 0.083) {
      k += 5 + (rng.next() % 40);
    } else {
      const t = tsOf(k);
      ev.push([now, k, t]);
      k += 1;
    }
  }
  ev.sort((a, b) => a[0] - b[0]);

  const jb = new TsJitterBuffer(opts);
  const h = new Fnv();
  const out = new Int16Array(160);
  const drain = (t: number): void => {
    for (;;) {
      const kind = jb.pop(t, out);
      h.u32(kind);
      if (kind === FrameKind.None) return;
      h.pcm(out);
    }
  };
  let clock = ev[0]![0];
  for (const [t, fk, ts] of ev) {
    while (clock + 5.0 <= t) {
      clock += 5.0;
      drain(clock);
    }
    const i = fk % NFRAMES;
    const r = jb.push(DATA.subarray(i * 160, i * 160 + 160), (fk + 0xffffff00) >>> 0, ts, t);
    h.u32(r);
    drain(t);
  }
  for (;;) {
    const kind = jb.popForced(out);
    h.u32(kind);
    if (kind === FrameKind.None) break;
    h.pcm(out);
  }
  const s = jb.stats();
  for (const v of [s.framesIn, s.framesOut, s.duplicate, s.late, s.lost, s.concealed, s.resyncs]) h.u32(v);
  h.u32(s.bufferedFrames);
  h.f64(s.currentDelayMs);
  h.f64(s.targetDelayMs);
  return { checksum: h.h >>> 0, jb };
}

/** Pinned by `parity_checksum_*` in native/dsp-core/src/jitter.rs. */
const PARITY_ULAW = 0x892cdfc6;
const PARITY_SMALL = 0xc20923f0;

describe('TsJitterBuffer parity with the Rust jitter buffer', () => {
  it('default config: identical PCM, kinds, results and stats', () => {
    const { checksum, jb } = runScenario(0x12345678, {});
    const s = jb.stats();
    // Same stats the Rust test prints for this scenario.
    expect(s).toMatchObject({ framesIn: 2732, framesOut: 3000, duplicate: 31, late: 79, lost: 299, concealed: 378, resyncs: 1 });
    expect(checksum.toString(16)).toBe(PARITY_ULAW.toString(16));
  });

  it('small ring, A-law, narrow delays: identical too', () => {
    const { checksum, jb } = runScenario(0xc0ffee01, {
      codec: 'alaw',
      capacityFrames: 6,
      initialDelayMs: 40,
      minDelayMs: 20,
      maxDelayMs: 100,
      maxGapFillFrames: 20,
    });
    expect(jb.stats()).toMatchObject({ framesIn: 2743, framesOut: 2856, duplicate: 23, late: 41, lost: 137, concealed: 177, resyncs: 7 });
    expect(checksum.toString(16)).toBe(PARITY_SMALL.toString(16));
  });

  it('stats invariants on mixed traffic', () => {
    const { jb } = runScenario(12345, {});
    const s = jb.stats();
    expect(s.bufferedFrames).toBe(0);
    expect(s.framesOut - s.concealed + s.duplicate + s.late).toBeLessThanOrEqual(s.framesIn);
    expect(s.resyncs).toBeGreaterThanOrEqual(1);
  });
});
