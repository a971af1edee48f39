/**
 * Scale-out without loss, on real processes and both stores (SQLite under the data
 * dir, PostgreSQL in a throwaway schema):
 *
 * - `start --workers 2`: 30 calls placed as Twilio does (webhook, then the stream its
 *   TwiML names) end together, then SIGTERM: 30 of 30 records, each exactly once,
 *   From/To on every one, and every stream met the agent its webhook pre-connected
 *   (the primary routes by the stream URL's key).
 * - The same with one worker SIGKILLed mid-call: its calls are recorded as
 *   interrupted (closed by its restarted successor), the other worker's completed.
 * - kill -9 of a single process mid-call and a restart on the same data: the finished
 *   call and the interrupted one both have records.
 */
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runSimulatedCall } from '../../src/sim/simulator.js';
import { ulawClip } from '../bridge/helpers.js';
import { pollUntil, startChildBridge, type ChildBridge } from './child-bridge.js';
import { FROM, TO, countBySid, placeCall, postgresRecords, sqliteRecords, type RecordsDb } from './scale-out-helpers.js';

const children: ChildBridge[] = [];
const dbs: RecordsDb[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) c.kill();
  for (const d of dbs.splice(0)) await d.close();
});

async function recordsDb(kind: 'sqlite' | 'postgres'): Promise<RecordsDb> {
  const db = kind === 'sqlite' ? sqliteRecords() : await postgresRecords();
  dbs.push(db);
  return db;
}

const exitWithin = (b: ChildBridge, ms: number) => Promise.race([b.exited, new Promise<never>((_, rej) => setTimeout(() => rej(new Error(`no exit within ${ms} ms:\n${b.output()}`)), ms))]);

