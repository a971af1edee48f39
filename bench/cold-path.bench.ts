/**
 * `npm run bench:cold`: what one caller frame costs the bridge when its call's state is not in
 * the CPU's caches — the normal case under load, where between two frames of one call the
 * kernel's network stack and every other call's messages have run.
 *
 * 300 CallSessions take one Twilio `media` message each in turn, as the session bench's inbound
 * task does, with a sink agent (no socket) — and in two more rows with the real OpenAI Realtime
 * adapter, each on its own WebSocket to the capacity bench's fake service in another process
 * (bench/capacity/fake-agent.ts), in μ-law passthrough and at 24 kHz through the DSP: the
 * frame's way to the agent's socket included (base64, the append message, the send). Its
 * writes leave in batches (src/net/write-batch.ts): the frame that cuts a batch at 32 sockets
 * pays their 32 `writev`s
 * (kernel included, as a real frame does); the rest of a pass leaves after it, untimed.
 * The last row is the yardstick on the same sockets: what the capacity bench's minimal relay
 * (bench/capacity/minimal-relay.ts) does with a media message — JSON.parse, JSON.stringify of
 * the append, a send written at once — so bridge/relay per frame comes from one process and run.
 * "cold" touches --flush-mib (8) MiB between two frames
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
import { fork } from 'node:child_process';
import { createAgentRegistry } from '../src/agents/registry.js';
import type { OpenedAgent } from '../src/call/call-session.js';
import WebSocket from 'ws';

const arg = (name: string, def: number) => Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? def);
const CALLS = arg('calls', 300);
/** Touched between two frames when cold (--flush-mib): more than the L2 and this process's share of L3. */
const FLUSH_BYTES = arg('flush-mib', 8) << 20;

const sink: StreamSocket = { bufferedAmount: 0, send() {}, close() {} };
const config = loadConfig({ BRIDGE_LOG_LEVEL: 'silent' });
const dsp = await loadDsp({ backend: 'native' }).catch(() => loadDsp({ backend: 'ts' }));
const clock = new FrameClock();

/** The capacity bench's fake OpenAI Realtime service, in its own process: its port, and how to stop it. */
async function fakeService(): Promise<{ port: number; stop(): void }> {
  const child = fork(join(import.meta.dirname, 'capacity', 'fake-agent.ts'), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m: { type?: string; port?: number }) => (m.type === 'ready' ? resolve(m.port!) : reject(new Error('fake agent: unexpected message'))));
    child.once('exit', (code) => reject(new Error(`fake agent exited with ${code}`)));
  });
  return { port, stop: () => child.kill() };
}

/** An agent for call `i`: a sink, or an OpenAI Realtime session already connected to `service`. */
type AgentMaker = (i: number) => Promise<OpenedAgent>;
const sinkAgents = (format: AudioFormat): AgentMaker => async () => ({ name: 'sink', session: new SinkAgent(format, format), ready: Promise.resolve(), preconnected: true });
function openaiAgents(port: number, format: 'pcmu' | 'pcm24k'): AgentMaker {
  const agents = createAgentRegistry(loadConfig({ BRIDGE_LOG_LEVEL: 'silent', OPENAI_API_KEY: 'sk-cold-bench', OPENAI_REALTIME_URL: `ws://127.0.0.1:${port}/v1/realtime` })).get('openai');
  return async (i) => {
    const session = agents.create({ callSid: 'CA' + String(i).padStart(32, '0'), parameters: { format } });
    await session.connect(AbortSignal.timeout(30_000));
    return { name: 'openai', session, ready: Promise.resolve(), preconnected: true };
  };
}

/** One call as the bench drives it: takes a Twilio message's text (timed), closes (untimed). */
interface Taker {
  onText(text: string): void;
  close(): void;
}
type Call = { taker: Taker; messages: Buffer[]; next: number };

/** A call's messages as Twilio numbers them, as bytes: each is made a string just before the call takes it (untimed), as ws does from a socket read — the text is warm, the call is not. */
const messagesOf = (sid: string) => Array.from({ length: 64 }, (_, k) => Buffer.from(mediaText(sid, k + 1)));
const sidOf = (i: number) => 'MZ' + String(i).padStart(32, '0');

