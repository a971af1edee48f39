/**
 * The SQLite driver under the store, behind four calls (exec, run, all, get).
 *
 * - `better-sqlite3` (the default; a native addon, built from source when no
 *   prebuilt binary can be fetched): real POSIX locks, so several processes (the
 *   workers of `--workers N`, a restarted process while the old one's lock is
 *   released) share one file safely, and WAL mode: readers never block the writer,
 *   a commit appends to the log (~0.6 ms per 50-row transaction here, against
 *   9.4 ms for the WASM driver).
 * - `node-sqlite3-wasm` (the fallback, when better-sqlite3 is not installed or does
 *   not load on this platform): SQLite compiled to WebAssembly, rollback journal,
 *   locking with a `<file>.lock` directory that a killed process leaves behind (so
 *   a lock older than STALE_LOCK_MS is broken). Slower, but no record is lost: the
 *   outbox holds records until the database takes them, whichever driver runs.
 *
 * Which one runs, and why the fallback, is reported by `sqliteDriverInfo()` (logged
 * at start, shown in the store's stats on /readyz).
 */
import { mkdirSync, rmdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { rawValue } from '../env-schema.js';

export type SqlValue = string | number | boolean | null;
export type Row = Record<string, unknown>;

export interface SqlDriver {
  readonly name: 'better-sqlite3' | 'node-sqlite3-wasm';
  exec(sql: string): void;
  /** Runs one statement; returns the number of rows it changed. */
  run(sql: string, params?: SqlValue[]): number;
  all(sql: string, params?: SqlValue[]): Row[];
  get(sql: string, params?: SqlValue[]): Row | undefined;
  /** Called before each write transaction (the WASM driver breaks a stale lock here). */
  beforeTransaction(): void;
  close(): void;
}

export interface SqliteDriverInfo {
  driver: SqlDriver['name'];
  /** Why better-sqlite3 is not used (undefined when it is). */
  fallbackReason?: string;
}

export const STALE_LOCK_MS = 30_000;

const require = createRequire(import.meta.url);

type BetterDatabase = {
  prepare(sql: string): { run(...p: unknown[]): { changes: number }; all(...p: unknown[]): unknown[]; get(...p: unknown[]): unknown; reader: boolean };
  exec(sql: string): void;
  pragma(p: string, o?: { simple?: boolean }): unknown;
  close(): void;
  open: boolean;
};
type BetterCtor = new (path: string, options?: { fileMustExist?: boolean; timeout?: number }) => BetterDatabase;

let better: BetterCtor | undefined;
let betterError: string | undefined;
let probed = false;

function loadBetter(): BetterCtor | undefined {
  if (!probed) {
    probed = true;
    if (rawValue(process.env, 'BRIDGE_SQLITE_DRIVER') === 'wasm') betterError = 'BRIDGE_SQLITE_DRIVER=wasm';
    else {
      try {
        better = require('better-sqlite3') as BetterCtor;
        // The addon loads lazily: open an in-memory database to prove it works here.
        new better(':memory:').close();
      } catch (e) {
        better = undefined;
        betterError = `better-sqlite3 did not load: ${(e as Error).message.split('\n')[0]}`;
      }
    }
  }
  return better;
}

export function sqliteDriverInfo(): SqliteDriverInfo {
  loadBetter();
  return better ? { driver: 'better-sqlite3' } : { driver: 'node-sqlite3-wasm', fallbackReason: betterError };
}

// better-sqlite3 binds numbers, strings, bigints, buffers and null; SQLite has no boolean.
const bindable = (params: SqlValue[]): unknown[] => params.map((v) => (v === true ? 1 : v === false ? 0 : v));

class BetterDriver implements SqlDriver {
  readonly name = 'better-sqlite3' as const;
  readonly #db: BetterDatabase;
  readonly #stmts = new Map<string, ReturnType<BetterDatabase['prepare']>>();

  constructor(Ctor: BetterCtor, path: string, fileMustExist: boolean, busyTimeoutMs: number) {
    this.#db = new Ctor(path, { fileMustExist, timeout: busyTimeoutMs });
    // WAL: readers and the writer do not block each other, across processes. FULL: a
    // committed transaction survives a power cut (the outbox is truncated once the
    // database has its records, so the database's commit must be durable by itself).
    if (!fileMustExist) this.#db.pragma('journal_mode = WAL');
    this.#db.pragma('synchronous = FULL');
  }

  #stmt(sql: string) {
    let s = this.#stmts.get(sql);
    if (!s) {
      s = this.#db.prepare(sql);
      if (this.#stmts.size > 200) this.#stmts.clear();
      this.#stmts.set(sql, s);
    }
    return s;
  }

  exec(sql: string): void {
    this.#db.exec(sql);
  }
  run(sql: string, params: SqlValue[] = []): number {
    return this.#stmt(sql).run(...bindable(params)).changes;
  }
  all(sql: string, params: SqlValue[] = []): Row[] {
    return this.#stmt(sql).all(...bindable(params)) as Row[];
  }
  get(sql: string, params: SqlValue[] = []): Row | undefined {
    return this.#stmt(sql).get(...bindable(params)) as Row | undefined;
  }
  beforeTransaction(): void {}
  close(): void {
    if (this.#db.open) this.#db.close();
  }
}

type WasmDatabase = {
  exec(sql: string): void;
  run(sql: string, params?: unknown[]): { changes: number };
  all(sql: string, params?: unknown[]): unknown[];
  get(sql: string, params?: unknown[]): unknown;
  close(): void;
  isOpen: boolean;
};

class WasmDriver implements SqlDriver {
  readonly name = 'node-sqlite3-wasm' as const;
  readonly #db: WasmDatabase;
  readonly #path: string;

  constructor(path: string, fileMustExist: boolean, busyTimeoutMs: number) {
    this.#path = path;
    breakStaleLock(path);
    const { Database } = require('node-sqlite3-wasm') as { Database: new (p: string, o: { fileMustExist: boolean }) => WasmDatabase };
    this.#db = new Database(path, { fileMustExist });
    this.#db.exec(`PRAGMA busy_timeout = ${busyTimeoutMs}`);
  }
  exec(sql: string): void {
    this.#db.exec(sql);
  }
  run(sql: string, params: SqlValue[] = []): number {
    return this.#db.run(sql, params).changes;
  }
  all(sql: string, params: SqlValue[] = []): Row[] {
    return this.#db.all(sql, params) as Row[];
  }
  get(sql: string, params: SqlValue[] = []): Row | undefined {
    return (this.#db.get(sql, params) as Row | null) ?? undefined;
  }
  beforeTransaction(): void {
    breakStaleLock(this.#path);
  }
  close(): void {
    if (this.#db.isOpen) this.#db.close();
  }
}

/** Opens `path` with better-sqlite3, or the WASM driver when better-sqlite3 is unavailable. */
export function openSqlite(path: string, options: { fileMustExist?: boolean; busyTimeoutMs?: number; driver?: SqlDriver['name'] } = {}): SqlDriver {
  const fileMustExist = options.fileMustExist ?? false;
  const busy = options.busyTimeoutMs ?? 1000;
  if (!fileMustExist) mkdirSync(dirname(path), { recursive: true });
  // `driver`: force one (the store benchmark compares them); default: better-sqlite3 when it loads.
  const Ctor = options.driver === 'node-sqlite3-wasm' ? undefined : loadBetter();
  if (options.driver === 'better-sqlite3' && !Ctor) throw new Error(betterError ?? 'better-sqlite3 unavailable');
  return Ctor ? new BetterDriver(Ctor, path, fileMustExist, busy) : new WasmDriver(path, fileMustExist, busy);
}

/** The WASM driver's lock directory, left behind by a process killed inside a transaction. */
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
