/**
 * The store's operations, written once for both dialects against a tiny executor
 * (SQLite: better-sqlite3 or the WASM driver, synchronous, in the store's worker
 * thread; PostgreSQL: a pooled client). Statements use `?` placeholders; the pg
 * executor rewrites them to `$n`.
 *
 * Process runs and interrupted calls:
 *
 * ```text
 *   start ──► registerRun: own row in bridge_runs; a predecessor with the same instance
 *             and worker on this host whose pid is gone is marked stopped (a restart)
 *   every BRIDGE_HEARTBEAT_MS ──► heartbeat: own row's heartbeat_at, and expires_at =
 *             now + 3 of ITS heartbeats (so instances with other intervals judge it alike)
 *             ──► sweepInterrupted: in-progress rows whose owner run is stopped, unknown,
 *             or expired → 'interrupted', ended at the owner's last sign of life
 *   clean exit ──► stopRun (after the outbox was flushed)
 * ```
 */
import { DELETE_TRANSCRIPTS_SQL, GET_CALL_SQL, GET_TRANSCRIPTS_SQL, LIST_COLUMNS, UPSERT_CALL_SQL, insertTranscriptsSql, listSql } from './schema.js';
export { pidAlive } from './pid-alive.js';
import type { DbListQuery } from './call-db.js';
import { recordToParams, rowToListItem, rowToStoredCall, type CallListItem, type OutboxEntry, type StoredCall } from './record-row.js';

export type SqlValue = string | number | boolean | null;
export type Row = Record<string, unknown>;

/** Runs one statement: rows for a query, the changed-row count for a write. May be synchronous. */
export interface SqlExec {
  all(sql: string, params?: SqlValue[]): Row[] | Promise<Row[]>;
  run(sql: string, params?: SqlValue[]): number | Promise<number>;
}

/** One process's entry in bridge_runs. */
export interface RunInfo {
  runId: string;
  instanceId: string;
  /** Worker slot of `--workers N`; -1 for a process without workers. */
  worker: number;
  host: string;
  pid: number;
  /** The path segment after /twilio/stream/ that routes a stream to this process. */
  routeKey: string;
  /** Where other instances reach this process for call commands (undefined: not reachable). */
  internalUrl: string | null;
  startedAt: string;
  /** When this OS process started (a run with our pid that started before it is a predecessor: the pid was reused). */
  processStartedAt: string;
}

/** A live call as seen in the database: its row plus its owner's route. */
export interface LiveCallRow extends CallListItem {
  routeKey: string;
  internalUrl: string | null;
  ownerRun: string;
}

/** Upserts records and (for completed ones that were written) their transcript turns. Run inside a transaction. */
export async function upsertEntries(x: SqlExec, entries: OutboxEntry[]): Promise<void> {
  for (const e of entries) {
    const { call, transcripts } = recordToParams(e);
    const changed = await x.run(UPSERT_CALL_SQL, call);
    if (changed === 0) continue; // the row is already further along (completed or interrupted)
    await x.run(DELETE_TRANSCRIPTS_SQL, [call[0]!, call[1]!]);
    if (transcripts.length > 0) await x.run(insertTranscriptsSql(transcripts.length), transcripts.flat());
  }
}

