// Child-process entry for the fuzz test's hostile lanes: loads TypeScript through tsx
// (plain Node 20 cannot import .ts), takes its options as the first IPC message, runs the
// lanes and sends the result back. A process of its own, not a worker thread, so the memory
// the fuzzer itself allocates (hundreds of MB of mutated messages, which glibc keeps resident
// in the thread's arenas after it exits) is not counted as the bridge's RSS. See fuzz-lanes.ts.
import { register } from 'tsx/esm/api';

register();
const { runLanes } = await import('./fuzz-lanes.ts');
process.once('message', async (options) => {
  try {
    process.send({ ok: true, result: await runLanes(options) });
  } catch (e) {
    process.send({ ok: false, error: e instanceof Error ? e.stack : String(e) });
  }
});
process.send({ ready: true });
