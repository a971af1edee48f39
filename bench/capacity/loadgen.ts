/**
 * The capacity benchmark's load generator: N simulated Twilio Media Streams calls at
 * real-time pace, in its own process (started by bench/capacity/run.ts, driven over IPC).
 *
 * Lean on purpose — it shares the 2-core machine with the bridge:
 * - ONE shared drift-free clock (PhaseClock) sends every call's next frame, calls
 *   spread over the 20 ms period in ten 2 ms phase groups, so the bridge never gets
 *   every call's frame in one burst (which would measure the generator, not the bridge).
 * - caller frames are base64'd once (pattern.ts); messages are built by concatenation;
 *   agent media is measured without JSON.parse (only marks and clears are parsed).
 * - It plays Twilio's side faithfully where the bridge can tell: marks are echoed when
 *   the audio queued before them has played; `clear` empties the playout buffer.
 *
 * What it logs, per call, between two collects: each caller frame's send time (the
 * inbound delay is its arrival at the agent minus this); each agent frame's arrival,
 * grouped into replies (a reply is a run of audio with no silence longer than
 * SEG_GAP_MS, or the audio after a clear); playout underruns (Twilio's buffer running dry
 * inside a reply: an audible gap); and barge-in reactions (the first frame of a caller
 * turn sent while agent audio is playing → the `clear` arriving).
 */
import WebSocket from 'ws';
import { FRAME_BYTES, FRAME_MS, Flag, PHASES, PhaseClock, buildPattern, monoClock } from './pattern.js';

const now = monoClock();
const pattern = buildPattern();
const SEG_GAP_MS = 150;
const MAX_GAP_MS = 500;

interface Segment {
  t: number[];
  /** A `clear` ended it: a barge-in, its unsent tail dropped by the bridge on purpose. */
  cleared?: boolean;
}

interface Call {
  idx: number;
  offset: number;
  streamSid: string;
  callSid: string;
  ws: WebSocket;
  open: boolean;
  failed: boolean;
  k: number;
  seqNo: number;
  sendK0: number;
  sendT: number[];
  scheduledEnd: number;
  hadAudio: boolean;
  afterClear: boolean;
  pendingMarks: { name: string; end: number }[];
  seg: Segment | undefined;
  lastArrival: number;
  segments: Segment[];
  bargeAt: number;
}

const hex = (n: number) => n.toString(16).padStart(32, '0');
const calls: Call[] = [];
let streamUrl = '';
let params: Record<string, string> = {};
let iv = { framesSent: 0, framesReceived: 0, mediaMessages: 0, underruns: 0, underrunMs: 0, clears: 0, reactions: [] as number[], connectFailed: 0, closedByBridge: 0 };

function sendMark(c: Call, name: string): void {
  if (c.ws.readyState === WebSocket.OPEN) c.ws.send(`{"event":"mark","sequenceNumber":"${++c.seqNo}","streamSid":"${c.streamSid}","mark":{"name":${JSON.stringify(name)}}}`);
}

function openCall(idx: number): void {
  const offset = Math.floor(Math.random() * pattern.length);
  const streamSid = 'MZ' + hex(idx + 1);
  const callSid = 'CA' + hex(idx + 1);
  const ws = new WebSocket(streamUrl, { perMessageDeflate: false, handshakeTimeout: 30_000 });
  const c: Call = { idx, offset, streamSid, callSid, ws, open: false, failed: false, k: 0, seqNo: 0, sendK0: 0, sendT: [], scheduledEnd: 0, hadAudio: false, afterClear: false, pendingMarks: [], seg: undefined, lastArrival: 0, segments: [], bargeAt: -1 };
  calls[idx] = c;
  ws.on('open', () => {
    ws.send('{"event":"connected","protocol":"Call","version":"1.0.0"}');
    ws.send(
      JSON.stringify({
        event: 'start',
        sequenceNumber: String(++c.seqNo),
        streamSid,
        start: { streamSid, callSid, accountSid: 'AC' + hex(0), tracks: ['inbound'], customParameters: { ...params, instructions: `cap:${idx}:${offset}` }, mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 } },
      }),
    );
    c.open = true;
  });
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    if (isBinary) return;
    const t = now();
    const text = data.toString('latin1');
    if (text.startsWith('{"event":"media"')) {
      const p0 = text.indexOf('"payload":"') + 11;
      const p1 = text.indexOf('"', p0);
      const b64 = p1 - p0;
      const bytes = (b64 / 4) * 3 - (text.charCodeAt(p1 - 1) === 61 ? (text.charCodeAt(p1 - 2) === 61 ? 2 : 1) : 0);
      const frames = bytes / FRAME_BYTES;
      iv.framesReceived += frames;
      iv.mediaMessages++;
      // Twilio's playout buffer: audio plays in order, in real time, from when it arrives.
      let start = c.scheduledEnd;
      if (start < t) {
        const gap = t - start;
        if (c.hadAudio && !c.afterClear && gap <= MAX_GAP_MS && gap > 1) {
          iv.underruns++;
          iv.underrunMs += gap;
        }
        start = t;
      }
      c.scheduledEnd = start + frames * FRAME_MS;
      c.hadAudio = true;
      // Replies, for the outbound delay: a new one after silence or after a clear.
      if (!c.seg || c.afterClear || t - c.lastArrival > SEG_GAP_MS) {
        if (c.seg) c.segments.push(c.seg);
        c.seg = { t: [] };
      }
      c.afterClear = false;
      for (let i = 0; i < frames; i++) c.seg.t.push(t);
      c.lastArrival = t;
      return;
    }
    const m = JSON.parse(text) as { event: string; mark?: { name: string } };
    if (m.event === 'mark' && m.mark) {
      if (c.scheduledEnd <= t) sendMark(c, m.mark.name);
      else c.pendingMarks.push({ name: m.mark.name, end: c.scheduledEnd });
    } else if (m.event === 'clear') {
      iv.clears++;
      if (c.seg) c.seg.cleared = true;
      if (c.bargeAt >= 0) {
        iv.reactions.push(t - c.bargeAt);
        c.bargeAt = -1;
      }
      c.scheduledEnd = t;
      c.afterClear = true;
      for (const p of c.pendingMarks.splice(0)) sendMark(c, p.name);
    }
  });
  ws.on('error', () => {
    if (!c.open) {
      c.failed = true;
      iv.connectFailed++;
    }
  });
  ws.on('close', () => {
    if (c.open) iv.closedByBridge++;
    c.open = false;
  });
}

