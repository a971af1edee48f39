/**
 * A call as it happens, for people watching it (the console, docs/console.md) and for its
 * record afterwards: who spoke when, what was said, the tools the agent called and what
 * they answered, barge-ins with the heard position, operator actions and the end.
 *
 * One per call, built beside the frame path from what the session already learns: it is a
 * CallTrace (turns, barge-ins, the end), takes the caller's frames as received and the
 * agent's as sent to Twilio (levels and speech, from a table lookup per sample), and the
 * session tells it transcripts, tool calls and actions. Times `t` are ms since the
 * stream's start — Twilio's media timestamps and the recording share that origin, so a
 * transcript line can follow a recording as it plays. Bounded: at most MAX_EVENTS events
 * (the end is always kept); a listener that throws costs only itself.
 */
import { FrameClock } from './frame-clock.js';
import type { CallTrace } from './hooks.js';
import type { ToolResult } from '../tools/run-tool.js';

export type TimelineEvent =
  | { type: 'transcript'; t: number; role: 'caller' | 'agent'; text: string }
  | { type: 'speech'; t: number; endT: number; role: 'caller' | 'agent' }
  | { type: 'turn'; t: number; latencyMs: number }
  | { type: 'tool'; t: number; callId: string; name: string; arguments: unknown }
  | { type: 'toolResult'; t: number; callId: string; name: string; durationMs: number; ok: boolean; output?: unknown; error?: string; code?: string }
  | { type: 'bargeIn'; t: number; heardMs: number; source: string }
  | { type: 'action'; t: number; action: CallActionName; detail?: string }
  | { type: 'error'; t: number; code: string; fatal: boolean }
  | { type: 'end'; t: number; reason: string };

export type CallActionName = 'say' | 'hangup' | 'transfer';

/** An operator's action on a live call (the console or the CLI, through the admin API), as the record keeps it. */
export interface CallAction {
  at: string;
  action: CallActionName;
  detail?: string;
}

/** Levels in dBFS (FLOOR_DB for silence); null: that side has sent no audio yet. */
export interface CallLevels {
  caller: number | null;
  agent: number | null;
}

export const MAX_EVENTS = 1000;
/** Tool arguments and outputs kept per event (JSON characters); more is cut, and marked so. */
export const MAX_TOOL_JSON = 4096;
const FLOOR_DB = -90;
/** A frame louder than this is speech (dBFS RMS over 20 ms). */
const SPEECH_DB = -42;
/** Quiet for this long ends a stretch of speech. */
const HANGOVER_MS = 300;
/** A stretch shorter than this is a click, not speech. */
const MIN_SPEECH_MS = 60;
/** Levels read one sample in this many. */
const SAMPLE_STRIDE = 4;
/** The window a level is measured over. */
const LEVEL_WINDOW_MS = 200;

/**
 * Squared linear value of a G.711 μ-law code (ITU-T G.711 expansion, 14-bit scaled to 16), by
 * its low 7 bits: the sign bit does not change a square. 128 × 4 bytes — eight cache lines,
 * where a table of all 256 codes as doubles is 32: a caller frame's lookups land in a table
 * that, under load, the other calls' messages have pushed out of the cache (32124² < 2³²).
 */
const ULAW_SQ = (() => {
  const t = new Uint32Array(128);
  for (let i = 0; i < 128; i++) {
    const u = ~i & 0x7f;
    const exponent = (u >> 4) & 0x07;
    const magnitude = (((u & 0x0f) << 3) + 0x84) << exponent;
    const v = magnitude - 0x84;
    t[i] = v * v;
  }
  return t;
})();

const toDb = (meanSquare: number): number => (meanSquare <= 0 ? FLOOR_DB : Math.max(FLOOR_DB, Math.round(10 * Math.log10(meanSquare / (32768 * 32768)))));

/** Speech and level of one side, from its frames in time order. */
class Side {
  #speechStart: number | undefined;
  #lastLoud = 0;
  #windowStart = -Infinity;
  #windowSq = 0;
  #windowN = 0;
  /** The last full window's level, and the time its audio ended. */
  level: number | null = null;
  lastAudioT = -Infinity;

