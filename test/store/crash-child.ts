/**
 * Child process of the crash-safety tests: opens the store on a data dir whose
 * database is unreachable, records calls, says "durable" once the outbox has them
 * on disk, then waits to be SIGKILLed (no flush, no close: a crash).
 *   node --import tsx crash-child.ts <dataDir> <databaseUrl|-> <first> <count>
 */
import { openCallStore } from '../../src/store/call-store.js';
import { fullRecord } from './helpers.js';

const [dataDir, url, first, count] = process.argv.slice(2);
const store = await openCallStore({ env: { BRIDGE_DATA_DIR: dataDir, DATABASE_URL: url === '-' ? undefined : url, BRIDGE_DB_TIMEOUT_MS: '1000' } });
for (let i = 0; i < Number(count); i++) store.record(fullRecord(Number(first) + i));
const deadline = Date.now() + 10_000;
const timer = setInterval(() => {
  const s = store.stats();
  if (s.outboxUnsynced === 0) {
    clearInterval(timer);
    process.stdout.write(`durable ${s.outboxDepth} written ${s.written}\n`); if (process.env.DEBUG_CHILD) console.error(s);
    setInterval(() => undefined, 60_000); // until killed
  } else if (Date.now() > deadline) {
    process.stdout.write('timeout\n');
    process.exit(1);
  }
}, 5);
