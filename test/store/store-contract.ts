/**
 * One contract for the call-record store, run against SQLite (a real file in a temp
 * dir) and PostgreSQL (a real server): migrations, round-trip of every field,
 * idempotent upserts, paging, the database going away and coming back, a crash with
 * records only in the outbox, the history route on a real fastify, and the CLI.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import Fastify from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openCallStore, type CallStore } from '../../src/store/call-store.js';
import { historyRoutes } from '../../src/store/history-route.js';
import { adminAuth } from '../../src/server/admin-auth.js';
import { useProblemDetails } from '../../src/server/problem.js';
import { callsCommand } from '../../src/store/calls-command.js';
import type { CallRecord } from '../../src/call/call-manager.js';
import { fullRecord, tempDir, waitFor } from './helpers.js';

export interface Backend {
  name: 'sqlite' | 'postgres';
  /** Per test: a fresh database (a new temp dir for SQLite, a new schema for PostgreSQL). */
  setup(dataDir: string): Promise<void>;
  teardown(): Promise<void>;
  /** The store's env while the database is reachable. */
  env(dataDir: string): Record<string, string>;
  /** Make the database unreachable / reachable again (same env). */
  takeDown(): Promise<void>;
  bringUp(): Promise<void>;
  /**
   * Whether reads still work while "down": SQLite in WAL mode is down for writes when
   * another connection holds the write lock, and its readers are never blocked;
   * PostgreSQL behind a cut network answers nothing.
   */
  readsWhileDown: boolean;
  /** Read straight from the database with its own client. */
  appliedMigrations(): Promise<{ version: number; name: string }[]>;
  countRows(table: 'calls' | 'call_transcripts', callSid?: string): Promise<number>;
}

const ADMIN = 'test-admin-token';
/** What a stored record adds to the record handed in: its row state and owner (a process without --workers). */
const STORED = { recordState: 'completed', ownerInstance: expect.any(String), ownerWorker: -1 };
/** The bridge's own admin check (an onRequest hook): the route must not reimplement it. */
const requireAdmin = adminAuth({ adminToken: ADMIN, loopbackOnly: true }).admin;

function captureIo() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (t: string) => void out.push(t), err: (t: string) => void err.push(t) }, out: () => out.join(''), err: () => err.join('') };
}

