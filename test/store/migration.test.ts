/**
 * Migration 2 on a database written by the previous release (schema version 1, rows
 * keyed by CallSid only): the rows and their transcript turns come through, as
 * completed records, and the migrated store keeps working — on SQLite and PostgreSQL.
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { openCallStore } from '../../src/store/call-store.js';
import { MIGRATIONS, migrationStatements, schemaMigrationsDdl, toPgPlaceholders } from '../../src/store/schema.js';
import { fullRecord, tempDir, testDatabaseUrl } from './helpers.js';

type Db = { exec(sql: string): void; prepare(sql: string): { run(...p: unknown[]): unknown }; close(): void };
const Better = createRequire(import.meta.url)('better-sqlite3') as new (p: string) => Db;

const V1 = MIGRATIONS[0]!;
const r = fullRecord(4242);
/** Version 1's row for `r` (its columns as that release wrote them) and its 3 turns. */
const v1Row = [r.callSid, r.streamSid, r.agent, r.from, r.to, r.startedAt, r.endedAt, r.durationMs, r.endReason, r.framesIn, r.framesOut, r.chunksToAgent, 4, 7, 9, 2, r.bargeIns, 812, 0, 1, 'prompt', r.recordingPath, 3, JSON.stringify({ state: 'closed', dtmf: 3 }), '2026-01-01T12:10:00.000Z'];
const INSERT_V1 = `INSERT INTO calls VALUES (${v1Row.map(() => '?').join(', ')})`;
const TURN = 'INSERT INTO call_transcripts (call_sid, seq, role, text, final) VALUES (?, ?, ?, ?, ?)';

async function expectMigrated(env: Record<string, string>): Promise<void> {
  const s = await openCallStore({ env });
  try {
    const got = await s.get(r.callSid!);
    expect(got).toMatchObject({ callSid: r.callSid, streamSid: r.streamSid, from: r.from, to: r.to, endReason: r.endReason, recordState: 'completed', ownerInstance: null, ownerWorker: null, dtmf: 3 });
    expect(got!.transcripts).toEqual(r.transcripts);
    // And the migrated table takes new rows: a second stream of the same call is a row of its own.
    s.record({ ...r, streamSid: 'MZ' + 'e'.repeat(32), startedAt: new Date(Date.parse(r.startedAt) + 60_000).toISOString() });
    expect(await s.flush(15_000)).toBe(true);
    expect((await s.get(r.callSid!))!.streamSid).toBe('MZ' + 'e'.repeat(32));
    expect((await s.list({ limit: 10 })).calls).toHaveLength(2);
  } finally {
    await s.close();
  }
}

describe('migration 2 on a version-1 database', () => {
  it('SQLite', async () => {
    const tmp = tempDir();
    try {
      const db = new Better(join(tmp.dir, 'calls.sqlite'));
      db.exec(schemaMigrationsDdl('sqlite'));
      for (const sql of migrationStatements(V1, 'sqlite')) db.exec(sql);
      db.prepare('INSERT INTO schema_migrations VALUES (1, ?, ?)').run(V1.name, '2026-01-01T00:00:00.000Z');
      db.prepare(INSERT_V1).run(...v1Row);
      r.transcripts.forEach((t, i) => db.prepare(TURN).run(r.callSid, i, t.role, t.text, t.final ? 1 : 0));
      db.close();
      await expectMigrated({ BRIDGE_DATA_DIR: tmp.dir });
    } finally {
      tmp.remove();
    }
  });

  it('PostgreSQL', async () => {
    const base = testDatabaseUrl();
    const schema = `vb_mig_${Date.now().toString(36)}`;
    const admin = new pg.Client({ connectionString: base });
    await admin.connect();
    const tmp = tempDir();
    try {
      await admin.query(`CREATE SCHEMA ${schema}`);
      await admin.query(`SET search_path = ${schema}`);
      await admin.query(schemaMigrationsDdl('postgres'));
      for (const sql of migrationStatements(V1, 'postgres')) await admin.query(sql);
      await admin.query('INSERT INTO schema_migrations VALUES (1, $1, now())', [V1.name]);
      await admin.query(toPgPlaceholders(INSERT_V1), v1Row.map((v, i) => (i === 19 ? true : v)));
      for (const [i, t] of r.transcripts.entries()) await admin.query(toPgPlaceholders(TURN), [r.callSid, i, t.role, t.text, t.final]);
      const u = new URL(base);
      u.searchParams.set('options', `-c search_path=${schema}`);
      await expectMigrated({ BRIDGE_DATA_DIR: tmp.dir, DATABASE_URL: u.toString() });
    } finally {
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await admin.end();
      tmp.remove();
    }
  });
});