async function calls(agentFor: AgentMaker): Promise<Call[]> {
  const out: Call[] = [];
  for (let i = 0; i < CALLS; i++) {
    const opened = await agentFor(i);
    const session = new CallSession(sink, { config, dsp, clock, openAgent: () => opened });
    session.onText(startText(sidOf(i), 'CA' + String(i).padStart(32, '0')));
    out.push({ taker: { onText: (t) => session.onText(t), close: () => void session.close('twilio-stop') }, messages: messagesOf(sidOf(i)), next: 0 });
  }
  await new Promise((r) => setTimeout(r, 50)); // the agents' ready → streaming
  return out;
}

/** The minimal relay's handling of a media message (bench/capacity/minimal-relay.ts), each call on its own socket to `port`. */
async function relayCalls(port: number): Promise<Call[]> {
  const out: Call[] = [];
  for (let i = 0; i < CALLS; i++) {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/realtime`, { perMessageDeflate: false });
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    ws.send(JSON.stringify({ type: 'session.update', session: { type: 'realtime', audio: { input: { format: { type: 'audio/pcmu' } }, output: { format: { type: 'audio/pcmu' } } } } }));
    ws.on('message', () => undefined);
    const onText = (text: string) => {
      const m = JSON.parse(text) as { event: string; media?: { payload: string } };
      if (m.event === 'media' && m.media) ws.send(JSON.stringify({ type: 'input_audio_buffer.append', audio: m.media.payload }));
    };
    out.push({ taker: { onText, close: () => ws.close() }, messages: messagesOf(sidOf(i)), next: 0 });
  }
  return out;
}

const flush = new Uint8Array(FLUSH_BYTES);
let sink2 = 0;
/**
 * µs per frame over `rounds` passes over every call, with the caches flushed between frames or
 * not. Between passes the event loop turns (untimed): held writes leave, the agents' sockets are read.
 */
async function pass(cs: Call[], cold: boolean, rounds: number): Promise<number> {
  let ns = 0n;
  for (let r = 0; r < rounds; r++) {
    await new Promise((resolve) => setImmediate(resolve));
    for (const c of cs) {
      if (cold) for (let j = r & 63; j < FLUSH_BYTES; j += 64) sink2 += flush[j]!++;
      const text = c.messages[c.next++ & 63]!.toString();
      const t0 = process.hrtime.bigint();
      c.taker.onText(text);
      ns += process.hrtime.bigint() - t0;
    }
  }
  return Number(ns) / (rounds * cs.length) / 1000;
}

const rows = [];
const service = await fakeService();
for (const [label, open] of [
  ['passthrough (μ-law sink agent)', () => calls(sinkAgents(ULAW_8K))],
  [`PCM 24 kHz sink agent (${dsp.name} DSP)`, () => calls(sinkAgents(pcm16(24000)))],
  ['passthrough, OpenAI adapter + socket', () => calls(openaiAgents(service.port, 'pcmu'))],
  [`PCM 24 kHz, OpenAI adapter + socket (${dsp.name} DSP)`, () => calls(openaiAgents(service.port, 'pcm24k'))],
  ['minimal relay, same socket work', () => relayCalls(service.port)],
] as const) {
  const cs = await open();
  await pass(cs, false, 30); // JIT
  const warm: number[] = [];
  const cold: number[] = [];
  for (let k = 0; k < 5; k++) {
    warm.push(await pass(cs, false, 40));
    cold.push(await pass(cs, true, 6));
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const span = (xs: number[]) => `${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)}`;
  // Medians of 5 alternating passes, with their range: on a shared VM the cold figure moves by
  // tens of percent from one run to the next; compare builds by alternating runs.
  rows.push({ path: label, 'warm µs/frame': med(warm).toFixed(2), 'warm range': span(warm), 'cold µs/frame': med(cold).toFixed(2), 'cold range': span(cold), 'cold/warm': (med(cold) / med(warm)).toFixed(1) });
  for (const c of cs) c.taker.close();
}
service.stop();
if (sink2 === -1) console.log(sink2);
console.log(`voice-bridge cold-path bench: ${CALLS} calls round-robin, ${FLUSH_BYTES >> 20} MiB touched between frames when cold; ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}`);
console.table(rows);
mkdirSync(join(import.meta.dirname, 'results'), { recursive: true });
const file = join(import.meta.dirname, 'results', `cold-path-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), node: process.version, cpu: cpus()[0]?.model, calls: CALLS, flushBytes: FLUSH_BYTES, rows }, null, 2));
console.log(`JSON report: ${file}`);
process.exit(0);
