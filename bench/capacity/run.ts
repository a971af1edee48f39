/**
 * `npm run bench:capacity` — how many calls one machine carries, mode by mode.
 *
 *   npm run bench:capacity -- [--modes relay,passthrough,native,ts,pool,pool-ts,cluster] [--steps 50,100,200,…]
 *                             [--agent-chunk-ms 100] [--agent-speed 4] [--lead-ms <BRIDGE_PLAYOUT_LEAD_MS>]
 *                             [--measure-s 10] [--settle-s 3] [--warmup-s 10] [--keep-going] [--quick] [--cpu-prof] [--pin] [--rounds N] [--interleave] [--perf]
 *                             [--bridge-node-args "--trace-gc" --bridge-log <file>] [--out <file.json>]
 *
 * Three processes per mode, on this machine:
 *
 * ```text
 *   loadgen.ts (N Twilio calls, one 20 ms clock) ──ws──► bridge (src/cli.ts start) ──ws──► fake-agent.ts (OpenAI Realtime GA subset)
 *        ▲ send time of caller frame k                     CPU, RSS from /proc          arrival of frame k ─┐
 *        └ arrival of agent frame j of reply r ◄──────── lag from its own /readyz ◄──── send time of chunk j of reply r
 * ```
 *
 * All three share CLOCK_MONOTONIC, so the delays are differences of timestamps taken
 * in two processes: inbound = agent arrival − generator send of the same caller frame;
 * outbound = the delay the caller hears: when Twilio can start playing each 20 ms of a
 * reply (its arrival, or the end of the audio before it, whichever is later) minus when
 * it could have with zero transport (the agent's send time, or the end of the audio
 * before it). Audio sent ahead of real time and held back by a playout lead adds
 * nothing there; audio that comes late does. The agent streams like the real services:
 * deltas of --agent-chunk-ms (100) at --agent-speed (4) × real time. The agent's think
 * time is outside both. Modes:
 *   relay        the yardstick: bench/capacity/minimal-relay.ts, the simplest published
 *                bridge (media → append, delta → media + mark, speech_started → clear;
 *                nothing else), μ-law end to end — every report carries bridge/relay ratios
 *   native       BRIDGE_DSP=native, PCM16 24 kHz agent (μ-law ⇄ PCM, 8k ⇄ 24k, jitter buffer, paced playout)
 *   ts           BRIDGE_DSP=ts, same path on the TypeScript/WASM fallback
 *   passthrough  the agent takes μ-law (format=pcmu): no DSP at all — the floor
 *   pool         BRIDGE_DSP=native with BRIDGE_DSP_POOL=2 (batched piscina pool, src/dsp/pool)
 *   pool-ts      BRIDGE_DSP=ts with BRIDGE_DSP_POOL=2: the fallback's DSP off the main thread
 *   cluster      BRIDGE_DSP=native, `start --workers 2`
 * Each mode ramps N through the steps until a step fails (p99 added delay > 5 ms in
 * either direction, or any caller frame dropped, or any playout underrun or lost agent
 * frame); the largest N that held is reported. Report: bench/results/capacity-<time>.json + .svg.
 * --pin (Linux, `taskset`): the bridge (or relay) runs on CPU 0, the generator and the agent
 * on the other CPUs — the process measured does not share its core with the load it is
 * measured under, so its CPU per call-second is not inflated by the scheduler and cache
 * contention of the other two (single-process modes: a pinned cluster or pool shares CPU 0).
 * On its one CPU the bridge picks V8's single-threaded GC for itself (BRIDGE_GC=auto,
 * src/gc-mode.ts: `start` serves from a child with the flag; CPU counts the whole tree,
 * --perf samples the serving process); the relay is given the same GC.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, createWriteStream, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FRAME_MS, percentile } from './pattern.js';
import { renderSvg, type PlotSeries } from './plot.js';
import { formatLayers, readJitMap, splitSamples, type CpuLayers } from './cpu-layers.js';
import { SINGLE_THREADED_GC_FLAG, effectiveCpus, resolveGcMode, type GcSetting } from '../../src/gc-mode.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const argv = process.argv.slice(2);
const opt = (name: string, def: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1]! : def;
};
const flag = (name: string) => argv.includes(`--${name}`);
const QUICK = flag('quick');
const MODES = opt('modes', 'relay,passthrough,native,ts,pool,pool-ts,cluster').split(',');
const STEPS = opt('steps', QUICK ? '20,50' : '50,100,200,300,400,500,600,800,1000').split(',').map(Number);
const MEASURE_S = Number(opt('measure-s', QUICK ? '4' : '10'));
const SETTLE_S = Number(opt('settle-s', QUICK ? '2' : '3'));
const WARMUP_S = Number(opt('warmup-s', QUICK ? '2' : '10'));
const CPU_PROF = flag('cpu-prof');
const AGENT_CHUNK_MS = opt('agent-chunk-ms', '100');
const AGENT_SPEED = opt('agent-speed', '4');
/** BRIDGE_PLAYOUT_LEAD_MS for the bridge; '' = the bridge's default. */
const LEAD_MS = opt('lead-ms', '');
const KEEP_GOING = flag('keep-going');
const PIN = flag('pin');
if (PIN && spawnSync('taskset', ['-V']).error) {
  console.error('--pin needs taskset (Linux, util-linux: apt-get install util-linux)');
  process.exit(2);
}
/**
 * The GC the relay runs with: the one the bridge picks for itself in the same place (BRIDGE_GC,
 * src/gc-mode.ts) — single-threaded when pinned to one CPU — so the ratio compares the two
 * programs, not two runtime settings.
 */
