/**
 * CallDb over PostgreSQL (node-postgres). A small pool (the writer is one loop;
 * history reads are rare); every connect and statement is bounded by the store's
 * timeout, so a database that hangs fails the attempt instead of stalling the writer.
 */
import pg from 'pg';
import type { CallDb } from './call-db.js';
import { DELETE_TRANSCRIPTS_SQL, GET_CALL_SQL, GET_TRANSCRIPTS_SQL, MIGRATIONS, UPSERT_CALL_SQL, insertTranscriptsSql, listSql, migrationStatements, schemaMigrationsDdl, toPgPlaceholders } from './schema.js';
import { recordToParams, rowToListItem, rowToStoredCall, type CallListItem, type OutboxEntry, type StoredCall } from './record-row.js';

/** pg_advisory_xact_lock key serialising migrations across instances sharing a database. */
const MIGRATION_LOCK = 0x766272; // "vbr"

const UPSERT = toPgPlaceholders(UPSERT_CALL_SQL);
const DELETE_TURNS = toPgPlaceholders(DELETE_TRANSCRIPTS_SQL);
const GET_CALL = toPgPlaceholders(GET_CALL_SQL);
const GET_TURNS = toPgPlaceholders(GET_TRANSCRIPTS_SQL);

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
    let broken = false;
    try {
      await client.query('BEGIN');
      const out = await fn(client);
      await client.query('COMMIT');
      return out;
    } catch (e) {
      try {
        await client.query('ROLLBACK');
      } catch {
        broken = true;
      }
      throw e;
    } finally {
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
    const rows = entries.map(recordToParams);
    await this.#tx(async (c) => {
      for (const { call, transcripts } of rows) {
        await c.query(UPSERT, call);
        await c.query(DELETE_TURNS, [call[0]]);
        if (transcripts.length > 0) await c.query(toPgPlaceholders(insertTranscriptsSql(transcripts.length)), transcripts.flat());
      }
    });
  }

  async list(q: { limit: number; before?: { startedAt: string; callSid: string }; offset?: number }): Promise<CallListItem[]> {
    const params: unknown[] = [];
    if (q.before) params.push(q.before.startedAt, q.before.startedAt, q.before.callSid);
    params.push(q.limit);
    if (q.offset !== undefined) params.push(q.offset);
    const res = await this.#pool.query(toPgPlaceholders(listSql(q.before !== undefined, q.offset !== undefined)), params);
    return res.rows.map((r: Record<string, unknown>) => rowToListItem(r));
  }

  async get(callSid: string): Promise<StoredCall | undefined> {
    const call = await this.#pool.query(GET_CALL, [callSid]);
    const row = call.rows[0] as Record<string, unknown> | undefined;
    if (!row) return undefined;
    const turns = await this.#pool.query(GET_TURNS, [callSid]);
    return rowToStoredCall(row, turns.rows as Record<string, unknown>[]);
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
