// Worker-thread entry for the fuzz test's hostile lanes: loads TypeScript through tsx
// (plain Node 20 cannot import .ts), runs them, posts the result. See fuzz-lanes.ts.
import { parentPort, workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
const { runLanes } = await import('./fuzz-lanes.ts');
try {
  parentPort.postMessage({ ok: true, result: await runLanes(workerData) });
} catch (e) {
  parentPort.postMessage({ ok: false, error: e instanceof Error ? e.stack : String(e) });
}
