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
  /** Filters, all optional and combined with AND (an empty string is no filter). */
  q?: string;
  agent?: string;
  profile?: string;
  /** Exact, or a prefix when it ends with `*` (`agent-ended*`). */
  endReason?: string;
}

/**
 * History filters as the database applies them (ListQuery's, checked and normalised).
 * Every value goes to the database as a bound parameter.
 */
export interface ListFilter {
  /** Case-insensitive substring of `from` or `to` (LIKE wildcards in it match literally); 1–MAX_Q_LENGTH characters. */
  q?: string;
  /** Exact. */
  agent?: string;
  /** Exact. */
  profile?: string;
  /** Exact end reason, or with `prefix` any end reason that starts with it. */
  endReason?: { value: string; prefix: boolean };
}

/** What CallDb.list takes: a page (cursor or offset) of the rows that pass the filter. */
export interface DbListQuery {
  limit: number;
  before?: { startedAt: string; callSid: string };
  offset?: number;
  filter?: ListFilter;
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
  list(q: DbListQuery): Promise<CallListItem[]>;
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
/** Longest `q` (a number fragment or text). */
export const MAX_Q_LENGTH = 64;
/** Longest `agent` / `profile` (profile names are at most 64 characters: src/profiles/schema.ts). */
export const MAX_NAME_LENGTH = 64;
/** Longest `endReason` (`agent-ended:<reason>` carries the agent's reason). */
export const MAX_END_REASON_LENGTH = 128;

/**
 * ListQuery's filters, checked (RangeError: the caller's mistake) and normalised:
 * surrounding white space trimmed, empty values dropped, a trailing `*` on the end
 * reason made a prefix match. Undefined when nothing filters.
 */
export function listFilter(query: Pick<ListQuery, 'q' | 'agent' | 'profile' | 'endReason'>): ListFilter | undefined {
  const f: ListFilter = {};
  const text = (name: string, v: unknown, max: number): string | undefined => {
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') throw new RangeError(`${name} must be a string`);
    const t = v.trim();
    if ([...t].length > max) throw new RangeError(`${name} must be at most ${max} characters`);
    return t === '' ? undefined : t;
  };
  const q = text('q', query.q, MAX_Q_LENGTH);
  if (q !== undefined) f.q = q;
  const agent = text('agent', query.agent, MAX_NAME_LENGTH);
  if (agent !== undefined) f.agent = agent;
  const profile = text('profile', query.profile, MAX_NAME_LENGTH);
  if (profile !== undefined) f.profile = profile;
  const endReason = text('endReason', query.endReason, MAX_END_REASON_LENGTH);
  if (endReason !== undefined) f.endReason = endReason.endsWith('*') ? { value: endReason.slice(0, -1), prefix: true } : { value: endReason, prefix: false };
  return Object.keys(f).length > 0 ? f : undefined;
}
