/**
 * CallDb over PostgreSQL (node-postgres). A small pool (the writer is one loop;
 * history reads are rare); every connect and statement is bounded by the store's
 * timeout, so a database that hangs fails the attempt instead of stalling the writer.
 */
import pg from 'pg';
import type { CallDb, DbListQuery } from './call-db.js';
import { MIGRATIONS, migrationStatements, schemaMigrationsDdl, toPgPlaceholders } from './schema.js';
import type { CallListItem, OutboxEntry, StoredCall } from './record-row.js';
import * as ops from './sql-ops.js';

/** pg_advisory_xact_lock key serialising migrations across instances sharing a database. */
const MIGRATION_LOCK = 0x766272; // "vbr"

const pgSql = new Map<string, string>();
function pgText(sql: string): string {
  let t = pgSql.get(sql);
  if (t === undefined) {
    t = toPgPlaceholders(sql);
    if (pgSql.size > 500) pgSql.clear();
    pgSql.set(sql, t);
  }
  return t;
}

/** sql-ops' executor over a pool or a client. */
function pgExec(q: pg.Pool | pg.PoolClient): ops.SqlExec {
  return {
    all: async (sql, params = []) => (await q.query(pgText(sql), params)).rows as ops.Row[],
    run: async (sql, params = []) => (await q.query(pgText(sql), params)).rowCount ?? 0,
  };
}

/**
 * SQLSTATE classes that a later attempt can pass: 08 connection, 40 rollback
 * (serialization/deadlock), 53 insufficient resources, 57 operator intervention
 * (admin shutdown, query canceled by statement_timeout), 58 system error. Errors
 * without a SQLSTATE are network failures or pg-client timeouts: transient too.
 * Others (22 data, 23 constraint, 28 auth, 3D unknown database, 42 syntax) are not.
 */
const TRANSIENT_CLASSES = new Set(['08', '40', '53', '57', '58']);

export class PostgresDb implements CallDb {
  readonly dialect = 'postgres' as const;
  readonly #pool: pg.Pool;
  #lastPoolError: string | undefined;

  constructor(url: string, timeoutMs: number) {
    this.#pool = new pg.Pool({
      connectionString: url,
      max: 2,
      connectionTimeoutMillis: timeoutMs,
      query_timeout: timeoutMs,
      statement_timeout: timeoutMs,
      idleTimeoutMillis: 10_000,
      allowExitOnIdle: true,
      application_name: 'voice-bridge',
    });
    // An idle client whose server went away emits here; without a listener it would crash the process.
    this.#pool.on('error', (e) => {
      this.#lastPoolError = e.message;
    });
  }

  get lastPoolError(): string | undefined {
    return this.#lastPoolError;
  }

  async #tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.#pool.connect();
    // pg-pool removes its error listener from a checked-out client: a connection reset
    // (a restart, a failover, a cut network) mid-transaction would otherwise be an
    // unhandled 'error' event and end the process. The failing query rejects anyway.
    let broken = false;
    const onError = (e: Error) => {
      broken = true;
      this.#lastPoolError = e.message;
    };
    client.on('error', onError);
    try {
      await client.query('BEGIN');
      const out = await fn(client);
      await client.query('COMMIT');
      return out;
    } catch (e) {
      try {
        if (!broken) await client.query('ROLLBACK');
      } catch {
        broken = true;
      }
      throw e;
    } finally {
      client.off('error', onError);
      client.release(broken);
    }
  }

  migrate(): Promise<number[]> {
    return this.#tx(async (c) => {
      await c.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      await c.query(schemaMigrationsDdl('postgres'));
      const done = new Set((await c.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map((r) => Number(r.version)));
      const applied: number[] = [];
      for (const m of MIGRATIONS) {
        if (done.has(m.version)) continue;
        for (const sql of migrationStatements(m, 'postgres')) await c.query(sql);
        await c.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, now())', [m.version, m.name]);
        applied.push(m.version);
      }
      return applied;
    });
  }

  async upsert(entries: OutboxEntry[]): Promise<void> {
    await this.#tx((c) => ops.upsertEntries(pgExec(c), entries));
  }

  list(q: DbListQuery): Promise<CallListItem[]> {
    return ops.listCalls(pgExec(this.#pool), q);
  }

  get(callSid: string): Promise<StoredCall | undefined> {
    return ops.getCall(pgExec(this.#pool), callSid);
  }

  registerRun(run: ops.RunInfo, nowIso: string, expiresIso: string): ReturnType<typeof ops.registerRun> {
    return this.#tx((c) => ops.registerRun(pgExec(c), run, nowIso, expiresIso, ops.pidAlive));
  }

  heartbeat(runId: string, nowIso: string, expiresIso: string): Promise<boolean> {
    return ops.heartbeat(pgExec(this.#pool), runId, nowIso, expiresIso);
  }

  stopRun(runId: string, nowIso: string): Promise<void> {
    return ops.stopRun(pgExec(this.#pool), runId, nowIso);
  }

  sweepInterrupted(nowIso: string, selfRunId: string): ReturnType<typeof ops.sweepInterrupted> {
    return this.#tx((c) => ops.sweepInterrupted(pgExec(c), nowIso, selfRunId));
  }

  liveCalls(nowIso: string): Promise<ops.LiveCallRow[]> {
    return ops.liveCalls(pgExec(this.#pool), nowIso);
  }

  liveCall(callSid: string, nowIso: string): Promise<ops.LiveCallRow | undefined> {
    return ops.liveCall(pgExec(this.#pool), callSid, nowIso);
  }

  isTransient(e: unknown): boolean {
    if (e instanceof TypeError || e instanceof RangeError || e instanceof SyntaxError) return false;
    const code = (e as { code?: unknown } | null)?.code;
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return TRANSIENT_CLASSES.has(code.slice(0, 2));
    return true;
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }
}
