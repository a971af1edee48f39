/**
 * openCallStore(): every call, persisted from its start without ever holding up audio.
 *
 *   CallManager 'callStarted' / 'callEnded' ─► record(r)   sync, O(1): queue in the outbox
 *                               │
 *                  outbox.jsonl (batched write + fdatasync, next turn)
 *                               │
 *                  writer loop ─► migrate (once) ─► upsert batches ─► commit offset
 *                       ▲            │ failure: transient → backoff (250 ms … BRIDGE_DB_RETRY_MAX_MS, jittered)
 *                       └────────────┘          permanent → isolate the record, move it to outbox-rejected.jsonl
 *
 * A database that is down or slow only lengthens the outbox; a restart replays
 * it; upserts by CallSid + StreamSid make every record land exactly once.
 *
 * Each record carries its owner (instance, worker slot, process run). The run is
 * registered in bridge_runs before any record is written and heartbeats every
 * BRIDGE_HEARTBEAT_MS; each heartbeat also sweeps: in-progress rows of runs that are
 * stopped or silent for 3 heartbeats become 'interrupted' (sql-ops.ts). The same
 * rows give the live calls of every process (liveCalls / liveCall).
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { CallRecord } from '../call/call-manager.js';
import type { CallDb, CallPage, ListQuery } from './call-db.js';
import { DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT, listFilter } from './call-db.js';
import { Outbox, type OutboxBatch } from './outbox.js';
import { PostgresDb } from './postgres-db.js';
import { decodeCursor, encodeCursor, type OutboxEntry, type RecordOwner, type StoredCall } from './record-row.js';
import type { LiveCallRow, RunInfo } from './sql-ops.js';
import { SqliteDb } from './sqlite-db.js';
import { callerDataErr } from '../log.js';
import { sqliteDriverInfo } from './sqlite-driver.js';
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
  /** SQLite only: the driver in use, and why not better-sqlite3 when it is the fallback. */
  sqliteDriver?: string;
  sqliteFallbackReason?: string;
  /** This process run's id in bridge_runs (null when records are off). */
  runId: string | null;
  /** In-progress rows of dead processes this process closed as interrupted. */
  interruptedClosed: number;
}

export interface CallStore {
  /** Synchronous and O(1): hands the record to the durable outbox. Never throws. */
  record(r: CallRecord): void;
  /**
   * Newest first. `before`: cursor from a previous page; or `page` (1-based). Filters
   * (`q`, `agent`, `profile`, `endReason`) combine with AND and with either paging;
   * a cursor from a filtered page continues with the same filters. Bad values: RangeError.
   */
  list(q?: ListQuery): Promise<CallPage>;
  get(callSid: string): Promise<StoredCall | undefined>;
  /** Makes queued records durable, then waits (bounded) until the database has them all. True when the outbox is empty. */
  flush(timeoutMs: number): Promise<boolean>;
  /** Stops the writer (what is in the outbox stays for the next start), marks this run stopped, closes the database. */
  close(): Promise<void>;
  stats(): CallStoreStats;
  /** Live calls of every process sharing the database (in-progress rows of live runs). Throws STORE_UNAVAILABLE. */
  liveCalls(): Promise<LiveCallRow[]>;
  /** A call's live row and its owner's route, when some live process carries it. */
  liveCall(callSid: string): Promise<LiveCallRow | undefined>;
  /** This process run (undefined when records are off). */
  readonly run: RunInfo | undefined;
  /** Sets where other instances reach this process (known once it listens); re-registers the run. */
  setInternalUrl(url: string): void;
}

/** Who this process is, for records, heartbeats and routing. */
export interface StoreIdentity {
  instanceId: string;
  /** Worker slot (-1 without --workers). */
  worker: number;
  routeKey: string;
  internalUrl: string | null;
}

export interface OpenCallStoreOptions {
  /** Outbox file name under the data dir; default `outbox`, or `outbox-w<slot>` for a worker of `--workers N`. */
  outboxName?: string;
  /** Default: instance = host name, no worker, route key = instance, no internal URL. */
  identity?: StoreIdentity;
  log?: (level: 'info' | 'warn' | 'error' | 'debug', msg: string, fields?: Record<string, unknown>) => void;
}

/** Upserts per database transaction. */
const BATCH = 50;