  constructor(
    readonly role: 'caller' | 'agent',
    readonly emit: (e: TimelineEvent) => void,
  ) {}

  frame(ulaw: Uint8Array, t: number): void {
    // Every SAMPLE_STRIDE-th sample: the energy of 20 ms of speech is estimated well from 40 of
    // its 160 samples, at a quarter of the cost on every caller frame of every call.
    let sq = 0;
    let n = 0;
    for (let i = 0; i < ulaw.length; i += SAMPLE_STRIDE, n++) sq += ULAW_SQ[ulaw[i]! & 0x7f]!;
    const ms = ulaw.length / 8;
    const db = toDb(sq / Math.max(1, n));
    if (t - this.#windowStart >= LEVEL_WINDOW_MS) {
      if (this.#windowN > 0) this.level = toDb(this.#windowSq / this.#windowN);
      this.#windowStart = t;
      this.#windowSq = 0;
      this.#windowN = 0;
    }
    this.#windowSq += sq;
    this.#windowN += n;
    if (this.level === null) this.level = db;
    this.lastAudioT = t + ms;
    if (this.#speechStart !== undefined && t - this.#lastLoud > HANGOVER_MS) this.close();
    if (db >= SPEECH_DB) {
      if (this.#speechStart === undefined) this.#speechStart = t;
      this.#lastLoud = t + ms;
    }
  }

  /** Ends the open stretch of speech (at its last loud frame, or earlier at `atT`). */
  close(atT?: number): void {
    const start = this.#speechStart;
    if (start === undefined) return;
    this.#speechStart = undefined;
    const end = Math.round(atT === undefined ? this.#lastLoud : Math.min(this.#lastLoud, atT));
    if (end - start >= MIN_SPEECH_MS) this.emit({ type: 'speech', t: Math.round(start), endT: end, role: this.role });
  }

  /** A side whose audio stopped coming (the agent between replies sends nothing): its stretch of speech ends once `nowT` is past the hangover. */
  settle(nowT: number): void {
    if (this.#speechStart !== undefined && nowT - this.#lastLoud > HANGOVER_MS) this.close();
  }

  /** The level now (`nowT`): a side that has gone quiet reads the floor. */
  levelAt(nowT: number): number | null {
    if (this.level === null) return null;
    return nowT - this.lastAudioT > LEVEL_WINDOW_MS * 2 ? FLOOR_DB : this.level;
  }
}

/** JSON kept whole when short, else its first MAX_TOOL_JSON characters, marked as cut. */
function bounded(value: unknown): unknown {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch {
    return String(value);
  }
  if (text === undefined || text.length <= MAX_TOOL_JSON) return value;
  return { truncated: true, json: text.slice(0, MAX_TOOL_JSON) };
}

/** A tool's arguments as the agent sent them (JSON text): the object, or the text when it is not JSON. */
function parsedArguments(raw: string): unknown {
  try {
    return bounded(JSON.parse(raw));
  } catch {
    return raw.length <= MAX_TOOL_JSON ? raw : `${raw.slice(0, MAX_TOOL_JSON)}…`;
  }
}

export class CallTimeline implements CallTrace {
  /** The stream's start on the frame clock (performance.now() ms). */
  readonly #origin: number;
  readonly #events: TimelineEvent[] = [];
  readonly #actions: CallAction[] = [];
  readonly #listeners = new Set<(e: TimelineEvent) => void>();
  readonly #tools = new Map<string, string>();
  readonly #caller: Side;
  readonly #agent: Side;
  #stoppedAt: number | undefined;
  #dropped = 0;

  constructor(originMs: number) {
    this.#origin = originMs;
    this.#caller = new Side('caller', (e) => this.#push(e));
    this.#agent = new Side('agent', (e) => this.#push(e));
  }

  /** Every event so far (a copy), in the order they happened. */
  get events(): TimelineEvent[] {
    return this.#events.slice();
  }
  get actions(): CallAction[] {
    return this.#actions.slice();
  }
  /** Events not kept because the call had MAX_EVENTS already. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Hears every later event; returns the unsubscribe. */
  listen(fn: (e: TimelineEvent) => void): () => void {
    this.#listeners.add(fn);
    return () => void this.#listeners.delete(fn);
  }

  /** The levels now; also ends the stretches of speech that have ended by now (watchers call this a few times a second). */
  levels(nowMs: number): CallLevels {
    const t = nowMs - this.#origin;
    this.#caller.settle(t);
    this.#agent.settle(t);
    return { caller: this.#caller.levelAt(t), agent: this.#agent.levelAt(t) };
  }

  #t(atMs: number): number {
    return Math.max(0, Math.round(atMs - this.#origin));
  }

  #push(e: TimelineEvent): void {
    if (this.#events.length >= MAX_EVENTS && e.type !== 'end') {
      this.#dropped++;
      return;
    }
    this.#events.push(e);
    for (const l of this.#listeners) {
      try {
        l(e);
      } catch {
        /* a watcher's failure is its own */
      }
    }
  }

  /** A caller frame as received (μ-law), at Twilio's media timestamp (ms since the stream's start). */
  caller(ulaw: Uint8Array, timestampMs: number): void {
    this.#caller.frame(ulaw, timestampMs);
  }

  /** Agent audio as sent to Twilio (μ-law, whole frames), played from `playAtMs` (frame clock). */
  agent(ulaw: Uint8Array, playAtMs: number): void {
    this.#agent.frame(ulaw, playAtMs - this.#origin);
  }

  transcript(role: 'caller' | 'agent', text: string, atMs: number): void {
    this.#push({ type: 'transcript', t: this.#t(atMs), role, text });
  }

  toolCall(callId: string, name: string, rawArguments: string, atMs: number): void {
    this.#tools.set(callId, name);
    this.#push({ type: 'tool', t: this.#t(atMs), callId, name, arguments: parsedArguments(rawArguments) });
  }

  toolResult(callId: string, r: ToolResult, atMs: number): void {
    const base = { type: 'toolResult' as const, t: this.#t(atMs), callId, name: this.#tools.get(callId) ?? r.tool, durationMs: Math.round(r.durationMs) };
    this.#push(r.ok ? { ...base, ok: true, output: bounded(r.output) } : { ...base, ok: false, error: r.error, code: r.code });
  }

  action(action: CallActionName, atMs: number, detail?: string): void {
    this.#actions.push({ at: new Date().toISOString(), action, ...(detail !== undefined ? { detail } : {}) });
    this.#push({ type: 'action', t: this.#t(atMs), action, ...(detail !== undefined ? { detail } : {}) });
  }

  // CallTrace
  agentReady(): void {}
  callerStopped(_source: 'bridge-vad' | 'transcript', atMs: number): void {
    this.#stoppedAt = atMs;
  }
  agentAudio(): void {}
  audioSent(playAtMs: number): void {
    const stopped = this.#stoppedAt;
    if (stopped === undefined) return;
    this.#stoppedAt = undefined;
    const latencyMs = Math.round(playAtMs - stopped);
    if (latencyMs >= 0) this.#push({ type: 'turn', t: this.#t(stopped), latencyMs });
  }
  responseDone(): void {}
  bargeIn(source: 'agent-vad' | 'bridge-vad' | 'api', heardMs: number, _responseId: string | undefined, atMs: number): void {
    // What was sent for later than now was cleared from Twilio's buffer: never heard.
    this.#agent.close(atMs - this.#origin);
    this.#push({ type: 'bargeIn', t: this.#t(atMs), heardMs: Math.round(heardMs), source });
  }
  agentError(code: string, fatal: boolean): void {
    this.#push({ type: 'error', t: this.#t(FrameClock.now()), code, fatal });
  }
  closing(reason: string, atMs: number): void {
    this.#caller.close();
    this.#agent.close(atMs - this.#origin);
    this.#push({ type: 'end', t: this.#t(atMs), reason });
  }
  ended(): void {
    this.#listeners.clear();
  }
}
