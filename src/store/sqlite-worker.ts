/**
 * Worker thread that owns the bridge's SQLite connection (see sqlite-engine.ts for
 * why it is off the event loop). Protocol: {id, op, args} in; {id, ok, value} or
 * {id, ok: false, message, transient} out. `open` must come first. The engine is
 * synchronous, so one request finishes before the next message is read.
 */
import { parentPort } from 'node:worker_threads';
import { SqliteEngine, isTransientSqliteError } from './sqlite-engine.js';

export type SqliteOp = 'open' | 'migrate' | 'upsert' | 'list' | 'get' | 'registerRun' | 'heartbeat' | 'stopRun' | 'sweepInterrupted' | 'liveCalls' | 'liveCall' | 'appliedVersions' | 'close';
export interface SqliteRequest {
  id: number;
  op: SqliteOp;
  args: unknown[];
}
export type SqliteResponse = { id: number; ok: true; value: unknown } | { id: number; ok: false; message: string; transient: boolean };

let engine: SqliteEngine | undefined;
const port = parentPort!;

port.on('message', async (req: SqliteRequest) => {
  let res: SqliteResponse;
  try {
    let value: unknown;
    if (req.op === 'open') {
      engine?.close();
      engine = new SqliteEngine(req.args[0] as string, { busyTimeoutMs: req.args[1] as number | undefined });
      value = { path: engine.path, driver: engine.driver };
    } else if (req.op === 'close') {
      engine?.close();
      engine = undefined;
    } else {
      if (!engine) throw new Error('SQLite worker: database not open');
      value = await (engine[req.op] as (...a: unknown[]) => unknown).apply(engine, req.args);
    }
    res = { id: req.id, ok: true, value };
  } catch (e) {
    res = { id: req.id, ok: false, message: e instanceof Error ? e.message : String(e), transient: isTransientSqliteError(e) };
  }
  port.postMessage(res);
});
