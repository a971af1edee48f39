/**
 * The store's own environment keys (declared in src/env-schema.ts; read from
 * Config.env and validated once at start with every other key — loadConfig runs
 * readStoreConfig, so a bad DATABASE_URL is a configuration error, exit 78):
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
import { readEnv } from '../env-schema.js';
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

/** The settings, or (with the defaults in their place) the problems of the bad ones. */
export function readStoreConfig(env: Env): { config: StoreConfig; problems: string[] } {
  const { values: e, problems } = readEnv(env, 'store');
  const dataDir = resolve(e.BRIDGE_DATA_DIR);
  const databaseUrl = e.DATABASE_URL;
  const kind: StoreConfig['kind'] = databaseUrl !== undefined ? 'postgres' : 'sqlite';
  const retryMaxMs = e.BRIDGE_DB_RETRY_MAX_MS;
  const config: StoreConfig = Object.freeze({
    enabled: e.BRIDGE_CALL_RECORDS,
    kind,
    dataDir,
    sqlitePath: join(dataDir, 'calls.sqlite'),
    databaseUrl,
    dbTimeoutMs: e.BRIDGE_DB_TIMEOUT_MS,
    retryBaseMs: Math.min(250, retryMaxMs),
    retryMaxMs,
    heartbeatMs: e.BRIDGE_HEARTBEAT_MS,
  });
  return { config, problems };
}

/** The settings; throws StoreError(BRIDGE_ERR_STORE_CONFIG) listing every bad one (start-up reports them earlier, as a ConfigError). */
export function loadStoreConfig(env: Env): StoreConfig {
  const { config, problems } = readStoreConfig(env);
  if (problems.length > 0) throw new StoreError(StoreErrorCodes.STORE_CONFIG, `invalid call-record store configuration:\n  - ${problems.join('\n  - ')}`);
  return config;
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
