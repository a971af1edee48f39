/**
 * The store contract on SQLite: a real database file in a temp dir, written by the
 * store's worker thread through better-sqlite3 (WAL). "Database down" is another
 * connection holding SQLite's write lock: every write of the store gets SQLITE_BUSY
 * until it is released (WAL readers are never blocked, so history stays readable).
 */
import { existsSync, mkdirSync, utimesSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { breakStaleLock } from '../../src/store/sqlite-driver.js';
import { callsCommand } from '../../src/store/calls-command.js';
import { openCallStore } from '../../src/store/call-store.js';
import { storeContract } from './store-contract.js';
import { tempDir } from './helpers.js';

let dbPath = '';
type Db = { prepare(sql: string): { all(...p: unknown[]): unknown[] }; exec(sql: string): void; pragma(p: string): unknown; close(): void };
const Database = createRequire(import.meta.url)('better-sqlite3') as new (path: string, o?: { fileMustExist?: boolean }) => Db;
let holder: Db | undefined;

function query<T>(sql: string, params: (string | number)[] = []): T[] {
  const db = new Database(dbPath, { fileMustExist: true });
  try {
    return db.prepare(sql).all(...params) as T[];
  } finally {
    db.close();
  }
}

storeContract({
  name: 'sqlite',
  async setup(dir) {
    dbPath = join(dir, 'calls.sqlite');
  },
  async teardown() {},
  env: (dir) => ({ BRIDGE_DATA_DIR: dir, BRIDGE_DB_TIMEOUT_MS: '3000', BRIDGE_DB_RETRY_MAX_MS: '200' }),
  async takeDown() {
    if (holder) return;
    holder = new Database(dbPath);
    // Another writer holds the write lock (WAL): every write of the store gets SQLITE_BUSY; reads go on.
    holder.exec('BEGIN IMMEDIATE');
  },
  readsWhileDown: true,
  async bringUp() {
    if (!holder) return;
    holder.exec('ROLLBACK');
    holder.close();
    holder = undefined;
  },
  async appliedMigrations() {
    return query<{ version: number; name: string }>('SELECT version, name FROM schema_migrations ORDER BY version');
  },
  async countRows(table, callSid) {
    const rows = callSid ? query<{ n: number }>(`SELECT count(*) AS n FROM ${table} WHERE call_sid = ?`, [callSid]) : query<{ n: number }>(`SELECT count(*) AS n FROM ${table}`);
    return Number(rows[0]!.n);
  },
});

describe('SQLite specifics', () => {
  it('the data dir and database file are created on first start, with no set-up', async () => {
    const tmp = tempDir();
    try {
      const dir = join(tmp.dir, 'nested', 'data');
      const s = await openCallStore({ env: { BRIDGE_DATA_DIR: dir } });
      expect(s.stats()).toMatchObject({ backend: 'sqlite', target: join(dir, 'calls.sqlite'), dbReady: true });
      await s.close();
      expect(existsSync(join(dir, 'calls.sqlite'))).toBe(true);
      expect(existsSync(join(dir, 'outbox.jsonl'))).toBe(true);
    } finally {
      tmp.remove();
    }
  });

  it('runs on better-sqlite3 in WAL mode (the WASM driver is only the fallback)', async () => {
    const tmp = tempDir();
    try {
      dbPath = join(tmp.dir, 'calls.sqlite');
      const s = await openCallStore({ env: { BRIDGE_DATA_DIR: tmp.dir } });
      expect(s.stats()).toMatchObject({ sqliteDriver: 'better-sqlite3' });
      expect(s.stats().sqliteFallbackReason).toBeUndefined();
      await s.close();
      expect(query<{ journal_mode: string }>('PRAGMA journal_mode')).toEqual([{ journal_mode: 'wal' }]);
    } finally {
      tmp.remove();
    }
  });

  it('WASM fallback lock: a lock left by a process killed mid-transaction is broken once stale, a live one is not', () => {
    const tmp = tempDir();
    try {
      const path = join(tmp.dir, 'calls.sqlite');
      mkdirSync(`${path}.lock`);
      expect(breakStaleLock(path)).toBe(false);
      const old = new Date(Date.now() - 60_000);
      utimesSync(`${path}.lock`, old, old);
      expect(breakStaleLock(path)).toBe(true);
      expect(existsSync(`${path}.lock`)).toBe(false);
    } finally {
      tmp.remove();
    }
  });

  it('voice-bridge calls before any call: says so, exit 0', async () => {
    const tmp = tempDir();
    try {
      const out: string[] = [];
      expect(await callsCommand([], { BRIDGE_DATA_DIR: tmp.dir }, { out: (t) => void out.push(t), err: () => undefined })).toBe(0);
      expect(out.join('')).toBe(`no call records yet (${join(tmp.dir, 'calls.sqlite')} does not exist)\n`);
    } finally {
      tmp.remove();
    }
  });

  it('BRIDGE_CALL_RECORDS=off: record() is a no-op and nothing is created', async () => {
    const tmp = tempDir();
    try {
      const dir = join(tmp.dir, 'data');
      const s = await openCallStore({ env: { BRIDGE_DATA_DIR: dir, BRIDGE_CALL_RECORDS: 'off' } });
      s.record({ callSid: 'CA1' } as never);
      expect(await s.flush(10)).toBe(true);
      expect(s.stats().backend).toBe('off');
      await s.close();
      expect(existsSync(dir)).toBe(false);
    } finally {
      tmp.remove();
    }
  });
});
