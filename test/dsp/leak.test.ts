/**
 * No leak: 100,000 create/process/close cycles of resamplers and of pipelines on
 * every backend, with RSS (and, for ts, the WASM heap) flat after warm-up.
 * Bounds: RSS may grow by at most 24 MiB between the end of warm-up and the end
 * of the run (allocator noise); one leaked filter state per cycle would be
 * ≥ 100,000 × ~2 KiB ≈ 200 MiB, so the test can fail.
 */
import { describe, expect, it } from 'vitest';
import { backends } from '../helpers/backends.js';
import { wasmHeapBytes } from '../../src/dsp/ts/wasm-resampler.js';

const CYCLES = 100_000;
const WARMUP = 5_000;
const RSS_SLACK = 24 * 1024 * 1024;

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

function measure(cycle: (i: number) => void): { rssGrowth: number; heapBefore: number; heapAfter: number } {
  for (let i = 0; i < WARMUP; i++) cycle(i);
  gc();
  const rss0 = process.memoryUsage().rss;
  const heap0 = wasmHeapBytes();
  for (let i = WARMUP; i < CYCLES; i++) cycle(i);
  gc();
  return { rssGrowth: process.memoryUsage().rss - rss0, heapBefore: heap0, heapAfter: wasmHeapBytes() };
}

describe.each(backends)('no leak on the $name backend', (dsp) => {
  const pcm8k = new Int16Array(160).map((_, i) => Math.round(3000 * Math.sin(i / 5)));
  const pcm24k = new Int16Array(480).map((_, i) => Math.round(3000 * Math.sin(i / 15)));
  const ulaw = new Uint8Array(160);
  dsp.encodeUlaw(pcm8k, ulaw);
  const out16 = new Int16Array(4096);
  const out8 = new Uint8Array(4096);

  it(`${CYCLES.toLocaleString('en')} resampler create/process/close cycles`, () => {
    const m = measure((i) => {
      const r = dsp.createResampler(i % 2 ? { fromHz: 8000, toHz: 24000 } : { fromHz: 24000, toHz: 8000 });
      r.process(i % 2 ? pcm8k : pcm24k, out16);
      r.close();
    });
    expect(m.rssGrowth).toBeLessThan(RSS_SLACK);
    expect(m.heapAfter).toBe(m.heapBefore);
  });

  it(`${CYCLES.toLocaleString('en')} pipeline create/process/close cycles`, () => {
    const m = measure((i) => {
      const inbound = dsp.createInboundPipeline({ toHz: 16000 });
      inbound.push(ulaw, i, 0, 0, out16);
      inbound.close();
      const outbound = dsp.createOutboundPipeline({ fromHz: 24000 });
      outbound.push(pcm24k, out8);
      outbound.close();
    });
    expect(m.rssGrowth).toBeLessThan(RSS_SLACK);
    expect(m.heapAfter).toBe(m.heapBefore);
  });
});
