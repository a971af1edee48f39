/**
 * One schema for SQLite and PostgreSQL. Migrations are numbered, written once and
 * never edited (add a new one instead); each runs in the transaction that records
 * it in schema_migrations, so a crash mid-migration leaves nothing half-applied.
 * The dialects differ only in the two column types below; every statement the
 * store runs is written with `?` placeholders (rewritten to $n for pg).
 */
export type Dialect = 'sqlite' | 'postgres';

interface Types {
  /** Instants: TIMESTAMPTZ in PostgreSQL; ISO-8601 UTC text in SQLite (sorts as time). */
  ts: string;
  /** Nested figures: JSONB in PostgreSQL; JSON text in SQLite. */
  json: string;
}

const TYPES: Record<Dialect, Types> = {
  sqlite: { ts: 'TEXT', json: 'TEXT' },
  postgres: { ts: 'TIMESTAMPTZ', json: 'JSONB' },
};

export interface Migration {
  version: number;
  name: string;
  statements: (t: Types) => string[];
}

/** The columns of migration 1's `calls` (copied over by migration 2). */
const V1_COLUMNS = [
  'call_sid', 'stream_sid', 'agent', 'from_number', 'to_number', 'started_at', 'ended_at', 'duration_ms', 'end_reason',
  'frames_in', 'frames_out', 'chunks_to_agent', 'jitter_late', 'jitter_lost', 'jitter_concealed', 'playout_underruns',
  'barge_ins', 'time_to_first_agent_audio_ms', 'agent_ready_ms', 'agent_preconnected', 'apology', 'recording_path',
  'transcript_turns', 'detail', 'recorded_at',
] as const;

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'calls and transcript turns',
    statements: (t) => [
      `CREATE TABLE calls (
        call_sid TEXT PRIMARY KEY,
        stream_sid TEXT,
        agent TEXT,
        from_number TEXT,
        to_number TEXT,
        started_at ${t.ts} NOT NULL,
        ended_at ${t.ts},
        duration_ms INTEGER NOT NULL,
        end_reason TEXT,
        frames_in INTEGER NOT NULL,
        frames_out INTEGER NOT NULL,
        chunks_to_agent INTEGER NOT NULL,
        jitter_late INTEGER,
        jitter_lost INTEGER,
        jitter_concealed INTEGER,
        playout_underruns INTEGER,
        barge_ins INTEGER NOT NULL,
        time_to_first_agent_audio_ms INTEGER,
        agent_ready_ms INTEGER,
        agent_preconnected BOOLEAN NOT NULL,
        apology TEXT,
        recording_path TEXT,
        transcript_turns INTEGER NOT NULL,
        detail ${t.json} NOT NULL,
        recorded_at ${t.ts} NOT NULL
      )`,
      // History pages newest first; call_sid breaks ties so the cursor is exact.
      'CREATE INDEX calls_started_idx ON calls (started_at DESC, call_sid DESC)',
      `CREATE TABLE call_transcripts (
        call_sid TEXT NOT NULL REFERENCES calls (call_sid) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        role TEXT NOT NULL,
        text TEXT NOT NULL,
        final BOOLEAN NOT NULL,
        PRIMARY KEY (call_sid, seq)
      )`,
    ],
  },
  {
    // Scale-out: a call's row exists from its stream's start (record_state
    // 'in-progress'), owned by one process run; rows are keyed by CallSid + StreamSid
    // (a call with two <Stream>s has two rows; a replayed record lands once);
    // bridge_runs holds every process's heartbeat, so the rows of a dead process are
    // closed as 'interrupted' by whoever notices first.
    version: 2,
    name: 'rows from stream start, keyed by call and stream; process runs',
    statements: (t) => [
      'ALTER TABLE call_transcripts RENAME TO call_transcripts_v1',
      'ALTER TABLE calls RENAME TO calls_v1',
      'DROP INDEX calls_started_idx',
      `CREATE TABLE calls (
        call_sid TEXT NOT NULL,
        stream_sid TEXT NOT NULL,
        agent TEXT,
        from_number TEXT,
        to_number TEXT,
        started_at ${t.ts} NOT NULL,
        ended_at ${t.ts},
        duration_ms INTEGER NOT NULL,
        end_reason TEXT,
        frames_in INTEGER NOT NULL,
        frames_out INTEGER NOT NULL,
        chunks_to_agent INTEGER NOT NULL,
        jitter_late INTEGER,
        jitter_lost INTEGER,
        jitter_concealed INTEGER,
        playout_underruns INTEGER,
        barge_ins INTEGER NOT NULL,
        time_to_first_agent_audio_ms INTEGER,
        agent_ready_ms INTEGER,
        agent_preconnected BOOLEAN NOT NULL,
        apology TEXT,
        recording_path TEXT,
        transcript_turns INTEGER NOT NULL,
        detail ${t.json} NOT NULL,
        recorded_at ${t.ts} NOT NULL,
        record_state TEXT NOT NULL,
        owner_instance TEXT,
        owner_worker INTEGER,
        owner_run TEXT,
        CONSTRAINT calls_call_stream_pk PRIMARY KEY (call_sid, stream_sid)
      )`,
      `INSERT INTO calls (${V1_COLUMNS.join(', ')}, record_state)
        SELECT ${V1_COLUMNS.map((c) => (c === 'stream_sid' ? "COALESCE(stream_sid, '')" : c)).join(', ')}, 'completed' FROM calls_v1`,
      `CREATE TABLE call_transcripts (
        call_sid TEXT NOT NULL,
        stream_sid TEXT NOT NULL,
        seq INTEGER NOT NULL,
        role TEXT NOT NULL,
        text TEXT NOT NULL,
        final BOOLEAN NOT NULL,
        CONSTRAINT call_transcripts_turn_pk PRIMARY KEY (call_sid, stream_sid, seq),
        CONSTRAINT call_transcripts_call_fk FOREIGN KEY (call_sid, stream_sid) REFERENCES calls (call_sid, stream_sid) ON DELETE CASCADE
      )`,
      `INSERT INTO call_transcripts (call_sid, stream_sid, seq, role, text, final)
        SELECT t.call_sid, COALESCE(c.stream_sid, ''), t.seq, t.role, t.text, t.final FROM call_transcripts_v1 t JOIN calls_v1 c ON c.call_sid = t.call_sid`,
      'DROP TABLE call_transcripts_v1',
      'DROP TABLE calls_v1',
      'CREATE INDEX calls_started_idx ON calls (started_at DESC, call_sid DESC)',
      'CREATE INDEX calls_live_idx ON calls (record_state, owner_run)',
      `CREATE TABLE bridge_runs (
        run_id TEXT PRIMARY KEY,
        instance_id TEXT NOT NULL,
        worker INTEGER NOT NULL,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        route_key TEXT NOT NULL,
        internal_url TEXT,
        started_at ${t.ts} NOT NULL,
        heartbeat_at ${t.ts} NOT NULL,
        expires_at ${t.ts} NOT NULL,
        stopped_at ${t.ts}
      )`,
    ],
  },
  {
    // Profiles (docs/profiles.md): which profile answered a call, filterable without
    // opening `detail`. Null for calls without one, and for every row from before.
    version: 3,
    name: 'the profile that answered a call',
    statements: () => ['ALTER TABLE calls ADD COLUMN profile TEXT'],
  },
  {
    // History filters (GET /calls/history?agent=&profile=&endReason=): an exact match
    // on one of these walks its index in page order, newest first, instead of the whole
    // table. `q` (a substring of from/to) has no index that helps: it scans, in order.
    version: 4,
    name: 'history filter indexes: agent, profile, end reason',
    statements: () => [
      'CREATE INDEX calls_agent_idx ON calls (agent, started_at DESC, call_sid DESC)',
      'CREATE INDEX calls_profile_idx ON calls (profile, started_at DESC, call_sid DESC)',
      'CREATE INDEX calls_end_reason_idx ON calls (end_reason, started_at DESC, call_sid DESC)',
    ],
  },
];

