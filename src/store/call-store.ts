/**
 * openCallStore(): every finished call, persisted without ever holding up audio.
 *
 *   CallManager 'callEnded' ─► record(r)      sync, O(1): queue in the outbox
 *                               │
 *                  outbox.jsonl (batched write + fdatasync, next turn)
 *                               │
 *                  writer loop ─► migrate (once) ─► upsert batches ─► commit offset
 *                       ▲            │ failure: transient → backoff (250 ms … BRIDGE_DB_RETRY_MAX_MS, jittered)
 *                       └────────────┘          permanent → isolate the record, move it to outbox-rejected.jsonl
 *
 * A database that is down or slow only lengthens the outbox; a restart replays
 * it; upserts by CallSid make every record land exactly once.
 */
import type { CallRecord } from '../call/call-manager.js';
import type { CallDb, CallPage, ListQuery } from './call-db.js';
import { DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT } from './call-db.js';
import { Outbox, type OutboxBatch } from './outbox.js';
import { PostgresDb } from './postgres-db.js';
import { decodeCursor, encodeCursor, type OutboxEntry, type StoredCall } from './record-row.js';
import { SqliteDb } from './sqlite-db.js';
import { loadStoreConfig, redactUrl, type StoreConfig } from './store-config.js';
import { StoreError, StoreErrorCodes } from './store-error.js';

export interface CallStoreStats {
  backend: 'sqlite' | 'postgres' | 'off';
  /** Where records go: the SQLite file, or the PostgreSQL URL without its password. */
  target: string | null;
  /** Whether the schema is migrated and the last database operation succeeded. */
  dbReady: boolean;
  /** Records accepted by record() and not yet in the database. */
  outboxDepth: number;
  /** Of those, records not yet durable in the outbox file. */
  outboxUnsynced: number;
  outboxBytes: number;
  /** Records written to the database since start (replays included). */
  written: number;
  /** Failed database attempts (each retried with backoff). */
  writeFailures: number;
  /** Failed outbox file writes (each retried). */
  outboxWriteFailures: number;
  /** Records the database refused for good (kept in outbox-rejected.jsonl). */
  rejected: number;
  /** Records lost: outbox full in memory, or record() after close(). */
  dropped: number;
  /** Records without a CallSid (nothing to key them by; never persisted). */
  skipped: number;
  /** Consecutive failures of the current streak (0 when healthy). */
  consecutiveFailures: number;
  lastError: string | null;
  lastWriteAt: string | null;
}

export interface CallStore {
  /** Synchronous and O(1): hands the record to the durable outbox. Never throws. */
  record(r: CallRecord): void;
  /** Newest first. `before`: cursor from a previous page; or `page` (1-based). */
  list(q?: ListQuery): Promise<CallPage>;
  get(callSid: string): Promise<StoredCall | undefined>;
  /** Makes queued records durable, then waits (bounded) until the database has them all. True when the outbox is empty. */
  flush(timeoutMs: number): Promise<boolean>;
  /** Stops the writer (what is in the outbox stays for the next start) and closes the database. */
  close(): Promise<void>;
  stats(): CallStoreStats;
}

export interface OpenCallStoreOptions {
  /** Outbox file name under the data dir; give each process of a `--workers N` group its own stable one (e.g. `outbox-w2`). */
  outboxName?: string;
  log?: (level: 'info' | 'warn' | 'error' | 'debug', msg: string, fields?: Record<string, unknown>) => void;
}

/** Upserts per database transaction. */
const BATCH = 50;

