/**
 * CallRecord ⇄ database row. The figures an operator filters and sorts on get
 * their own columns; everything else of the record (jitter and playout stats in
 * full, bad-input counts, status callbacks, custom parameters, and any field a
 * later CallSummary adds) goes into `detail` as JSON, so a record read back is the
 * record written. Transcript turns get their own table.
 */
import type { CallRecord } from '../call/call-manager.js';
import type { Transcript } from '../agents/agent.js';
import { CALL_COLUMNS } from './schema.js';

/** One line of the outbox: a record as handed to record(), stamped with when. */
export interface OutboxEntry {
  v: 1;
  recordedAt: string;
  record: CallRecord;
  /** The process run that wrote it (absent in entries from before scale-out: no owner). */
  owner?: RecordOwner;
}

/** Who carries a call: the instance (BRIDGE_INSTANCE_ID), the worker slot (-1: no --workers), and the process run. */
export interface RecordOwner {
  instance: string;
  worker: number;
  run: string;
}

/** A row's life: written at the stream's start, completed at its end, or closed by another process after a crash. */
export type RecordState = 'in-progress' | 'completed' | 'interrupted';

/** A persisted call: the CallRecord plus when the bridge recorded it. */
export interface StoredCall extends Omit<CallRecord, 'recordState'> {
  callSid: string;
  recordedAt: string;
  recordState: RecordState;
  ownerInstance: string | null;
  ownerWorker: number | null;
}

/** One row of a history page: the summary columns, no transcripts or detail. */
export interface CallListItem {
  callSid: string;
  streamSid: string | null;
  agent: string | null;
  from: string | null;
  to: string | null;
  startedAt: string;
  endedAt: string | null;
  durationMs: number;
  endReason: string | null;
  framesIn: number;
  framesOut: number;
  chunksToAgent: number;
  jitterLate: number | null;
  jitterLost: number | null;
  jitterConcealed: number | null;
  playoutUnderruns: number | null;
  bargeIns: number;
  timeToFirstAgentAudioMs: number | null;
  agentReadyMs: number | null;
  agentPreconnected: boolean;
  apology: string | null;
  recordingPath: string | null;
  transcriptTurns: number;
  recordedAt: string;
  recordState: RecordState;
  ownerInstance: string | null;
  ownerWorker: number | null;
  /** The profile that answered (docs/profiles.md); null: none. */
  profile: string | null;
}

// PostgreSQL text cannot hold NUL, and JSONB refuses lone surrogates; agents'
// transcripts and custom parameters are outside our control, so clean them.
// eslint-disable-next-line no-control-regex
const UNSAFE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
export function cleanText(s: string): string {
  return s.replace(UNSAFE, '\ufffd');
}
function cleanNullable(s: string | null | undefined): string | null {
  return s === null || s === undefined ? null : cleanText(String(s));
}
function intOrNull(n: number | null | undefined): number | null {
  return typeof n === 'number' && Number.isFinite(n) ? Math.round(n) : null;
}

type Param = string | number | boolean | null;

/** Values for UPSERT_CALL_SQL (column order of CALL_COLUMNS) and the transcript rows. */
export function recordToParams(entry: OutboxEntry): { call: Param[]; transcripts: Param[][] } {
  const r = entry.record;
  const {
    callSid,
    streamSid,
    agent,
    from,
    to,
    startedAt,
    endedAt,
    durationMs,
    endReason,
    framesIn,
    framesOut,
    chunksToAgent,
    bargeIns,
    timeToFirstAgentAudioMs,
    agentReadyMs,
    agentPreconnected,
    apology,
    recordingPath,
    transcripts,
    recordState,
    profile,
    ...detail
  } = r;
  if (!callSid) throw new TypeError('a call record needs a CallSid');
  const turns: Transcript[] = Array.isArray(transcripts) ? transcripts : [];
  const values: Record<(typeof CALL_COLUMNS)[number], Param> = {
    call_sid: cleanText(callSid),
    stream_sid: cleanNullable(streamSid) ?? '',
    agent: cleanNullable(agent),
    from_number: cleanNullable(from),
    to_number: cleanNullable(to),
    started_at: startedAt,
    ended_at: endedAt ?? null,
    duration_ms: intOrNull(durationMs) ?? 0,
    end_reason: cleanNullable(endReason),
    frames_in: intOrNull(framesIn) ?? 0,
    frames_out: intOrNull(framesOut) ?? 0,
    chunks_to_agent: intOrNull(chunksToAgent) ?? 0,
    jitter_late: intOrNull(r.jitter?.late),
    jitter_lost: intOrNull(r.jitter?.lost),
    jitter_concealed: intOrNull(r.jitter?.concealed),
    playout_underruns: intOrNull(r.playout?.underruns),
    barge_ins: intOrNull(bargeIns) ?? 0,
    time_to_first_agent_audio_ms: intOrNull(timeToFirstAgentAudioMs),
    agent_ready_ms: intOrNull(agentReadyMs),
    agent_preconnected: agentPreconnected === true,
    apology: cleanNullable(apology),
    recording_path: cleanNullable(recordingPath),
    transcript_turns: turns.length,
    detail: JSON.stringify(detail, (_k, v: unknown) => (typeof v === 'string' ? cleanText(v) : v)),
    recorded_at: entry.recordedAt,
    // Entries from before scale-out carry no state: they were written at a call's end.
    record_state: recordState === 'in-progress' ? 'in-progress' : 'completed',
    owner_instance: entry.owner ? cleanText(entry.owner.instance) : null,
    owner_worker: entry.owner && Number.isInteger(entry.owner.worker) ? entry.owner.worker : null,
    owner_run: entry.owner ? cleanText(entry.owner.run) : null,
    profile: cleanNullable(profile),
  };
  const stream = values.stream_sid as string;
  return {
    call: CALL_COLUMNS.map((c) => values[c]),
    transcripts: turns.map((t, seq) => [cleanText(callSid), stream, seq, t.role, cleanText(String(t.text ?? '')), t.final === true]),
  };
}

