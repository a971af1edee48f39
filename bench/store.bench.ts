/**
 * `npm run bench:store`: the call-record store's SQLite drivers side by side, in one
 * run — better-sqlite3 (WAL, synchronous=FULL: the default) against node-sqlite3-wasm
 * (the fallback; rollback journal). Each task is what the store's writer does:
 *
 * - batch: one transaction upserting 50 completed records with 3 transcript turns each
 *   (the writer's batch size);
 * - start row: one transaction upserting one in-progress record (a call starting);
 * - sweep: the heartbeat's sweep over 1,000 rows with nothing to close.
 *
 * Synchronous calls on the main thread (the bridge runs them in a worker thread, off the
 * audio path); fsync included, so the numbers depend on the disk. Reports p50/mean per
 * operation and the ratio WASM / better-sqlite3, and writes bench/results/store-<time>.json.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Bench, hrtimeNow } from 'tinybench';
import { SqliteEngine } from '../src/store/sqlite-engine.js';
import type { OutboxEntry } from '../src/store/record-row.js';
import { fullRecord } from '../test/store/helpers.js';

const arg = (name: string, def: string): string => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? def;
const taskMs = Number(arg('time', '2000'));

let n = 0;
const entry = (state: 'in-progress' | 'completed'): OutboxEntry => ({ v: 1, recordedAt: new Date().toISOString(), record: { ...fullRecord(++n), recordState: state }, owner: { instance: 'bench', worker: -1, run: 'run-bench' } });

const drivers = ['better-sqlite3', 'node-sqlite3-wasm'] as const;
const bench = new Bench({ time: taskMs, now: hrtimeNow, warmup: true, warmupTime: 200 });
const dirs: string[] = [];
for (const driver of drivers) {
  const dir = mkdtempSync(join(tmpdir(), `vb-store-bench-${driver}-`));
  dirs.push(dir);
  const e = new SqliteEngine(join(dir, 'calls.sqlite'), { driver });
  await e.migrate();
  await e.registerRun({ runId: 'run-bench', instanceId: 'bench', worker: -1, host: 'h', pid: process.pid, routeKey: 'bench', internalUrl: null, startedAt: new Date().toISOString(), processStartedAt: new Date(0).toISOString() }, new Date().toISOString(), new Date(Date.now() + 3_600_000).toISOString());
  // 1,000 rows for the sweep to look through (completed: nothing to close).
  for (let i = 0; i < 20; i++) await e.upsert(Array.from({ length: 50 }, () => entry('completed')));
  bench.add(`${driver}: batch of 50 records`, async () => void (await e.upsert(Array.from({ length: 50 }, () => entry('completed')))));
  bench.add(`${driver}: one in-progress row`, async () => void (await e.upsert([entry('in-progress')])));
  bench.add(`${driver}: sweep`, async () => void (await e.sweepInterrupted(new Date().toISOString(), 'run-bench')));
}
await bench.run();
const rows = bench.tasks.map((t) => {
  const l = (t.result as { latency: { mean: number; p50: number; samplesCount: number } }).latency;
  return { task: t.name, p50Ms: Number(l.p50.toFixed(3)), meanMs: Number(l.mean.toFixed(3)), samples: l.samplesCount };
});
console.table(rows);
const ratios: Record<string, number> = {};
for (const op of ['batch of 50 records', 'one in-progress row', 'sweep']) {
  const b = rows.find((r) => r.task === `better-sqlite3: ${op}`)!;
  const w = rows.find((r) => r.task === `node-sqlite3-wasm: ${op}`)!;
  ratios[op] = Number((w.p50Ms / b.p50Ms).toFixed(2));
}
console.log('WASM / better-sqlite3 (p50):', ratios);
const out = join(import.meta.dirname, 'results');
mkdirSync(out, { recursive: true });
const file = join(out, `store-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(file, JSON.stringify({ at: new Date().toISOString(), node: process.version, taskMs, rows, ratios }, null, 2));
console.log(`report: ${file}`);
for (const d of dirs) rmSync(d, { recursive: true, force: true });