const RELAY_GC = resolveGcMode((['parallel', 'single-threaded'].includes(process.env.BRIDGE_GC ?? '') ? process.env.BRIDGE_GC : 'auto') as GcSetting, PIN ? 1 : effectiveCpus());
/** The `taskset` prefix that runs a process on the CPUs in `cpuList` ("0", "1-3") with --pin; none without it. */
function pinned(cpuList: string): string[] {
  return PIN ? ['taskset', '-c', cpuList] : [];
}
const OTHER_CPUS = cpus().length > 2 ? `1-${cpus().length - 1}` : cpus().length === 2 ? '1' : '0';
/**
 * Rounds of all modes, each round in the reverse order of the one before (relay, passthrough,
 * native, native, passthrough, relay, …): a shared VM's speed drifts by tens of percent over
 * minutes, so a ratio is taken within a round (each mode against that round's relay) and the
 * median over rounds is reported with its range.
 */
const ROUNDS = Math.max(1, Number(opt('rounds', '1')));
/**
 * --interleave: step by step instead of mode by mode — every mode runs one step (a fresh
 * process, warmed up) before any mode runs the next, so the windows a ratio compares are
 * tens of seconds apart instead of minutes: the VM's slow drift cancels out of the ratio.
 */
const INTERLEAVE = flag('interleave');
/**
 * --perf (Linux, `perf`): a CPU-time profile of the bridge (or relay) over each step's window
 * (`perf record -e cpu-clock`), split by layer — kernel, our JS, ws, node, V8, the DSP addon —
 * in the report (`bridge.cpuLayers`) and under each row; the raw data beside the report.
 * One process: in cluster mode, the primary only (its workers are not sampled).
 */
const PERF = flag('perf');
if (PERF && spawnSync('perf', ['--version']).status !== 0) {
  console.error('--perf needs Linux perf (apt-get install linux-perf) and permission to profile your own processes (kernel.perf_event_paranoid ≤ 2)');
  process.exit(2);
}
/** Extra node flags for the bridge process (e.g. "--trace-gc"); its output then goes to BRIDGE_LOG. */
const BRIDGE_NODE_ARGS = opt('bridge-node-args', '').split(' ').filter(Boolean);
const BRIDGE_LOG = opt('bridge-log', '');
const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
const OUT = opt('out', join(root, 'bench', 'results', `capacity-${stamp}.json`));
/** --perf's data and JIT maps: one pair per mode, round and step. */
const perfRoot = join(root, 'bench', 'results', `capacity-perf-${stamp}`);
const DELAY_LIMIT_MS = 5;
const TTY = process.stdout.isTTY;

// ── processes ───────────────────────────────────────────────────────────────
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

interface Kid {
  proc: ChildProcess;
  request<T>(msg: object, reply: string): Promise<T>;
}

function fork(script: string, env: Record<string, string> = {}): Promise<Kid & { ready: Record<string, unknown> }> {
  const [cmd, ...pre] = [...pinned(OTHER_CPUS), process.execPath];
  const proc = spawn(cmd!, [...pre, '--import', 'tsx', join(root, 'bench', 'capacity', script)], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced' });
  const waiters = new Map<string, { resolve: (m: never) => void; reject: (e: Error) => void }[]>();
  proc.on('message', (m: { type: string }) => waiters.get(m.type)?.shift()?.resolve(m as never));
  proc.once('exit', () => {
    for (const list of waiters.values()) for (const w of list.splice(0)) w.reject(new Error(`${script} exited`));
  });
  const request = <T>(msg: object | null, reply: string) =>
    new Promise<T>((resolve, reject) => {
      if (proc.exitCode !== null || proc.signalCode !== null) return reject(new Error(`${script} exited`));
      const list = waiters.get(reply) ?? [];
      list.push({ resolve: resolve as (m: never) => void, reject });
      waiters.set(reply, list);
      if (msg) proc.send(msg);
    });
  return request<Record<string, unknown>>(null, 'ready').then((ready) => ({ proc, request, ready }));
}

function procTree(pid: number): number[] {
  const pids = [pid];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'latin1');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) pids.push(Number(name));
    } catch {
      /* gone */
    }
  }
  return pids;
}

/**
 * CPU (ms, user + system, all threads), RSS (MiB) and read/write syscalls (/proc/PID/io
 * syscr, syscw: every read-like and write-like call, sockets included) of the bridge and
 * its worker processes.
 */
