/**
 * native ⇄ ts parity on speech (the espeak-ng clips in test/fixtures).
 *
 * Tolerances, and why:
 * - G.711, jitter buffer and PLC: bit-identical. Both backends implement the same
 *   integer/f64 arithmetic in the same order (the Rust/TS pairs in dsp-core and
 *   src/dsp/ts), so any difference is a bug.
 * - Resampler: at most 2 LSB on any sample, ≥ 99.5 % of samples identical, and
 *   the difference ≥ 90 dB below the signal. Both are the Speex algorithm with the
 *   same filter tables (the WASM one is libspeexdsp itself, float build), but the
 *   native kernels sum the taps in a different order (8-lane AVX2 FMA vs the WASM
 *   build's scalar 4-accumulator loop); float rounding then flips the final int16
 *   rounding on a few samples by 1 LSB. (Native vs Debian's libspeexdsp: ≤ 1 LSB
 *   on ≤ 0.2 % of samples over 240 pair × quality runs.)
 * - Outbound μ-law frames: those ±1 LSB differences can cross a μ-law decision
 *   threshold, so codes may differ by one quantisation step on a few samples;
 *   the framing (byte counts, frame boundaries) must be identical.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { backends } from '../helpers/backends.js';
import { readWav, pcm16Samples } from '../helpers/wav.js';
import type { DspBackend } from '../../src/dsp/backend.js';

const fixtures = join(import.meta.dirname, '..', 'fixtures');
const callerUlaw = readWav(join(fixtures, 'caller-order-status.8k-ulaw.wav')).data;
const agentWav = readWav(join(fixtures, 'agent-reply.24k-pcm16.wav'));
const agent24k = pcm16Samples(agentWav);

const native = backends.find((b) => b.name === 'native');
const ts = backends.find((b) => b.name === 'ts')!;

function compare(a: Int16Array, b: Int16Array) {
  expect(a.length).toBe(b.length);
  let maxDiff = 0;
  let same = 0;
  let sig = 0;
  let err = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (d > maxDiff) maxDiff = d;
    if (d === 0) same++;
    sig += a[i]! * a[i]!;
    err += d * d;
  }
  return { maxDiff, sameFraction: same / a.length, snrDb: err === 0 ? Infinity : 10 * Math.log10(sig / err) };
}

function resampleAll(dsp: DspBackend, input: Int16Array, fromHz: number, toHz: number, chunk: number): Int16Array {
  const r = dsp.createResampler({ fromHz, toHz, quality: 7 });
  const parts: Int16Array[] = [];
  const dst = new Int16Array(r.maxOutput(chunk));
  for (let i = 0; i < input.length; i += chunk) {
    const n = r.process(input.subarray(i, Math.min(i + chunk, input.length)), dst);
    parts.push(dst.slice(0, n));
  }
  const tail = new Int16Array(r.outputLatency + 1);
  parts.push(tail.slice(0, r.flush(tail)));
  r.close();
  const out = new Int16Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

describe.runIf(native !== undefined)('native ⇄ ts parity on speech', () => {
  const caller8k = new Int16Array(callerUlaw.length);
  ts.decodeUlaw(callerUlaw, caller8k);

  it('has the fixtures it needs', () => {
    expect(agentWav.sampleRateHz).toBe(24000);
    expect(caller8k.length).toBeGreaterThan(8000 * 5);
  });

  it('G.711 decoding and encoding of the caller clip are identical', () => {
    const a = new Int16Array(callerUlaw.length);
    native!.decodeUlaw(callerUlaw, a);
    expect(Buffer.from(a.buffer).equals(Buffer.from(caller8k.buffer))).toBe(true);
    const ea = new Uint8Array(agent24k.length);
    const eb = new Uint8Array(agent24k.length);
    native!.encodeUlaw(agent24k, ea);
    ts.encodeUlaw(agent24k, eb);
    expect(Buffer.from(ea).equals(Buffer.from(eb))).toBe(true);
  });

  it.each([
    [8000, 16000, 'caller'],
    [8000, 24000, 'caller'],
    [8000, 48000, 'caller'],
    [24000, 8000, 'agent'],
    [24000, 16000, 'agent'],
  ] as const)('resampler %i → %i Hz on the %s clip: ≤ 2 LSB, ≥ 99.5 %% identical, ≥ 90 dB', (fromHz, toHz, clip) => {
    const input = clip === 'caller' ? caller8k : agent24k;
    const chunk = fromHz / 50;
    const c = compare(resampleAll(native!, input, fromHz, toHz, chunk), resampleAll(ts, input, fromHz, toHz, chunk));
    expect(c.maxDiff).toBeLessThanOrEqual(2);
    expect(c.sameFraction).toBeGreaterThanOrEqual(0.995);
    expect(c.snrDb).toBeGreaterThanOrEqual(90);
  });

  it('inbound pipeline with loss, reordering and duplicates: identical jitter stats, resampled output within 2 LSB', () => {
    const run = (dsp: DspBackend) => {
      const p = dsp.createInboundPipeline({ toHz: 16000 });
      const dst = new Int16Array(p.maxFrameOutput * 8);
      const out: number[] = [];
      const frames = Math.floor(callerUlaw.length / 160);
      let now = 0;
      const push = (i: number) => {
        const n = p.push(callerUlaw.subarray(i * 160, i * 160 + 160), i + 1, i * 20, now, dst);
        for (let k = 0; k < n; k++) out.push(dst[k]!);
      };
      for (let i = 0; i < frames; i++) {
        now += 20;
        if (i % 17 === 5) continue; // lost
        if (i % 23 === 7 && i + 1 < frames) {
          push(i + 1); // reordered: i+1 before i
          push(i);
          i++;
          continue;
        }
        push(i);
        if (i % 31 === 0) push(i); // duplicate
        const n = p.poll(now, dst);
        for (let k = 0; k < n; k++) out.push(dst[k]!);
      }
      for (let n = p.flush(dst); n > 0; n = p.flush(dst)) for (let k = 0; k < n; k++) out.push(dst[k]!);
      const stats = p.stats();
      p.close();
      return { out: Int16Array.from(out), stats };
    };
    const a = run(native!);
    const b = run(ts);
    expect(a.stats).toEqual(b.stats);
    expect(a.stats.lost).toBeGreaterThan(10);
    expect(a.stats.duplicate).toBeGreaterThan(3);
    const c = compare(a.out, b.out);
    expect(c.maxDiff).toBeLessThanOrEqual(2);
    expect(c.snrDb).toBeGreaterThanOrEqual(90);
  });

  it('inbound pipeline at 8 kHz (jitter buffer + PLC, no resampler) with close-together and consecutive losses: identical samples and stats', () => {
    // Loss patterns that make one concealment analyse another: every other frame, losses
    // one and two frames apart, pairs and triples, an outage past 60 ms (PLC → silence).
    const patterns: Array<(k: number) => boolean> = [
      (k) => k % 2 === 1,
      (k) => k % 3 === 1 || k % 13 === 7 || (k % 29 >= 20 && k % 29 < 23),
      (k) => k % 11 === 4 || k % 11 === 6 || (k % 53 >= 30 && k % 53 < 35),
    ];
    const run = (dsp: DspBackend, lost: (k: number) => boolean) => {
      const p = dsp.createInboundPipeline({ toHz: 8000 });
      const dst = new Int16Array(p.maxFrameOutput * 8);
      const frames = Math.floor(callerUlaw.length / 160);
      const out = new Int16Array(frames * 160);
      let o = 0;
      const take = (n: number) => {
        out.set(dst.subarray(0, n), o);
        o += n;
      };
      for (let k = 0; k < frames; k++) {
        if (k === 0 || k === frames - 1 || !lost(k)) take(p.push(callerUlaw.subarray(k * 160, k * 160 + 160), k, k * 20, k * 20, dst));
        take(p.poll(k * 20, dst));
      }
      for (let n = p.flush(dst); n > 0; n = p.flush(dst)) take(n);
      const stats = p.stats();
      p.close();
      expect(o).toBe(out.length);
      return { out, stats };
    };
    for (const lost of patterns) {
      const a = run(native!, lost);
      const b = run(ts, lost);
      expect(a.stats).toEqual(b.stats);
      expect(a.stats.concealed).toBeGreaterThan(30);
      expect(Buffer.from(a.out.buffer).equals(Buffer.from(b.out.buffer))).toBe(true);
    }
  });

  it('outbound pipeline on the agent clip in uneven chunks: same framing, μ-law codes within one step', () => {
    const run = (dsp: DspBackend) => {
      const p = dsp.createOutboundPipeline({ fromHz: 24000 });
      const chunks = [480, 1200, 77, 2400, 960, 13, 4800];
      const out: number[] = [];
      const dst = new Uint8Array(p.maxOutputBytes(4800));
      let k = 0;
      for (let i = 0; i < agent24k.length; ) {
        const n = Math.min(chunks[k++ % chunks.length]!, agent24k.length - i);
        const w = p.push(agent24k.subarray(i, i + n), dst);
        expect(w % 160).toBe(0);
        for (let j = 0; j < w; j++) out.push(dst[j]!);
        i += n;
      }
      const fd = new Uint8Array(p.maxFlushBytes());
      const w = p.flush(fd);
      for (let j = 0; j < w; j++) out.push(fd[j]!);
      p.close();
      return Uint8Array.from(out);
    };
    const a = run(native!);
    const b = run(ts);
    expect(a.length).toBe(b.length);
    const da = new Int16Array(a.length);
    const db = new Int16Array(b.length);
    ts.decodeUlaw(a, da);
    ts.decodeUlaw(b, db);
    let sameCodes = 0;
    for (let i = 0; i < a.length; i++) {
      if (a[i] === b[i]) sameCodes++;
      else expect(Math.abs((a[i]! & 0x7f) - (b[i]! & 0x7f))).toBeLessThanOrEqual(1);
    }
    expect(sameCodes / a.length).toBeGreaterThanOrEqual(0.99);
  });
});