export function schemaMigrationsDdl(d: Dialect): string {
  return `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at ${TYPES[d].ts} NOT NULL)`;
}

export function migrationStatements(m: Migration, d: Dialect): string[] {
  return m.statements(TYPES[d]);
}

/** Columns of `calls`, in the order of the upsert's values. */
export const CALL_COLUMNS = [
  'call_sid',
  'stream_sid',
  'agent',
  'from_number',
  'to_number',
  'started_at',
  'ended_at',
  'duration_ms',
  'end_reason',
  'frames_in',
  'frames_out',
  'chunks_to_agent',
  'jitter_late',
  'jitter_lost',
  'jitter_concealed',
  'playout_underruns',
  'barge_ins',
  'time_to_first_agent_audio_ms',
  'agent_ready_ms',
  'agent_preconnected',
  'apology',
  'recording_path',
  'transcript_turns',
  'detail',
  'recorded_at',
  'record_state',
  'owner_instance',
  'owner_worker',
  'owner_run',
  'profile',
] as const;

/**
 * Idempotent by CallSid + StreamSid: a replayed record overwrites itself (same
 * values), never duplicates. A row only moves forward: 'in-progress' is replaced by
 * anything, 'completed' replaces anything, and nothing but 'completed' replaces
 * 'completed' or 'interrupted' — so a start record replayed after the end, or after
 * the row was closed as interrupted, changes nothing, and the real end always wins.
 * The statement changes no row when the condition refuses the update, and the
 * transcript turns are then left alone too.
 */
