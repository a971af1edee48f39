/**
 * Soak test (not in CI): N simulated calls for M minutes against a bridge started in a
 * child process, reporting every 30 s and writing a JSON report to bench/results/.
 *
 *   npx tsx scripts/soak.ts [--calls 200] [--minutes 10] [--rate 24000] [--dsp auto|native|ts]
 *                           [--addon <path to a prebuilt addon>] [--report-s 30] [--ramp-s 20]
 *                           [--call-s 60-180] [--out bench/results/soak-<time>.json]
 *
 * The bridge: `src/cli.ts start` in a child process (echo agent; `?rate=24000` by default
 * as a custom parameter, so every frame is resampled 8k→24k in and 24k→8k out: the full
 * DSP path). Its RSS and CPU come from /proc/<pid>/status and /proc/<pid>/stat.
 *
 * The load generator (this process) is lean: ONE shared drift-free 20 ms clock
 * (next += 20) drives every call — no timer per call; caller frames are base64'd once at
 * start (a talk/silence pattern from the test fixtures: a 5.75 s turn, 7.85 s of silence, a
 * 2.48 s turn, 4.58 s of silence — room for the echo's reply — repeated, each call at its own offset); agent media is
 * counted without JSON.parse. Each call plays Twilio: it echoes marks when the audio
 * queued before them has played, and models Twilio's playout buffer to count underruns —
 * the buffer running dry mid-response (≤ 500 ms gap, not after a clear) — as frames lost
 * at the caller. Calls hang up after a random 60–180 s (stop) and are replaced, so the
 * run also exercises session set-up and tear-down.
 *
 * Reported per interval: bridge RSS and CPU, active calls, frames sent / received,
 * playout gaps (count and ms) seen by the callers, the bridge's own jitter-buffer
 * lost/concealed and playout underruns (summed over GET /calls), reply latency (end of
 * a caller turn → first agent audio, which includes the echo agent's 600 ms end-of-turn
 * silence), and event-loop lag: the bridge exposes none, so it is measured from here as
 * the round trip of GET /healthz every second (an upper bound: it includes loopback HTTP),
 * beside this generator's own timer lateness.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { readWav } from '../src/audio/wav.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

// ── options ─────────────────────────────────────────────────────────────────
function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1]! : def;
}
const CALLS = Number(arg('calls', '200'));
const MINUTES = Number(arg('minutes', '10'));
const RATE = arg('rate', '24000');
const DSP = arg('dsp', 'auto');
const ADDON = arg('addon', '');
const REPORT_S = Number(arg('report-s', '30'));
const RAMP_S = Number(arg('ramp-s', '20'));
const [CALL_MIN_S, CALL_MAX_S] = arg('call-s', '60-180').split('-').map(Number) as [number, number];
const stamp = new Date().toISOString().replace(/[:.]/g, '-');
const OUT = arg('out', join(root, 'bench', 'results', `soak-${stamp}.json`));

const FRAME_MS = 20;
const FRAME_BYTES = 160;
const MAX_GAP_MS = 500;

// ── caller audio: a talk/silence pattern, base64 once ───────────────────────
async function callerPattern(): Promise<{ frames: string[]; turnEnds: Set<number> }> {
  const a = (await readWav(join(root, 'test', 'fixtures', 'caller-order-status.8k-ulaw.wav'))).data as Uint8Array;
  const b = (await readWav(join(root, 'test', 'fixtures', 'caller-barge-in.8k-ulaw.wav'))).data as Uint8Array;
  const silence = (ms: number) => new Uint8Array(ms * 8).fill(0xff);
  // Each turn is followed by enough silence for the echo agent's reply (its 600 ms end of turn,
  // then the turn played back) and a pause, so replies and turns do not overlap.
  const parts = [a, silence(600 + 5750 + 1500), b, silence(600 + 2480 + 1500)];
  const frames: string[] = [];
  const turnEnds = new Set<number>();
  for (const p of parts) {
    const n = Math.ceil(p.length / FRAME_BYTES);
    for (let k = 0; k < n; k++) {
      const f = new Uint8Array(FRAME_BYTES).fill(0xff);
      f.set(p.subarray(k * FRAME_BYTES, Math.min(p.length, (k + 1) * FRAME_BYTES)));
      frames.push(Buffer.from(f).toString('base64'));
    }
    if (p[0] !== 0xff) turnEnds.add(frames.length - 1); // last frame of a spoken turn
  }
  return { frames, turnEnds };
}

// ── the bridge in a child process ───────────────────────────────────────────
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

function procStats(pid: number): { rssMb: number; cpuMs: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'latin1');
    const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 'NaN');
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { rssMb: rssKb / 1024, cpuMs: (Number(f[11]) + Number(f[12])) * 10 };
  } catch {
    return undefined;
  }
}

async function startBridgeChild(port: number): Promise<{ child: ChildProcess; url: string }> {
  const env: Record<string, string> = { ...(process.env as Record<string, string>), PORT: String(port), HOST: '127.0.0.1', BRIDGE_LOG_LEVEL: 'warn', BRIDGE_DSP: DSP };
  if (ADDON) env.BRIDGE_DSP_ADDON = ADDON;
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'src', 'cli.ts'), 'start'], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (d: Buffer) => process.stdout.write(`[bridge] ${d}`));
  child.stderr!.on('data', (d: Buffer) => process.stderr.write(`[bridge] ${d}`));
  const url = `http://127.0.0.1:${port}`;
  const t0 = Date.now();
  for (;;) {
    if (child.exitCode !== null) throw new Error(`bridge exited with ${child.exitCode}`);
    try {
      const r = await fetch(`${url}/readyz`);
      if (r.ok) return { child, url };
    } catch {
      /* not up yet */
    }
    if (Date.now() - t0 > 30_000) throw new Error('bridge did not become ready within 30 s');
    await new Promise((r) => setTimeout(r, 200));
  }
}

