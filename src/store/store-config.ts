/**
 * The store's own environment keys (read from Config.env, validated once):
 *
 *   DATABASE_URL            postgres://… → PostgreSQL; unset → SQLite under the data dir
 *   BRIDGE_DATA_DIR         ./data — the SQLite file and the outbox live here
 *   BRIDGE_CALL_RECORDS     on | off (off: record() is a no-op; for throwaway test bridges)
 *   BRIDGE_DB_TIMEOUT_MS    5000 — connect and per-statement bound on the database
 *   BRIDGE_DB_RETRY_MAX_MS  30000 — ceiling of the writer's exponential backoff
 *   BRIDGE_HEARTBEAT_MS     5000 — how often this process says it is alive; a process
 *                           silent for 3 heartbeats is dead: its calls are closed as interrupted
 */
import { resolve, join } from 'node:path';
import { StoreError, StoreErrorCodes } from './store-error.js';

export interface StoreConfig {
  readonly enabled: boolean;
  readonly kind: 'sqlite' | 'postgres';
  /** Absolute data directory (outbox, SQLite file). */
  readonly dataDir: string;
  /** SQLite database file (kind sqlite). */
  readonly sqlitePath: string;
  /** postgres://… (kind postgres). */
  readonly databaseUrl?: string;
  readonly dbTimeoutMs: number;
  readonly retryBaseMs: number;
  readonly retryMaxMs: number;
  readonly heartbeatMs: number;
}

type Env = Readonly<Record<string, string | undefined>>;

export function loadStoreConfig(env: Env): StoreConfig {
  const problems: string[] = [];
  const get = (k: string) => {
    const v = env[k];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };
  const int = (k: string, def: number, min: number, max: number): number => {
    const v = get(k);
    if (v === undefined) return def;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) {
      problems.push(`${k}=${JSON.stringify(v)}: must be an integer from ${min} to ${max}`);
      return def;
    }
    return n;
  };
  const switchValue = get('BRIDGE_CALL_RECORDS')?.toLowerCase() ?? 'on';
  if (!['on', 'off', '1', '0', 'true', 'false'].includes(switchValue)) problems.push(`BRIDGE_CALL_RECORDS=${JSON.stringify(switchValue)}: must be on or off`);
  const enabled = !['off', '0', 'false'].includes(switchValue);

  const dataDir = resolve(get('BRIDGE_DATA_DIR') ?? './data');
  const databaseUrl = get('DATABASE_URL');
  let kind: StoreConfig['kind'] = 'sqlite';
  if (databaseUrl !== undefined) {
    try {
      const u = new URL(databaseUrl);
      if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') throw new Error('protocol');
      if (!u.hostname && !u.searchParams.get('host')) throw new Error('host');
      kind = 'postgres';
    } catch {
      problems.push('DATABASE_URL: must be a postgres://user:password@host:port/database URL (unset it to use SQLite under BRIDGE_DATA_DIR)');
    }
  }
  const dbTimeoutMs = int('BRIDGE_DB_TIMEOUT_MS', 5000, 100, 120_000);
  const retryMaxMs = int('BRIDGE_DB_RETRY_MAX_MS', 30_000, 10, 600_000);
  const heartbeatMs = int('BRIDGE_HEARTBEAT_MS', 5000, 100, 60_000);
  if (problems.length > 0) throw new StoreError(StoreErrorCodes.STORE_CONFIG, `invalid call-record store configuration:\n  - ${problems.join('\n  - ')}`);
  return Object.freeze({
    enabled,
    kind,
    dataDir,
    sqlitePath: join(dataDir, 'calls.sqlite'),
    databaseUrl: kind === 'postgres' ? databaseUrl : undefined,
    dbTimeoutMs,
    retryBaseMs: Math.min(250, retryMaxMs),
    retryMaxMs,
    heartbeatMs,
  });
}

/** The URL with its password replaced, for logs and errors. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparsable URL)';
  }
}
