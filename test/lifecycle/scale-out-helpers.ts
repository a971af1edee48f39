/**
 * Shared pieces of the scale-out tests: a call placed the way Twilio does it (voice
 * webhook, then the stream the TwiML names, with its <Parameter>s), and straight
 * reads of the call records a bridge wrote, in SQLite or in a throwaway PostgreSQL
 * schema.
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import pg from 'pg';
import { runSimulatedCall, type SimulatedCallOptions, type SimulatedCallResult } from '../../src/sim/simulator.js';
import { callSid as newCallSid, form } from './child-bridge.js';

export const FROM = '+15551230000';
export const TO = '+15557650000';

export interface Webhooked {
  callSid: string;
  streamUrl: string;
  customParameters: Record<string, string>;
  twiml: string;
}

/** POST /twilio/voice as Twilio would (CallSid, From, To), and what its TwiML says: the stream URL and parameters. */
export async function webhook(baseUrl: string, query = 'format=ulaw', sid = newCallSid()): Promise<Webhooked> {
  const r = await fetch(`${baseUrl}/twilio/voice?${query}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', connection: 'close' }, body: form({ CallSid: sid, From: FROM, To: TO }) });
  const twiml = await r.text();
  if (r.status !== 200) throw new Error(`voice webhook answered ${r.status}: ${twiml}`);
  const url = /<Stream url="([^"]+)"/.exec(twiml)?.[1];
  if (!url) throw new Error(`no <Stream> in the TwiML: ${twiml}`);
  const customParameters: Record<string, string> = {};
  for (const m of twiml.matchAll(/<Parameter name="([^"]+)" value="([^"]*)"\/>/g)) customParameters[m[1]!] = m[2]!.replace(/&amp;/g, '&').replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>');
  return { callSid: sid, streamUrl: url.replace(/&amp;/g, '&'), customParameters, twiml };
}

/** Webhook, then the stream it names (optionally redirected to `viaStreamBase`, e.g. a balancer's ws:// origin). */
export async function placeCall(baseUrl: string, sim: Omit<SimulatedCallOptions, 'url' | 'callSid' | 'customParameters'>, query?: string): Promise<{ hook: Webhooked; result: Promise<SimulatedCallResult> }> {
  const hook = await webhook(baseUrl, query);
  return { hook, result: runSimulatedCall({ ...sim, url: hook.streamUrl, callSid: hook.callSid, customParameters: hook.customParameters }) };
}

export interface RecordRow {
  call_sid: string;
  stream_sid: string;
  record_state: string;
  end_reason: string | null;
  from_number: string | null;
  to_number: string | null;
  owner_instance: string | null;
  owner_worker: number | null;
  agent_preconnected: boolean;
  ended_at: string | null;
}

const COLS = 'call_sid, stream_sid, record_state, end_reason, from_number, to_number, owner_instance, owner_worker, agent_preconnected, ended_at';

/** Where a bridge's records go, and a reader of them. */
export interface RecordsDb {
  kind: 'sqlite' | 'postgres';
  /** Env for the bridge (BRIDGE_DATA_DIR is given by the caller for SQLite). */
  env(dataDir: string): Record<string, string>;
  rows(dataDir: string): Promise<RecordRow[]>;
  runs(dataDir: string): Promise<{ worker: number; pid: number; stopped_at: unknown; instance_id: string }[]>;
  close(): Promise<void>;
}

type BetterDb = { prepare(sql: string): { all(): unknown[] }; close(): void };
const BetterSqlite = createRequire(import.meta.url)('better-sqlite3') as new (p: string, o?: { readonly?: boolean; fileMustExist?: boolean }) => BetterDb;

export function sqliteRecords(): RecordsDb {
  const read = <T>(dataDir: string, sql: string): T[] => {
    const db = new BetterSqlite(join(dataDir, 'calls.sqlite'), { fileMustExist: true });
    try {
      return db.prepare(sql).all() as T[];
    } finally {
      db.close();
    }
  };
  return {
    kind: 'sqlite',
    env: () => ({}),
    rows: async (dir) => read<RecordRow>(dir, `SELECT ${COLS} FROM calls`).map((r) => ({ ...r, agent_preconnected: Boolean(r.agent_preconnected) })),
    runs: async (dir) => read(dir, 'SELECT worker, pid, stopped_at, instance_id FROM bridge_runs'),
    close: async () => undefined,
  };
}

/** A fresh schema in TEST_DATABASE_URL's database (npm test provisions one); dropped on close. */
export async function postgresRecords(): Promise<RecordsDb> {
  const base = process.env.TEST_DATABASE_URL;
  if (!base) throw new Error('TEST_DATABASE_URL is not set: npm test provisions PostgreSQL (scripts/ci-postgres.sh)');
  const schema = `vb_scale_${Date.now().toString(36)}_${Math.floor(Math.random() * 1e6)}`;
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${schema}`);
  const u = new URL(base);
  u.searchParams.set('options', `-c search_path=${schema}`);
  return {
    kind: 'postgres',
    env: () => ({ DATABASE_URL: u.toString() }),
    rows: async () => (await admin.query(`SELECT ${COLS} FROM ${schema}.calls`)).rows as RecordRow[],
    runs: async () => (await admin.query(`SELECT worker, pid, stopped_at, instance_id FROM ${schema}.bridge_runs`)).rows,
    async close() {
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await admin.end();
    },
  };
}

/** How many rows each CallSid has (a record written twice would show 2). */
export function countBySid(rows: RecordRow[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const r of rows) m.set(r.call_sid, (m.get(r.call_sid) ?? 0) + 1);
  return m;
}
