/**
 * `npm run bench:cold`: what one caller frame costs the bridge when its call's state is not in
 * the CPU's caches — the normal case under load, where between two frames of one call the
 * kernel's network stack and every other call's messages have run.
 *
 * 300 CallSessions (a sink agent: no socket) take one Twilio `media` message each in turn, as
 * the session bench's inbound task does; "cold" touches --flush-mib (8) MiB between two frames
 * (more than this machine's L2 and its share of L3), "warm" does not. How cold a real call's
 * state is depends on the load, so the absolute cold figure is a bound, not a prediction: compare
 * two builds by alternating runs. Only the messages are timed. cold/warm says how much of the
 * path's cost is memory traffic rather than instructions: a path that touches fewer objects and
 * tables per frame gets cheaper under load even when a warm micro-benchmark shows no change.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { ULAW_8K, pcm16, type AudioFormat } from '../src/agents/agent.js';
import { SinkAgent, mediaText, startText } from './bench-call.js';
import { CallSession, type StreamSocket } from '../src/call/call-session.js';
import { FrameClock } from '../src/call/frame-clock.js';
import { loadConfig } from '../src/config.js';
import { loadDsp } from '../src/dsp/load.js';

const arg = (name: string, def: number) => Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? def);
const CALLS = arg('calls', 300);
/** Touched between two frames when cold (--flush-mib): more than the L2 and this process's share of L3. */
const FLUSH_BYTES = arg('flush-mib', 8) << 20;

const sink: StreamSocket = { bufferedAmount: 0, send() {}, close() {} };
const config = loadConfig({ BRIDGE_LOG_LEVEL: 'silent' });
const dsp = await loadDsp({ backend: 'native' }).catch(() => loadDsp({ backend: 'ts' }));
const clock = new FrameClock();

async function calls(format: AudioFormat): Promise<{ session: CallSession; messages: Buffer[]; next: number }[]> {
  const out = [];
  for (let i = 0; i < CALLS; i++) {
    const agent = new SinkAgent(format, format);
    const session = new CallSession(sink, { config, dsp, clock, openAgent: () => ({ name: 'sink', session: agent, ready: Promise.resolve(), preconnected: true }) });
    const sid = 'MZ' + String(i).padStart(32, '0');
    session.onText(startText(sid, 'CA' + String(i).padStart(32, '0')));
    // A call's messages as Twilio numbers them, as bytes: each is made a string just before the
    // call takes it (untimed), as ws does from a socket read — the text is warm, the call is not.
    out.push({ session, messages: Array.from({ length: 64 }, (_, k) => Buffer.from(mediaText(sid, k + 1))), next: 0 });
  }
  await new Promise((r) => setTimeout(r, 50)); // the agents' ready → streaming
  return out;
}

const flush = new Uint8Array(FLUSH_BYTES);
let sink2 = 0;
/** µs per frame over `rounds` passes over every call, with the caches flushed between frames or not. */
function pass(cs: Awaited<ReturnType<typeof calls>>, cold: boolean, rounds: number): number {
  let ns = 0n;
  for (let r = 0; r < rounds; r++) {
    for (const c of cs) {
      if (cold) for (let j = r & 63; j < FLUSH_BYTES; j += 64) sink2 += flush[j]!++;
      const text = c.messages[c.next++ & 63]!.toString();
      const t0 = process.hrtime.bigint();
      c.session.onText(text);
      ns += process.hrtime.bigint() - t0;
    }
  }
  return Number(ns) / (rounds * cs.length) / 1000;
}

const rows = [];
for (const [label, format] of [
  ['passthrough (μ-law agent)', ULAW_8K],
  [`PCM 24 kHz agent (${dsp.name} DSP)`, pcm16(24000)],
] as const) {
  const cs = await calls(format);
  pass(cs, false, 30); // JIT
  const warm: number[] = [];
  const cold: number[] = [];
  for (let k = 0; k < 5; k++) {
    warm.push(pass(cs, false, 40));
    cold.push(pass(cs, true, 6));
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const span = (xs: number[]) => `${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)}`;
  // Medians of 5 alternating passes, with their range: on a shared VM the cold figure moves by
  // tens of percent from one run to the next; compare builds by alternating runs.
  rows.push({ path: label, 'warm µs/frame': med(warm).toFixed(2), 'warm range': span(warm), 'cold µs/frame': med(cold).toFixed(2), 'cold range': span(cold), 'cold/warm': (med(cold) / med(warm)).toFixed(1) });
  for (const c of cs) void c.session.close('twilio-stop');
}
if (sink2 === -1) console.log(sink2);
console.log(`voice-bridge cold-path bench: ${CALLS} calls round-robin, ${FLUSH_BYTES >> 20} MiB touched between frames when cold; ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}`);
console.table(rows);
mkdirSync(join(import.meta.dirname, 'results'), { recursive: true });
const file = join(import.meta.dirname, 'results', `cold-path-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), node: process.version, cpu: cpus()[0]?.model, calls: CALLS, flushBytes: FLUSH_BYTES, rows }, null, 2));
console.log(`JSON report: ${file}`);
process.exit(0);