function treeStats(pid: number): { cpuMs: number; sysMs: number; rssMb: number; reads: number; writes: number } {
  let cpuMs = 0;
  let sysMs = 0;
  let rssMb = 0;
  let reads = 0;
  let writes = 0;
  for (const p of procTree(pid)) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'latin1');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      cpuMs += (Number(f[11]) + Number(f[12])) * 10;
      sysMs += Number(f[12]) * 10;
      rssMb += Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`, 'latin1'))?.[1] ?? 0) / 1024;
      const io = readFileSync(`/proc/${p}/io`, 'latin1');
      reads += Number(/syscr:\s+(\d+)/.exec(io)?.[1] ?? 0);
      writes += Number(/syscw:\s+(\d+)/.exec(io)?.[1] ?? 0);
    } catch {
      /* gone */
    }
  }
  return { cpuMs, sysMs, rssMb, reads, writes };
}

async function startBridge(mode: string, agentPort: number, dataDir: string, profDir: string | undefined): Promise<{ proc: ChildProcess; url: string; streamUrl: string; dsp: unknown; gc: string; servingPid: number }> {
  const port = await freePort();
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    PORT: String(port),
    HOST: '127.0.0.1',
    BRIDGE_LOG_LEVEL: 'warn',
    BRIDGE_DSP: mode === 'ts' || mode === 'pool-ts' ? 'ts' : 'native',
    BRIDGE_DATA_DIR: dataDir,
    // The bench finds the limit itself: the bridge's own load gate would refuse calls first.
    BRIDGE_LOAD_THRESHOLD: 'off',
    BRIDGE_LOAD_WINDOW_MS: String(Math.min(60_000, MEASURE_S * 1000)),
    OPENAI_API_KEY: 'sk-capacity-bench',
    OPENAI_REALTIME_URL: `ws://127.0.0.1:${agentPort}/v1/realtime`,
  };
  delete env.BRIDGE_DSP_POOL;
  if (mode === 'pool' || mode === 'pool-ts') env.BRIDGE_DSP_POOL = '2';
  if (LEAD_MS) env.BRIDGE_PLAYOUT_LEAD_MS = LEAD_MS;
  const nodeArgs = [
    ...(profDir ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : []),
    // JIT code named in /tmp/perf-PID.map, and not moved after it is named (cpu-layers.ts).
    ...(PERF ? ['--perf-basic-prof', '--no-compact-code-space', '--logfile=/dev/null', '--no-logfile-per-isolate'] : []),
    ...BRIDGE_NODE_ARGS,
  ];
  const args =
    mode === 'relay'
      ? [...nodeArgs, ...(RELAY_GC === 'single-threaded' ? [SINGLE_THREADED_GC_FLAG] : []), '--import', 'tsx', join(root, 'bench', 'capacity', 'minimal-relay.ts')]
      : [...nodeArgs, '--import', 'tsx', join(root, 'src', 'cli.ts'), 'start', ...(mode === 'cluster' ? ['--workers', '2'] : [])];
  const [cmd, ...pre] = [...pinned('0'), process.execPath];
  const proc = spawn(cmd!, [...pre, ...args], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  if (BRIDGE_LOG) proc.stdout!.pipe(createWriteStream(BRIDGE_LOG, { flags: 'a' }));
  let errText = '';
  proc.stdout!.on('data', (d: Buffer) => (errText += d.toString()).length > 4000 && (errText = errText.slice(-4000)));
  proc.stderr!.on('data', (d: Buffer) => (errText += d.toString()).length > 4000 && (errText = errText.slice(-4000)));
  const url = `http://127.0.0.1:${port}`;
  const t0 = Date.now();
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`bridge (${mode}) exited with ${proc.exitCode}: ${errText.slice(-1500)}`);
    try {
      const r = await fetch(`${url}/readyz`);
      if (r.ok) {
        const body = (await r.json()) as { dsp?: unknown; pid?: number; gc?: string };
        // The process that serves: on one CPU `start` runs the bridge in a child with the
        // single-threaded GC (src/gc-mode.ts), which --perf must sample (CPU sums the whole tree).
        return { proc, url, streamUrl: `ws://127.0.0.1:${port}/twilio/stream`, dsp: body.dsp ?? null, gc: body.gc ?? RELAY_GC, servingPid: body.pid ?? proc.pid! };
      }
    } catch {
      /* not up yet */
    }
    if (Date.now() - t0 > 60_000) throw new Error(`bridge (${mode}) not ready within 60 s: ${errText.slice(-1500)}`);
    await sleep(200);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function stopProc(p: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  p.kill(signal);
  await new Promise<void>((resolve) => {
    const t = setTimeout(() => {
      p.kill('SIGKILL');
      resolve();
    }, 15_000);
    p.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
  });
}

// ── measurement ─────────────────────────────────────────────────────────────
interface GenCollect {
  calls: { callIdx: number; sendK0: number; sendT: number[]; segments: { t: number[]; cleared?: boolean }[] }[];
  framesSent: number;
  framesReceived: number;
  mediaMessages: number;
  underruns: number;
  underrunMs: number;
  clears: number;
  reactions: number[];
  connectFailed: number;
  closedByBridge: number;
  lagMaxMs: number;
  lagP99Ms: number | null;
  cpuPct: number;
}
interface AgentCollect {
  calls: { callIdx: number; inK0: number; inT: number[]; replies: { t: number[]; cut: boolean }[] }[];
  lagMaxMs: number;
  lagP99Ms: number | null;
  cpuPct: number;
}

/** Per call, across collects: caller-frame send and arrival times by frame index, and the agent's replies. */
class Ledger {
  send = new Map<number, number[]>();
  arrive = new Map<number, number[]>();
  replies = new Map<number, { t: number[]; cut: boolean }[]>();

  addGen(g: GenCollect): { callIdx: number; k0: number; k1: number }[] {
    const ranges = [];
    for (const c of g.calls) {
      const a = this.send.get(c.callIdx) ?? [];
      for (let i = 0; i < c.sendT.length; i++) a[c.sendK0 + i] = c.sendT[i]!;
      this.send.set(c.callIdx, a);
      ranges.push({ callIdx: c.callIdx, k0: c.sendK0, k1: c.sendK0 + c.sendT.length });
    }
    return ranges;
  }
  addAgent(a: AgentCollect): void {
    for (const c of a.calls) {
      if (c.callIdx < 0) continue;
      const arr = this.arrive.get(c.callIdx) ?? [];
      for (let i = 0; i < c.inT.length; i++) arr[c.inK0 + i] = c.inT[i]!;
      this.arrive.set(c.callIdx, arr);
      const r = this.replies.get(c.callIdx) ?? [];
      r.push(...c.replies);
      this.replies.set(c.callIdx, r);
    }
  }
}