/** A LIKE pattern matching `text` anywhere, its own `%`, `_` and `\\` literally (escape: LIKE_ESCAPE). */
export function likeFragment(text: string): string {
  return `%${text.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/** A page of history, newest first; the filter's values are bound parameters, never part of the SQL text. */
export async function listCalls(x: SqlExec, q: DbListQuery): Promise<CallListItem[]> {
  const f = q.filter ?? {};
  const params: SqlValue[] = [];
  if (q.before) params.push(q.before.startedAt, q.before.startedAt, q.before.callSid);
  if (f.q !== undefined) {
    const pattern = likeFragment(f.q);
    params.push(pattern, pattern);
  }
  if (f.agent !== undefined) params.push(f.agent);
  if (f.profile !== undefined) params.push(f.profile);
  if (f.endReason?.prefix) params.push([...f.endReason.value].length, f.endReason.value);
  else if (f.endReason) params.push(f.endReason.value);
  params.push(q.limit);
  if (q.offset !== undefined) params.push(q.offset);
  const sql = listSql({
    cursor: q.before !== undefined,
    offset: q.offset !== undefined,
    q: f.q !== undefined,
    agent: f.agent !== undefined,
    profile: f.profile !== undefined,
    ...(f.endReason ? { endReason: f.endReason.prefix ? ('prefix' as const) : ('exact' as const) } : {}),
  });
  return (await x.all(sql, params)).map(rowToListItem);
}

export async function getCall(x: SqlExec, callSid: string): Promise<StoredCall | undefined> {
  const row = (await x.all(GET_CALL_SQL, [callSid]))[0];
  if (!row) return undefined;
  const turns = await x.all(GET_TRANSCRIPTS_SQL, [callSid, String(row.stream_sid)]);
  return rowToStoredCall(row, turns);
}

/**
 * Registers this run. Predecessors with the same instance and worker on this host
 * whose process is gone are marked stopped now (so their calls are closed at the
 * next sweep, not after the heartbeat TTL). Returns the live namesakes: another
 * process using the same BRIDGE_INSTANCE_ID and worker — a misconfiguration to report.
 */
export async function registerRun(x: SqlExec, run: RunInfo, nowIso: string, expiresIso: string, isAlive: (pid: number) => boolean): Promise<{ superseded: number; namesakes: { host: string; pid: number }[] }> {
  const others = await x.all('SELECT run_id, host, pid, started_at FROM bridge_runs WHERE instance_id = ? AND worker = ? AND stopped_at IS NULL AND run_id <> ?', [run.instanceId, run.worker, run.runId]);
  let superseded = 0;
  const namesakes: { host: string; pid: number }[] = [];
  for (const o of others) {
    const pid = Number(o.pid);
    const sameHost = String(o.host) === run.host;
    // Our pid: a predecessor if it started before this process did (a container restarts
    // with the same pid), else another store of this very process. Another pid: gone or not.
    const predecessor = sameHost && (pid === run.pid ? (iso(o.started_at) ?? '') < run.processStartedAt : !isAlive(pid));
    if (predecessor) superseded += await x.run('UPDATE bridge_runs SET stopped_at = heartbeat_at WHERE run_id = ? AND stopped_at IS NULL', [String(o.run_id)]);
    else namesakes.push({ host: String(o.host), pid });
  }
  await x.run(
    `INSERT INTO bridge_runs (run_id, instance_id, worker, host, pid, route_key, internal_url, started_at, heartbeat_at, expires_at, stopped_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)
      ON CONFLICT (run_id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, expires_at = excluded.expires_at, internal_url = excluded.internal_url, stopped_at = NULL`,
    [run.runId, run.instanceId, run.worker, run.host, run.pid, run.routeKey, run.internalUrl, run.startedAt, nowIso, expiresIso],
  );
  return { superseded, namesakes };
}

/** False when the run's row is gone or stopped (re-register). `expiresIso`: when, without another beat, the run counts as dead. */
export async function heartbeat(x: SqlExec, runId: string, nowIso: string, expiresIso: string): Promise<boolean> {
  return (await x.run('UPDATE bridge_runs SET heartbeat_at = ?, expires_at = ? WHERE run_id = ? AND stopped_at IS NULL', [nowIso, expiresIso, runId])) > 0;
}

export async function stopRun(x: SqlExec, runId: string, nowIso: string): Promise<void> {
  await x.run('UPDATE bridge_runs SET heartbeat_at = ?, expires_at = ?, stopped_at = ? WHERE run_id = ?', [nowIso, nowIso, nowIso, runId]);
}

const iso = (v: unknown): string | undefined => (v === null || v === undefined ? undefined : v instanceof Date ? v.toISOString() : new Date(String(v)).toISOString());

/**
 * Closes in-progress rows whose owner is dead: stopped, unknown, or expired (no
 * heartbeat for 3 of its own intervals). The call ended at the latest when its
 * owner was last heard of, so that is its end time. Returns the rows closed.
 */
export async function sweepInterrupted(x: SqlExec, nowIso: string, selfRunId: string): Promise<{ callSid: string; streamSid: string }[]> {
  // Never our own rows: the sweeper is alive by definition, even when its own heartbeat
  // was slow to land (a loaded database) and its expiry looks past.
  const rows = await x.all(
    `SELECT c.call_sid, c.stream_sid, c.started_at, r.heartbeat_at, r.stopped_at FROM calls c LEFT JOIN bridge_runs r ON r.run_id = c.owner_run
      WHERE c.record_state = 'in-progress' AND (c.owner_run IS NULL OR c.owner_run <> ?)
        AND (c.owner_run IS NULL OR r.run_id IS NULL OR r.stopped_at IS NOT NULL OR r.expires_at < ?)`,
    [selfRunId, nowIso],
  );
  const closed: { callSid: string; streamSid: string }[] = [];
  for (const r of rows) {
    const started = iso(r.started_at)!;
    let ended = iso(r.stopped_at) ?? iso(r.heartbeat_at) ?? nowIso;
    if (ended < started) ended = started;
    const durationMs = Date.parse(ended) - Date.parse(started);
    const n = await x.run(
      `UPDATE calls SET record_state = 'interrupted', end_reason = 'interrupted', ended_at = ?, duration_ms = ?, recorded_at = ?
        WHERE call_sid = ? AND stream_sid = ? AND record_state = 'in-progress'`,
      [ended, durationMs, nowIso, String(r.call_sid), String(r.stream_sid)],
    );
    if (n > 0) closed.push({ callSid: String(r.call_sid), streamSid: String(r.stream_sid) });
  }
  // Runs stopped a day ago with no call left in progress: nothing refers to them any more.
  await x.run(
    `DELETE FROM bridge_runs WHERE stopped_at IS NOT NULL AND stopped_at < ?
      AND NOT EXISTS (SELECT 1 FROM calls c WHERE c.owner_run = bridge_runs.run_id AND c.record_state = 'in-progress')`,
    [new Date(Date.parse(nowIso) - 86_400_000).toISOString()],
  );
  return closed;
}

const LIVE_SELECT = `SELECT ${LIST_COLUMNS.map((c) => `c.${c}`).join(', ')}, c.owner_run, r.route_key, r.internal_url
  FROM calls c JOIN bridge_runs r ON r.run_id = c.owner_run
  WHERE c.record_state = 'in-progress' AND r.stopped_at IS NULL AND r.expires_at >= ?`;

function toLive(row: Row): LiveCallRow {
  return { ...rowToListItem(row), routeKey: String(row.route_key), internalUrl: row.internal_url === null || row.internal_url === undefined ? null : String(row.internal_url), ownerRun: String(row.owner_run) };
}

/** In-progress rows of live runs (not expired at `nowIso`), newest first. */
export async function liveCalls(x: SqlExec, nowIso: string, limit = 1000): Promise<LiveCallRow[]> {
  return (await x.all(`${LIVE_SELECT} ORDER BY c.started_at DESC, c.call_sid DESC LIMIT ?`, [nowIso, limit])).map(toLive);
}

/** The live owner of a call's newest in-progress stream, if any. */
export async function liveCall(x: SqlExec, callSid: string, nowIso: string): Promise<LiveCallRow | undefined> {
  const row = (await x.all(`${LIVE_SELECT} AND c.call_sid = ? ORDER BY c.started_at DESC LIMIT 1`, [nowIso, callSid]))[0];
  return row ? toLive(row) : undefined;
}

/** Applied migration versions. */
export async function appliedVersions(x: SqlExec): Promise<number[]> {
  return (await x.all('SELECT version FROM schema_migrations ORDER BY version')).map((r) => Number(r.version));
}

