/**
 * `npx tsx bench/pool.bench.ts`: the DSP worker pool (BRIDGE_DSP_POOL) against the
 * inline DSP, for both backends — the evidence for where, if anywhere, the pool wins.
 *
 * 1. Batches (tinybench): B calls' frames of one 20 ms tick (B = 50, 100, 300), each
 *    call one caller frame in (μ-law → jitter buffer → 24 kHz) and 20 ms of 24 kHz agent
 *    audio out (→ 8 kHz μ-law). Inline: the whole batch runs on the main thread. Pool:
 *    main-thread time = packing the records + dispatch + delivering the results to the
 *    sinks; the round trip of the batch (first push → last result delivered) p50/p99.
 * 2. Paced (real time, 3 s): B calls' frames spread evenly over each 20 ms, as calls
 *    arrive; main-thread event-loop utilisation, and each outbound frame's delay from
 *    when it was due to when its μ-law reached the playout sink (inline: only the
 *    lateness of a busy loop; pool: that + batching + the round trip). Target: p99 ≤ 5 ms.
 *
 * Options: --time=ms per tinybench task (default 1000), --paced-s=seconds (default 3),
 * --threads=1,2 (pool sizes for the paced runs), --only=native|ts, --delay=ms (the pool's
 * micro-batch delay; default 1, 0 = end of the event-loop turn), --paced-calls=100,200,300,
 * --paced-only (skip part 1), --repeat=3 (paced runs per configuration; medians reported).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Bench, hrtimeNow } from 'tinybench';
import type { DspBackend } from '../src/dsp/backend.js';
import { loadDsp } from '../src/dsp/load.js';
import { DspPool } from '../src/dsp/pool/dsp-pool.js';
import { inlineReference, type BatchedInbound, type BatchedOutbound, type BatchedPaths } from '../src/dsp/pool/inline-reference.js';
import { encodeUlaw } from '../src/dsp/ts/g711.js';

const arg = (name: string, def: string): string => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? def;
const taskMs = Number(arg('time', '1000'));
const pacedS = Number(arg('paced-s', '3'));
const pacedThreads = arg('threads', '1,2').split(',').map(Number);
const only = arg('only', '');
/** The pool's micro-batch delay (ms; 0 = end of the event-loop turn). */
const batchDelayMs = Number(arg('delay', '1'));
const SIZES = [50, 100, 300];
const PACED_SIZES = arg('paced-calls', '100,200,300').split(',').map(Number);
const skipBatches = process.argv.includes('--paced-only');
/** Paced runs are repeated (interleaved) and the median of each figure reported: a shared 2-core box is noisy. */
const repeats = Number(arg('repeat', '3'));
const RATE = 24000;

const frame = new Uint8Array(160);
{
  const pcm = new Int16Array(160);
  for (let i = 0; i < 160; i++) pcm[i] = Math.round(6000 * Math.sin((2 * Math.PI * 440 * i) / 8000));
  encodeUlaw(pcm, frame);
}
const agentPcm = new Int16Array(RATE / 50);
for (let i = 0; i < agentPcm.length; i++) agentPcm[i] = Math.round(5000 * Math.sin((2 * Math.PI * 300 * i) / RATE));

interface Calls {
  ins: BatchedInbound[];
  outs: BatchedOutbound[];
  close(): void;
}

/** B calls with both paths open; sinks count samples (and, if given, time each outbound result). */
function openCalls(paths: BatchedPaths, b: number, onOut?: (call: number) => void): Calls {
  const dsps = Array.from({ length: b }, () => paths.openCall(() => undefined));
  let samples = 0;
  const ins = dsps.map((d) => d.openInbound({ toHz: RATE }, (pcm) => (samples += pcm.length)));
  const outs = dsps.map((d, i) => d.openOutbound({ fromHz: RATE }, onOut ? () => onOut(i) : (_u, _o, n) => (samples += n)));
  return { ins, outs, close: () => dsps.forEach((d) => d.close()) };
}

/** One tick's frames for every call, both directions (the session's poll rule included). */
function tick(c: Calls, seq: number, nowMs: number): void {
  for (let i = 0; i < c.ins.length; i++) {
    const inb = c.ins[i]!;
    inb.push(frame, seq, seq * 20, nowMs);
    if (inb.bufferedFrames > 0) inb.poll(nowMs);
    c.outs[i]!.push(agentPcm);
  }
}

