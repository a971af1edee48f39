/**
 * `npx tsx bench/recording.bench.ts`: what recording adds to the frame path.
 *
 *  - inbound media message through a CallSession (μ-law passthrough agent), without
 *    and with a recording tap — the session calls `tap.caller()` synchronously;
 *  - `tap.caller()` and `tap.agent()` alone (one 20 ms frame each);
 *  - a 30-minute call fed in 1 s batches with the event loop free in between (so every
 *    block is written, none dropped): time inside the tap per frame, commits included.
 *
 * The tap's clock advances 20 ms per frame, as in a live call, so it commits on its
 * real schedule. The bench loop does not yield to the event loop, so writes cannot
 * finish and the bounded queue soon drops blocks: the with-tap figure then includes the
 * (cheaper) drop path; the 30-minute run measures the write path.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Bench, hrtimeNow } from 'tinybench';
import { AgentSession, ULAW_8K, type AudioFormat } from '../src/agents/agent.js';
import { CallSession, type StreamSocket } from '../src/call/call-session.js';
import { FrameClock } from '../src/call/frame-clock.js';
import { loadConfig } from '../src/config.js';
import { loadDsp } from '../src/dsp/load.js';
import { createRecorder } from '../src/recording/recorder.js';
import type { RecordingTap } from '../src/recording/recording-tap.js';

const taskMs = Number(process.argv.find((a) => a.startsWith('--time='))?.slice(7) ?? 500);
const dir = mkdtempSync(join(tmpdir(), 'vb-rec-bench-'));

class SinkAgent extends AgentSession {
  readonly hasVad = true;
  readonly inputFormat: AudioFormat = ULAW_8K;
  readonly outputFormat: AudioFormat = ULAW_8K;
  async connect(): Promise<void> {}
  sendAudio(): void {}
  interrupt(): void {}
  sendDtmf(): void {}
  async close(): Promise<void> {}
}

const sink: StreamSocket = { bufferedAmount: 0, send() {}, close() {} };
const dsp = await loadDsp({ backend: 'auto' });
const config = loadConfig({ BRIDGE_LOG_LEVEL: 'silent', BRIDGE_RECORD: '1', BRIDGE_RECORD_DIR: dir });

async function session(record: boolean): Promise<() => void> {
  const clock = { ms: 0 };
  const recorder = createRecorder(config, { now: () => clock.ms });
  const frameClock = new FrameClock();
  const agent = new SinkAgent();
  const s = new CallSession(sink, {
    config,
    dsp,
    clock: frameClock,
    tapFor: record ? recorder.tapFor : undefined,
    openAgent: () => ({ name: 'sink', session: agent, ready: Promise.resolve(), preconnected: true }),
  });
  const streamSid = 'MZ' + 'a'.repeat(32);
  const callSid = `CA${record ? 'r' : 'n'}${'a'.repeat(31)}`;
  s.onText(JSON.stringify({ event: 'start', sequenceNumber: '1', streamSid, start: { streamSid, callSid, accountSid: 'AC' + 'a'.repeat(32), tracks: ['inbound'], customParameters: {}, mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 } } }));
  await new Promise((r) => setTimeout(r, 20));
  frameClock.unsubscribe(() => undefined);
  const b64 = Buffer.alloc(160, 0x55).toString('base64');
  let n = 0;
  return () => {
    n++;
    clock.ms = n * 20 + 20;
    s.onText(`{"event":"media","sequenceNumber":"${n + 1}","media":{"track":"inbound","chunk":"${n}","timestamp":"${n * 20}","payload":"${b64}"},"streamSid":"${streamSid}"}`);
  };
}

const bench = new Bench({ time: taskMs, warmupTime: 100, now: hrtimeNow, subtractTimerOverhead: true });
bench.add('inbound media message, passthrough session, no recording', await session(false));
bench.add('inbound media message, passthrough session, recording', await session(true));

const tapClock = { ms: 0 };
const tapRecorder = createRecorder(config, { now: () => tapClock.ms, maxQueuedMsPerCall: 8000 });
const tap = tapRecorder.tapFor({ callSid: 'CAtap', streamSid: 'MZtap' }) as RecordingTap;
const frame = new Uint8Array(160).fill(0x55);
let t = 0;
bench.add('tap.caller() + tap.agent(), one frame each (commit amortised)', () => {
  t += 20;
  tapClock.ms = t + 20;
  tap.caller(frame, t);
  tap.agent(frame, t + 80);
});

console.log(`voice-bridge recording bench: ${bench.tasks.length} tasks × ${taskMs} ms on ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}, DSP ${dsp.name}`);
await bench.run();
console.table(
  bench.tasks.map((task) => {
    const l = (task.result as { latency: { mean: number; p50: number; p99: number; max: number } }).latency;
    return { task: task.name, 'mean µs': (l.mean * 1000).toFixed(2), 'p50 µs': (l.p50 * 1000).toFixed(2), 'p99 µs': (l.p99 * 1000).toFixed(2), 'max µs': (l.max * 1000).toFixed(1) };
  }),
);
console.log('dropped by the stalled bench loop (s):', (tap.stats.droppedBytes / 32000).toFixed(1), '(tap task)');
await tap.close();

// A 30-minute call, written for real: time spent inside the tap's synchronous calls.
const lClock = { ms: 0 };
const lTap = createRecorder(config, { now: () => lClock.ms }).tapFor({ callSid: 'CAlong', streamSid: 'MZlong' }) as RecordingTap;
let inside = 0;
for (let sec = 0; sec < 1800; sec++) {
  const t0 = performance.now();
  for (let f = 0; f < 50; f++) {
    const ts = sec * 1000 + f * 20;
    lClock.ms = ts + 20;
    lTap.caller(frame, ts);
    lTap.agent(frame, ts + 80);
  }
  inside += performance.now() - t0;
  await new Promise((r) => setImmediate(r));
  while (lTap.queuedBytes > 64 * 1024) await new Promise((r) => setTimeout(r, 1));
}
await lTap.close();
console.log(
  `30-min call, 90,000 caller + 90,000 agent frames: ${((inside * 1000) / 90_000).toFixed(2)} µs per caller+agent frame pair inside the tap (commits and WavWriter hand-off included); dropped ${lTap.stats.droppedBytes} B, written ${(lTap.stats.writtenBytes / 1e6).toFixed(1)} MB`,
);
rmSync(dir, { recursive: true, force: true });
process.exit(0);
