/**
 * What the store needs from a database, implemented once per dialect
 * (sqlite-db.ts: better-sqlite3 — or its WASM fallback — in a worker thread;
 * postgres-db.ts: pg). Both run the statements of sql-ops.ts.
 */
import type { CallListItem, OutboxEntry, StoredCall } from './record-row.js';
import type { LiveCallRow, RunInfo } from './sql-ops.js';

export interface ListQuery {
  /** 1–500; default 50. */
  limit?: number;
  /** Opaque cursor from a previous page's `next`: rows strictly older than it. */
  before?: string;
  /** 1-based page number (offset paging); ignored when `before` is given. */
  page?: number;
}

export interface CallPage {
  calls: CallListItem[];
  /** Cursor for the next (older) page; null when this page is the last. */
  next: string | null;
}

export interface CallDb {
  readonly dialect: 'sqlite' | 'postgres';
  /** Applies the migrations not yet applied; returns the versions it applied (none on a current schema). */
  migrate(): Promise<number[]>;
  /** Upserts the records (and replaces their transcript turns) in one transaction. */
  upsert(entries: OutboxEntry[]): Promise<void>;
  list(q: { limit: number; before?: { startedAt: string; callSid: string }; offset?: number }): Promise<CallListItem[]>;
  get(callSid: string): Promise<StoredCall | undefined>;
  /** This process's row in bridge_runs (predecessors on this host whose pid is gone are marked stopped). */
  registerRun(run: RunInfo, nowIso: string, expiresIso: string): Promise<{ superseded: number; namesakes: { host: string; pid: number }[] }>;
  /** False when the run's row is gone or stopped (register again). */
  heartbeat(runId: string, nowIso: string, expiresIso: string): Promise<boolean>;
  stopRun(runId: string, nowIso: string): Promise<void>;
  /** Closes in-progress rows of dead runs as 'interrupted'. */
  sweepInterrupted(nowIso: string, selfRunId: string): Promise<{ callSid: string; streamSid: string }[]>;
  liveCalls(nowIso: string): Promise<LiveCallRow[]>;
  liveCall(callSid: string, nowIso: string): Promise<LiveCallRow | undefined>;
  /** Whether a failure can pass if tried again (connection, timeout, lock) or not (data, constraint, auth). */
  isTransient(e: unknown): boolean;
  close(): Promise<void>;
}

export const MAX_LIST_LIMIT = 500;
export const DEFAULT_LIST_LIMIT = 50;
