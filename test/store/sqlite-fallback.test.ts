/**
 * The WASM SQLite fallback: where better-sqlite3 cannot be built or loaded, the store
 * says so at start and keeps every record through node-sqlite3-wasm
 * (BRIDGE_SQLITE_DRIVER=wasm stands in for a platform without the addon). This file
 * runs in its own process (vitest forks), so the driver choice does not leak.
 */
import { describe, expect, it } from 'vitest';
import { openCallStore } from '../../src/store/call-store.js';
import { fullRecord, tempDir } from './helpers.js';

describe('SQLite without better-sqlite3', () => {
  it('falls back to the WASM driver, says so, and records land all the same', async () => {
    process.env.BRIDGE_SQLITE_DRIVER = 'wasm';
    const tmp = tempDir();
    const logs: { level: string; msg: string }[] = [];
    try {
      const s = await openCallStore({ env: { BRIDGE_DATA_DIR: tmp.dir } }, { log: (level, msg) => void logs.push({ level, msg }) });
      expect(s.stats()).toMatchObject({ backend: 'sqlite', sqliteDriver: 'node-sqlite3-wasm', sqliteFallbackReason: 'BRIDGE_SQLITE_DRIVER=wasm' });
      expect(logs.some((l) => l.level === 'warn' && l.msg.startsWith('SQLite through the WASM fallback'))).toBe(true);
      const recs = [fullRecord(), fullRecord()];
      for (const r of recs) s.record({ ...r, recordState: 'in-progress' });
      for (const r of recs) s.record(r);
      expect(await s.flush(15_000)).toBe(true);
      for (const r of recs) expect(await s.get(r.callSid!)).toMatchObject({ callSid: r.callSid, recordState: 'completed', transcripts: r.transcripts });
      expect((await s.list({ limit: 10 })).calls).toHaveLength(2);
      await s.close();
    } finally {
      delete process.env.BRIDGE_SQLITE_DRIVER;
      tmp.remove();
    }
  });
});
