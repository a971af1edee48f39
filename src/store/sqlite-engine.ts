/**
 * The SQLite side, synchronous (node-sqlite3-wasm: SQLite compiled to WebAssembly
 * with a VFS over node:fs, no install scripts). A commit fsyncs and costs ~3 ms
 * here, so the bridge runs this in a worker thread (sqlite-worker.ts) and never on
 * the event loop that paces audio; the `voice-bridge calls` CLI uses it directly.
 *
 * This VFS locks with a `<file>.lock` directory, exclusive for readers and writers
 * alike; a process killed inside a transaction leaves it behind, so a lock older
 * than STALE_LOCK_MS (far longer than any of our transactions) is broken.
 */
import { mkdirSync, rmdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import sqlite from 'node-sqlite3-wasm';
import { DELETE_TRANSCRIPTS_SQL, GET_CALL_SQL, GET_TRANSCRIPTS_SQL, MIGRATIONS, UPSERT_CALL_SQL, insertTranscriptsSql, listSql, migrationStatements, schemaMigrationsDdl } from './schema.js';
import { recordToParams, rowToListItem, rowToStoredCall, type CallListItem, type OutboxEntry, type StoredCall } from './record-row.js';

export const STALE_LOCK_MS = 30_000;

type Bind = (string | number | boolean | null)[];

export class SqliteEngine {
  readonly path: string;
  #db: InstanceType<typeof sqlite.Database>;

  constructor(path: string, options: { fileMustExist?: boolean } = {}) {
    this.path = path;
    if (!options.fileMustExist) mkdirSync(dirname(path), { recursive: true });
    breakStaleLock(path);
    this.#db = new sqlite.Database(path, { fileMustExist: options.fileMustExist ?? false });
    this.#db.exec('PRAGMA busy_timeout = 1000');
  }

  #tx<T>(fn: () => T): T {
    breakStaleLock(this.path);
    this.#db.exec('BEGIN IMMEDIATE');
    try {
      const out = fn();
      this.#db.exec('COMMIT');
      return out;
    } catch (e) {
      try {
        this.#db.exec('ROLLBACK');
      } catch {
        // already rolled back by SQLite
      }
      throw e;
    }
  }

  migrate(): number[] {
    return this.#tx(() => {
      this.#db.exec(schemaMigrationsDdl('sqlite'));
      const done = new Set(this.#db.all('SELECT version FROM schema_migrations').map((r) => Number(r.version)));
      const applied: number[] = [];
      for (const m of MIGRATIONS) {
        if (done.has(m.version)) continue;
        for (const sql of migrationStatements(m, 'sqlite')) this.#db.exec(sql);
        this.#db.run('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)', [m.version, m.name, new Date().toISOString()]);
        applied.push(m.version);
      }
      return applied;
    });
  }

  upsert(entries: OutboxEntry[]): void {
    const rows = entries.map(recordToParams);
    this.#tx(() => {
      for (const { call, transcripts } of rows) {
        this.#db.run(UPSERT_CALL_SQL, call as Bind);
        this.#db.run(DELETE_TRANSCRIPTS_SQL, [call[0] as string]);
        if (transcripts.length > 0) this.#db.run(insertTranscriptsSql(transcripts.length), transcripts.flat() as Bind);
      }
    });
  }

  list(q: { limit: number; before?: { startedAt: string; callSid: string }; offset?: number }): CallListItem[] {
    const params: Bind = [];
    if (q.before) params.push(q.before.startedAt, q.before.startedAt, q.before.callSid);
    params.push(q.limit);
    if (q.offset !== undefined) params.push(q.offset);
    return this.#db.all(listSql(q.before !== undefined, q.offset !== undefined), params).map((r) => rowToListItem(r as Record<string, unknown>));
  }

  get(callSid: string): StoredCall | undefined {
    const row = this.#db.get(GET_CALL_SQL, [callSid]);
    if (!row) return undefined;
    const turns = this.#db.all(GET_TRANSCRIPTS_SQL, [callSid]);
    return rowToStoredCall(row as Record<string, unknown>, turns as Record<string, unknown>[]);
  }

  /** Applied migration versions (for tests and `doctor`). */
  appliedVersions(): number[] {
    try {
      return this.#db.all('SELECT version FROM schema_migrations ORDER BY version').map((r) => Number(r.version));
    } catch {
      return [];
    }
  }

  close(): void {
    if (this.#db.isOpen) this.#db.close();
  }
}

export function breakStaleLock(path: string, staleMs = STALE_LOCK_MS): boolean {
  const lock = `${path}.lock`;
  try {
    const st = statSync(lock);
    if (Date.now() - st.mtimeMs < staleMs) return false;
    rmdirSync(lock);
    return true;
  } catch {
    return false;
  }
}

/** SQLite failures that can pass on retry: a lock held by another process, I/O, a full disk. */
export function isTransientSqliteError(e: unknown): boolean {
  if (e instanceof TypeError || e instanceof RangeError || e instanceof SyntaxError) return false;
  const msg = e instanceof Error ? e.message : String(e);
  return /busy|locked|disk i\/o|disk is full|unable to open|timed out|worker/i.test(msg);
}