interface StepResult {
  mode: string;
  calls: number;
  callsOpen: number;
  held: boolean;
  failedBecause: string[];
  bridge: { cpuPct: number; cpuMsPerCallS: number; kernelShare: number; rssMb: number; rssPerCallMb: number | null; lagP99Ms: number | null; syscallsPerCallS: { read: number; write: number } | null; cpuLayers?: CpuLayers | null };
  inbound: { frames: number; minMs: number | null; p50Ms: number | null; p99Ms: number | null; maxMs: number | null; dropped: number };
  outbound: { frames: number; minMs: number | null; p50Ms: number | null; p99Ms: number | null; maxMs: number | null; firstFrameP50Ms: number | null; firstFrameP99Ms: number | null; replies: number; unmatchedReplies: number; lostFrames: number; underruns: number; underrunMs: number; mediaMessagesPerAudioS: number | null };
  bargeIn: { count: number; reactionP50Ms: number | null; reactionP99Ms: number | null; reactionMaxMs: number | null };
  loadgen: { cpuPct: number; lagP99Ms: number | null; lagMaxMs: number };
  agent: { cpuPct: number; lagP99Ms: number | null; lagMaxMs: number };
  callsFailed: number;
}

const round = (x: number | null, d = 2) => (x === null ? null : Math.round(x * 10 ** d) / 10 ** d);

function analyse(ledger: Ledger, ranges: { callIdx: number; k0: number; k1: number }[], g: GenCollect): Omit<StepResult, 'mode' | 'calls' | 'callsOpen' | 'held' | 'failedBecause' | 'bridge' | 'loadgen' | 'agent' | 'callsFailed'> {
  const inD: number[] = [];
  let dropped = 0;
  for (const r of ranges) {
    const s = ledger.send.get(r.callIdx)!;
    const a = ledger.arrive.get(r.callIdx) ?? [];
    for (let k = r.k0; k < r.k1; k++) {
      const st = s[k];
      const at = a[k];
      if (st === undefined) continue;
      if (at === undefined) dropped++;
      else inD.push(at - st);
    }
  }
  const outD: number[] = [];
  const firstD: number[] = [];
  let replies = 0;
  let unmatched = 0;
  let lost = 0;
  for (const c of g.calls) {
    const rs = ledger.replies.get(c.callIdx) ?? [];
    for (const seg of c.segments) {
      const t0 = seg.t[0]!;
      // The reply this audio belongs to: the latest one the agent started before it arrived.
      let best: { t: number[]; cut: boolean } | undefined;
      for (const r of rs) if (r.t[0]! <= t0 && (!best || r.t[0]! > best.t[0]!)) best = r;
      if (!best || t0 - best.t[0]! > 1000) {
        unmatched++;
        continue;
      }
      replies++;
      const n = Math.min(seg.t.length, best.t.length);
      firstD.push(seg.t[0]! - best.t[0]!);
      // The delay the caller hears: when each 20 ms can start playing, against zero transport.
      let play = -Infinity;
      let ideal = -Infinity;
      for (let j = 0; j < n; j++) {
        play = Math.max(seg.t[j]!, play + FRAME_MS);
        ideal = Math.max(best.t[j]!, ideal + FRAME_MS);
        outD.push(play - ideal);
      }
      // A whole reply (not cut by a barge-in) must arrive whole. Cut: the agent says so, or a
      // `clear` ended the audio — the agent's record of a reply is collected once, and a
      // barge-in just after that collect (the reply sent in full, still playing) would
      // otherwise count the tail the bridge rightly dropped as lost.
      if (seg.t.length < best.t.length && !best.cut && !seg.cleared) lost += best.t.length - seg.t.length;
    }
  }
  return {
    inbound: { frames: inD.length, minMs: round(percentile(inD, 0)), p50Ms: round(percentile(inD, 50)), p99Ms: round(percentile(inD, 99)), maxMs: round(percentile(inD, 100)), dropped },
    outbound: { frames: outD.length, minMs: round(percentile(outD, 0)), p50Ms: round(percentile(outD, 50)), p99Ms: round(percentile(outD, 99)), maxMs: round(percentile(outD, 100)), firstFrameP50Ms: round(percentile(firstD, 50)), firstFrameP99Ms: round(percentile(firstD, 99)), replies, unmatchedReplies: unmatched, lostFrames: lost, underruns: g.underruns, underrunMs: Math.round(g.underrunMs), mediaMessagesPerAudioS: g.framesReceived > 0 ? round(g.mediaMessages / (g.framesReceived * (FRAME_MS / 1000)), 1) : null },
    bargeIn: { count: g.reactions.length, reactionP50Ms: round(percentile(g.reactions, 50)), reactionP99Ms: round(percentile(g.reactions, 99)), reactionMaxMs: round(percentile(g.reactions, 100)) },
  };
}

