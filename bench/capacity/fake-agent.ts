/**
 * The capacity benchmark's agent: a lean WebSocket server speaking the OpenAI Realtime
 * (GA) subset the bridge's openai adapter uses
 * (https://platform.openai.com/docs/api-reference/realtime), run in its own process by
 * bench/capacity/run.ts.
 *
 * - handshake: `session.created` on connect, `session.updated` echoing the audio
 *   format asked for (`audio/pcm` 24 kHz: the bridge runs the full DSP path; or
 *   `audio/pcmu`: μ-law passthrough, the floor).
 * - input: `input_audio_buffer.append` is counted, not decoded: the base64 length gives
 *   the frames (960 bytes of 24 kHz PCM16, or 160 of μ-law, per 20 ms caller frame);
 *   each frame's arrival time is logged for the inbound delay.
 * - conversation: it knows the caller's pattern (pattern.ts) from the frame count, so
 *   it acts like server VAD with no detection latency: `speech_started` at a turn's first
 *   frame (cancelling a reply in progress — `interrupt_response`), `speech_stopped` +
 *   `committed` at its last, and a reply THINK_MS later, streamed in
 *   `response.output_audio.delta` chunks (pre-encoded base64) from ONE shared clock.
 *   Each 20 ms frame's send time (its delta's) is logged for the outbound delay.
 *
 * IPC: sends { type: 'ready', port }; answers { cmd: 'collect' } with the logs since the
 * previous collect and its own timer lateness and CPU.
 */
import { WebSocketServer, type WebSocket } from 'ws';
import { FRAME_MS, Flag, PHASES, PhaseClock, THINK_MS, buildPattern, fixture, monoClock, wavBytes } from './pattern.js';

const now = monoClock();
const pattern = buildPattern();
/**
 * How the agent streams a reply: deltas of CHUNK_MS of audio, SPEED × faster than real
 * time (the real services send ~100 ms deltas well ahead of real time; run.ts sets
 * CAPACITY_AGENT_CHUNK_MS / CAPACITY_AGENT_SPEED, default 100 ms at 4×).
 */
const CHUNK_MS = Number(process.env.CAPACITY_AGENT_CHUNK_MS ?? 100);
const SPEED = Number(process.env.CAPACITY_AGENT_SPEED ?? 4);
const CHUNK_FRAMES = Math.max(1, Math.round(CHUNK_MS / FRAME_MS));

// CHUNK_MS chunks of the agent's voice, base64 once: 24 kHz PCM16 (480 samples per 20 ms) and μ-law (160 bytes per 20 ms).
function chunks(data: Uint8Array, size: number): string[] {
  const out: string[] = [];
  for (let off = 0; off + size <= data.length; off += size) out.push(Buffer.from(data.subarray(off, off + size)).toString('base64'));
  return out;
}
const PCM_CHUNKS = chunks(wavBytes(fixture('agent-reply.24k-pcm16.wav')), 960 * CHUNK_FRAMES);
const ULAW_CHUNKS = chunks(wavBytes(fixture('caller-order-status.8k-ulaw.wav')), 160 * CHUNK_FRAMES);
const APPEND_PREFIX = '{"type":"input_audio_buffer.append","audio":"';

interface Reply {
  id: string;
  itemId: string;
  startAt: number;
  planned: number;
  sent: number;
  times: number[];
}

interface Conn {
  ws: WebSocket;
  callIdx: number;
  offset: number;
  format: 'pcm24k' | 'pcmu';
  frameBytes: number;
  k: number;
  inK0: number;
  inT: number[];
  reply: Reply | undefined;
  done: { t: number[]; cut: boolean }[];
  seq: number;
  chunkPos: number;
  /** The last reply sent in full, until the caller could have heard all of it (a barge-in may still cut it). */
  playing: { t: number[]; cut: boolean; playEnd: number } | undefined;
}

const conns = new Set<Conn>();
let clock: PhaseClock | undefined;

function send(c: Conn, text: string): void {
  if (c.ws.readyState === c.ws.OPEN) c.ws.send(text);
}

function endReply(c: Conn, status: 'completed' | 'cancelled'): void {
  const r = c.reply;
  if (!r) return;
  c.reply = undefined;
  if (r.sent > 0) {
    if (status === 'completed') send(c, `{"type":"response.output_audio.done","response_id":"${r.id}","item_id":"${r.itemId}","output_index":0,"content_index":0}`);
    send(c, `{"type":"response.done","response":{"id":"${r.id}","object":"realtime.response","status":"${status}","output":[]}}`);
    const done = { t: r.times, cut: status === 'cancelled' };
    c.done.push(done);
    // Sent faster than real time, a completed reply still plays for a while at Twilio:
    // a barge-in then cuts it there (its unplayed frames are cleared, not lost).
    c.playing = status === 'completed' ? Object.assign(done, { playEnd: r.startAt + r.planned * FRAME_MS + 1000 }) : undefined;
  }
}

function onFrames(c: Conn, frames: number, t: number): void {
  for (let i = 0; i < frames; i++) {
    const p = (c.offset + c.k) % pattern.length;
    c.inT.push(t);
    c.k++;
    const fl = pattern.flags[p]!;
    if (fl & Flag.SpeechStart) {
      send(c, `{"type":"input_audio_buffer.speech_started","item_id":"item_u${c.callIdx}_${c.k}","audio_start_ms":${c.k * FRAME_MS}}`);
      endReply(c, 'cancelled');
      if (c.playing && t < c.playing.playEnd) c.playing.cut = true;
      c.playing = undefined;
    }
    if (fl & Flag.TurnEnd) {
      send(c, `{"type":"input_audio_buffer.speech_stopped","item_id":"item_u${c.callIdx}_${c.k}","audio_end_ms":${c.k * FRAME_MS}}`);
      send(c, `{"type":"input_audio_buffer.committed","item_id":"item_u${c.callIdx}_${c.k}","previous_item_id":null}`);
      endReply(c, 'cancelled');
      const id = `resp_${c.callIdx}_${++c.seq}`;
      c.reply = { id, itemId: `item_a${c.callIdx}_${c.seq}`, startAt: t + THINK_MS, planned: pattern.replyChunks[p]!, sent: 0, times: [] };
    }
  }
}

