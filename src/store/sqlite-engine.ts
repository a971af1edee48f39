/**
 * The SQLite side, synchronous (src/store/sqlite-driver.ts: better-sqlite3 in WAL
 * mode, or the WASM fallback). A commit fsyncs, so the bridge runs this in a worker
 * thread (sqlite-worker.ts) and never on the event loop that paces audio; the
 * `voice-bridge calls` CLI uses it directly. The operations themselves are the
 * dialect-neutral ones of sql-ops.ts.
 */
import type { DbListQuery } from './call-db.js';
import { MIGRATIONS, migrationStatements, schemaMigrationsDdl } from './schema.js';
import type { CallListItem, OutboxEntry, StoredCall } from './record-row.js';
import * as ops from './sql-ops.js';
import { openSqlite, type SqlDriver } from './sqlite-driver.js';

export class SqliteEngine {
  readonly path: string;
  readonly #db: SqlDriver;
  readonly #x: ops.SqlExec;

  constructor(path: string, options: Parameters<typeof openSqlite>[1] = {}) {
    this.path = path;
    this.#db = openSqlite(path, options);
    const db = this.#db;
    this.#x = { all: (sql, p) => db.all(sql, p), run: (sql, p) => db.run(sql, p) };
  }

  get driver(): SqlDriver['name'] {
    return this.#db.name;
  }

  /** BEGIN IMMEDIATE … COMMIT around `fn` (whose awaits all resolve synchronously: the driver is synchronous). */
  async #tx<T>(fn: () => T | Promise<T>): Promise<T> {
    this.#db.beforeTransaction();
    this.#db.exec('BEGIN IMMEDIATE');
    try {
      const out = await fn();
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

  migrate(): Promise<number[]> {
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

  upsert(entries: OutboxEntry[]): Promise<void> {
    return this.#tx(() => ops.upsertEntries(this.#x, entries));
  }

  list(q: DbListQuery): Promise<CallListItem[]> {
    return ops.listCalls(this.#x, q);
  }

  get(callSid: string): Promise<StoredCall | undefined> {
    return ops.getCall(this.#x, callSid);
  }

  registerRun(run: ops.RunInfo, nowIso: string, expiresIso: string): ReturnType<typeof ops.registerRun> {
    return this.#tx(() => ops.registerRun(this.#x, run, nowIso, expiresIso, ops.pidAlive));
  }

  heartbeat(runId: string, nowIso: string, expiresIso: string): Promise<boolean> {
    return ops.heartbeat(this.#x, runId, nowIso, expiresIso);
  }

  stopRun(runId: string, nowIso: string): Promise<void> {
    return ops.stopRun(this.#x, runId, nowIso);
  }

  sweepInterrupted(nowIso: string, selfRunId: string): ReturnType<typeof ops.sweepInterrupted> {
    return this.#tx(() => ops.sweepInterrupted(this.#x, nowIso, selfRunId));
  }

  liveCalls(nowIso: string): Promise<ops.LiveCallRow[]> {
    return ops.liveCalls(this.#x, nowIso);
  }

  liveCall(callSid: string, nowIso: string): Promise<ops.LiveCallRow | undefined> {
    return ops.liveCall(this.#x, callSid, nowIso);
  }

  /** Applied migration versions (for tests and `doctor`). */
  async appliedVersions(): Promise<number[]> {
    try {
      return await ops.appliedVersions(this.#x);
    } catch {
      return [];
    }
  }

  close(): void {
    this.#db.close();
  }
}

/** SQLite failures that can pass on retry: a lock held by another process, I/O, a full disk. */
export function isTransientSqliteError(e: unknown): boolean {
  if (e instanceof TypeError || e instanceof RangeError || e instanceof SyntaxError) return false;
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && /^SQLITE_(BUSY|LOCKED|IOERR|FULL|CANTOPEN|PROTOCOL)/.test(code)) return true;
  const msg = e instanceof Error ? e.message : String(e);
  return /busy|locked|disk i\/o|disk is full|unable to open|timed out|worker/i.test(msg);
}