function pct(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

interface BatchRow {
  backend: string;
  calls: number;
  inlineUsPerFrame: number;
  poolMainUsPerFrame: number;
  mainRatio: number;
  poolRttP50Ms: number;
  poolRttP99Ms: number;
  inlineBatchMs: number;
}

async function batchBench(dsp: DspBackend): Promise<BatchRow[]> {
  const pool = await DspPool.start({ threads: 1, backend: dsp.name, batchDelayMs });
  const inline = inlineReference(dsp);
  const rows: BatchRow[] = [];
  for (const b of SIZES) {
    const bench = new Bench({ time: taskMs, warmupTime: 200, now: hrtimeNow });
    const ic = openCalls(inline, b);
    let iseq = 0;
    bench.add('inline', () => {
      iseq++;
      tick(ic, iseq, iseq * 20);
    });
    const pc = openCalls(pool, b);
    let pseq = 0;
    let mainMs = 0;
    let samples = 0;
    bench.add('pool', async () => {
      pseq++;
      const t0 = performance.now();
      const busy0 = pool.stats().busyMs;
      tick(pc, pseq, pseq * 20);
      const t1 = performance.now();
      await pool.settled();
      mainMs += t1 - t0 + (pool.stats().busyMs - busy0);
      samples++;
    });
    await bench.run();
    const [ti, tp] = bench.tasks.map((t) => (t.result as { latency: { mean: number; p50: number; p99: number } }).latency);
    const inlineUs = (ti!.mean * 1000) / b;
    const poolUs = ((mainMs / samples) * 1000) / b;
    rows.push({ backend: dsp.name, calls: b, inlineUsPerFrame: inlineUs, poolMainUsPerFrame: poolUs, mainRatio: inlineUs / poolUs, poolRttP50Ms: tp!.p50, poolRttP99Ms: tp!.p99, inlineBatchMs: ti!.mean });
    ic.close();
    pc.close();
    await pool.settled();
  }
  await pool.close();
  return rows;
}

interface PacedRow {
  backend: string;
  calls: number;
  mode: string;
  elu: number;
  delayP50Ms: number;
  delayP99Ms: number;
  delayMaxMs: number;
  framesBehind: number;
  batchRttP50Ms: number;
  batchRttP99Ms: number;
  recordsPerBatch: number;
}

async function paced(dsp: DspBackend, b: number, threads: number): Promise<PacedRow> {
  const pool = threads > 0 ? await DspPool.start({ threads, backend: dsp.name, batchDelayMs }) : undefined;
  const paths: BatchedPaths = pool ?? inlineReference(dsp);
  const total = Math.round(pacedS * 50 * b);
  const dueAt: number[][] = Array.from({ length: b }, () => []);
  const delays: number[] = [];
  const calls = openCalls(paths, b, (i) => {
    const due = dueAt[i]!.shift();
    if (due !== undefined) delays.push(performance.now() - due);
  });
  await pool?.settled();
  const st0 = pool?.stats();
  const rttFrom = pool ? pool.recentRoundTripsMs().length : 0;
  const elu0 = performance.eventLoopUtilization();
  const start = performance.now() + 5;
  let sent = 0;
  await new Promise<void>((resolve) => {
    const step = (): void => {
      const now = performance.now();
      const due = Math.min(total, Math.floor(((now - start) / 20) * b));
      // At most one tick's worth per turn, so a saturated loop still yields (and falls behind, measurably).
      const until = Math.min(due, sent + b);
      while (sent < until) {
        const i = sent % b;
        const seq = Math.floor(sent / b);
        const dueMs = start + seq * 20 + (i / b) * 20;
        const t = performance.now();
        const inb = calls.ins[i]!;
        inb.push(frame, seq, seq * 20, t);
        if (inb.bufferedFrames > 0) inb.poll(t);
        dueAt[i]!.push(dueMs);
        calls.outs[i]!.push(agentPcm);
        sent++;
      }
      if (performance.now() - start >= pacedS * 1000) resolve();
      else setTimeout(step, 1);
    };
    setTimeout(step, 5);
  });
  const behind = Math.min(total, Math.floor(((performance.now() - start) / 20) * b)) - sent;
  await pool?.settled();
  const elu = performance.eventLoopUtilization(elu0).utilization;
  const st1 = pool?.stats();
  const rtts = pool ? pool.recentRoundTripsMs().slice(rttFrom > 1000 ? 0 : rttFrom) : [];
  calls.close();
  await pool?.close();
  return { backend: dsp.name, calls: b, mode: pool ? `pool ×${threads}` : 'inline', elu, delayP50Ms: pct(delays, 50), delayP99Ms: pct(delays, 99), delayMaxMs: Math.max(...delays), framesBehind: behind, batchRttP50Ms: pct(rtts, 50), batchRttP99Ms: pct(rtts, 99), recordsPerBatch: st0 && st1 ? (st1.records - st0.records) / Math.max(1, st1.batches - st0.batches) : NaN };
}

const names = (['native', 'ts'] as const).filter((n) => !only || n === only);
const dsps: DspBackend[] = [];
for (const n of names) {
  try {
    dsps.push(await loadDsp({ backend: n }));
  } catch (e) {
    console.warn(`${n} backend unavailable: ${(e as Error).message}`);
  }
}
console.log(`voice-bridge DSP pool bench on ${cpus().length}× ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}; tinybench ${taskMs} ms per task, paced ${pacedS} s, pool batch delay ${batchDelayMs} ms`);

const batchRows: BatchRow[] = [];
if (!skipBatches) for (const dsp of dsps) batchRows.push(...(await batchBench(dsp)));
console.log('\n1. One tick of B calls (in + out per call): main-thread µs per call-frame, pool = 1 worker');
console.table(
  batchRows.map((r) => ({
    backend: r.backend,
    calls: r.calls,
    'inline µs/frame': r.inlineUsPerFrame.toFixed(2),
    'pool main µs/frame': r.poolMainUsPerFrame.toFixed(2),
    'main-thread ratio inline/pool': r.mainRatio.toFixed(2),
    'inline batch ms': r.inlineBatchMs.toFixed(2),
    'pool RTT p50 ms': r.poolRttP50Ms.toFixed(2),
    'pool RTT p99 ms': r.poolRttP99Ms.toFixed(2),
  })),
);

const median = (xs: number[]): number => pct(xs, 50);
const runs = new Map<string, PacedRow[]>();
for (let rep = 0; rep < repeats; rep++) {
  for (const dsp of dsps) {
    for (const b of PACED_SIZES) {
      for (const threads of [0, ...pacedThreads]) {
        const r = await paced(dsp, b, threads);
        const key = `${r.backend}/${r.calls}/${r.mode}`;
        runs.set(key, [...(runs.get(key) ?? []), r]);
      }
    }
  }
}
const pacedRows: PacedRow[] = [...runs.values()].map((rs) => ({
  ...rs[0]!,
  elu: median(rs.map((r) => r.elu)),
  delayP50Ms: median(rs.map((r) => r.delayP50Ms)),
  delayP99Ms: median(rs.map((r) => r.delayP99Ms)),
  delayMaxMs: Math.max(...rs.map((r) => r.delayMaxMs)),
  framesBehind: median(rs.map((r) => r.framesBehind)),
  batchRttP50Ms: median(rs.map((r) => r.batchRttP50Ms)),
  batchRttP99Ms: median(rs.map((r) => r.batchRttP99Ms)),
  recordsPerBatch: median(rs.map((r) => r.recordsPerBatch)),
}));
console.log(`\n2. Paced, ${pacedS} s × ${repeats} (median; max of max): B calls' frames spread over each 20 ms; delay = μ-law at the playout sink − when the frame was due`);
console.table(
  pacedRows.map((r) => ({
    backend: r.backend,
    calls: r.calls,
    mode: r.mode,
    'main ELU': r.elu.toFixed(2),
    'delay p50 ms': r.delayP50Ms.toFixed(2),
    'delay p99 ms': r.delayP99Ms.toFixed(2),
    'delay max ms': r.delayMaxMs.toFixed(1),
    'frames behind': r.framesBehind,
    'pool batch RTT p50/p99 ms': r.mode === 'inline' ? '' : `${r.batchRttP50Ms.toFixed(2)} / ${r.batchRttP99Ms.toFixed(2)}`,
    'records/batch': r.mode === 'inline' ? '' : r.recordsPerBatch.toFixed(1),
  })),
);

mkdirSync(join(import.meta.dirname, 'results'), { recursive: true });
const file = join(import.meta.dirname, 'results', `pool-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), node: process.version, cpu: cpus()[0]?.model, cores: cpus().length, taskMs, pacedS, repeats, batchDelayMs, batchRows, pacedRows, pacedRuns: Object.fromEntries(runs) }, null, 2));
console.log(`JSON report: ${file}`);
process.exit(0);