export function storeContract(b: Backend): void {
  describe(`call-record store on ${b.name}`, () => {
    let tmp: ReturnType<typeof tempDir>;
    const open: CallStore[] = [];
    const openStore = async (): Promise<CallStore> => {
      const s = await openCallStore({ env: b.env(tmp.dir) });
      open.push(s);
      return s;
    };

    beforeEach(async () => {
      tmp = tempDir();
      await b.setup(tmp.dir);
    });
    afterEach(async () => {
      await b.bringUp();
      for (const s of open.splice(0)) await s.close();
      await b.teardown();
      tmp.remove();
    });

    it('creates the schema on first start, and a second start applies nothing', async () => {
      const s1 = await openStore();
      expect(s1.stats()).toMatchObject({ backend: b.name, dbReady: true, outboxDepth: 0 });
      expect(await b.appliedMigrations()).toEqual([
        { version: 1, name: 'calls and transcript turns' },
        { version: 2, name: 'rows from stream start, keyed by call and stream; process runs' },
        { version: 3, name: 'the profile that answered a call' },
      ]);
      await s1.close();
      open.length = 0;
      const s2 = await openStore();
      expect(s2.stats().dbReady).toBe(true);
      expect(await b.appliedMigrations()).toEqual([
        { version: 1, name: 'calls and transcript turns' },
        { version: 2, name: 'rows from stream start, keyed by call and stream; process runs' },
        { version: 3, name: 'the profile that answered a call' },
      ]);
      expect(await b.countRows('calls')).toBe(0);
    });

    it('a record round-trips with every field, transcript turns in order', async () => {
      const s = await openStore();
      const r: CallRecord = { ...fullRecord(), profile: 'support' };
      s.record(r);
      expect(await s.flush(10_000)).toBe(true);
      const got = await s.get(r.callSid!);
      expect(got).toEqual({ ...r, ...STORED, recordedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) });
      expect(await b.countRows('call_transcripts', r.callSid!)).toBe(3);
      const page = await s.list({ limit: 10 });
      expect(page.next).toBeNull();
      expect(page.calls).toEqual([
        {
          callSid: r.callSid,
          streamSid: r.streamSid,
          agent: r.agent,
          from: r.from,
          to: r.to,
          startedAt: r.startedAt,
          endedAt: r.endedAt,
          durationMs: r.durationMs,
          endReason: r.endReason,
          framesIn: r.framesIn,
          framesOut: r.framesOut,
          chunksToAgent: r.chunksToAgent,
          jitterLate: 4,
          jitterLost: 7,
          jitterConcealed: 9,
          playoutUnderruns: 2,
          bargeIns: 1,
          timeToFirstAgentAudioMs: 812,
          agentReadyMs: 0,
          agentPreconnected: true,
          apology: 'prompt',
          recordingPath: r.recordingPath,
          transcriptTurns: 3,
          recordedAt: got!.recordedAt,
          ...STORED,
          profile: 'support',
        },
      ]);
      expect(await s.get('CA' + 'f'.repeat(32))).toBeUndefined();
    });

    it('a record with nulls (a call that never reached its agent) and hostile text round-trips', async () => {
      const s = await openStore();
      const r: CallRecord = {
        ...fullRecord(),
        agent: null,
        streamSid: null,
        from: null,
        to: null,
        endReason: 'agent-connect-failed',
        jitter: null,
        playout: null,
        timeToFirstAgentAudioMs: null,
        agentReadyMs: null,
        agentPreconnected: false,
        apology: null,
        recordingPath: null,
        lastHeardMs: null,
        transcripts: [{ role: 'caller', text: "'; DROP TABLE calls; -- ? $1 \\ \"q\" 日本語", final: true }],
      };
      s.record(r);
      expect(await s.flush(10_000)).toBe(true);
      expect(await s.get(r.callSid!)).toEqual({ ...r, ...STORED, recordedAt: expect.any(String) });
      // NUL and lone surrogates cannot be stored in PostgreSQL text: replaced, not rejected.
      const nul: CallRecord = { ...fullRecord(), transcripts: [{ role: 'agent', text: 'a\u0000b\ud800c', final: true }] };
      s.record(nul);
      expect(await s.flush(10_000)).toBe(true);
      expect((await s.get(nul.callSid!))!.transcripts[0]!.text).toBe('a\ufffdb\ufffdc');
      expect(s.stats().rejected).toBe(0);
    });

    it('writing the same CallSid again updates the one row and replaces its turns', async () => {
      const s = await openStore();
      const r = fullRecord();
      s.record(r);
      s.record(r);
      expect(await s.flush(10_000)).toBe(true);
      s.record({ ...r, endReason: 'agent-ended', transcripts: [{ role: 'agent', text: 'bye', final: true }] });
      expect(await s.flush(10_000)).toBe(true);
      expect(await b.countRows('calls')).toBe(1);
      expect(await b.countRows('call_transcripts', r.callSid!)).toBe(1);
      expect(await s.get(r.callSid!)).toMatchObject({ endReason: 'agent-ended', transcripts: [{ role: 'agent', text: 'bye', final: true }] });
    });

    it('pages newest first by cursor and by page number, ties on start time included', async () => {
      const s = await openStore();
      const records = Array.from({ length: 23 }, () => fullRecord());
      // Three calls that started in the same millisecond: the cursor must not skip or repeat them.
      const tie = records[10]!.startedAt;
      records[11] = { ...records[11]!, startedAt: tie };
      records[12] = { ...records[12]!, startedAt: tie };
      for (const r of records) s.record(r);
      expect(await s.flush(10_000)).toBe(true);
      const expected = [...records].sort((x, y) => (x.startedAt === y.startedAt ? (x.callSid! < y.callSid! ? 1 : -1) : x.startedAt < y.startedAt ? 1 : -1)).map((r) => r.callSid);

      const seen: (string | null)[] = [];
      let before: string | undefined;
      let pages = 0;
      do {
        const page = await s.list({ limit: 5, before });
        seen.push(...page.calls.map((c) => c.callSid));
        before = page.next ?? undefined;
        pages++;
      } while (before && pages < 10);
      expect(pages).toBe(5);
      expect(seen).toEqual(expected);

      const p2 = await s.list({ limit: 10, page: 2 });
      expect(p2.calls.map((c) => c.callSid)).toEqual(expected.slice(10, 20));
      const p3 = await s.list({ limit: 10, page: 3 });
      expect(p3.calls.map((c) => c.callSid)).toEqual(expected.slice(20));
      expect(p3.next).toBeNull();
      await expect(s.list({ limit: 0 })).rejects.toThrow(RangeError);
      await expect(s.list({ before: 'not-a-cursor' })).rejects.toThrow(RangeError);
    });

    it('database down: record() returns at once, the outbox grows; back up: every record lands exactly once', async () => {
      const s = await openStore();
      s.record(fullRecord());
      expect(await s.flush(10_000)).toBe(true);
      await b.takeDown();

      const records = Array.from({ length: 40 }, () => fullRecord());
      for (const r of records) s.record(r);
      // No I/O on the caller's path: all 40 are only queued when record() returns (the
      // write happens on a later turn). A state, not a wall-clock bound: a loaded box
      // may pause any synchronous call for milliseconds (GC, preemption).
      expect(s.stats().outboxUnsynced).toBe(40);
      await waitFor('a failed write attempt', () => s.stats().writeFailures > 0, 20_000);
      await waitFor('the outbox to hold the records on disk', () => s.stats().outboxUnsynced === 0);
      expect(s.stats()).toMatchObject({ outboxDepth: 40, dbReady: false });
      // flush while down: bounded, reports not done, loses nothing.
      const t0 = Date.now();
      expect(await s.flush(300)).toBe(false);
      expect(Date.now() - t0).toBeLessThan(3000);
      expect(s.stats().outboxDepth).toBe(40);
      // More calls end while the database is away.
      const more = Array.from({ length: 10 }, () => fullRecord());
      for (const r of more) s.record(r);

      await b.bringUp();
      expect(await s.flush(30_000)).toBe(true);
      expect(s.stats()).toMatchObject({ outboxDepth: 0, dbReady: true, rejected: 0, dropped: 0 });
      expect(await b.countRows('calls')).toBe(51);
      for (const r of [...records, ...more]) expect(await b.countRows('call_transcripts', r.callSid!)).toBe(3);
    });

    it('crash: records only in the outbox when the process is killed are written on the next start', async () => {
      await b.takeDown();
      const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'crash-child.ts'), tmp.dir, b.env(tmp.dir).DATABASE_URL ?? '-', '9000', '25'], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      const exited = new Promise<NodeJS.Signals | null>((r) => child.on('exit', (_c, sig) => r(sig)));
      await waitFor('the child to report its outbox durable', () => /durable|timeout/.test(out) || child.exitCode !== null, 30_000);
      expect(out).toMatch(/^durable 25 written 0/);
      child.kill('SIGKILL');
      expect(await exited).toBe('SIGKILL');
      await b.bringUp();

      const s = await openStore();
      expect(await s.flush(30_000)).toBe(true);
      expect(await b.countRows('calls')).toBe(25);
      for (let i = 0; i < 25; i++) expect((await s.get(fullRecord(9000 + i).callSid!))?.transcripts).toHaveLength(3);
      // And a third start replays nothing more: the outbox was emptied once written.
      await s.close();
      open.length = 0;
      const s3 = await openStore();
      expect(s3.stats().outboxDepth).toBe(0);
      expect(await b.countRows('calls')).toBe(25);
    });

    it('GET /calls/history on a real fastify: admin token required, cursor paging, one call in full, 503 when the database is away', async () => {
      const s = await openStore();
      const records = Array.from({ length: 7 }, () => fullRecord());
      for (const r of records) s.record(r);
      expect(await s.flush(10_000)).toBe(true);
      const app = Fastify();
      useProblemDetails(app);
      await app.register(historyRoutes, { store: s, onRequest: requireAdmin });
      const base = await app.listen({ port: 0, host: '127.0.0.1' });
      try {
        const get = async (path: string, token?: string) => {
          const res = await fetch(`${base}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {}, signal: AbortSignal.timeout(15_000) });
          return { status: res.status, body: (await res.json()) as Record<string, any> };
        };
        expect(await get('/calls/history')).toEqual({ status: 401, body: { type: 'tag:voice-bridge,2026:error:BRIDGE_ERR_ADMIN_AUTH', title: 'A missing or wrong admin token.', status: 401, detail: 'missing or wrong admin token', code: 'BRIDGE_ERR_ADMIN_AUTH' } });
        expect((await get('/calls/history', 'wrong')).status).toBe(401);
        expect((await get(`/calls/history/${records[0]!.callSid}`)).status).toBe(401);

        const p1 = await get('/calls/history?limit=4', ADMIN);
        expect(p1.status).toBe(200);
        expect(p1.body.calls.map((c: { callSid: string }) => c.callSid)).toEqual(records.slice(3).reverse().map((r) => r.callSid));
        expect(p1.body.outbox).toEqual({ depth: 0 });
        const p2 = await get(`/calls/history?limit=4&before=${p1.body.next}`, ADMIN);
        expect(p2.body.calls.map((c: { callSid: string }) => c.callSid)).toEqual(records.slice(0, 3).reverse().map((r) => r.callSid));
        expect(p2.body.next).toBeNull();
        const byPage = await get('/calls/history?limit=4&page=2', ADMIN);
        expect(byPage.body.calls).toEqual(p2.body.calls);
        expect(byPage.body.page).toBe(2);

        const one = await get(`/calls/history/${records[2]!.callSid}`, ADMIN);
        expect(one.status).toBe(200);
        expect(one.body).toEqual({ ...records[2], ...STORED, recordedAt: expect.any(String) });
        expect((await get(`/calls/history/CA${'0'.repeat(31)}f`, ADMIN)).body.code).toBe('BRIDGE_ERR_CALL_NOT_FOUND');

        for (const bad of ['limit=0', 'limit=501', 'limit=x', 'page=0', 'before=zzz', 'page=1&before=abc']) {
          const r = await get(`/calls/history?${bad}`, ADMIN);
          expect([bad, r.status, r.body.code]).toEqual([bad, 400, 'BRIDGE_ERR_BAD_REQUEST']);
        }

        await b.takeDown();
        const down = await get('/calls/history', ADMIN);
        if (b.readsWhileDown) expect(down.status).toBe(200);
        else {
          expect(down.status).toBe(503);
          expect(down.body.code).toBe('BRIDGE_ERR_STORE_UNAVAILABLE');
        }
        await b.bringUp();
        expect((await get('/calls/history', ADMIN)).status).toBe(200);
      } finally {
        await app.close();
      }
    });

    it('voice-bridge calls: a table, --limit with a "more" line, --json, one call by CallSid', async () => {
      const s = await openStore();
      const records = Array.from({ length: 3 }, () => fullRecord());
      for (const r of records) s.record(r);
      expect(await s.flush(10_000)).toBe(true);
      const env = b.env(tmp.dir);

      const t = captureIo();
      expect(await callsCommand([], env, t.io)).toBe(0);
      const lines = t.out().trimEnd().split('\n');
      expect(lines[0]).toMatch(/^STARTED \(UTC\)\s+CALL SID\s+AGENT\s+DURATION\s+END REASON\s+FRAMES IN\/OUT\s+CONCEALED\s+UNDERRUNS\s+BARGE-INS\s+FIRST AUDIO\s+TURNS$/);
      expect(lines).toHaveLength(4);
      const newest = records[2]!;
      expect(lines[1]).toContain(newest.callSid);
      expect(lines[1]).toMatch(new RegExp(`${newest.startedAt.slice(0, 10)} ${newest.startedAt.slice(11, 19)}\\s+${newest.callSid}\\s+${newest.agent}\\s+1m01s\\s+twilio-stop\\s+${newest.framesIn}/${newest.framesOut}\\s+9\\s+2\\s+1\\s+812 ms\\s+3$`));

      const lim = captureIo();
      expect(await callsCommand(['--limit', '2'], env, lim.io)).toBe(0);
      const more = lim.out().trimEnd().split('\n').at(-1)!;
      expect(more).toMatch(/^more: voice-bridge calls --limit 2 --before \S+$/);
      const rest = captureIo();
      expect(await callsCommand(['--limit', '2', '--before', more.split(' ').at(-1)!], env, rest.io)).toBe(0);
      expect(rest.out()).toContain(records[0]!.callSid);
      expect(rest.out()).not.toContain(records[1]!.callSid);

      const j = captureIo();
      expect(await callsCommand(['--json', '--limit', '5'], env, j.io)).toBe(0);
      const parsed = JSON.parse(j.out());
      expect(parsed.calls.map((c: { callSid: string }) => c.callSid)).toEqual(records.map((r) => r.callSid).reverse());
      expect(parsed).toMatchObject({ next: null, outboxWaiting: 0 });

      const one = captureIo();
      expect(await callsCommand([records[0]!.callSid!], env, one.io)).toBe(0);
      expect(one.out()).toContain('transcript (3 turns):');
      expect(one.out()).toContain('  agent : Let me check: order 4471 ships tomorrow. 🚚');

      const bad = captureIo();
      expect(await callsCommand(['--limit', 'lots'], env, bad.io)).toBe(2);
      expect(bad.err()).toMatch(/--limit must be an integer/);
    });
  });
}