// ── terminal ────────────────────────────────────────────────────────────────
function bar(label: string, frac: number): void {
  if (!TTY) return;
  const w = 30;
  const f = Math.max(0, Math.min(1, frac));
  process.stdout.write(`\r  ${label} [${'#'.repeat(Math.round(f * w))}${'.'.repeat(w - Math.round(f * w))}] ${Math.round(f * 100)}%   `);
}
function clearBar(): void {
  if (TTY) process.stdout.write('\r' + ' '.repeat(100) + '\r');
}
const COLS: [string, number, (r: StepResult) => string][] = [
  ['mode', 12, (r) => r.mode],
  ['calls', 6, (r) => String(r.callsOpen)],
  ['cpu%', 6, (r) => r.bridge.cpuPct.toFixed(0)],
  ['ms/call-s', 10, (r) => r.bridge.cpuMsPerCallS.toFixed(3)],
  ['sys', 5, (r) => r.bridge.kernelShare.toFixed(2)],
  ['rd/wr per call-s', 17, (r) => (r.bridge.syscallsPerCallS ? `${r.bridge.syscallsPerCallS.read}/${r.bridge.syscallsPerCallS.write}` : '-')],
  ['MB/call', 8, (r) => (r.bridge.rssPerCallMb === null ? '-' : r.bridge.rssPerCallMb.toFixed(2))],
  ['lag99', 6, (r) => String(r.bridge.lagP99Ms ?? '-')],
  ['in p50/p99/max ms', 19, (r) => `${r.inbound.p50Ms}/${r.inbound.p99Ms}/${r.inbound.maxMs}`],
  ['out p50/p99/max ms', 20, (r) => `${r.outbound.p50Ms}/${r.outbound.p99Ms}/${r.outbound.maxMs}`],
  ['drop', 5, (r) => String(r.inbound.dropped + r.outbound.lostFrames)],
  ['undr', 5, (r) => String(r.outbound.underruns)],
  ['msg/s', 6, (r) => String(r.outbound.mediaMessagesPerAudioS ?? '-')],
  ['barge p50/p99', 14, (r) => `${r.bargeIn.reactionP50Ms}/${r.bargeIn.reactionP99Ms}`],
  ['gen/agent cpu%', 15, (r) => `${r.loadgen.cpuPct.toFixed(0)}/${r.agent.cpuPct.toFixed(0)}`],
  ['', 4, (r) => (r.held ? 'ok' : 'FAIL ' + r.failedBecause.join(','))],
];
const header = () => COLS.map(([h, w]) => h.padEnd(w)).join(' ');
const row = (r: StepResult) => COLS.map(([, w, f]) => f(r).padEnd(w)).join(' ');

// ── one mode ────────────────────────────────────────────────────────────────
type ModeRun = { mode: string; round: number; dsp: unknown; gc?: string; steps: StepResult[]; maxHeld: number | null; firstFailure?: number | null; skipped?: string };