/** The store for a config (anything with the raw env: a Config, or { env }). */
export async function openCallStore(config: { env: Readonly<Record<string, string | undefined>> }, options: OpenCallStoreOptions = {}): Promise<CallStore> {
  const sc = loadStoreConfig(config.env);
  if (!sc.enabled) return disabledStore();
  const db: CallDb = sc.kind === 'postgres' ? new PostgresDb(sc.databaseUrl!, sc.dbTimeoutMs) : new SqliteDb(sc.sqlitePath, sc.dbTimeoutMs);
  let outbox: Outbox;
  try {
    outbox = await Outbox.open(sc.dataDir, options.outboxName ?? 'outbox');
  } catch (e) {
    await db.close().catch(() => undefined);
    throw new StoreError(StoreErrorCodes.STORE_OUTBOX, `cannot open the call-record outbox in ${sc.dataDir}: ${(e as Error).message}`, { cause: e });
  }
  const store = new DurableCallStore(sc, db, outbox, options.log);
  await store.start();
  return store;
}

function disabledStore(): CallStore {
  let skipped = 0;
  return {
    record: () => void skipped++,
    list: async () => ({ calls: [], next: null }),
    get: async () => undefined,
    flush: async () => true,
    close: async () => undefined,
    stats: () => ({
      backend: 'off',
      target: null,
      dbReady: false,
      outboxDepth: 0,
      outboxUnsynced: 0,
      outboxBytes: 0,
      written: 0,
      writeFailures: 0,
      outboxWriteFailures: 0,
      rejected: 0,
      dropped: skipped,
      skipped: 0,
      consecutiveFailures: 0,
      lastError: null,
      lastWriteAt: null,
    }),
  };
}

class DurableCallStore implements CallStore {
  readonly #sc: StoreConfig;
  readonly #db: CallDb;
  readonly #outbox: Outbox;
  readonly #log: NonNullable<OpenCallStoreOptions['log']>;
  #migrated = false;
  #healthy = false;
  #closing = false;
  #loop: Promise<void> | undefined;
  /** Wakes the writer: new durable records, a flush, or close. */
  #wake: (() => void) | undefined;
  #sleepTimer: NodeJS.Timeout | undefined;
  /** Resolvers waiting for the outbox to empty (flush). */
  #drained = new Set<() => void>();
  #c = { written: 0, writeFailures: 0, rejected: 0, skipped: 0, consecutive: 0, lastError: null as string | null, lastWriteAt: null as string | null };

  constructor(sc: StoreConfig, db: CallDb, outbox: Outbox, log: OpenCallStoreOptions['log']) {
    this.#sc = sc;
    this.#db = db;
    this.#outbox = outbox;
    this.#log = log ?? (() => undefined);
    outbox.onDurable = () => this.#poke();
  }

