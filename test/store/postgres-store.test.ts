/**
 * The store contract on a real PostgreSQL (TEST_DATABASE_URL; scripts/ci-postgres.sh
 * provisions one). Each test gets its own schema (search_path in the URL). The store
 * reaches the server through a TCP gate: closing it is the database going away —
 * new connections refused, open ones cut — and reopening it brings it back.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCallStore } from '../../src/store/call-store.js';
import { StoreErrorCodes } from '../../src/store/store-error.js';
import { storeContract } from './store-contract.js';
import { TcpGate, closedPort, testDatabaseUrl } from './helpers.js';

const url = new URL(testDatabaseUrl()); // throws (fails the file) when unset: never skipped
let admin: pg.Client;
let gate: TcpGate;
let schema = '';

beforeAll(async () => {
  admin = new pg.Client({ connectionString: url.toString(), connectionTimeoutMillis: 5000 });
  await admin.connect();
  gate = new TcpGate(url.hostname, Number(url.port || 5432));
  await gate.open();
});
afterAll(async () => {
  await gate?.close();
  await admin?.end();
});

function storeUrl(port: number, s = schema): string {
  const u = new URL(url.toString());
  u.hostname = '127.0.0.1';
  u.port = String(port);
  u.searchParams.set('options', `-c search_path=${s}`);
  return u.toString();
}

storeContract({
  name: 'postgres',
  async setup() {
    schema = `vb_test_${randomBytes(6).toString('hex')}`;
    await admin.query(`CREATE SCHEMA ${schema}`);
  },
  async teardown() {
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  },
  env: (dir) => ({ BRIDGE_DATA_DIR: dir, DATABASE_URL: storeUrl(gate.port), BRIDGE_DB_TIMEOUT_MS: '3000', BRIDGE_DB_RETRY_MAX_MS: '200' }),
  async takeDown() {
    await gate.close();
  },
  readsWhileDown: false,
  async bringUp() {
    await gate.open();
  },
  async appliedMigrations() {
    return (await admin.query(`SELECT version, name FROM ${schema}.schema_migrations ORDER BY version`)).rows;
  },
  async countRows(table, callSid) {
    const res = callSid ? await admin.query(`SELECT count(*)::int AS n FROM ${schema}.${table} WHERE call_sid = $1`, [callSid]) : await admin.query(`SELECT count(*)::int AS n FROM ${schema}.${table}`);
    return res.rows[0].n as number;
  },
});

describe('PostgreSQL specifics', () => {
  it('two stores migrating the same database at once: the schema is applied exactly once', async () => {
    const s = `vb_test_${randomBytes(6).toString('hex')}`;
    await admin.query(`CREATE SCHEMA ${s}`);
    const tmp = await import('./helpers.js').then((h) => [h.tempDir(), h.tempDir()]);
    try {
      const stores = await Promise.all(tmp.map((t) => openCallStore({ env: { BRIDGE_DATA_DIR: t.dir, DATABASE_URL: storeUrl(gate.port, s) } })));
      expect(stores.map((x) => x.stats().dbReady)).toEqual([true, true]);
      expect((await admin.query(`SELECT version FROM ${s}.schema_migrations ORDER BY version`)).rows).toEqual([{ version: 1 }, { version: 2 }, { version: 3 }, { version: 4 }]);
      for (const x of stores) await x.close();
    } finally {
      await admin.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
      for (const t of tmp) t.remove();
    }
  });

  it('a database that is down at start does not stop the store from opening; bad credentials do, with BRIDGE_ERR_STORE_CONFIG', async () => {
    const { tempDir } = await import('./helpers.js');
    const t = tempDir();
    try {
      const down = new URL(storeUrl(await closedPort()));
      const s = await openCallStore({ env: { BRIDGE_DATA_DIR: t.dir, DATABASE_URL: down.toString(), BRIDGE_DB_TIMEOUT_MS: '1000' } });
      expect(s.stats()).toMatchObject({ backend: 'postgres', dbReady: false });
      expect(s.stats().target).toContain(':***@');
      expect(s.stats().target).not.toContain(`:${url.password}@`);
      expect(s.stats().writeFailures).toBeGreaterThan(0);
      await s.close();
      const wrong = new URL(storeUrl(gate.port));
      wrong.password = 'not-the-password';
      await expect(openCallStore({ env: { BRIDGE_DATA_DIR: t.dir, DATABASE_URL: wrong.toString() } })).rejects.toMatchObject({ code: StoreErrorCodes.STORE_CONFIG });
      await expect(openCallStore({ env: { DATABASE_URL: 'mysql://x@y/z' } })).rejects.toMatchObject({ code: StoreErrorCodes.STORE_CONFIG });
    } finally {
      t.remove();
    }
  });
});