export const UPSERT_CALL_SQL = `INSERT INTO calls (${CALL_COLUMNS.join(', ')}) VALUES (${CALL_COLUMNS.map(() => '?').join(', ')})
  ON CONFLICT (call_sid, stream_sid) DO UPDATE SET ${CALL_COLUMNS.slice(2)
    .map((c) => `${c} = excluded.${c}`)
    .join(', ')}
  WHERE calls.record_state = 'in-progress' OR excluded.record_state = 'completed'`;

export const DELETE_TRANSCRIPTS_SQL = 'DELETE FROM call_transcripts WHERE call_sid = ? AND stream_sid = ?';

export function insertTranscriptsSql(n: number): string {
  return `INSERT INTO call_transcripts (call_sid, stream_sid, seq, role, text, final) VALUES ${Array.from({ length: n }, () => '(?, ?, ?, ?, ?, ?)').join(', ')}`;
}

/** The summary columns a history page returns (no detail, no transcripts). */
export const LIST_COLUMNS = CALL_COLUMNS.filter((c) => c !== 'detail' && c !== 'owner_run');

/** Which conditions a history page has (each `?` is bound by sql-ops' listCalls, in this order). */
export interface ListSqlShape {
  cursor: boolean;
  offset: boolean;
  /** `from` or `to` LIKE the escaped, lower-cased fragment. */
  q?: boolean;
  agent?: boolean;
  profile?: boolean;
  endReason?: 'exact' | 'prefix';
}

/** The escape character of the history's LIKE patterns (sql-ops' likeFragment escapes with it). */
export const LIKE_ESCAPE = '\\';

export function listSql(shape: ListSqlShape): string {
  const where: string[] = [];
  if (shape.cursor) where.push('(started_at < ? OR (started_at = ? AND call_sid < ?))');
  // LOWER on both sides: PostgreSQL's LIKE is case-sensitive, SQLite's only for non-ASCII.
  if (shape.q) where.push(`(LOWER(from_number) LIKE ? ESCAPE '${LIKE_ESCAPE}' OR LOWER(to_number) LIKE ? ESCAPE '${LIKE_ESCAPE}')`);
  if (shape.agent) where.push('agent = ?');
  if (shape.profile) where.push('profile = ?');
  // A prefix as a comparison of the first characters, case-sensitive in both dialects (SQLite's LIKE is not).
  if (shape.endReason === 'exact') where.push('end_reason = ?');
  else if (shape.endReason === 'prefix') where.push('SUBSTR(end_reason, 1, ?) = ?');
  return `SELECT ${LIST_COLUMNS.join(', ')} FROM calls${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY started_at DESC, call_sid DESC LIMIT ?${shape.offset ? ' OFFSET ?' : ''}`;
}

/** A call's newest stream (a call with two <Stream>s has two rows). */
export const GET_CALL_SQL = `SELECT ${CALL_COLUMNS.join(', ')} FROM calls WHERE call_sid = ? ORDER BY started_at DESC, stream_sid DESC LIMIT 1`;
export const GET_TRANSCRIPTS_SQL = 'SELECT seq, role, text, final FROM call_transcripts WHERE call_sid = ? AND stream_sid = ? ORDER BY seq';

/** `?` → `$1, $2, …` for node-postgres (our SQL has no literal question marks). */
export function toPgPlaceholders(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}