/** The store for a config (anything with the raw env: a Config, or { env }). */
export async function openCallStore(config: { env: Readonly<Record<string, string | undefined>> }, options: OpenCallStoreOptions = {}): Promise<CallStore> {
  const sc = loadStoreConfig(config.env);
  if (!sc.enabled) return disabledStore();
  const db: CallDb = sc.kind === 'postgres' ? new PostgresDb(sc.databaseUrl!, sc.dbTimeoutMs) : new SqliteDb(sc.sqlitePath, sc.dbTimeoutMs);
  const id = options.identity ?? { instanceId: hostname(), worker: -1, routeKey: hostname(), internalUrl: null };
  let outbox: Outbox;
  let adopted: { file: string; records: number }[];
  try {
    ({ outbox, adopted } = await Outbox.openOwned(sc.dataDir, options.outboxName ?? (id.worker >= 0 ? `outbox-w${id.worker}` : 'outbox')));
  } catch (e) {
    await db.close().catch(() => undefined);
    throw new StoreError(StoreErrorCodes.STORE_OUTBOX, `cannot open the call-record outbox in ${sc.dataDir}: ${(e as Error).message}`, { cause: e });
  }
  const run: RunInfo = {
    runId: randomUUID(),
    instanceId: id.instanceId,
    worker: id.worker,
    host: hostname(),
    pid: process.pid,
    routeKey: id.routeKey,
    internalUrl: id.internalUrl,
    startedAt: new Date().toISOString(),
    processStartedAt: new Date(Date.now() - process.uptime() * 1000).toISOString(),
  };
  const store = new DurableCallStore(sc, db, outbox, run, options.log);
  for (const a of adopted) options.log?.('info', 'adopted an orphaned call-record outbox (its process is gone); replaying its records', { file: a.file, records: a.records });
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
      runId: null,
      interruptedClosed: 0,
    }),
    liveCalls: async () => [],
    liveCall: async () => undefined,
    run: undefined,
    setInternalUrl: () => undefined,
  };
}

class DurableCallStore implements CallStore {
  readonly #sc: StoreConfig;
  readonly #db: CallDb;
  readonly #outbox: Outbox;
  readonly run: RunInfo;
  readonly #owner: RecordOwner;
  #registered = false;
  #heartbeatTimer: NodeJS.Timeout | undefined;
  #beating: Promise<void> | undefined;
  #interruptedClosed = 0;
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

  constructor(sc: StoreConfig, db: CallDb, outbox: Outbox, run: RunInfo, log: OpenCallStoreOptions['log']) {
    this.#sc = sc;
    this.#db = db;
    this.#outbox = outbox;
    this.run = run;
    this.#owner = { instance: run.instanceId, worker: run.worker, run: run.runId };
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
    if (this.#sc.kind === 'sqlite') {
      const d = sqliteDriverInfo();
      if (d.fallbackReason) this.#log('warn', 'SQLite through the WASM fallback (slower; no WAL): records are kept all the same', { reason: d.fallbackReason });
    }
    this.#heartbeatTimer = setInterval(() => void this.#beat(), this.#sc.heartbeatMs);
    this.#heartbeatTimer.unref();
    // A first sweep right away: a restart closes what its predecessor left in progress.
    void this.#beat();
  }

  /** Schema, then this run's registration: no record is written before its owner is known to the database. */
  async #migrate(): Promise<void> {
    if (!this.#migrated) {
      const applied = await this.#db.migrate();
      this.#migrated = true;
      if (applied.length > 0) this.#log('info', 'call-record schema migrated', { backend: this.#sc.kind, applied });
    }
    if (!this.#registered) await this.#register();
    this.#healthy = true;
    this.#c.consecutive = 0;
  }