async function runMode(mode: string, profRoot: string | undefined, roundNo: number, steps_: readonly number[] = STEPS): Promise<ModeRun> {
  const agent = await fork('fake-agent.ts', { CAPACITY_AGENT_CHUNK_MS: AGENT_CHUNK_MS, CAPACITY_AGENT_SPEED: AGENT_SPEED });
  const dataDir = mkdtempSync(join(tmpdir(), 'vb-capacity-'));
  const profDir = profRoot ? join(profRoot, `${mode}${ROUNDS > 1 ? `-r${roundNo}` : ''}${INTERLEAVE ? `-n${steps_[0]}` : ''}`) : undefined;
  if (profDir) mkdirSync(profDir, { recursive: true });
  let bridge: Awaited<ReturnType<typeof startBridge>>;
  try {
    bridge = await startBridge(mode, agent.ready.port as number, dataDir, profDir);
  } catch (e) {
    agent.proc.kill();
    rmSync(dataDir, { recursive: true, force: true });
    return { mode, round: roundNo, dsp: null, steps: [], maxHeld: null, skipped: (e as Error).message.split('\n')[0]!.slice(0, 300) };
  }
  const gen = await fork('loadgen.ts');
  const steps: StepResult[] = [];
  const base = treeStats(bridge.proc.pid!);
  const params = { agent: 'openai', format: mode === 'passthrough' || mode === 'relay' ? 'pcmu' : 'pcm24k', transcription_model: 'none' };
  try {
    for (const n of steps_) {
      gen.proc.send({ cmd: 'setCalls', n, streamUrl: bridge.streamUrl, params, rampPerS: 100 });
      const tRamp = Date.now();
      let status = { open: 0, failed: 0 };
      while (Date.now() - tRamp < 120_000) {
        status = await gen.request<{ open: number; failed: number }>({ cmd: 'status' }, 'status');
        bar(`${mode}: opening ${n} calls (${status.open})`, status.open / n);
        if (status.open + status.failed >= n) break;
        await sleep(250);
      }
      // The first step also warms the bridge up (JIT, heap growth, first connections):
      // a fresh process measured at once fails on start-up stalls, not on load.
      const settleS = SETTLE_S + (n === steps_[0] ? WARMUP_S : 0);
      for (let s = 0; s < settleS * 4; s++) {
        bar(`${mode} @ ${n}: ${n === steps_[0] ? 'warming up' : 'settling'}`, s / (settleS * 4));
        await sleep(250);
      }
      const ledger = new Ledger();
      // Start of the window: drop what came before (the agent collects after the generator, so late arrivals land).
      await gen.request({ cmd: 'collect' }, 'collect');
      await sleep(300);
      ledger.addAgent(await agent.request<AgentCollect>({ cmd: 'collect' }, 'collect'));
      const c0 = treeStats(bridge.proc.pid!);
      const perf = PERF ? startPerf(bridge.servingPid, join(perfRoot, `${mode}${ROUNDS > 1 ? `-r${roundNo}` : ''}-n${n}.data`)) : undefined;
      const t0 = performance.now();
      while (performance.now() - t0 < MEASURE_S * 1000) {
        bar(`${mode} @ ${n} calls: measuring`, (performance.now() - t0) / (MEASURE_S * 1000));
        await sleep(250);
      }
      const c1 = treeStats(bridge.proc.pid!);
      const wallMs = performance.now() - t0;
      const cpuLayers = perf ? await perf : undefined;
      const g = await gen.request<GenCollect>({ cmd: 'collect' }, 'collect');
      const ranges = ledger.addGen(g);
      await sleep(500); // frames in flight reach the agent
      const a = await agent.request<AgentCollect>({ cmd: 'collect' }, 'collect');
      ledger.addAgent(a);
      const ready = (await fetch(`${bridge.url}/readyz`).then((r) => r.json()).catch(() => ({}))) as { load?: { lagP99Ms?: number } };
      const status2 = await gen.request<{ open: number; failed: number }>({ cmd: 'status' }, 'status');
      clearBar();
      const an = analyse(ledger, ranges, g);
      const cpuMs = c1.cpuMs - c0.cpuMs;
      const open = status2.open;
      const perCallS = (count: number) => Math.round((count / (open * (wallMs / 1000))) * 10) / 10;
      const r: StepResult = {
        mode,
        calls: n,
        callsOpen: open,
        held: true,
        failedBecause: [],
        bridge: {
          cpuPct: Math.round((cpuMs / wallMs) * 1000) / 10,
          cpuMsPerCallS: open > 0 ? Math.round((cpuMs / (open * (wallMs / 1000))) * 1000) / 1000 : 0,
          // The kernel's share (socket syscalls; on loopback a send also runs the peer's TCP receive).
          kernelShare: cpuMs > 0 ? Math.round(((c1.sysMs - c0.sysMs) / cpuMs) * 100) / 100 : 0,
          rssMb: Math.round(c1.rssMb),
          rssPerCallMb: open > 0 ? Math.round(((c1.rssMb - base.rssMb) / open) * 100) / 100 : null,
          lagP99Ms: ready.load?.lagP99Ms ?? null,
          syscallsPerCallS: open > 0 ? { read: perCallS(c1.reads - c0.reads), write: perCallS(c1.writes - c0.writes) } : null,
          ...(PERF ? { cpuLayers: cpuLayers ?? null } : {}),
        },
        ...an,
        loadgen: { cpuPct: Math.round(g.cpuPct), lagP99Ms: round(g.lagP99Ms), lagMaxMs: round(g.lagMaxMs)! },
        agent: { cpuPct: Math.round(a.cpuPct), lagP99Ms: round(a.lagP99Ms), lagMaxMs: round(a.lagMaxMs)! },
        callsFailed: status2.failed + g.closedByBridge,
      };
      if ((r.inbound.p99Ms ?? Infinity) > DELAY_LIMIT_MS) r.failedBecause.push('inbound-p99');
      if ((r.outbound.p99Ms ?? Infinity) > DELAY_LIMIT_MS) r.failedBecause.push('outbound-p99');
      if (r.inbound.dropped > 0) r.failedBecause.push('dropped');
      if (r.outbound.lostFrames > 0) r.failedBecause.push('lost-agent-frames');
      if (r.outbound.underruns > 0) r.failedBecause.push('underruns');
      if (r.callsFailed > 0 || open < n) r.failedBecause.push('calls-failed');
      r.held = r.failedBecause.length === 0;
      steps.push(r);
      console.log(row(r));
      if (r.bridge.cpuLayers) console.log(`${' '.repeat(13)}CPU by layer (${r.bridge.cpuLayers.samples} samples): ${formatLayers(r.bridge.cpuLayers)}`);
      if (!r.held && !KEEP_GOING) break;
    }
  } finally {
    clearBar();
    await gen.request({ cmd: 'stop' }, 'stopped').catch(() => undefined);
    gen.proc.kill();
    await stopProc(bridge.proc);
    if (PERF) rmSync(`/tmp/perf-${bridge.servingPid}.map`, { force: true });
    agent.proc.kill();
    rmSync(dataDir, { recursive: true, force: true });
  }
  return { mode, round: roundNo, dsp: bridge.dsp, gc: bridge.gc, steps, ...heldOf(steps) };
}

/**
 * `perf record` of `pid` for the measure window (cpu-clock, ~1 kHz, no call chains: the split
 * needs only the leaf), then its samples split by layer. The node process's JIT map is copied
 * beside the data (`perf report -i <file>` names JS frames from /tmp/perf-PID.map). Null when
 * perf recorded nothing (say, refused by perf_event_paranoid).
 */
async function startPerf(pid: number, file: string): Promise<CpuLayers | null> {
  mkdirSync(dirname(file), { recursive: true });
  const rec = spawn('perf', ['record', '-q', '-e', 'cpu-clock', '-F', '999', '-p', String(pid), '-o', file, '--', 'sleep', String(MEASURE_S)], { stdio: 'ignore' });
  await new Promise((resolve) => {
    rec.once('exit', resolve);
    rec.once('error', resolve); // could not start: no data, null below
  });
  const script = spawnSync('perf', ['script', '-i', file, '-F', 'ip,sym,dso'], { encoding: 'utf8', maxBuffer: 1 << 30 });
  if (script.status !== 0 || !script.stdout) return null;
  const mapPath = `/tmp/perf-${pid}.map`;
  let map;
  try {
    map = readJitMap(mapPath);
    copyFileSync(mapPath, file.replace(/\.data$/, '.map'));
  } catch {
    map = undefined; // no --perf-basic-prof map: JS frames stay as perf named them
  }
  return splitSamples(script.stdout, map);
}

/**
 * The largest N that held. With --keep-going a later step can hold after an earlier one
 * failed (the machine is shared and the p99 sits near the limit): both are reported.
 */
