/**
 * CallDb over SQLite: forwards to a worker thread that owns the connection
 * (sqlite-worker.ts), so SQLite's synchronous commits and fsyncs never run on the
 * event loop. Every request is bounded by the store's timeout; a worker that dies
 * is replaced on the next request. A worker that is slow (a disk that stalls) is
 * left to finish, never terminated mid-call: stopping a thread inside a native
 * better-sqlite3 call aborts the whole process (V8 fatal error in ThrowSqliteError,
 * seen in this project's tests). Its later requests queue behind it and time out;
 * the records wait in the outbox meanwhile.
 */
import { Worker } from 'node:worker_threads';
import type { CallDb, DbListQuery } from './call-db.js';
import type { CallListItem, OutboxEntry, StoredCall } from './record-row.js';
import type { LiveCallRow, RunInfo } from './sql-ops.js';
import type { SqliteOp, SqliteResponse } from './sqlite-worker.js';
import { isTransientSqliteError } from './sqlite-engine.js';

const BOOT_TIMEOUT_MS = 15_000;

class SqliteWorkerError extends Error {
  constructor(
    message: string,
    readonly transient: boolean,
  ) {
    super(message);
    this.name = 'SqliteError';
  }
}

/** Starts the worker from the compiled .js, or from the .ts source (tests, tsx) through tsx's loader. */
function spawnWorker(): Worker {
  const here = import.meta.url;
  if (here.endsWith('.ts')) {
    const url = new URL('./sqlite-worker.ts', here).href;
    const boot = `import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(url)}); });`;
    return new Worker(boot, { eval: true });
  }
  return new Worker(new URL('./sqlite-worker.js', here));
}

export class SqliteDb implements CallDb {
  readonly dialect = 'sqlite' as const;
  readonly #path: string;
  readonly #timeoutMs: number;
  #worker: Worker | undefined;
  #opened: Promise<unknown> | undefined;
  #nextId = 1;
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  #closed = false;
  #driver: string | undefined;
  /** Workers with a request past its timeout (still inside SQLite). */
  readonly #stuck = new WeakSet<Worker>();

  constructor(path: string, timeoutMs: number) {
    this.#path = path;
    this.#timeoutMs = timeoutMs;
  }

  #ensureWorker(): Promise<unknown> {
    if (this.#worker && this.#opened) return this.#opened;
    const w = spawnWorker();
    w.unref();
    this.#worker = w;
    w.on('message', (res: SqliteResponse) => {
      const p = this.#pending.get(res.id);
      this.#pending.delete(res.id);
      // Any answer with nothing else pending: the worker is idle again (a late answer to a timed-out call included).
      if (this.#pending.size === 0) this.#stuck.delete(w);
      if (!p) return;
      clearTimeout(p.timer);
      if (res.ok) p.resolve(res.value);
      else p.reject(new SqliteWorkerError(res.message, res.transient));
    });
    const gone = (why: string) => {
      if (this.#worker !== w) return;
      this.#worker = undefined;
      this.#opened = undefined;
      for (const [id, p] of this.#pending) {
        this.#pending.delete(id);
        clearTimeout(p.timer);
        p.reject(new SqliteWorkerError(`SQLite worker ${why}`, true));
      }
    };
    w.on('error', (e) => gone(`failed: ${e.message}`));
    w.on('exit', (code) => gone(`exited (${code})`));
    // Starting the thread and compiling SQLite's wasm is not the database being slow: a longer bound.
    // SQLite's own wait for a lock stays under the request's bound, so a busy file fails as busy, not as a hung worker.
    this.#opened = this.#send(w, 'open', [this.#path, Math.min(2000, Math.floor(this.#timeoutMs / 2))], Math.max(this.#timeoutMs, BOOT_TIMEOUT_MS));
    this.#opened.then(
      (v) => (this.#driver = (v as { driver?: string } | undefined)?.driver),
      () => undefined,
    );
    this.#opened.catch(() => {
      if (this.#worker === w && !this.#stuck.has(w)) {
        this.#worker = undefined;
        this.#opened = undefined;
        void w.terminate(); // idle: its open failed and returned
      }
    });
    return this.#opened;
  }

  #send(w: Worker, op: SqliteOp, args: unknown[], timeoutMs = this.#timeoutMs): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const id = this.#nextId++;
      const timer = setTimeout(() => {
        if (!this.#pending.delete(id)) return;
        reject(new SqliteWorkerError(`SQLite ${op} timed out after ${timeoutMs} ms`, true));
        this.#stuck.add(w); // left to finish (see above)
      }, timeoutMs);
      timer.unref();
      this.#pending.set(id, { resolve, reject, timer });
      w.postMessage({ id, op, args });
    });
  }

  async #call(op: SqliteOp, args: unknown[]): Promise<unknown> {
    if (this.#closed) throw new SqliteWorkerError('SQLite store closed', false);
    await this.#ensureWorker();
    return this.#send(this.#worker!, op, args);
  }

  async migrate(): Promise<number[]> {
    return (await this.#call('migrate', [])) as number[];
  }

  async upsert(entries: OutboxEntry[]): Promise<void> {
    await this.#call('upsert', [entries]);
  }

  async list(q: DbListQuery): Promise<CallListItem[]> {
    return (await this.#call('list', [q])) as CallListItem[];
  }

  async get(callSid: string): Promise<StoredCall | undefined> {
    return ((await this.#call('get', [callSid])) as StoredCall | null | undefined) ?? undefined;
  }

  async registerRun(run: RunInfo, nowIso: string, expiresIso: string): Promise<{ superseded: number; namesakes: { host: string; pid: number }[] }> {
    return (await this.#call('registerRun', [run, nowIso, expiresIso])) as { superseded: number; namesakes: { host: string; pid: number }[] };
  }

  async heartbeat(runId: string, nowIso: string, expiresIso: string): Promise<boolean> {
    return (await this.#call('heartbeat', [runId, nowIso, expiresIso])) as boolean;
  }

  async stopRun(runId: string, nowIso: string): Promise<void> {
    await this.#call('stopRun', [runId, nowIso]);
  }

  async sweepInterrupted(nowIso: string, selfRunId: string): Promise<{ callSid: string; streamSid: string }[]> {
    return (await this.#call('sweepInterrupted', [nowIso, selfRunId])) as { callSid: string; streamSid: string }[];
  }

  async liveCalls(nowIso: string): Promise<LiveCallRow[]> {
    return (await this.#call('liveCalls', [nowIso])) as LiveCallRow[];
  }

  async liveCall(callSid: string, nowIso: string): Promise<LiveCallRow | undefined> {
    return ((await this.#call('liveCall', [callSid, nowIso])) as LiveCallRow | null | undefined) ?? undefined;
  }

  /** The driver the worker opened (better-sqlite3, or the WASM fallback); undefined before the first open. */
  get driver(): string | undefined {
    return this.#driver;
  }

  isTransient(e: unknown): boolean {
    if (e instanceof SqliteWorkerError) return e.transient;
    return isTransientSqliteError(e);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    const w = this.#worker;
    if (w && this.#opened) {
      try {
        await this.#send(w, 'close', []);
      } catch {
        // closing anyway
      }
    }
    this.#closed = true;
    this.#worker = undefined;
    // A worker still inside a call is only unref'd (it ends with the process), never terminated.
    if (w && !this.#stuck.has(w)) await w.terminate();
  }
}