type Row = Record<string, unknown>;

const iso = (v: unknown): string | null => (v === null || v === undefined ? null : v instanceof Date ? v.toISOString() : new Date(String(v)).toISOString());
const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
const str = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));
const bool = (v: unknown): boolean => v === true || v === 1 || v === 1n || v === '1' || v === 't';

export function rowToListItem(row: Row): CallListItem {
  return {
    callSid: String(row.call_sid),
    streamSid: str(row.stream_sid) || null, // '' in the key column stands for a call that never had a stream id
    agent: str(row.agent),
    from: str(row.from_number),
    to: str(row.to_number),
    startedAt: iso(row.started_at)!,
    endedAt: iso(row.ended_at),
    durationMs: num(row.duration_ms) ?? 0,
    endReason: str(row.end_reason),
    framesIn: num(row.frames_in) ?? 0,
    framesOut: num(row.frames_out) ?? 0,
    chunksToAgent: num(row.chunks_to_agent) ?? 0,
    jitterLate: num(row.jitter_late),
    jitterLost: num(row.jitter_lost),
    jitterConcealed: num(row.jitter_concealed),
    playoutUnderruns: num(row.playout_underruns),
    bargeIns: num(row.barge_ins) ?? 0,
    timeToFirstAgentAudioMs: num(row.time_to_first_agent_audio_ms),
    agentReadyMs: num(row.agent_ready_ms),
    agentPreconnected: bool(row.agent_preconnected),
    apology: str(row.apology),
    recordingPath: str(row.recording_path),
    transcriptTurns: num(row.transcript_turns) ?? 0,
    recordedAt: iso(row.recorded_at)!,
    recordState: (str(row.record_state) ?? 'completed') as RecordState,
    ownerInstance: str(row.owner_instance),
    ownerWorker: num(row.owner_worker),
    profile: str(row.profile),
  };
}

export function rowToStoredCall(row: Row, turns: Row[]): StoredCall {
  const detail = (typeof row.detail === 'string' ? JSON.parse(row.detail) : (row.detail ?? {})) as Record<string, unknown>;
  const item = rowToListItem(row);
  return {
    ...(detail as unknown as Omit<CallRecord, 'callSid'>),
    callSid: item.callSid,
    streamSid: item.streamSid,
    agent: item.agent,
    from: item.from,
    to: item.to,
    startedAt: item.startedAt,
    endedAt: item.endedAt,
    durationMs: item.durationMs,
    endReason: item.endReason,
    framesIn: item.framesIn,
    framesOut: item.framesOut,
    chunksToAgent: item.chunksToAgent,
    bargeIns: item.bargeIns,
    timeToFirstAgentAudioMs: item.timeToFirstAgentAudioMs,
    agentReadyMs: item.agentReadyMs,
    agentPreconnected: item.agentPreconnected,
    apology: item.apology as CallRecord['apology'],
    recordingPath: item.recordingPath,
    transcripts: turns.map((t) => ({ role: String(t.role) as Transcript['role'], text: String(t.text), final: bool(t.final) })),
    recordedAt: item.recordedAt,
    recordState: item.recordState,
    ownerInstance: item.ownerInstance,
    ownerWorker: item.ownerWorker,
    // Records of calls without a profile read back as they were written: no `profile` key.
    ...(item.profile !== null ? { profile: item.profile } : {}),
  };
}

/** Opaque history cursor: the (started_at, call_sid) of the last row of a page. */
export function encodeCursor(item: { startedAt: string; callSid: string }): string {
  return Buffer.from(`${item.startedAt}\n${item.callSid}`, 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string): { startedAt: string; callSid: string } | undefined {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const nl = text.indexOf('\n');
  if (nl <= 0) return undefined;
  const startedAt = text.slice(0, nl);
  const callSid = text.slice(nl + 1);
  if (Number.isNaN(Date.parse(startedAt)) || callSid.length === 0 || callSid.length > 64) return undefined;
  return { startedAt: new Date(startedAt).toISOString(), callSid };
}
