/**
 * Run by cluster.test.ts as `node --import tsx cluster-fixture.ts <workers>`: a real
 * node:cluster primary with N workers sharing one HTTP port, each with its own
 * metrics registry fed with known numbers (worker i: i+1 calls, 100·(i+1) frames…).
 * The primary serves the aggregate on its own port and answers the workers' GET
 * /metrics. Prints one JSON line {"ready":…} on stdout; SIGTERM stops everything.
 */
import cluster from 'node:cluster';
import Fastify from 'fastify';
import type { CallRecord } from '../../src/call/call-manager.js';
import { createMetrics, registerMetricsRoute, registerWorkerMetricsResponder, startPrimaryMetrics } from '../../src/metrics/index.js';

const workers = Number(process.argv[2] ?? 2);
/** 'no-primary-metrics': the primary never starts its side (a wiring mistake), to see the workers' 503. */
const mode = process.argv[3] ?? 'normal';

if (cluster.isPrimary) {
  const pm = mode === 'normal' ? await startPrimaryMetrics({ port: 0, host: '127.0.0.1' }) : { url: undefined, close: async () => {} };
  let appPort = 0;
  let ready = 0;
  for (let i = 0; i < workers; i++) {
    const w = cluster.fork({ FIXTURE_WORKER: String(i), FIXTURE_MODE: mode });
    w.on('message', (m: { listening?: number }) => {
      if (typeof m?.listening !== 'number') return;
      appPort = m.listening;
      if (++ready === workers) process.stdout.write(`${JSON.stringify({ ready: true, metricsUrl: pm.url, appUrl: `http://127.0.0.1:${appPort}`, pid: process.pid })}\n`);
    });
  }
  const stop = async () => {
    await pm.close();
    for (const w of Object.values(cluster.workers ?? {})) w?.kill();
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop());
  // Never outlive the test: bounded life.
  setTimeout(() => void stop(), 60_000).unref();
} else {
  const i = Number(process.env.FIXTURE_WORKER);
  const n = i + 1;
  const metrics = createMetrics({ dspInfo: () => ({ backend: 'ts', requested: 'auto', fallbackReason: 'native addon not built' }) });
  registerWorkerMetricsResponder(metrics, process.env.FIXTURE_MODE === 'normal' ? {} : { primaryTimeoutMs: 300 });
  metrics.setActiveCalls(() => 10 * n);
  for (let k = 0; k < n; k++) {
    metrics.onCallStarted({ callSid: `CA${i}${k}`, streamSid: `MZ${i}${k}`, agent: 'echo' });
    metrics.onCallEnded({
      callSid: `CA${i}${k}`, streamSid: `MZ${i}${k}`, agent: 'echo', state: 'closed', startedAt: new Date().toISOString(), durationMs: 2000, endReason: 'twilio-stop',
      framesIn: 100, chunksToAgent: 10, framesOut: 80, prestartFramesBuffered: 0, prestartFramesDropped: 0, badInput: {},
      jitter: { framesIn: 100, framesOut: 100, duplicate: 0, late: 3, lost: 1, concealed: 2, resyncs: 0, bufferedFrames: 0, currentDelayMs: 40, targetDelayMs: 40 },
      playout: { framesQueued: 0, framesSent: 80, messagesSent: 80, marksSent: 4, marksAcked: 4, framesCleared: 0, staleChunksDropped: 0, underruns: 1, bargeIns: 0, queuedMs: 0 },
      bargeIns: 0, lastHeardMs: null, dtmf: 0, marksEchoed: 0, transcripts: [], timeToFirstAgentAudioMs: 500, agentPreconnected: false, agentReadyMs: 100,
      apology: null, recordingPath: null, endedAt: new Date().toISOString(), customParameters: {}, from: null, to: null, status: [],
    } satisfies CallRecord);
  }
  for (let k = 0; k < 100 * n; k++) metrics.observer.inboundFrame(0.004);
  metrics.observer.bargeIn('api', 1);
  metrics.observer.agentReady('echo', 100, false);
  const app = Fastify();
  app.addHook('onSend', async (_req, reply) => {
    reply.header('x-worker', String(i));
  });
  registerMetricsRoute(app, metrics);
  await app.listen({ port: 0, host: '127.0.0.1' });
  // In a cluster, listen(0) gives every worker the same port (the primary owns the socket).
  const port = (app.server.address() as { port: number }).port;
  process.send!({ listening: port });
}