function heldOf(steps: StepResult[]): { maxHeld: number | null; firstFailure: number | null } {
  const held = steps.filter((s) => s.held);
  return { maxHeld: held.length > 0 ? Math.max(...held.map((s) => s.callsOpen)) : null, firstFailure: steps.find((s) => !s.held)?.callsOpen ?? null };
}

/** --interleave: each step of every mode in a fresh process, step by step; a mode's steps are gathered under one run per round. */
async function runInterleaved(order: readonly string[], profRoot: string | undefined, roundNo: number): Promise<ModeRun[]> {
  const runs = new Map<string, ModeRun>();
  for (const n of STEPS) {
    for (const m of order) {
      const prev = runs.get(m);
      if (prev?.skipped || (prev && !KEEP_GOING && prev.firstFailure !== null)) continue; // as without --interleave: a mode stops at its first failing step
      const res = await runMode(m, profRoot, roundNo, [n]);
      if (!prev) runs.set(m, res);
      else if (res.skipped) console.log(`${m.padEnd(12)} ${n} calls skipped: ${res.skipped}`); // its earlier steps stand
      else {
        prev.steps.push(...res.steps);
        Object.assign(prev, heldOf(prev.steps));
      }
    }
  }
  return order.flatMap((m) => (runs.has(m) ? [runs.get(m)!] : []));
}

function writePlot(summary: { machine: { cpus: number; model: string; node: string }; when: string; modes: { mode: string; skipped?: string; steps: StepResult[] }[] }, svg: string): void {
  const series: PlotSeries[] = summary.modes
    .filter((m) => !m.skipped)
    .map((m) => ({ mode: ROUNDS > 1 ? `${m.mode} r${(m as { round?: number }).round ?? 1}` : m.mode, points: m.steps.map((s) => ({ calls: s.callsOpen, delayP99Ms: Math.max(s.inbound.p99Ms ?? 0, s.outbound.p99Ms ?? 0), cpuMsPerCallS: s.bridge.cpuMsPerCallS, held: s.held })) }));
  const m = summary.machine;
  writeFileSync(svg, renderSvg(series, `${m.cpus} × ${m.model}, Node ${m.node}, ${summary.when.slice(0, 16)}`));
}