function onMessage(c: Conn, text: string): void {
  if (text.startsWith(APPEND_PREFIX)) {
    const b64 = text.length - APPEND_PREFIX.length - 2;
    const bytes = (b64 / 4) * 3 - (text.charCodeAt(text.length - 3) === 61 ? (text.charCodeAt(text.length - 4) === 61 ? 2 : 1) : 0);
    onFrames(c, Math.round(bytes / c.frameBytes), now());
    return;
  }
  let m: { type?: string; session?: { instructions?: string; audio?: { output?: { format?: { type?: string } } } } };
  try {
    m = JSON.parse(text) as typeof m;
  } catch {
    return;
  }
  if (m.type === 'session.update') {
    const ins = /^cap:(\d+):(\d+)$/.exec(m.session?.instructions ?? '');
    if (ins) {
      c.callIdx = Number(ins[1]);
      c.offset = Number(ins[2]);
    }
    const type = m.session?.audio?.output?.format?.type === 'audio/pcmu' ? 'audio/pcmu' : 'audio/pcm';
    c.format = type === 'audio/pcmu' ? 'pcmu' : 'pcm24k';
    c.frameBytes = c.format === 'pcmu' ? 160 : 960;
    const fmt = type === 'audio/pcmu' ? '{"type":"audio/pcmu"}' : '{"type":"audio/pcm","rate":24000}';
    send(c, `{"type":"session.updated","session":{"type":"realtime","object":"realtime.session","audio":{"input":{"format":${fmt}},"output":{"format":${fmt}}}}}`);
  } else if (m.type === 'response.cancel') {
    endReply(c, 'cancelled');
  }
  // conversation.item.truncate and the rest: accepted silently (the real service acks
  // truncate with conversation.item.truncated, which the adapter ignores).
}

// ── the one shared clock (pattern.ts PhaseClock): each reply's next chunk ──
function sendPhase(phase: number, t: number): void {
  for (const c of conns) {
    if (c.callIdx < 0 || c.callIdx % PHASES !== phase) continue;
    const r = c.reply;
    if (!r || t < r.startAt) continue;
    if (r.sent === 0) {
      send(c, `{"type":"response.created","response":{"id":"${r.id}","object":"realtime.response","status":"in_progress","output":[]}}`);
      send(c, `{"type":"response.output_item.added","response_id":"${r.id}","output_index":0,"item":{"id":"${r.itemId}","object":"realtime.item","type":"message","role":"assistant","status":"in_progress","content":[]}}`);
    }
    const list = c.format === 'pcmu' ? ULAW_CHUNKS : PCM_CHUNKS;
    // As much as SPEED × the time since the reply started allows, a delta ahead.
    while (c.reply === r && r.sent * FRAME_MS < (t - r.startAt) * SPEED + CHUNK_MS) {
      const frames = Math.min(CHUNK_FRAMES, r.planned - r.sent);
      let chunk = list[c.chunkPos++ % list.length]!;
      // A reply's short last delta (rare: reply lengths are whole deltas by default).
      if (frames < CHUNK_FRAMES) chunk = Buffer.from(chunk, 'base64').subarray(0, frames * (c.format === 'pcmu' ? 160 : 960)).toString('base64');
      send(c, `{"type":"response.output_audio.delta","response_id":"${r.id}","item_id":"${r.itemId}","output_index":0,"content_index":0,"delta":"${chunk}"}`);
      for (let i = 0; i < frames; i++) r.times.push(t);
      r.sent += frames;
      if (r.sent >= r.planned) endReply(c, 'completed');
    }
  }
}

const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, maxPayload: 1 << 24 });
wss.on('connection', (ws) => {
  const c: Conn = { ws, callIdx: -1, offset: 0, format: 'pcm24k', frameBytes: 960, k: 0, inK0: 0, inT: [], reply: undefined, done: [], seq: 0, chunkPos: 0, playing: undefined };
  conns.add(c);
  ws.send('{"type":"session.created","session":{"type":"realtime","object":"realtime.session"}}');
  ws.on('message', (data, isBinary) => {
    if (!isBinary) onMessage(c, data.toString());
  });
  ws.on('close', () => conns.delete(c));
  ws.on('error', () => undefined);
});
wss.on('listening', () => {
  const port = (wss.address() as { port: number }).port;
  process.send?.({ type: 'ready', port });
  clock = new PhaseClock(now, sendPhase);
});

let cpu0 = process.cpuUsage();
let t0 = now();
process.on('message', (msg: { cmd: string }) => {
  if (msg.cmd !== 'collect') return;
  const calls = [];
  for (const c of conns) {
    calls.push({ callIdx: c.callIdx, inK0: c.inK0, inT: c.inT, replies: c.done });
    c.inK0 += c.inT.length;
    c.inT = [];
    c.done = [];
  }
  const cpu = process.cpuUsage(cpu0);
  const t = now();
  process.send?.({ type: 'collect', calls, ...(clock?.takeLag() ?? { lagMaxMs: 0, lagP99Ms: null }), cpuPct: ((cpu.user + cpu.system) / 1000 / (t - t0)) * 100 });
  cpu0 = process.cpuUsage();
  t0 = t;
});
process.on('disconnect', () => process.exit(0));
