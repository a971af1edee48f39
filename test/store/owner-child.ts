/**
 * Child process of the scale-out store tests: one bridge process that owns calls,
 * driven line by line over stdin, and SIGKILLed by the test (no flush, no close).
 *
 *   node --import tsx owner-child.ts <store env as JSON> <StoreIdentity as JSON>
 *
 * stdout, one line per event:
 *   ready <pid> <runId>        the store is open (schema migrated, run registered unless the database is away)
 *   db                         reply to `db`: everything recorded is in the database and the outbox file is empty
 *   disk <depth> <written>     reply to `disk`: everything recorded is durable in the outbox file
 *   live <json>                reply to `live`: this store's liveCalls()
 *   error <message>
 * stdin commands:
 *   record <CallRecord as JSON>
 *   db | disk | live
 */
import { createInterface } from 'node:readline';
import { openCallStore, type StoreIdentity } from '../../src/store/call-store.js';
import type { CallRecord } from '../../src/call/call-manager.js';

const [envJson, identityJson] = process.argv.slice(2);
const say = (line: string) => process.stdout.write(`${line}\n`);

const store = await openCallStore({ env: JSON.parse(envJson!) as Record<string, string> }, { identity: JSON.parse(identityJson!) as StoreIdentity });
say(`ready ${process.pid} ${store.run!.runId}`);

/** Polls the store's own counters (no deadline: the test owns the time-out and kills us). */
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 5));
}

for await (const line of createInterface({ input: process.stdin })) {
  const sp = line.indexOf(' ');
  const cmd = sp === -1 ? line : line.slice(0, sp);
  const arg = sp === -1 ? '' : line.slice(sp + 1);
  try {
    if (cmd === 'record') store.record(JSON.parse(arg) as CallRecord);
    else if (cmd === 'db') {
      await until(() => store.stats().outboxDepth === 0 && store.stats().outboxBytes === 0);
      say('db');
    } else if (cmd === 'disk') {
      await until(() => store.stats().outboxUnsynced === 0);
      say(`disk ${store.stats().outboxDepth} ${store.stats().written}`);
    } else if (cmd === 'live') say(`live ${JSON.stringify(await store.liveCalls())}`);
    else say(`error unknown command ${cmd}`);
  } catch (e) {
    say(`error ${(e as Error).message}`);
  }
}
// stdin closed (the test went away): stay a process that owns calls until killed, like a bridge would.
setInterval(() => undefined, 60_000);
