/**
 * Call-record store: cost of record() on the caller's path, and what draining a
 * burst of records into the database does to the event loop (the loop that paces
 * every call's audio). `npx tsx bench/store.bench.ts` (SQLite in a temp dir);
 * with DATABASE_URL=postgres://… for PostgreSQL.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { openCallStore } from '../src/store/call-store.js';
import { fullRecord } from '../test/store/helpers.js';

const N = Number(process.env.N ?? 5000);
const dir = mkdtempSync(join(tmpdir(), 'vb-store-bench-'));
const store = await openCallStore({ env: { BRIDGE_DATA_DIR: dir, DATABASE_URL: process.env.DATABASE_URL, BRIDGE_CALL_RECORDS: process.env.BRIDGE_CALL_RECORDS } });
const records = Array.from({ length: N }, (_, i) => fullRecord(1_000_000 + i));

// Warm up (JIT), then drain.
for (let i = 0; i < 200; i++) store.record(records[i]!);
await store.flush(60_000);

const h = monitorEventLoopDelay({ resolution: 1 });
h.enable();
const times: number[] = [];
const t0 = performance.now();
for (let i = 200; i < N; i++) {
  const t = performance.now();
  store.record(records[i]!);
  times.push((performance.now() - t) * 1000);
  // Spread over a few turns, as calls end at different times.
  if (i % 100 === 0) await new Promise((r) => setImmediate(r));
}
const ok = await store.flush(120_000);
const drainMs = performance.now() - t0;
h.disable();
times.sort((a, b) => a - b);
const q = (p: number) => times[Math.min(times.length - 1, Math.floor(p * times.length))]!.toFixed(2);
console.log(
  JSON.stringify(
    {
      backend: store.stats().backend,
      records: N - 200,
      flushed: ok,
      recordUs: { mean: (times.reduce((a, b) => a + b, 0) / times.length).toFixed(2), p50: q(0.5), p99: q(0.99), max: q(1) },
      drainMs: Math.round(drainMs),
      recordsPerS: Math.round(((N - 200) / drainMs) * 1000),
      eventLoopDelayMs: { p50: (h.percentile(50) / 1e6).toFixed(2), p99: (h.percentile(99) / 1e6).toFixed(2), max: (h.max / 1e6).toFixed(2) },
    },
    null,
    2,
  ),
);
await store.close();
rmSync(dir, { recursive: true, force: true });
