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
        { version: 4, name: 'history filter indexes: agent, profile, end reason' },
      ]);
      await s1.close();
      open.length = 0;
      const s2 = await openStore();
      expect(s2.stats().dbReady).toBe(true);
      expect(await b.appliedMigrations()).toEqual([
        { version: 1, name: 'calls and transcript turns' },
        { version: 2, name: 'rows from stream start, keyed by call and stream; process runs' },
        { version: 3, name: 'the profile that answered a call' },
        { version: 4, name: 'history filter indexes: agent, profile, end reason' },
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

    it('history filters: q (from or to, case-insensitive), agent, profile, endReason exact or prefix — alone and combined', async () => {
      const s = await openStore();
      const rec = (from: string | null, to: string | null, agent: string | null, profile: string | undefined, endReason: string): CallRecord => {
        const r: CallRecord = { ...fullRecord(), from, to, agent, endReason };
        if (profile !== undefined) r.profile = profile;
        return r;
      };
      const r = {
        us1: rec('+15551230001', '+15557650000', 'echo', 'support', 'twilio-stop'),
        us2: rec('+15551230002', '+15557650000', 'openai', 'sales', 'agent-ended'),
        uk: rec('+447700900123', '+15557650000', 'openai', 'support', 'agent-ended:goodbye'),
        alice: rec('client:Alice_Smith', '+15557650000', 'echo', undefined, 'transferred:+15550001111'),
        alicex: rec('client:AliceXSmith', '+15557650000', 'echo', 'sales', 'transferred'),
        pct: rec('sip:100%off@example.com', '+15550000000', 'elevenlabs', 'promo', 'Agent-Ended'),
        dash: rec('sip:100-off@example.com', '+15550000000', 'elevenlabs', 'promo', 'agent-connect-failed'),
        slash: rec('sip:a\\b@example.com', '+15550000000', 'elevenlabs', undefined, 'twilio-stop'),
        outbound: rec('+15557650000', '+33612345678', 'openai', 'support', 'agent-ended:done'),
        none: rec(null, null, null, undefined, 'agent-connect-failed'),
      };
      for (const x of Object.values(r)) s.record(x);
      expect(await s.flush(10_000)).toBe(true);
      const sids = async (q: Parameters<CallStore['list']>[0]) => (await s.list({ limit: 50, ...q })).calls.map((c) => c.callSid).sort();
      const of = (...xs: CallRecord[]) => xs.map((x) => x.callSid).sort();

      // q: a number fragment, in from or to.
      expect(await sids({ q: '4477' })).toEqual(of(r.uk));
      expect(await sids({ q: '555123000' })).toEqual(of(r.us1, r.us2));
      expect(await sids({ q: '5557650000' })).toEqual(of(r.us1, r.us2, r.uk, r.alice, r.alicex, r.outbound));
      expect(await sids({ q: '+336' })).toEqual(of(r.outbound));
      // Text, case-insensitive; LIKE's wildcards and escape in q match themselves.
      expect(await sids({ q: 'ALICE' })).toEqual(of(r.alice, r.alicex));
      expect(await sids({ q: 'alice_smith' })).toEqual(of(r.alice));
      expect(await sids({ q: '100%off' })).toEqual(of(r.pct));
      expect(await sids({ q: '%' })).toEqual(of(r.pct));
      expect(await sids({ q: '_' })).toEqual(of(r.alice));
      expect(await sids({ q: 'a\\b' })).toEqual(of(r.slash));
      expect(await sids({ q: "'; DROP TABLE calls; --" })).toEqual([]);
      expect(await sids({ q: 'nowhere' })).toEqual([]);
      // agent, profile: exact.
      expect(await sids({ agent: 'openai' })).toEqual(of(r.us2, r.uk, r.outbound));
      expect(await sids({ agent: 'open' })).toEqual([]);
      expect(await sids({ profile: 'support' })).toEqual(of(r.us1, r.uk, r.outbound));
      expect(await sids({ profile: 'sale' })).toEqual([]);
      // endReason: exact (case-sensitive), or a prefix with a trailing *.
      expect(await sids({ endReason: 'agent-ended' })).toEqual(of(r.us2));
      expect(await sids({ endReason: 'agent-ended*' })).toEqual(of(r.us2, r.uk, r.outbound));
      expect(await sids({ endReason: 'transferred*' })).toEqual(of(r.alice, r.alicex));
      expect(await sids({ endReason: 'transferred:*' })).toEqual(of(r.alice));
      expect(await sids({ endReason: 'agent%*' })).toEqual([]);
      expect(await sids({ endReason: 'agent_connect_failed' })).toEqual([]);
      // Combined: AND.
      expect(await sids({ agent: 'openai', profile: 'support' })).toEqual(of(r.uk, r.outbound));
      expect(await sids({ agent: 'openai', profile: 'support', endReason: 'agent-ended*', q: '+1555' })).toEqual(of(r.uk, r.outbound));
      expect(await sids({ agent: 'openai', profile: 'support', endReason: 'agent-ended*', q: '+44' })).toEqual(of(r.uk));
      expect(await sids({ q: '100', agent: 'elevenlabs', endReason: 'agent-connect-failed' })).toEqual(of(r.dash));
      expect(await sids({ agent: 'echo', profile: 'promo' })).toEqual([]);
      // Empty values filter nothing; the list items carry the profile.
      expect(await sids({ q: '', agent: '', profile: '', endReason: '' })).toHaveLength(Object.keys(r).length);
      const page = await s.list({ limit: 50, profile: 'promo' });
      expect(page.calls.map((c) => c.profile)).toEqual(['promo', 'promo']);
      expect((await s.list({ limit: 50, q: 'alice_' })).calls[0]).toMatchObject({ callSid: r.alice.callSid, from: 'client:Alice_Smith', profile: null, endReason: 'transferred:+15550001111' });
      await expect(s.list({ q: 'x'.repeat(65) })).rejects.toThrow(RangeError);
      await expect(s.list({ agent: 'x'.repeat(65) })).rejects.toThrow(RangeError);
    });

    it('paging a filtered history by cursor and by page number returns every match exactly once, in order', async () => {
      const s = await openStore();
      const reasons = ['twilio-stop', 'agent-ended', 'agent-ended:bye', 'transferred:+15550001111'];
      const records = Array.from({ length: 36 }, (_, i) => {
        const r: CallRecord = { ...fullRecord(), agent: i % 3 === 0 ? 'echo' : 'openai', from: `+1555${String(i).padStart(7, '0')}`, to: i % 5 === 0 ? '+447700900000' : '+15557650000', endReason: reasons[i % 4]! };
        if (i % 2) r.profile = 'support';
        return r;
      });
      // Calls that started in the same millisecond, inside the filtered set: the cursor must not skip or repeat them.
      for (const i of [13, 17, 21]) records[i] = { ...records[i]!, startedAt: records[9]!.startedAt };
      for (const r of records) s.record(r);
      expect(await s.flush(10_000)).toBe(true);
      const newestFirst = (x: CallRecord, y: CallRecord) => (x.startedAt === y.startedAt ? (x.callSid! < y.callSid! ? 1 : -1) : x.startedAt < y.startedAt ? 1 : -1);
      const cases: { filter: Parameters<CallStore['list']>[0]; match: (r: CallRecord) => boolean }[] = [
        { filter: { agent: 'openai' }, match: (r) => r.agent === 'openai' },
        { filter: { profile: 'support', endReason: 'agent-ended*' }, match: (r) => r.profile === 'support' && r.endReason!.startsWith('agent-ended') },
        { filter: { q: '555000', agent: 'openai', endReason: 'agent-ended*' }, match: (r) => r.agent === 'openai' && r.from!.includes('555000') && r.endReason!.startsWith('agent-ended') },
        { filter: { q: '4477' }, match: (r) => r.to!.includes('4477') },
      ];
      for (const { filter, match } of cases) {
        const expected = records.filter(match).sort(newestFirst).map((r) => r.callSid);
        expect(expected.length).toBeGreaterThan(3);
        const byCursor: (string | null)[] = [];
        let before: string | undefined;
        for (let pages = 0; pages < 20; pages++) {
          const page = await s.list({ limit: 3, before, ...filter });
          byCursor.push(...page.calls.map((c) => c.callSid));
          before = page.next ?? undefined;
          if (!before) break;
        }
        expect([filter, byCursor]).toEqual([filter, expected]);
        const byPage: (string | null)[] = [];
        for (let n = 1; n <= 20; n++) {
          const page = await s.list({ limit: 3, page: n, ...filter });
          byPage.push(...page.calls.map((c) => c.callSid));
          if (!page.next) break;
        }
        expect([filter, byPage]).toEqual([filter, expected]);
      }
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

        // Filters, with either paging.
        const f1 = await get('/calls/history?limit=2&agent=openai', ADMIN);
        const openai = records.filter((r) => r.agent === 'openai').reverse().map((r) => r.callSid);
        expect(f1.body.calls.map((c: { callSid: string }) => c.callSid)).toEqual(openai.slice(0, 2));
        const f2 = await get(`/calls/history?limit=2&agent=openai&before=${f1.body.next}`, ADMIN);
        expect(f2.body.calls.map((c: { callSid: string }) => c.callSid)).toEqual(openai.slice(2));
        expect((await get('/calls/history?limit=2&agent=openai&page=2', ADMIN)).body.calls).toEqual(f2.body.calls);
        const f3 = await get(`/calls/history?q=${encodeURIComponent('+1555123')}&endReason=${encodeURIComponent('twilio-*')}&profile=nobody`, ADMIN);
        expect([f3.status, f3.body.calls]).toEqual([200, []]);
        const f4 = await get(`/calls/history?q=${encodeURIComponent('%')}&endReason=${encodeURIComponent('twilio-*')}`, ADMIN);
        expect([f4.status, f4.body.calls]).toEqual([200, []]);
        const f5 = await get(`/calls/history?q=${encodeURIComponent('+1555123')}&endReason=${encodeURIComponent('twilio-*')}`, ADMIN);
        expect(f5.body.calls).toHaveLength(7);
        expect((await get(`/calls/history?q=${'5'.repeat(64)}`, ADMIN)).status).toBe(200);

        for (const bad of ['limit=0', 'limit=501', 'limit=x', 'page=0', 'before=zzz', 'page=1&before=abc', `q=${'5'.repeat(65)}`, `agent=${'a'.repeat(65)}`, `profile=${'p'.repeat(65)}`, `endReason=${'e'.repeat(129)}`, 'agent=a&agent=b']) {
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

    it('voice-bridge calls --q --agent --profile --end-reason: filters, kept on the "more" line', async () => {
      const s = await openStore();
      const records = [
        { ...fullRecord(), agent: 'openai', profile: 'support', endReason: 'agent-ended:bye', from: '+15551110001' },
        { ...fullRecord(), agent: 'openai', profile: 'support', endReason: 'twilio-stop', from: '+15551110002' },
        { ...fullRecord(), agent: 'echo', profile: 'support', endReason: 'agent-ended', from: '+15551110003' },
        { ...fullRecord(), agent: 'openai', profile: 'sales', endReason: 'agent-ended', from: '+15551110004' },
        { ...fullRecord(), agent: 'openai', profile: 'support', endReason: 'agent-ended', from: 'client:o_brien' },
        { ...fullRecord(), agent: 'openai', profile: 'support', endReason: 'agent-ended', from: '+15551110006' },
      ];
      for (const r of records) s.record(r);
      expect(await s.flush(10_000)).toBe(true);
      const env = b.env(tmp.dir);
      const flags = ['--agent', 'openai', '--profile', 'support', '--end-reason', 'agent-ended*', '--q', '555111'];
      const p1 = captureIo();
      expect(await callsCommand(['--limit', '1', ...flags], env, p1.io)).toBe(0);
      const lines = p1.out().trimEnd().split('\n');
      expect(lines[1]).toContain(records[5]!.callSid);
      const more = lines.at(-1)!;
      expect(more).toMatch(/^more: voice-bridge calls --limit 1 --q 555111 --agent openai --profile support --end-reason 'agent-ended\*' --before \S+$/);
      const p2 = captureIo();
      expect(await callsCommand(['--limit', '1', ...flags, '--before', more.split(' ').at(-1)!], env, p2.io)).toBe(0);
      expect(p2.out()).toContain(records[0]!.callSid);
      expect(p2.out()).not.toMatch(/^more:/m);

      const j = captureIo();
      expect(await callsCommand(['--json', '--q', 'O_BRIEN'], env, j.io)).toBe(0);
      expect(JSON.parse(j.out()).calls.map((c: { callSid: string; profile: string }) => [c.callSid, c.profile])).toEqual([[records[4]!.callSid, 'support']]);

      const none = captureIo();
      expect(await callsCommand(['--agent', 'nobody'], env, none.io)).toBe(0);
      expect(none.out()).toMatch(/^no matching calls in /);

      const long = captureIo();
      expect(await callsCommand(['--q', '5'.repeat(65)], env, long.io)).toBe(2);
      expect(long.err()).toMatch(/^--q must be at most 64 characters/);
      const both = captureIo();
      expect(await callsCommand(['--agent', 'openai', records[0]!.callSid!], env, both.io)).toBe(2);
    });
  });
}