for (const kind of ['sqlite', 'postgres'] as const) {
  describe(`scale-out records (${kind})`, () => {
    it('--workers 2: 30 calls end together, SIGTERM: 30 of 30 records, each once, with From/To, every stream on its webhook\'s worker', async () => {
      const db = await recordsDb(kind);
      const dataDir = mkdtempSync(join(tmpdir(), 'vb-scale-'));
      const b = await startChildBridge({ BRIDGE_DATA_DIR: dataDir, ...db.env(dataDir), BRIDGE_HEARTBEAT_MS: '500', BRIDGE_WEBHOOK_RATE_PER_MIN: '0', BRIDGE_LOAD_THRESHOLD: 'off' }, ['--workers', '2']);
      children.push(b);
      const clip = await ulawClip('caller-barge-in.8k-ulaw.wav');
      const calls = [];
      for (let i = 0; i < 30; i++) calls.push(await placeCall(b.url, { audio: clip, fast: true, tailMs: 1500, timeoutMs: 60_000 }));
      // Every stream URL carries a worker's key: the webhooks were balanced over both workers.
      const keys = new Set(calls.map((c) => /\/twilio\/stream\/([^/]+)$/.exec(c.hook.streamUrl)?.[1]));
      expect([...keys].every((k) => k !== undefined && /\.w[01]$/.test(k))).toBe(true);
      expect(keys.size).toBe(2);
      const results = await Promise.all(calls.map((c) => c.result));
      expect(results.map((r) => r.outcome)).toEqual(results.map(() => 'completed'));

      b.proc.kill('SIGTERM');
      expect(await exitWithin(b, 30_000)).toEqual({ code: 0, signal: null });

      const rows = await db.rows(dataDir);
      const counts = countBySid(rows);
      const missing = calls.filter((c) => !counts.has(c.hook.callSid)).map((c) => c.hook.callSid);
      const outboxLines = readdirSync(dataDir).filter((f) => /^outbox.*\.jsonl$/.test(f)).map((f) => `${f}: ${readFileSync(join(dataDir, f), 'utf8').split('\n').filter(Boolean).length} lines`);
      expect(counts.size, `missing ${JSON.stringify(missing)}; ${outboxLines.join(', ')}; bridge output:\n${b.output()}`).toBe(30);
      for (const c of calls) expect(counts.get(c.hook.callSid), c.hook.callSid).toBe(1);
      for (const r of rows) {
        expect(r.record_state).toBe('completed');
        expect([r.from_number, r.to_number]).toEqual([FROM, TO]);
        expect(r.agent_preconnected, `${r.call_sid} should have met its pre-connected agent`).toBe(true);
      }
      expect(new Set(rows.map((r) => r.owner_worker))).toEqual(new Set([0, 1]));
      // Each worker wrote its own outbox; the drain left them empty.
      const outboxes = readdirSync(dataDir).filter((f) => /^outbox.*\.jsonl$/.test(f));
      expect(outboxes.sort()).toEqual(['outbox-w0.jsonl', 'outbox-w1.jsonl']);
      for (const f of outboxes) expect(statSync(join(dataDir, f)).size).toBe(0);
    });

    it('--workers 2, one worker SIGKILLed mid-call: its calls are recorded as interrupted, the others completed, each once', async () => {
      const db = await recordsDb(kind);
      const dataDir = mkdtempSync(join(tmpdir(), 'vb-scale-'));
      const b = await startChildBridge({ BRIDGE_DATA_DIR: dataDir, ...db.env(dataDir), BRIDGE_HEARTBEAT_MS: '2000', BRIDGE_WEBHOOK_RATE_PER_MIN: '0', BRIDGE_LOAD_THRESHOLD: 'off' }, ['--workers', '2']);
      children.push(b);
      const clip = await ulawClip('caller-barge-in.8k-ulaw.wav');
      const calls = [];
      for (let i = 0; i < 10; i++) calls.push(await placeCall(b.url, { audio: clip, fast: true, tailMs: 9000, timeoutMs: 60_000 }));
      // All ten in progress in the database (rows from the stream's start).
      await pollUntil(async () => (await db.rows(dataDir)).filter((r) => r.record_state === 'in-progress').length === 10, 20_000, 100);
      const runs = await db.runs(dataDir);
      const victim = runs.find((r) => Number(r.worker) === 0 && r.stopped_at === null);
      expect(victim).toBeDefined();
      process.kill(Number(victim!.pid), 'SIGKILL');
      await b.waitFor(new RegExp(`worker ${victim!.pid} died \\(SIGKILL\\)`));

      // The restarted worker 0 takes over its predecessor's run and closes its calls.
      const onW0 = (await db.rows(dataDir)).filter((r) => Number(r.owner_worker) === 0).map((r) => r.call_sid);
      expect(onW0.length).toBeGreaterThan(0);
      await pollUntil(async () => (await db.rows(dataDir)).filter((r) => Number(r.owner_worker) === 0).every((r) => r.record_state === 'interrupted'), 20_000, 100);
      const results = await Promise.all(calls.map((c) => c.result));
      b.proc.kill('SIGTERM');
      expect((await exitWithin(b, 30_000)).code).toBe(0);

      const rows = await db.rows(dataDir);
      const counts = countBySid(rows);
      expect(counts.size).toBe(10);
      for (const c of calls) expect(counts.get(c.hook.callSid)).toBe(1);
      for (const r of rows) {
        if (onW0.includes(r.call_sid)) {
          expect([r.record_state, r.end_reason]).toEqual(['interrupted', 'interrupted']);
          expect(r.ended_at).not.toBeNull();
        } else expect(r.record_state).toBe('completed');
        expect(r.from_number).toBe(FROM);
      }
      for (const [i, c] of calls.entries()) expect(results[i]!.outcome).toBe(onW0.includes(c.hook.callSid) ? 'server-closed' : 'completed');
    });

    it('kill -9 of a single process mid-call, restart on the same data: the finished call and the interrupted one both have records', async () => {
      const db = await recordsDb(kind);
      const dataDir = mkdtempSync(join(tmpdir(), 'vb-scale-'));
      // A long heartbeat: only the restart's take-over can close the call in time, not the 3-beat TTL.
      const env = { BRIDGE_DATA_DIR: dataDir, ...db.env(dataDir), BRIDGE_HEARTBEAT_MS: '20000', BRIDGE_INSTANCE_ID: 'solo', BRIDGE_LOAD_THRESHOLD: 'off' };
      const a = await startChildBridge(env);
      children.push(a);
      const clip = await ulawClip('caller-barge-in.8k-ulaw.wav');
      const done = await placeCall(a.url, { audio: clip, fast: true, tailMs: 1000, timeoutMs: 30_000 });
      expect((await done.result).outcome).toBe('completed');
      const live = await placeCall(a.url, { audio: clip, fast: true, tailMs: 20_000, timeoutMs: 40_000 });
      await pollUntil(async () => (await db.rows(dataDir)).some((r) => r.call_sid === live.hook.callSid && r.record_state === 'in-progress') && (await db.rows(dataDir)).some((r) => r.call_sid === done.hook.callSid && r.record_state === 'completed'), 15_000, 100);
      a.proc.kill('SIGKILL');
      expect((await a.exited).signal).toBe('SIGKILL');
      expect((await live.result).outcome).not.toBe('completed');

      const restarted = await startChildBridge(env);
      children.push(restarted);
      await pollUntil(async () => (await db.rows(dataDir)).some((r) => r.call_sid === live.hook.callSid && r.record_state === 'interrupted'), 15_000, 100);
      const rows = await db.rows(dataDir);
      expect(rows).toHaveLength(2);
      const byId = new Map(rows.map((r) => [r.call_sid, r]));
      expect(byId.get(done.hook.callSid)).toMatchObject({ record_state: 'completed', from_number: FROM, to_number: TO, owner_instance: 'solo' });
      expect(byId.get(live.hook.callSid)).toMatchObject({ record_state: 'interrupted', end_reason: 'interrupted', from_number: FROM, to_number: TO, owner_instance: 'solo' });
      // And the restarted process takes calls as before.
      const after = await runSimulatedCall({ url: restarted.streamUrl, audio: clip, fast: true, tailMs: 1000, timeoutMs: 30_000, customParameters: { format: 'ulaw' } });
      expect(after.outcome).toBe('completed');
    });
  });
}
