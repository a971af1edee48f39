/**
 * `npm run bench:session`: frames per second through one CallSession — the whole
 * per-frame path of the bridge in one process, without sockets:
 *
 *  - inbound: one Twilio `media` message (JSON text, as received) → parse, validate,
 *    base64-decode into a reused buffer → inbound pipeline (jitter buffer, PLC,
 *    8k→24k / 8k→16k) → agent.sendAudio; and the μ-law passthrough path (no DSP);
 *  - outbound: 20 ms of agent PCM16 → outbound pipeline → playout tick → one media
 *    message + one mark (JSON text, as sent).
 *
 * Per backend; tinybench with hrtime; a JSON report in bench/results/.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { Bench, hrtimeNow } from 'tinybench';
import { pcm16, ULAW_8K, type AgentFactory, type AudioFormat } from '../src/agents/agent.js';
import { SinkAgent, mediaText, startText } from './bench-call.js';
import { CallSession, type StreamSocket } from '../src/call/call-session.js';
import { FrameClock } from '../src/call/frame-clock.js';
import { Playout } from '../src/call/playout.js';
import { OutboundPath } from '../src/dsp/frame-paths.js';
import { loadConfig } from '../src/config.js';
import { loadDsp } from '../src/dsp/load.js';
import type { DspBackend } from '../src/dsp/backend.js';

const taskMs = Number(process.argv.find((a) => a.startsWith('--time='))?.slice(7) ?? 500);

const sink: StreamSocket & { sent: number } = { sent: 0, bufferedAmount: 0, send() { this.sent++; }, close() {} };

async function inboundSession(dsp: DspBackend, format: AudioFormat): Promise<{ feed: () => void }> {
  const config = loadConfig({ BRIDGE_LOG_LEVEL: 'silent' });
  const agent = new SinkAgent(format, format);
  const factory: AgentFactory = { name: 'sink', available: true, create: () => agent };
  const clock = new FrameClock();
  const session = new CallSession(sink, {
    config,
    dsp,
    clock,
    openAgent: () => ({ name: factory.name, session: agent, ready: Promise.resolve(), preconnected: true }),
  });
  const streamSid = 'MZ' + 'a'.repeat(32);
  session.onText(startText(streamSid, 'CA' + 'a'.repeat(32)));
  await new Promise((r) => setTimeout(r, 10));
  clock.unsubscribe(() => undefined);
  let n = 0;
  return { feed: () => session.onText(mediaText(streamSid, ++n)) };
}

const bench = new Bench({ time: taskMs, warmupTime: 100, now: hrtimeNow, subtractTimerOverhead: true });
const backends: DspBackend[] = [];
for (const b of ['native', 'ts'] as const) {
  try {
    backends.push(await loadDsp({ backend: b }));
  } catch (e) {
    console.warn(`backend ${b} unavailable: ${(e as Error).message}`);
  }
}
for (const dsp of backends) {
  for (const [label, format] of [
    ['8k μ-law → agent PCM 24 kHz', pcm16(24000)],
    ['8k μ-law → agent PCM 16 kHz', pcm16(16000)],
    ['8k μ-law → agent μ-law (passthrough)', ULAW_8K],
  ] as const) {
    if (format.encoding === 'ulaw' && dsp.name !== backends[0]!.name) continue;
    const s = await inboundSession(dsp, format);
    bench.add(`inbound ${dsp.name} ${label}`, s.feed);
  }
  // Outbound: 20 ms of 24 kHz agent PCM per frame, one tick per frame.
  const playout = new Playout({ streamSid: 'MZ' + 'b'.repeat(32), send: (t) => sink.send(t), leadMs: 80 });
  const outbound = new OutboundPath(dsp, { fromHz: 24000 });
  const pcm = new Int16Array(480).map((_, i) => Math.round(5000 * Math.sin(i / 9)));
  let now = 0;
  let mark = 0;
  bench.add(`outbound ${dsp.name} agent PCM 24 kHz → μ-law media + mark`, () => {
    playout.enqueue(outbound.push(pcm), 'r1');
    now += 20;
    playout.tick(now);
    if (++mark % 50 === 0) playout.onMark(`r1.${mark * 20}.${mark}`, now); // keep the mark list short like a live call
  });
}

console.log(`voice-bridge session bench: ${bench.tasks.length} tasks × ${taskMs} ms on ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}`);
await bench.run();
const rows = bench.tasks.map((t) => {
  const r = t.result as { latency?: { mean: number; p50: number; p99: number; max: number } };
  const l = r.latency!;
  return { task: t.name, 'frames/s (1/mean)': Math.round(1000 / l.mean).toLocaleString('en'), 'mean µs': (l.mean * 1000).toFixed(2), 'p50 µs': (l.p50 * 1000).toFixed(2), 'p99 µs': (l.p99 * 1000).toFixed(2), 'max µs': (l.max * 1000).toFixed(1) };
});
console.table(rows);
mkdirSync(join(import.meta.dirname, 'results'), { recursive: true });
const file = join(import.meta.dirname, 'results', `session-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), node: process.version, cpu: cpus()[0]?.model, taskMs, rows }, null, 2));
console.log(`JSON report: ${file}`);
process.exit(0);