// ── one simulated call (state only; the shared clock drives it) ─────────────
interface Interval {
  framesSent: number;
  framesReceived: number;
  gaps: number;
  gapMs: number;
  latencies: number[];
  callsStarted: number;
  callsEnded: number;
  callsFailed: number;
}
const newInterval = (): Interval => ({ framesSent: 0, framesReceived: 0, gaps: 0, gapMs: 0, latencies: [], callsStarted: 0, callsEnded: 0, callsFailed: 0 });

let seq = 0;
const hex = (n: number) => n.toString(16).padStart(32, '0');

class SimCall {
  readonly streamSid: string;
  readonly callSid: string;
  ws: WebSocket | undefined;
  open = false;
  ended = false;
  k = 0;
  seqNo = 0;
  /** Twilio's playout: when what is queued ends (ms, performance.now()). */
  scheduledEnd = 0;
  hadAudio = false;
  afterClear = false;
  pendingMarks: { name: string; end: number }[] = [];
  turnEndAt = -1;
  endedByUs = false;
  constructor(
    readonly offset: number,
    readonly endAtMs: number,
  ) {
    const n = ++seq;
    this.streamSid = 'MZ' + hex(n);
    this.callSid = 'CA' + hex(n);
  }
}

// ── main ────────────────────────────────────────────────────────────────────
async function main(): Promise<void> {
  const pattern = await callerPattern();
  const port = await freePort();
  console.log(`soak: ${CALLS} calls for ${MINUTES} min, rate=${RATE}, dsp=${DSP}${ADDON ? ` (addon ${ADDON})` : ''}; ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`);
  const { child, url } = await startBridgeChild(port);
  const ready = (await (await fetch(`${url}/readyz`)).json()) as { dsp?: { backend: string; fallbackReason: string | null } };
  console.log(`bridge pid ${child.pid}, DSP backend ${ready.dsp?.backend}${ready.dsp?.fallbackReason ? ` (fallback: ${ready.dsp.fallbackReason})` : ''}`);
  const streamUrl = `ws://127.0.0.1:${port}/twilio/stream`;

  const calls = new Set<SimCall>();
  let iv = newInterval();
  const total = newInterval();
  const t0 = performance.now();
  const endAt = t0 + MINUTES * 60_000;
  let stopping = false;

  const openCall = (startDelayMs: number) => {
    const dur = (CALL_MIN_S + Math.random() * (CALL_MAX_S - CALL_MIN_S)) * 1000;
    const c = new SimCall(Math.floor(Math.random() * pattern.frames.length), performance.now() + startDelayMs + dur);
    calls.add(c);
    setTimeout(() => {
      if (stopping) return void calls.delete(c);
      const ws = new WebSocket(streamUrl, { perMessageDeflate: false, handshakeTimeout: 10_000 });
      c.ws = ws;
      ws.on('open', () => {
        c.open = true;
        ws.send(JSON.stringify({ event: 'connected', protocol: 'Call', version: '1.0.0' }));
        ws.send(
          JSON.stringify({
            event: 'start',
            sequenceNumber: String(++c.seqNo),
            streamSid: c.streamSid,
            start: { streamSid: c.streamSid, callSid: c.callSid, accountSid: 'AC' + hex(0), tracks: ['inbound'], customParameters: { agent: 'echo', rate: RATE }, mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 } },
          }),
        );
        iv.callsStarted++;
      });
      ws.on('message', (data: Buffer, isBinary: boolean) => {
        if (isBinary || c.ended) return;
        const now = performance.now();
        const text = data.toString('latin1');
        if (text.startsWith('{"event":"media"')) {
          // Whole 160-byte frames (one or more per message): Twilio's playout buffer.
          const p0 = text.indexOf('"payload":"') + 11;
          const p1 = text.indexOf('"', p0);
          const b64 = p1 - p0;
          const bytes = (b64 / 4) * 3 - (text[p1 - 1] === '=' ? (text[p1 - 2] === '=' ? 2 : 1) : 0);
          iv.framesReceived += bytes / FRAME_BYTES;
          let start = c.scheduledEnd;
          if (start < now) {
            const gap = now - start;
            if (c.hadAudio && !c.afterClear && gap <= MAX_GAP_MS && gap > 1) {
              iv.gaps++;
              iv.gapMs += gap;
            }
            start = now;
          }
          c.scheduledEnd = start + bytes / 8;
          c.hadAudio = true;
          c.afterClear = false;
          if (c.turnEndAt >= 0) {
            iv.latencies.push(now - c.turnEndAt);
            c.turnEndAt = -1;
          }
          return;
        }
        const m = JSON.parse(text) as { event: string; mark?: { name: string } };
        if (m.event === 'mark' && m.mark) {
          if (c.scheduledEnd <= now) sendMark(c, m.mark.name);
          else c.pendingMarks.push({ name: m.mark.name, end: c.scheduledEnd });
        } else if (m.event === 'clear') {
          c.scheduledEnd = now;
          c.afterClear = true;
          for (const p of c.pendingMarks.splice(0)) sendMark(c, p.name);
        }
      });
      ws.on('error', () => undefined);
      ws.on('close', () => {
        if (!c.ended) {
          iv.callsFailed++;
          c.ended = true;
        }
        calls.delete(c);
        // Replace it: at once after a hang-up, after a second when the bridge dropped or refused it.
        if (!stopping) openCall(c.endedByUs ? 0 : 1000);
      });
    }, startDelayMs);
  };
  const sendMark = (c: SimCall, name: string) => {
    if (c.ws?.readyState === WebSocket.OPEN) c.ws.send(`{"event":"mark","sequenceNumber":"${++c.seqNo}","streamSid":"${c.streamSid}","mark":{"name":${JSON.stringify(name)}}}`);
  };
  const hangUp = (c: SimCall) => {
    c.ended = true;
    c.endedByUs = true;
    iv.callsEnded++;
    c.ws?.send(`{"event":"stop","sequenceNumber":"${++c.seqNo}","streamSid":"${c.streamSid}","stop":{"accountSid":"AC${hex(0)}","callSid":"${c.callSid}"}}`);
    c.ws?.close(1000, 'call ended');
  };

  for (let i = 0; i < CALLS; i++) openCall((RAMP_S * 1000 * i) / CALLS);

  // The one shared 20 ms clock: every call's next caller frame, marks whose audio has played.
  let next = performance.now() + FRAME_MS;
  let genLateMax = 0;
  const frames = pattern.frames;
  const tick = () => {
    const now = performance.now();
    genLateMax = Math.max(genLateMax, now - next);
    // Frames due since the last tick (a late tick catches up, as a network would deliver).
    let due = 0;
    while (next <= now) {
      next += FRAME_MS;
      due++;
    }
    for (const c of calls) {
      if (!c.open || c.ended) continue;
      for (let d = 0; d < due; d++) {
        const idx = (c.k + c.offset) % frames.length;
        c.ws!.send(`{"event":"media","sequenceNumber":"${++c.seqNo}","media":{"track":"inbound","chunk":"${c.k + 1}","timestamp":"${c.k * FRAME_MS}","payload":"${frames[idx]}"},"streamSid":"${c.streamSid}"}`);
        if (pattern.turnEnds.has(idx)) c.turnEndAt = now;
        c.k++;
        iv.framesSent++;
      }
      while (c.pendingMarks.length > 0 && c.pendingMarks[0]!.end <= now) sendMark(c, c.pendingMarks.shift()!.name);
      if (now >= c.endAtMs && !stopping) hangUp(c);
    }
    if (!stopping) setTimeout(tick, Math.max(0, next - performance.now()));
  };
  setTimeout(tick, FRAME_MS);

  // Bridge responsiveness: GET /healthz round trip every second.
  let healthMs: number[] = [];
  const health = setInterval(() => {
    const h0 = performance.now();
    fetch(`${url}/healthz`)
      .then((r) => r.arrayBuffer())
      .then(
        () => healthMs.push(performance.now() - h0),
        () => healthMs.push(Number.POSITIVE_INFINITY),
      );
  }, 1000);

  const rows: Record<string, unknown>[] = [];
  let lastCpu = procStats(child.pid!)?.cpuMs ?? 0;
  let lastT = performance.now();
  const pct = (xs: number[], p: number) => (xs.length === 0 ? null : Math.round([...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!));
  const report = async () => {
    const now = performance.now();
    const ps = procStats(child.pid!);
    const cpuPct = ps ? Math.round(((ps.cpuMs - lastCpu) / (now - lastT)) * 100) : null;
    lastCpu = ps?.cpuMs ?? lastCpu;
    lastT = now;
    let bridgeCalls = 0;
    let jbLost = 0;
    let jbConcealed = 0;
    let underruns = 0;
    try {
      const list = (await (await fetch(`${url}/calls`)).json()) as { calls: { jitter: { lost: number; concealed: number } | null; playout: { underruns: number } | null }[] };
      bridgeCalls = list.calls.length;
      for (const s of list.calls) {
        jbLost += s.jitter?.lost ?? 0;
        jbConcealed += s.jitter?.concealed ?? 0;
        underruns += s.playout?.underruns ?? 0;
      }
    } catch {
      /* reported as 0 calls */
    }
    const row = {
      t: Math.round((now - t0) / 1000),
      rssMb: ps ? Math.round(ps.rssMb) : null,
      cpuPct,
      activeCalls: bridgeCalls,
      framesSent: iv.framesSent,
      framesReceived: iv.framesReceived,
      callerGaps: iv.gaps,
      callerGapMs: Math.round(iv.gapMs),
      jbLostActive: jbLost,
      jbConcealedActive: jbConcealed,
      bridgeUnderrunsActive: underruns,
      replyLatencyP50Ms: pct(iv.latencies, 50),
      replyLatencyP95Ms: pct(iv.latencies, 95),
      healthzP50Ms: pct(healthMs, 50),
      healthzMaxMs: pct(healthMs, 100),
      genLateMaxMs: Math.round(genLateMax),
      callsStarted: iv.callsStarted,
      callsEnded: iv.callsEnded,
      callsFailed: iv.callsFailed,
    };
    rows.push(row);
    console.log(Object.entries(row).map(([k, v]) => `${k}=${v}`).join(' '));
    for (const k of ['framesSent', 'framesReceived', 'gaps', 'gapMs', 'callsStarted', 'callsEnded', 'callsFailed'] as const) total[k] += iv[k];
    total.latencies.push(...iv.latencies);
    iv = newInterval();
    healthMs = [];
    genLateMax = 0;
  };
  const reporter = setInterval(() => void report(), REPORT_S * 1000);

  await new Promise<void>((resolve) => {
    const check = setInterval(() => {
      if (performance.now() >= endAt || child.exitCode !== null) {
        clearInterval(check);
        resolve();
      }
    }, 250);
  });
  clearInterval(reporter);
  await report();
  stopping = true;
  clearInterval(health);
  const bridgeExit = child.exitCode;
  for (const c of calls) if (c.open && !c.ended) hangUp(c);
  await new Promise((r) => setTimeout(r, 2000));
  child.kill('SIGTERM');
  const exitCode = await new Promise<number | null>((resolve) => {
    if (child.exitCode !== null) return resolve(child.exitCode);
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      resolve(null);
    }, 15_000);
    child.once('exit', (code) => {
      clearTimeout(t);
      resolve(code);
    });
  });

  const rss = rows.map((r) => r.rssMb as number).filter((x) => x !== null);
  const summary = {
    calls: CALLS,
    minutes: MINUTES,
    rate: RATE,
    dsp: ready.dsp ?? null,
    machine: { cpus: cpus().length, model: cpus()[0]?.model, memGiB: Math.round(totalmem() / 2 ** 30), node: process.version },
    bridgeCrashed: bridgeExit !== null,
    bridgeExitAfterSigterm: exitCode,
    framesSent: total.framesSent,
    framesReceived: total.framesReceived,
    callerGaps: total.gaps,
    callerGapMs: Math.round(total.gapMs),
    callerGapsPerMinutePerCall: Math.round((total.gaps / MINUTES / CALLS) * 1000) / 1000,
    replyLatencyP50Ms: pct(total.latencies, 50),
    replyLatencyP95Ms: pct(total.latencies, 95),
    replyLatencyP99Ms: pct(total.latencies, 99),
    callsStarted: total.callsStarted,
    callsEnded: total.callsEnded,
    callsFailed: total.callsFailed,
    rssMb: { first: rss[0], last: rss[rss.length - 1], max: Math.max(...rss) },
    rows,
  };
  mkdirSync(dirname(OUT), { recursive: true });
  writeFileSync(OUT, JSON.stringify(summary, null, 1));
  console.log(`\nsummary: ${JSON.stringify({ ...summary, rows: undefined })}\nreport: ${OUT}`);
  process.exit(0);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