// ── the one shared clock (pattern.ts PhaseClock) ────────────────────────────
function sendPhase(phase: number, t: number): void {
  const frames = pattern.framesB64;
  for (let i = phase; i < calls.length; i += PHASES) {
    const c = calls[i];
    if (!c || !c.open) continue;
    const p = (c.k + c.offset) % pattern.length;
    const st = now();
    c.ws.send(`{"event":"media","sequenceNumber":"${++c.seqNo}","media":{"track":"inbound","chunk":"${c.k + 1}","timestamp":"${c.k * FRAME_MS}","payload":"${frames[p]}"},"streamSid":"${c.streamSid}"}`);
    c.sendT.push(st);
    if (pattern.flags[p]! & Flag.BargeIn && c.scheduledEnd > st) c.bargeAt = st;
    c.k++;
    iv.framesSent++;
    while (c.pendingMarks.length > 0 && c.pendingMarks[0]!.end <= t) sendMark(c, c.pendingMarks.shift()!.name);
  }
}
const clock = new PhaseClock(now, sendPhase);

// ── IPC ─────────────────────────────────────────────────────────────────────
let cpu0 = process.cpuUsage();
let t0 = now();
process.on('message', (msg: { cmd: string; n?: number; streamUrl?: string; params?: Record<string, string>; rampPerS?: number }) => {
  if (msg.cmd === 'setCalls') {
    streamUrl = msg.streamUrl ?? streamUrl;
    params = msg.params ?? params;
    const from = calls.length;
    const to = msg.n!;
    const gap = 1000 / (msg.rampPerS ?? 100);
    for (let i = from; i < to; i++) setTimeout(() => openCall(i), (i - from) * gap);
    return;
  }
  if (msg.cmd === 'status') {
    process.send?.({ type: 'status', open: calls.filter((c) => c?.open).length, failed: calls.filter((c) => c?.failed).length });
    return;
  }
  if (msg.cmd === 'stop') {
    for (const c of calls) {
      if (c?.open) {
        c.ws.send(`{"event":"stop","sequenceNumber":"${++c.seqNo}","streamSid":"${c.streamSid}","stop":{"accountSid":"AC${hex(0)}","callSid":"${c.callSid}"}}`);
        c.ws.close(1000);
      }
    }
    process.send?.({ type: 'stopped' });
    return;
  }
  if (msg.cmd === 'collect') {
    const t = now();
    const out = [];
    for (const c of calls) {
      if (!c) continue;
      // A reply still arriving stays for the next collect.
      if (c.seg && t - c.lastArrival > 500) {
        c.segments.push(c.seg);
        c.seg = undefined;
      }
      out.push({ callIdx: c.idx, sendK0: c.sendK0, sendT: c.sendT, segments: c.segments });
      c.sendK0 += c.sendT.length;
      c.sendT = [];
      c.segments = [];
    }
    const cpu = process.cpuUsage(cpu0);
    process.send?.({ type: 'collect', calls: out, ...iv, reactions: iv.reactions, ...clock.takeLag(), cpuPct: ((cpu.user + cpu.system) / 1000 / (t - t0)) * 100 });
    iv = { framesSent: 0, framesReceived: 0, mediaMessages: 0, underruns: 0, underrunMs: 0, clears: 0, reactions: [], connectFailed: 0, closedByBridge: 0 };
    cpu0 = process.cpuUsage();
    t0 = t;
  }
});
process.on('disconnect', () => process.exit(0));
process.send?.({ type: 'ready' });
