/**
 * `npx tsx bench/metrics.bench.ts`: the cost of the metrics hooks the call core
 * calls synchronously on the frame path (CallObserver.inboundFrame / outboundTick,
 * ~50 calls per second per call each), per call, next to prom-client's own
 * Histogram#observe for comparison. Each task runs a batch of 1,000 calls so the
 * timer's resolution does not dominate; the table shows ns per hook call.
 */
import { cpus } from 'node:os';
import { Bench, hrtimeNow } from 'tinybench';
import { Histogram, Registry } from 'prom-client';
import { createMetrics, FRAME_BUCKETS_S } from '../src/metrics/index.js';

const taskMs = Number(process.argv.find((a) => a.startsWith('--time='))?.slice(7) ?? 500);
const BATCH = 1000;

const metrics = createMetrics({ dspInfo: () => undefined, defaultMetrics: false });
const obs = metrics.observer;
const promHist = new Histogram({ name: 'x_seconds', help: 'x', labelNames: ['direction'], buckets: FRAME_BUCKETS_S, registers: [new Registry()] });
const promChild = promHist.labels({ direction: 'inbound' });

// Realistic values: a few µs per frame, with some spread across buckets.
const valuesMs = Float64Array.from({ length: BATCH }, (_, i) => 0.002 + ((i * 7919) % 1000) / 100_000);

const bench = new Bench({ time: taskMs, warmupTime: 100, now: hrtimeNow });
bench.add('observer.inboundFrame', () => {
  for (let i = 0; i < BATCH; i++) obs.inboundFrame(valuesMs[i]!);
});
bench.add('observer.outboundTick', () => {
  for (let i = 0; i < BATCH; i++) obs.outboundTick(valuesMs[i]!);
});
bench.add('empty loop (baseline)', () => {
  let s = 0;
  for (let i = 0; i < BATCH; i++) s += valuesMs[i]!;
  if (s < 0) throw new Error('unreachable');
});
bench.add('prom-client Histogram.observe(labels, v) (for comparison)', () => {
  for (let i = 0; i < BATCH; i++) promHist.observe({ direction: 'inbound' }, valuesMs[i]! / 1000);
});
bench.add('prom-client child.observe(v) (for comparison)', () => {
  for (let i = 0; i < BATCH; i++) promChild.observe(valuesMs[i]! / 1000);
});

console.log(`voice-bridge metrics bench: ${bench.tasks.length} tasks × ${taskMs} ms, batches of ${BATCH}, on ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}`);
await bench.run();
console.table(
  bench.tasks.map((t) => {
    const r = t.result as { latency?: { mean: number; p50?: number; p99?: number } } | undefined;
    const meanMs = r?.latency?.mean ?? NaN;
    const p50Ms = r?.latency?.p50 ?? NaN;
    const p99Ms = r?.latency?.p99 ?? NaN;
    return { task: t.name, 'ns/call (mean)': ((meanMs * 1e6) / BATCH).toFixed(1), 'ns/call (p50 batch)': ((p50Ms * 1e6) / BATCH).toFixed(1), 'ns/call (p99 batch)': ((p99Ms * 1e6) / BATCH).toFixed(1) };
  }),
);
metrics.close();