// ── main ────────────────────────────────────────────────────────────────────
async function main(): Promise<void> {
  const replot = opt('replot', '');
  if (replot) {
    // Re-render the plot of an existing report: --replot bench/results/capacity-….json
    writePlot(JSON.parse(readFileSync(replot, 'utf8')), replot.replace(/\.json$/, '') + '.svg');
    console.log(`plot: ${replot.replace(/\.json$/, '')}.svg`);
    process.exit(0);
  }
  const machine = { cpus: cpus().length, model: cpus()[0]?.model ?? 'cpu', memGiB: Math.round(totalmem() / 2 ** 30), node: process.version };
  console.log(`capacity: modes ${MODES.join(', ')}; steps ${STEPS.join(', ')}; ${MEASURE_S} s measured per step; ${machine.cpus} × ${machine.model}, ${machine.memGiB} GiB, Node ${machine.node}${PIN ? `; bridge pinned to cpu 0, generator and agent to cpu ${OTHER_CPUS}` : ''}; V8 GC ${RELAY_GC} (the bridge's BRIDGE_GC choice here; the relay the same)${INTERLEAVE ? '; interleaved: every mode runs a step (fresh process) before the next step' : ''}`);
  console.log(`a step holds when p99 added delay ≤ ${DELAY_LIMIT_MS} ms both ways, nothing is dropped or lost, and Twilio's playout never runs dry mid-reply\n`);
  console.log(header());
  const profRoot = CPU_PROF ? join(root, 'bench', 'results', `capacity-prof-${stamp}`) : undefined;
  const modes: Awaited<ReturnType<typeof runMode>>[] = [];
  for (let r = 1; r <= ROUNDS; r++) {
    if (ROUNDS > 1) console.log(`── round ${r} of ${ROUNDS}`);
    const order = r % 2 === 1 ? MODES : [...MODES].reverse();
    const report = (res: ModeRun) => {
      if (res.skipped) console.log(`${res.mode.padEnd(12)} skipped: ${res.skipped}`);
      else console.log(`${res.mode.padEnd(12)} → largest N that held: ${res.maxHeld ?? 'none'}${res.firstFailure != null ? ` (first failing step: ${res.firstFailure})` : ''}${INTERLEAVE ? '' : '\n'}`);
      modes.push(res);
    };
    if (INTERLEAVE) for (const res of await runInterleaved(order, profRoot, r)) report(res);
    else for (const m of order) report(await runMode(m, profRoot, r));
    if (INTERLEAVE) console.log('');
  }
  // Every mode against the minimal relay, at each step both ran in the same round: CPU per
  // call-second as a ratio, p99 added delay each way side by side (the relay is the yardstick).
  const at = (mode: string, n: number, inRound = 1) => modes.find((x) => x.mode === mode && x.round === inRound)?.steps.find((s) => s.calls === n);
  const vsRelay = modes
    .filter((m) => m.mode !== 'relay' && !m.skipped)
    .flatMap((m) =>
      m.steps.flatMap((s) => {
        const r = at('relay', s.calls, m.round);
        if (!r || r.bridge.cpuMsPerCallS <= 0) return [];
        return [
          {
            mode: m.mode,
            round: m.round,
            calls: s.calls,
            cpuRatio: Math.round((s.bridge.cpuMsPerCallS / r.bridge.cpuMsPerCallS) * 100) / 100,
            inboundP99Ms: { bridge: s.inbound.p99Ms, relay: r.inbound.p99Ms },
            outboundP99Ms: { bridge: s.outbound.p99Ms, relay: r.outbound.p99Ms },
            mediaMessagesPerAudioS: { bridge: s.outbound.mediaMessagesPerAudioS, relay: r.outbound.mediaMessagesPerAudioS },
            dropped: s.inbound.dropped + s.outbound.lostFrames,
          },
        ];
      }),
    );
  // Over rounds: the median of each mode's within-round ratio, with its range.
  const median = (xs: number[]) => {
    const v = [...xs].sort((a, b) => a - b);
    return v.length % 2 ? v[(v.length - 1) / 2]! : Math.round(((v[v.length / 2 - 1]! + v[v.length / 2]!) / 2) * 100) / 100;
  };
  const keys = [...new Set(vsRelay.map((v) => `${v.mode}@${v.calls}`))];
  const vsRelayOverRounds = keys.map((k) => {
    const vs = vsRelay.filter((v) => `${v.mode}@${v.calls}` === k);
    const ratios = vs.map((v) => v.cpuRatio);
    return { mode: vs[0]!.mode, calls: vs[0]!.calls, rounds: vs.length, cpuRatioMedian: median(ratios), cpuRatioMin: Math.min(...ratios), cpuRatioMax: Math.max(...ratios), dropped: vs.reduce((n, v) => n + v.dropped, 0) };
  });
  const common = STEPS.filter((n) => at('native', n) && at('passthrough', n)).pop();
  const dspRatios = common
    ? Array.from({ length: ROUNDS }, (_, i) => [at('native', common, i + 1), at('passthrough', common, i + 1)] as const)
        .filter(([a, b]) => a && b)
        .map(([a, b]) => Math.round((a!.bridge.cpuMsPerCallS / b!.bridge.cpuMsPerCallS) * 100) / 100)
    : [];
  const ratio = dspRatios.length > 0 ? median(dspRatios) : null;
  const summary = {
    machine,
    when: new Date().toISOString(),
    command: `npm run bench:capacity -- ${argv.join(' ')}`.trim(),
    settings: { relayGc: RELAY_GC, rounds: ROUNDS, interleaved: INTERLEAVE, perf: PERF, steps: STEPS, measureS: MEASURE_S, settleS: SETTLE_S, warmupS: WARMUP_S, keepGoing: KEEP_GOING, pinned: PIN ? { bridge: 'cpu 0', loadgenAndAgent: `cpu ${OTHER_CPUS}` } : false, delayLimitMs: DELAY_LIMIT_MS, leadMs: LEAD_MS || 'bridge default', agent: `fake OpenAI Realtime (GA), 24 kHz PCM16 (passthrough, relay: μ-law), ${AGENT_CHUNK_MS} ms deltas at ${AGENT_SPEED}× real time` },
    // Over rounds, the smallest: what held every time.
    maxHeld: Object.fromEntries(
      [...new Set(modes.map((m) => m.mode))].map((mode) => {
        const runs = modes.filter((m) => m.mode === mode);
        const skipped = runs.find((m) => m.skipped);
        return [mode, skipped ? `skipped: ${skipped.skipped}` : runs.some((m) => m.maxHeld === null) ? null : Math.min(...runs.map((m) => m.maxHeld!))];
      }),
    ),
    fullDspVsPassthroughCpu: common ? { calls: common, ratio, ...(ROUNDS > 1 ? { perRound: dspRatios } : {}) } : null,
    vsRelay,
    ...(ROUNDS > 1 ? { vsRelayOverRounds } : {}),
    modes,
  };
  mkdirSync(dirname(OUT), { recursive: true });
  writeFileSync(OUT, JSON.stringify(summary, null, 1));
  const svg = OUT.replace(/\.json$/, '') + '.svg';
  writePlot(summary, svg);
  console.log(`largest N that held: ${Object.entries(summary.maxHeld).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  if (ratio !== null) console.log(`full DSP (native) vs μ-law passthrough, CPU per call-second at ${common} calls: ${ratio}×${ROUNDS > 1 ? ` (median of ${dspRatios.join(', ')})` : ''}`);
  for (const v of vsRelay)
    console.log(
      `${v.mode} vs minimal relay at ${v.calls} calls${ROUNDS > 1 ? ` (round ${v.round})` : ''}: CPU ${v.cpuRatio}×; p99 in ${v.inboundP99Ms.bridge}/${v.inboundP99Ms.relay} ms, out ${v.outboundP99Ms.bridge}/${v.outboundP99Ms.relay} ms; media msgs per audio-s ${v.mediaMessagesPerAudioS.bridge}/${v.mediaMessagesPerAudioS.relay}; dropped ${v.dropped}`,
    );
  if (ROUNDS > 1)
    for (const v of vsRelayOverRounds)
      console.log(`${v.mode} vs minimal relay at ${v.calls} calls over ${v.rounds} rounds: CPU ${v.cpuRatioMedian}× median (${v.cpuRatioMin}–${v.cpuRatioMax}×); dropped ${v.dropped}`);
  if (profRoot) console.log(`CPU profiles (.cpuprofile, open in Chrome DevTools): ${profRoot}`);
  if (PERF) console.log(`perf data (perf report -i <file>; JS frames from the .map beside it — copy it to /tmp/perf-<pid>.map): ${perfRoot}`);
  console.log(`report: ${OUT}\nplot:   ${svg}`);
  process.exit(0);
}

main().catch((e: unknown) => {
  clearBar();
  console.error(e);
  process.exit(1);
});
