/**
 * `voice-bridge calls [--limit N] [--before CURSOR] [--q TEXT] [--agent NAME] [--profile NAME]
 * [--end-reason REASON[*]] [--json] [CallSid]`: the persisted calls, newest first, from
 * the same store the bridge writes (DATABASE_URL, or the SQLite file under
 * BRIDGE_DATA_DIR), filtered as GET /calls/history filters. Reads only: it never
 * touches the outbox, which belongs to the running bridge, but it reports how many
 * records wait there.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { CallDb } from './call-db.js';
import { MAX_LIST_LIMIT, listFilter, type ListFilter } from './call-db.js';
import { PostgresDb } from './postgres-db.js';
import { decodeCursor, encodeCursor, type CallListItem, type StoredCall } from './record-row.js';
import { SqliteEngine, isTransientSqliteError } from './sqlite-engine.js';
import { loadStoreConfig, redactUrl, type StoreConfig } from './store-config.js';
import { StoreError } from './store-error.js';

export interface CommandIo {
  out(text: string): void;
  err(text: string): void;
}

export const CALLS_USAGE = `usage: voice-bridge calls [--limit N] [--before CURSOR] [--q TEXT] [--agent NAME] [--profile NAME] [--end-reason REASON] [--json] [CallSid]

Lists the persisted calls, newest first (DATABASE_URL, else BRIDGE_DATA_DIR/calls.sqlite),
or shows one call in full with its transcript. Filters combine (AND):
      --limit N            calls per page, 1-${MAX_LIST_LIMIT} (default 20)
      --before CURSOR      the next (older) page: the cursor of the "more:" line
      --q TEXT             a number fragment or text, anywhere in From or To
                           (case-insensitive; % and _ match themselves; at most 64 characters)
      --agent NAME         calls of this agent (exact)
      --profile NAME       calls answered by this profile (exact)
      --end-reason REASON  this end reason exactly, or every one starting with it when it
                           ends with * (quote it: --end-reason 'agent-ended*')
      --json               JSON instead of a table
  -h, --help               this text
Exit codes: 0, 1 (database unavailable or CallSid not found), 2 (usage), 78 (configuration).`;

/** Runs the command; returns the exit code (0 ok, 1 database failure, 2 usage, 78 configuration). */
export async function callsCommand(argv: string[], env: Readonly<Record<string, string | undefined>> = process.env, io: CommandIo = { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) }): Promise<number> {
  let values: { limit?: string; before?: string; q?: string; agent?: string; profile?: string; 'end-reason'?: string; json?: boolean; help?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        limit: { type: 'string' },
        before: { type: 'string' },
        q: { type: 'string' },
        agent: { type: 'string' },
        profile: { type: 'string' },
        'end-reason': { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (e) {
    io.err(`${(e as Error).message}\n${CALLS_USAGE}\n`);
    return 2;
  }
  if (values.help) {
    io.out(`${CALLS_USAGE}\n`);
    return 0;
  }
  const limit = values.limit === undefined ? 20 : Number(values.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
    io.err(`--limit must be an integer from 1 to ${MAX_LIST_LIMIT}\n`);
    return 2;
  }
  const before = values.before === undefined ? undefined : decodeCursor(values.before);
  if (values.before !== undefined && !before) {
    io.err('--before: not a cursor printed by a previous page\n');
    return 2;
  }
  let filter: ListFilter | undefined;
  try {
    filter = listFilter({ q: values.q, agent: values.agent, profile: values.profile, endReason: values['end-reason'] });
  } catch (e) {
    io.err(`--${((e as Error).message).replace(/^endReason/, 'end-reason')}\n`);
    return 2;
  }
  if (filter && positionals[0]) {
    io.err(`give a CallSid or filters, not both\n${CALLS_USAGE}\n`);
    return 2;
  }
  let sc: StoreConfig;
  try {
    sc = loadStoreConfig(env);
  } catch (e) {
    io.err(`${(e as Error).message}\n`);
    return 78;
  }
  const waiting = outboxWaiting(sc.dataDir);
  if (sc.kind === 'sqlite' && !existsSync(sc.sqlitePath)) {
    if (values.json) io.out(`${JSON.stringify({ calls: [], next: null, outboxWaiting: waiting })}\n`);
    else io.out(`no call records yet (${sc.sqlitePath} does not exist)${waiting ? `; ${waiting} waiting in the outbox` : ''}\n`);
    return positionals[0] ? 1 : 0;
  }
  const target = sc.kind === 'postgres' ? redactUrl(sc.databaseUrl!) : sc.sqlitePath;
  let db: ReadDb;
  try {
    db = sc.kind === 'postgres' ? new PostgresDb(sc.databaseUrl!, sc.dbTimeoutMs) : new SqliteReadDb(sc.sqlitePath);
  } catch (e) {
    io.err(`cannot open ${target}: ${(e as Error).message}\n`);
    return 1;
  }
  try {
    await db.migrate();
    if (positionals[0]) {
      const call = await db.get(positionals[0]);
      if (!call) {
        io.err(`no recorded call ${positionals[0]} in ${target}\n`);
        return 1;
      }
      io.out(values.json ? `${JSON.stringify(call)}\n` : formatCall(call));
      return 0;
    }
    const rows = await db.list({ limit: limit + 1, before, ...(filter ? { filter } : {}) });
    const more = rows.length > limit;
    if (more) rows.length = limit;
    const next = more ? encodeCursor(rows[rows.length - 1]!) : null;
    if (values.json) io.out(`${JSON.stringify({ calls: rows, next, outboxWaiting: waiting })}\n`);
    else io.out(formatTable(rows, next, waiting, target, filterArgs(values)));
    return 0;
  } catch (e) {
    io.err(`call records unavailable (${target}): ${(e as Error).message}\n`);
    return 1;
  } finally {
    await db.close().catch(() => undefined);
  }
}

type ReadDb = Pick<CallDb, 'migrate' | 'list' | 'get' | 'close'>;

/** In-process SQLite for the CLI (a short-lived process: blocking is fine); retries a lock held by the bridge. */
class SqliteReadDb implements ReadDb {
  readonly #engine: SqliteEngine;
  constructor(path: string) {
    this.#engine = new SqliteEngine(path, { fileMustExist: true });
  }
  async #retry<T>(fn: () => T | Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (e) {
        if (attempt >= 30 || !isTransientSqliteError(e)) throw e;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }
  migrate = () => this.#retry(() => this.#engine.migrate());
  list = (q: Parameters<CallDb['list']>[0]) => this.#retry(() => this.#engine.list(q));
  get = (sid: string) => this.#retry(() => this.#engine.get(sid));
  close = async () => this.#engine.close();
}

/** Records in the outbox files (written by a bridge, not yet in the database). */
function outboxWaiting(dir: string): number {
  let n = 0;
  try {
    for (const f of readdirSync(dir)) {
      if (!/^outbox.*\.jsonl$/.test(f) || f.endsWith('-rejected.jsonl')) continue;
      const text = readFileSync(join(dir, f));
      for (let i = text.indexOf(0x0a); i !== -1; i = text.indexOf(0x0a, i + 1)) n++;
    }
  } catch {
    // no data dir yet
  }
  return n;
}

const ms = (v: number | null): string => (v === null ? '-' : `${v} ms`);
function duration(msTotal: number): string {
  const s = Math.round(msTotal / 1000);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}

/** A value as one shell word (single-quoted unless plainly safe). */
function shellWord(v: string): string {
  return /^[\w@%+=:,./-]+$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`;
}

/** The filter flags as given, for the "more:" line (the next page needs the same filters). */
function filterArgs(v: { q?: string; agent?: string; profile?: string; 'end-reason'?: string }): string {
  return (['q', 'agent', 'profile', 'end-reason'] as const)
    .filter((k) => v[k] !== undefined && v[k]!.trim() !== '')
    .map((k) => ` --${k} ${shellWord(v[k]!)}`)
    .join('');
}

function formatTable(rows: CallListItem[], next: string | null, waiting: number, target: string, filters = ''): string {
  if (rows.length === 0) return `no ${filters ? 'matching calls' : 'calls recorded'} in ${target}${waiting ? `; ${waiting} waiting in the outbox` : ''}\n`;
  const head = ['STARTED (UTC)', 'CALL SID', 'AGENT', 'DURATION', 'END REASON', 'FRAMES IN/OUT', 'CONCEALED', 'UNDERRUNS', 'BARGE-INS', 'FIRST AUDIO', 'TURNS'];
  const body = rows.map((r) => [
    r.startedAt.replace('T', ' ').slice(0, 19),
    r.callSid,
    r.agent ?? '-',
    duration(r.durationMs),
    r.endReason ?? '-',
    `${r.framesIn}/${r.framesOut}`,
    r.jitterConcealed === null ? '-' : String(r.jitterConcealed),
    r.playoutUnderruns === null ? '-' : String(r.playoutUnderruns),
    String(r.bargeIns),
    ms(r.timeToFirstAgentAudioMs),
    String(r.transcriptTurns),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  let out = `${[line(head), ...body.map(line)].join('\n')}\n`;
  if (next) out += `more: voice-bridge calls --limit ${rows.length}${filters} --before ${next}\n`;
  if (waiting) out += `${waiting} record(s) waiting in the outbox (not yet in the database)\n`;
  return out;
}

function formatCall(c: StoredCall): string {
  const lines = [
    `call ${c.callSid}  stream ${c.streamSid ?? '-'}  agent ${c.agent ?? '-'}`,
    `from ${c.from ?? '-'}  to ${c.to ?? '-'}`,
    `started ${c.startedAt}  ended ${c.endedAt ?? '-'}  duration ${duration(c.durationMs)}  end reason ${c.endReason ?? '-'}`,
    `frames in ${c.framesIn}  out ${c.framesOut}  chunks to agent ${c.chunksToAgent}`,
    `jitter late ${c.jitter?.late ?? '-'}  lost ${c.jitter?.lost ?? '-'}  concealed ${c.jitter?.concealed ?? '-'}  underruns ${c.playout?.underruns ?? '-'}  barge-ins ${c.bargeIns}`,
    `agent ready ${ms(c.agentReadyMs)}${c.agentPreconnected ? ' (pre-connected)' : ''}  first agent audio ${ms(c.timeToFirstAgentAudioMs)}`,
    ...(c.recordingPath ? [`recording ${c.recordingPath}`] : []),
    `transcript (${c.transcripts.length} turns):`,
    ...c.transcripts.map((t) => `  ${t.role === 'agent' ? 'agent ' : 'caller'}: ${t.text}`),
  ];
  return `${lines.join('\n')}\n`;
}