  get #target(): string {
    return this.#sc.kind === 'postgres' ? redactUrl(this.#sc.databaseUrl!) : this.#sc.sqlitePath;
  }

  /**
   * First migration attempt, bounded by the DB timeout: a permanent failure (bad
   * credentials, unknown database, SQL error) stops start-up with STORE_CONFIG; a
   * database that is merely down lets the bridge start and the writer keeps trying.
   */
  async start(): Promise<void> {
    if (this.#outbox.depth > 0) this.#log('info', 'call-record outbox has records from a previous run; replaying', { records: this.#outbox.depth, path: this.#outbox.path });
    if (this.#outbox.counters.tornBytesDiscarded > 0) this.#log('warn', 'call-record outbox ended in a torn line (crash mid-write); dropped it', { bytes: this.#outbox.counters.tornBytesDiscarded });
    try {
      await this.#migrate();
    } catch (e) {
      if (!this.#db.isTransient(e)) {
        await this.#outbox.close().catch(() => undefined);
        await this.#db.close().catch(() => undefined);
        throw new StoreError(StoreErrorCodes.STORE_CONFIG, `call-record database ${this.#target} refused the schema migration: ${(e as Error).message}`, { cause: e });
      }
      this.#failed(e, 'call-record database unreachable at start; records wait in the outbox');
    }
    this.#loop = this.#run();
  }

  async #migrate(): Promise<void> {
    const applied = await this.#db.migrate();
    this.#migrated = true;
    this.#healthy = true;
    this.#c.consecutive = 0;
    if (applied.length > 0) this.#log('info', 'call-record schema migrated', { backend: this.#sc.kind, applied });
  }

  record(r: CallRecord): void {
    if (!r || typeof r.callSid !== 'string' || r.callSid.length === 0) {
      this.#c.skipped++;
      return;
    }
    this.#outbox.append({ v: 1, recordedAt: new Date().toISOString(), record: r });
  }

  #poke(): void {
    const w = this.#wake;
    this.#wake = undefined;
    if (this.#sleepTimer !== undefined) {
      clearTimeout(this.#sleepTimer);
      this.#sleepTimer = undefined;
    }
    w?.();
  }

  /** Waits for a poke, or `ms` (backoff) when given. */
  #idle(ms?: number): Promise<void> {
    return new Promise((resolve) => {
      this.#wake = resolve;
      if (ms !== undefined) {
        this.#sleepTimer = setTimeout(() => {
          this.#sleepTimer = undefined;
          this.#wake = undefined;
          resolve();
        }, ms);
        this.#sleepTimer.unref();
      }
    });
  }

  #failed(e: unknown, msg: string): void {
    this.#healthy = false;
    this.#c.writeFailures++;
    this.#c.consecutive++;
    this.#c.lastError = e instanceof Error ? e.message : String(e);
    // First failure of a streak at warn, then one line per 10 attempts.
    if (this.#c.consecutive === 1 || this.#c.consecutive % 10 === 0)
      this.#log('warn', msg, { code: StoreErrorCodes.STORE_UNAVAILABLE, target: this.#target, attempts: this.#c.consecutive, outboxDepth: this.#outbox.depth, error: this.#c.lastError });
  }

  #backoffMs(): number {
    const exp = Math.min(this.#sc.retryMaxMs, this.#sc.retryBaseMs * 2 ** Math.min(this.#c.consecutive - 1, 20));
    return Math.round(exp / 2 + (Math.random() * exp) / 2); // "equal jitter": several bridges do not retry in step
  }

  async #run(): Promise<void> {
    while (!this.#closing) {
      if (this.#outbox.uncommittedBytes === 0) {
        if (this.#outbox.depth === 0) for (const done of this.#drained) done();
        await this.#idle();
        continue;
      }
      try {
        if (!this.#migrated) await this.#migrate();
        const batch = await this.#outbox.readBatch(BATCH);
        if (!batch) continue;
        await this.#writeBatch(batch);
        this.#outbox.commit(batch);
        if (!this.#healthy && this.#c.consecutive > 0) this.#log('info', 'call-record database back; outbox draining', { target: this.#target, outboxDepth: this.#outbox.depth });
        this.#healthy = true;
        this.#c.consecutive = 0;
        this.#c.lastWriteAt = new Date().toISOString();
      } catch (e) {
        if (this.#closing) break;
        this.#failed(e, 'call-record write failed; will retry');
        await this.#idle(this.#backoffMs());
      }
    }
  }

  /** Upserts a batch; a permanent failure is narrowed down to the records that cause it, which are set aside. */
  async #writeBatch(batch: OutboxBatch): Promise<void> {
    for (const line of batch.bad) await this.#reject(line, 'not a call-record outbox entry');
    if (batch.entries.length === 0) return;
    try {
      await this.#db.upsert(batch.entries);
      this.#c.written += batch.entries.length;
      return;
    } catch (e) {
      if (this.#db.isTransient(e)) throw e;
      if (batch.entries.length === 1) {
        await this.#reject(JSON.stringify(batch.entries[0]), (e as Error).message);
        return;
      }
    }
    for (const entry of batch.entries) {
      try {
        await this.#db.upsert([entry]);
        this.#c.written++;
      } catch (e) {
        if (this.#db.isTransient(e)) throw e; // the batch is retried whole; upserts make that harmless
        await this.#reject(JSON.stringify(entry), (e as Error).message);
      }
    }
  }

  async #reject(line: string, reason: string): Promise<void> {
    this.#c.rejected++;
    this.#c.lastError = reason;
    this.#log('error', 'call record refused by the database; kept in the rejected file', { code: StoreErrorCodes.STORE_REJECTED, path: this.#outbox.rejectedPath, reason });
    await this.#outbox.reject(line, reason);
  }

  async list(q: ListQuery = {}): Promise<CallPage> {
    const limit = q.limit ?? DEFAULT_LIST_LIMIT;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) throw new RangeError(`limit must be an integer from 1 to ${MAX_LIST_LIMIT}`);
    let before: { startedAt: string; callSid: string } | undefined;
    let offset: number | undefined;
    if (q.before !== undefined) {
      before = decodeCursor(q.before);
      if (!before) throw new RangeError('before: not a cursor returned by a previous page');
    } else if (q.page !== undefined) {
      if (!Number.isInteger(q.page) || q.page < 1 || q.page > 1_000_000) throw new RangeError('page must be an integer from 1');
      offset = (q.page - 1) * limit;
    }
    const calls = await this.#read(() => this.#db.list({ limit: limit + 1, before, offset }));
    const more = calls.length > limit;
    if (more) calls.length = limit;
    return { calls, next: more ? encodeCursor(calls[calls.length - 1]!) : null };
  }

  async get(callSid: string): Promise<StoredCall | undefined> {
    return this.#read(() => this.#db.get(callSid));
  }

  async #read<T>(fn: () => Promise<T>): Promise<T> {
    try {
      if (!this.#migrated) await this.#migrate();
      return await fn();
    } catch (e) {
      throw new StoreError(StoreErrorCodes.STORE_UNAVAILABLE, `call-record database ${this.#target}: ${(e as Error).message}`, { cause: e });
    }
  }

  async flush(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    const bounded = <T>(p: Promise<T>, fallback: T): Promise<T> => {
      let t: NodeJS.Timeout | undefined;
      return Promise.race([p, new Promise<T>((r) => (t = setTimeout(() => r(fallback), Math.max(0, deadline - Date.now()))))]).finally(() => clearTimeout(t));
    };
    await bounded(this.#outbox.sync(), false);
    if (this.#outbox.depth === 0) return true;
    let done!: () => void;
    const drained = new Promise<void>((r) => (done = r));
    this.#drained.add(done);
    try {
      this.#poke(); // skip a backoff in progress: try now
      await bounded(drained.then(() => true), false);
    } finally {
      this.#drained.delete(done);
    }
    if (this.#outbox.depth === 0) await bounded(this.#outbox.sync(), false); // the emptied file's truncation
    return this.#outbox.depth === 0;
  }

  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    this.#poke();
    // The loop ends after its current attempt, which the DB timeout bounds.
    await this.#loop;
    const lost = await this.#outbox.close();
    if (lost > 0) this.#log('error', 'call records not made durable at close', { code: StoreErrorCodes.STORE_OUTBOX, records: lost });
    await this.#db.close().catch(() => undefined);
  }

  stats(): CallStoreStats {
    const o = this.#outbox;
    return {
      backend: this.#sc.kind,
      target: this.#target,
      dbReady: this.#migrated && this.#healthy,
      outboxDepth: o.depth,
      outboxUnsynced: o.queued,
      outboxBytes: o.bytes,
      written: this.#c.written,
      writeFailures: this.#c.writeFailures,
      outboxWriteFailures: o.counters.writeFailures,
      rejected: this.#c.rejected,
      dropped: o.counters.dropped,
      skipped: this.#c.skipped,
      consecutiveFailures: this.#c.consecutive,
      lastError: this.#c.lastError ?? o.counters.lastError,
      lastWriteAt: this.#c.lastWriteAt,
    };
  }
}