  async #register(): Promise<void> {
    const now = Date.now();
    const r = await this.#db.registerRun(this.run, new Date(now).toISOString(), this.#expiry(now));
    this.#registered = true;
    if (r.superseded > 0) this.#log('info', 'took over from a previous run of this process (it is gone); its calls in progress are closed as interrupted', { runs: r.superseded });
    for (const n of r.namesakes)
      this.#log('error', 'another live process uses the same BRIDGE_INSTANCE_ID and worker: give each instance its own id', { code: StoreErrorCodes.STORE_CONFIG, instanceId: this.run.instanceId, worker: this.run.worker, otherHost: n.host, otherPid: n.pid });
  }

  /** Heartbeat, then sweep dead processes' calls. Never overlaps itself; failures wait for the next beat. */
  #beat(): Promise<void> {
    if (this.#beating || this.#closing) return this.#beating ?? Promise.resolve();
    this.#beating = (async () => {
      try {
        if (!this.#migrated || !this.#registered) await this.#migrate();
        const now = Date.now();
        if (!(await this.#db.heartbeat(this.run.runId, new Date(now).toISOString(), this.#expiry(now)))) await this.#register();
        const closed = await this.#db.sweepInterrupted(new Date().toISOString(), this.run.runId);
        if (closed.length > 0) {
          this.#interruptedClosed += closed.length;
          this.#log('warn', 'closed calls of a process that stopped without ending them (crash, kill -9, lost host) as interrupted', { calls: closed.length, callSids: closed.slice(0, 20).map((c) => c.callSid) });
        }
      } catch (e) {
        this.#log('debug', 'heartbeat failed; next attempt at the next beat', { err: e });
      } finally {
        this.#beating = undefined;
      }
    })();
    return this.#beating;
  }

  setInternalUrl(url: string): void {
    if (this.run.internalUrl === url) return;
    this.run.internalUrl = url;
    this.#registered = false;
    void (this.#beating ?? Promise.resolve()).then(() => this.#beat());
  }

  /** Forces a heartbeat and sweep now (tests; also on start). */
  sweepNow(): Promise<void> {
    return this.#beat();
  }

  record(r: CallRecord): void {
    if (!r || typeof r.callSid !== 'string' || r.callSid.length === 0) {
      this.#c.skipped++;
      return;
    }
    this.#outbox.append({ v: 1, recordedAt: new Date().toISOString(), record: r, owner: this.#owner });
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
      this.#log('warn', msg, { code: StoreErrorCodes.STORE_UNAVAILABLE, target: this.#target, attempts: this.#c.consecutive, outboxDepth: this.#outbox.depth, err: e });
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
        if (!this.#migrated || !this.#registered) await this.#migrate();
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
        await this.#reject(JSON.stringify(batch.entries[0]), (e as Error).message, e);
        return;
      }
    }
    for (const entry of batch.entries) {
      try {
        await this.#db.upsert([entry]);
        this.#c.written++;
      } catch (e) {
        if (this.#db.isTransient(e)) throw e; // the batch is retried whole; upserts make that harmless
        await this.#reject(JSON.stringify(entry), (e as Error).message, e);
      }
    }
  }

  async #reject(line: string, reason: string, e?: unknown): Promise<void> {
    this.#c.rejected++;
    this.#c.lastError = reason;
    // A database's refusal of one record may quote the record's values: its message only under `pii`.
    this.#log('error', 'call record refused by the database; kept in the rejected file', { code: StoreErrorCodes.STORE_REJECTED, path: this.#outbox.rejectedPath, ...(e === undefined ? { reason } : callerDataErr(e)) });
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
    const filter = listFilter(q);
    const calls = await this.#read(() => this.#db.list({ limit: limit + 1, before, offset, ...(filter ? { filter } : {}) }));
    const more = calls.length > limit;
    if (more) calls.length = limit;
    return { calls, next: more ? encodeCursor(calls[calls.length - 1]!) : null };
  }

  async get(callSid: string): Promise<StoredCall | undefined> {
    return this.#read(() => this.#db.get(callSid));
  }

  /** Without another heartbeat, this run counts as dead 3 of its own heartbeats from now. */
  #expiry(now: number): string {
    return new Date(now + 3 * this.#sc.heartbeatMs).toISOString();
  }

  liveCalls(): Promise<LiveCallRow[]> {
    return this.#read(() => this.#db.liveCalls(new Date().toISOString()));
  }

  liveCall(callSid: string): Promise<LiveCallRow | undefined> {
    return this.#read(() => this.#db.liveCall(callSid, new Date().toISOString()));
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
    clearInterval(this.#heartbeatTimer);
    this.#poke();
    // The loop ends after its current attempt, which the DB timeout bounds.
    await this.#loop;
    await this.#beating;
    const lost = await this.#outbox.close();
    if (lost > 0) this.#log('error', 'call records not made durable at close', { code: StoreErrorCodes.STORE_OUTBOX, records: lost });
    // Stopped: a call still in progress in the database (its end is in the outbox, for
    // the next start) is closed as interrupted by the next sweep, and the real end wins later.
    if (this.#registered) await this.#db.stopRun(this.run.runId, new Date().toISOString()).catch(() => undefined);
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
      ...(this.#sc.kind === 'sqlite' ? { sqliteDriver: sqliteDriverInfo().driver, ...(sqliteDriverInfo().fallbackReason ? { sqliteFallbackReason: sqliteDriverInfo().fallbackReason } : {}) } : {}),
      runId: this.run.runId,
      interruptedClosed: this.#interruptedClosed,
    };
  }
}
