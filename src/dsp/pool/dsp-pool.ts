/**
 * BRIDGE_DSP_POOL=N (experimental): the DSP of every call runs on a piscina pool of N
 * worker threads instead of the event loop. The only module that imports piscina.
 *
 * Why batches: a pool round trip costs ~60 µs, ~15× one frame's native DSP, so one
 * task per frame loses by construction. Here each worker is a *lane*; a call is
 * pinned to one lane for its life (its pipelines live in that worker, keyed by call
 * id). Operations of all the lane's calls are appended to a SharedArrayBuffer and sent
 * as ONE task per lane per batch; results come back the same way.
 *
 * ```text
 *  calls ──push/poll/flush/reset──► lane.fill buffer ──(timer ≤ batchDelayMs after the first record,
 *                                                       or at once when the previous batch returns)──►
 *        piscina.run({req, res}) ──► worker: every record in order ──► res buffer ──► sinks, in order
 *  at most one batch in flight per lane; the next fills the other request buffer meanwhile (ping-pong)
 * ```
 *
 * - Order per call: one lane per call, one batch in flight per lane, records in order.
 * - The interface is batched and of its own: results reach the sinks given at open a batch
 *   later, in order — unlike the inline paths (dsp/frame-paths.ts), which return theirs.
 * - Barge-in: PoolOutbound.reset() bumps the call's epoch; results of earlier epochs
 *   (in flight or still queued) are dropped on arrival, so cleared audio never plays.
 * - A failed task (worker crash) fails every call of the lane through its onFailed
 *   (the session apologises and closes); the process never crashes. Piscina replaces
 *   the worker; the lane re-binds to it and new calls work again.
 * - Nothing is allocated per frame on the main thread except what the inline path
 *   allocates too (the PCM view handed to the agent); buffers grow by doubling, rarely.
 */
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import type { Worker } from 'node:worker_threads';
import { Piscina, type PiscinaTask } from 'piscina';
import { BridgeError, ErrorCodes } from '../../errors.js';
import type { DspBackendName, InboundPipelineOptions, JitterStats, OutboundPipelineOptions } from '../backend.js';
import {
  CODEC_ALAW,
  CODEC_ULAW,
  F_NOW,
  HEADER_BYTES,
  Op,
  Res,
  STATS_FIELDS,
  W_A,
  W_B,
  W_C,
  W_CALL,
  W_LEN,
  W_OP,
  align8,
  emptyStats,
  type BatchResult,
  type BatchTask,
} from './batch-format.js';

/** PCM for the agent, a batch after its frame went in. A view into the result buffer: consume it before returning. */
export type PoolInboundSink = (pcm: Int16Array) => void;
/** Whole 160-byte μ-law frames: `bytes` (a multiple of 160, possibly 0) from `offset` of `ulaw` (a view: consume it before returning). */
export type PoolOutboundSink = (ulaw: Uint8Array, offset: number, bytes: number) => void;

export interface DspPoolOptions {
  /** Worker threads (lanes), 1–16. */
  threads: number;
  /** The backend every worker loads (the one the main thread resolved). */
  backend: DspBackendName;
  /**
   * Longest wait after the first record of a batch before it is sent (ms). 0: send at
   * the end of the current event-loop turn (setImmediate). Default 1.
   */
  batchDelayMs?: number;
  log?: (level: 'info' | 'warn' | 'error' | 'debug', msg: string, fields?: Record<string, unknown>) => void;
}

export interface DspPoolStats {
  threads: number;
  /** Calls open on the main thread. */
  calls: number;
  /** Calls whose pipelines the workers hold, as last reported by each worker. */
  workerCalls: number;
  batches: number;
  records: number;
  failedBatches: number;
  /** Main-thread time spent dispatching batches and delivering their results (ms). */
  busyMs: number;
}

const INITIAL_REQ_BYTES = 64 * 1024;
const INITIAL_RES_BYTES = 256 * 1024;
const RTT_KEEP = 1024;

function workerFile(): string {
  const here = import.meta.url;
  // From the TypeScript sources (tests, tsx) through a tiny loader-registering entry.
  if (here.endsWith('.ts')) return fileURLToPath(new URL('./dsp-pool-worker.dev.mjs', here));
  return fileURLToPath(new URL('./dsp-pool-worker.js', here));
}

function codecOf(codec: string | undefined): number {
  if (codec === undefined || codec === 'ulaw') return CODEC_ULAW;
  if (codec === 'alaw') return CODEC_ALAW;
  throw new BridgeError(ErrorCodes.DSP_ARGUMENT, "codec must be 'ulaw' or 'alaw'");
}

function checkInt(name: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new BridgeError(ErrorCodes.DSP_ARGUMENT, `${name} must be an integer from ${min} to ${max}`);
  return v;
}

type LaneTask = BatchTask & { [key: symbol]: unknown };
type LoadBalancer = NonNullable<NonNullable<ConstructorParameters<typeof Piscina>[0]>['loadBalancer']>;
type PiscinaWorker = NonNullable<ReturnType<LoadBalancer>>;

class Lane {
  readonly index: number;
  readonly calls = new Map<number, PoolCall>();
  readonly #pool: DspPool;
  readonly #bufs: SharedArrayBuffer[];
  readonly #tasks: LaneTask[];
  #fill = 0;
  u8!: Uint8Array;
  i16!: Int16Array;
  #i32!: Int32Array;
  #f64!: Float64Array;
  #off = 0;
  #res: SharedArrayBuffer;
  #resU8!: Uint8Array;
  #resI16!: Int16Array;
  #resI32!: Int32Array;
  #resF64!: Float64Array;
  #inFlight = false;
  #sentAt = 0;
  #timer: NodeJS.Timeout | undefined;
  #armed = false;
  liveCalls = 0;

  constructor(pool: DspPool, index: number) {
    this.#pool = pool;
    this.index = index;
    this.#bufs = [new SharedArrayBuffer(INITIAL_REQ_BYTES), new SharedArrayBuffer(INITIAL_REQ_BYTES)];
    this.#res = new SharedArrayBuffer(INITIAL_RES_BYTES);
    // Two reused task objects (one per request buffer); the lane rides along for the balancer.
    const lane = { lane: index };
    this.#tasks = this.#bufs.map((req) => ({ req, reqBytes: 0, res: this.#res, [Piscina.queueOptionsSymbol]: lane }));
    this.#bindFill();
    this.#bindRes(this.#res);
  }

  get idle(): boolean {
    return !this.#inFlight && this.#off === 0;
  }

  #bindFill(): void {
    const b = this.#bufs[this.#fill]!;
    this.u8 = new Uint8Array(b);
    this.i16 = new Int16Array(b);
    this.#i32 = new Int32Array(b);
    this.#f64 = new Float64Array(b);
  }

  #bindRes(sab: SharedArrayBuffer): void {
    this.#res = sab;
    this.#resU8 = new Uint8Array(sab);
    this.#resI16 = new Int16Array(sab);
    this.#resI32 = new Int32Array(sab);
    this.#resF64 = new Float64Array(sab);
  }

  /** Appends one record; returns the byte offset of its payload (copy it there at once). */
  write(op: number, callId: number, a: number, b: number, c: number, payloadBytes: number, nowMs: number): number {
    const need = HEADER_BYTES + align8(payloadBytes);
    if (this.#off + need > this.u8.length) this.#grow(this.#off + need);
    const at = this.#off;
    const w = at >> 2;
    const i32 = this.#i32;
    i32[w + W_OP] = op;
    i32[w + W_CALL] = callId;
    i32[w + W_A] = a;
    i32[w + W_B] = b;
    i32[w + W_C] = c;
    i32[w + W_LEN] = payloadBytes;
    this.#f64[(at >> 3) + F_NOW] = nowMs;
    this.#off = at + need;
    this.#pool.recordWritten();
    if (!this.#inFlight && !this.#armed) this.#arm();
    return at + HEADER_BYTES;
  }

  #grow(need: number): void {
    const next = new SharedArrayBuffer(align8(Math.max(need * 2, this.u8.length * 2)));
    new Uint8Array(next).set(this.u8.subarray(0, this.#off));
    this.#bufs[this.#fill] = next;
    this.#bindFill();
  }

  #arm(): void {
    this.#armed = true;
    const delay = this.#pool.batchDelayMs;
    if (delay <= 0) setImmediate(this.#onTimer);
    else if (this.#timer) this.#timer.refresh();
    else this.#timer = setTimeout(this.#onTimer, delay);
  }

  #onTimer = (): void => {
    this.#armed = false;
    if (!this.#inFlight && this.#off > 0) this.#dispatch();
  };

  #dispatch(): void {
    const t0 = performance.now();
    const task = this.#tasks[this.#fill]!;
    task.req = this.#bufs[this.#fill]!;
    task.reqBytes = this.#off;
    task.res = this.#res;
    this.#fill ^= 1;
    this.#bindFill();
    this.#off = 0;
    this.#inFlight = true;
    this.#sentAt = t0;
    this.#pool.run(task).then(this.#onDone, this.#onFailed);
    this.#pool.addBusy(performance.now() - t0);
  }

  #onDone = (r: BatchResult): void => {
    const t0 = performance.now();
    this.#inFlight = false;
    this.#pool.batchDone(t0 - this.#sentAt);
    if (r.res) this.#bindRes(r.res);
    this.liveCalls = r.liveCalls;
    this.#deliver(r.resBytes);
    if (this.#off > 0) this.#dispatch();
    this.#pool.addBusy(performance.now() - t0);
    this.#pool.checkSettled();
  };

  #onFailed = (e: unknown): void => {
    this.#inFlight = false;
    const reason = `dsp-worker-failed: ${e instanceof Error ? e.message : String(e)}`;
    this.#pool.batchFailed(this.index, reason, this.calls.size);
    // The lane's state is gone (or untrustworthy): every call pinned here fails.
    const failed = [...this.calls.values()];
    this.calls.clear();
    for (const c of failed) c.fail(reason);
    if (this.#off > 0) this.#dispatch();
    this.#pool.checkSettled();
  };

  #deliver(end: number): void {
    const i32 = this.#resI32;
    let p = 0;
    while (p < end) {
      const w = p >> 2;
      const op = i32[w + W_OP]!;
      const len = i32[w + W_LEN]!;
      const body = p + HEADER_BYTES;
      const call = this.calls.get(i32[w + W_CALL]!);
      if (call) {
        switch (op) {
          case Res.In:
            call.inbound?.deliver(this.#resI16, body >> 1, len >> 1, i32[w + W_A]!);
            break;
          case Res.Out:
            call.outbound?.deliver(this.#resU8, body, len, i32[w + W_A]!);
            break;
          case Res.Stats:
            call.inbound?.deliverStats(this.#resF64, body >> 3);
            break;
          case Res.Error:
            call.fail(`dsp-error: ${Buffer.from(this.#resU8.subarray(body, body + len)).toString()}`);
            break;
        }
      }
      p = body + align8(len);
    }
  }
}

export class PoolInbound {
  readonly #call: PoolCall;
  readonly #sink: PoolInboundSink;
  readonly #onHeld: (() => void) | undefined;
  #buffered = 0;
  readonly #stats: JitterStats = emptyStats();

  constructor(call: PoolCall, sink: PoolInboundSink, onHeld?: () => void) {
    this.#call = call;
    this.#sink = sink;
    this.#onHeld = onHeld;
  }

  push(payload: Uint8Array, seq: number, timestampMs: number, nowMs: number): void {
    const c = this.#call;
    if (!c.usable) return;
    const lane = c.lane;
    const at = lane.write(Op.InPush, c.id, seq | 0, timestampMs | 0, 0, payload.length, nowMs);
    lane.u8.set(payload, at);
  }

  poll(nowMs: number): void {
    const c = this.#call;
    if (c.usable) c.lane.write(Op.InPoll, c.id, 0, 0, 0, 0, nowMs);
  }

  get bufferedFrames(): number {
    return this.#buffered;
  }

  stats(): JitterStats {
    return { ...this.#stats };
  }

  deliver(pcm: Int16Array, at: number, samples: number, bufferedFrames: number): void {
    this.#buffered = bufferedFrames;
    if (samples > 0 && this.#call.usable) this.#sink(pcm.subarray(at, at + samples));
    // The worker holds frames for a gap: poll() is due on the ticks until it reports none.
    if (bufferedFrames > 0 && this.#call.usable) this.#onHeld?.();
  }

  deliverStats(f64: Float64Array, at: number): void {
    const s = this.#stats;
    for (let i = 0; i < STATS_FIELDS.length; i++) s[STATS_FIELDS[i]!] = f64[at + i]!;
  }
}

export class PoolOutbound {
  readonly #call: PoolCall;
  readonly #sink: PoolOutboundSink;
  #epoch = 0;
  #pending = 0;
  #idleWaiters: (() => void)[] = [];

  readonly #quality: number;
  readonly #codec: number;

  constructor(call: PoolCall, sink: PoolOutboundSink, quality: number, codec: number) {
    this.#call = call;
    this.#sink = sink;
    this.#quality = quality;
    this.#codec = codec;
  }

  /** The old rate's tail (a flush), then the worker replaces the pipeline: both in lane order. */
  retune(fromHz: number): void {
    const hz = checkInt('fromHz', fromHz, 1, 384_000);
    this.flush();
    const c = this.#call;
    if (c.usable) c.lane.write(Op.OpenOut, c.id, hz, this.#quality, this.#codec, 0, 0);
  }

  /** Operations whose frames have not reached the sink yet. */
  get pending(): number {
    return this.#call.usable ? this.#pending : 0;
  }

  /** Runs `fn` once every operation so far has delivered its frames (at once when none is pending; also on reset or failure). */
  whenIdle(fn: () => void): void {
    if (this.pending === 0) fn();
    else this.#idleWaiters.push(fn);
  }

  #settle(): void {
    if (this.pending !== 0 || this.#idleWaiters.length === 0) return;
    const w = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const fn of w) fn();
  }

  push(pcm: Int16Array): void {
    const c = this.#call;
    if (!c.usable) return;
    const lane = c.lane;
    const at = lane.write(Op.OutPush, c.id, this.#epoch, 0, 0, pcm.length * 2, 0);
    lane.i16.set(pcm, at >> 1);
    this.#pending++;
  }

  flush(): void {
    const c = this.#call;
    if (!c.usable) return;
    c.lane.write(Op.OutFlush, c.id, this.#epoch, 0, 0, 0, 0);
    this.#pending++;
  }

  reset(): void {
    const c = this.#call;
    if (!c.usable) return;
    // Everything produced before this point — in flight or queued — is now stale.
    this.#epoch = (this.#epoch + 1) | 0;
    this.#pending = 0;
    c.lane.write(Op.OutReset, c.id, this.#epoch, 0, 0, 0, 0);
    this.#settle();
  }

  deliver(ulaw: Uint8Array, at: number, bytes: number, epoch: number): void {
    if (epoch !== this.#epoch || !this.#call.usable) return;
    this.#pending--;
    this.#sink(ulaw, at, bytes);
    this.#settle();
  }

  /** The call failed or closed: nothing more will arrive. */
  abandon(): void {
    this.#settle();
  }
}

/** One call's DSP in the pool: its two paths live in one worker (lane); close() frees them there. */
export class PoolCall {
  readonly id: number;
  readonly lane: Lane;
  readonly #pool: DspPool;
  readonly #onFailed: (reason: string) => void;
  inbound: PoolInbound | undefined;
  outbound: PoolOutbound | undefined;
  #failed = false;
  #closed = false;

  constructor(pool: DspPool, lane: Lane, id: number, onFailed: (reason: string) => void) {
    this.#pool = pool;
    this.lane = lane;
    this.id = id;
    this.#onFailed = onFailed;
    lane.calls.set(id, this);
  }

  get usable(): boolean {
    return !this.#failed && !this.#closed;
  }

  /** `onHeld`: a batch result says the worker holds frames for a gap (poll() is then due on the ticks). */
  openInbound(o: InboundPipelineOptions, sink: PoolInboundSink, onHeld?: () => void): PoolInbound {
    if (this.inbound) throw new BridgeError(ErrorCodes.DSP_ARGUMENT, 'inbound path already open');
    if (o.jitter !== undefined) throw new BridgeError(ErrorCodes.DSP_ARGUMENT, 'the DSP pool runs the default jitter buffer only');
    const toHz = checkInt('toHz', o.toHz, 1, 384_000);
    const quality = checkInt('quality', o.quality ?? 7, 0, 10);
    const codec = codecOf(o.codec);
    this.inbound = new PoolInbound(this, sink, onHeld);
    if (this.usable) this.lane.write(Op.OpenIn, this.id, toHz, quality, codec, 0, 0);
    return this.inbound;
  }

  openOutbound(o: OutboundPipelineOptions, sink: PoolOutboundSink): PoolOutbound {
    if (this.outbound) throw new BridgeError(ErrorCodes.DSP_ARGUMENT, 'outbound path already open');
    const fromHz = checkInt('fromHz', o.fromHz, 1, 384_000);
    const quality = checkInt('quality', o.quality ?? 7, 0, 10);
    const codec = codecOf(o.codec);
    this.outbound = new PoolOutbound(this, sink, quality, codec);
    if (this.usable) this.lane.write(Op.OpenOut, this.id, fromHz, quality, codec, 0, 0);
    return this.outbound;
  }

  fail(reason: string): void {
    if (!this.usable) return;
    this.#failed = true;
    this.lane.calls.delete(this.id);
    this.outbound?.abandon();
    this.#pool.log?.('warn', 'call DSP failed in the pool', { lane: this.lane.index, reason });
    try {
      this.#onFailed(reason);
    } catch (e) {
      this.#pool.log?.('error', 'onFailed threw', { err: e });
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.lane.calls.delete(this.id);
    this.outbound?.abandon();
    this.#pool.callClosed();
    // Frees the worker's state; a no-op there if it is already gone.
    this.lane.write(Op.Close, this.id, 0, 0, 0, 0, 0);
  }
}

export class DspPool {
  readonly batchDelayMs: number;
  readonly log: DspPoolOptions['log'];
  readonly #piscina: Piscina<BatchTask, BatchResult>;
  readonly #lanes: Lane[];
  /** lane index → piscina worker id (its thread id). */
  readonly #bound = new Map<number, number>();
  #nextId = 1;
  #calls = 0;
  #stats = { batches: 0, records: 0, failedBatches: 0, busyMs: 0 };
  readonly #rtt = new Float64Array(RTT_KEEP);
  #rttCount = 0;
  #settledWaiters: (() => void)[] = [];
  #closed = false;

  private constructor(o: DspPoolOptions) {
    checkInt('threads', o.threads, 1, 16);
    this.batchDelayMs = o.batchDelayMs ?? 1;
    this.log = o.log;
    this.#piscina = new Piscina<BatchTask, BatchResult>({
      filename: workerFile(),
      minThreads: o.threads,
      maxThreads: o.threads,
      idleTimeout: Infinity,
      concurrentTasksPerWorker: 1,
      workerData: { backend: o.backend },
      loadBalancer: (task, workers) => this.#pick(task, workers),
    });
    // A worker that dies between batches: its lane's calls fail on their next batch
    // (the replacement worker does not know them). Never an unhandled 'error'.
    this.#piscina.on('error', (e: unknown) => this.log?.('error', 'DSP pool worker error', { err: e }));
    this.#lanes = Array.from({ length: o.threads }, (_, i) => new Lane(this, i));
  }

  /** Starts the workers and waits until each has loaded its DSP backend. */
  static async start(o: DspPoolOptions): Promise<DspPool> {
    const pool = new DspPool(o);
    try {
      await Promise.all(pool.#lanes.map((l) => pool.#piscina.run({ req: new SharedArrayBuffer(8), reqBytes: 0, res: new SharedArrayBuffer(8), [Piscina.queueOptionsSymbol]: { lane: l.index } } as LaneTask)));
    } catch (e) {
      await pool.#piscina.destroy().catch(() => undefined);
      throw new BridgeError(ErrorCodes.DSP_UNAVAILABLE, `DSP pool workers failed to start: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    return pool;
  }

  /** Pins each lane to one worker; a lane whose worker is gone takes a free one. */
  #pick(task: PiscinaTask, workers: PiscinaWorker[]): PiscinaWorker | null {
    const lane = (task[Piscina.queueOptionsSymbol as keyof PiscinaTask] as { lane?: number } | null)?.lane ?? 0;
    const id = this.#bound.get(lane);
    if (id !== undefined) {
      for (const w of workers) if (w.id === id && !w.terminating && !w.destroyed) return w.currentUsage === 0 ? w : null;
    }
    const taken = new Set<number>();
    for (const [l, wid] of this.#bound) if (l !== lane) taken.add(wid);
    for (const w of workers) {
      if (w.terminating || w.destroyed || w.currentUsage !== 0 || taken.has(w.id)) continue;
      if (id !== undefined) this.log?.('warn', 'DSP pool lane re-bound to a new worker', { lane, from: id, to: w.id });
      this.#bound.set(lane, w.id);
      return w;
    }
    return null;
  }

  /** A call's DSP on the least loaded lane; `onFailed` is called at most once if its worker is lost. */
  openCall(onFailed: (reason: string) => void): PoolCall {
    if (this.#closed) throw new BridgeError(ErrorCodes.DSP_CLOSED, 'DSP pool closed');
    let lane = this.#lanes[0]!;
    for (const l of this.#lanes) if (l.calls.size < lane.calls.size) lane = l;
    this.#calls++;
    const id = this.#nextId;
    this.#nextId = this.#nextId >= 0x7fffffff ? 1 : this.#nextId + 1;
    return new PoolCall(this, lane, id, onFailed);
  }

  /** The worker threads (diagnostics; a fault test terminates one to see its calls fail cleanly). */
  get threads(): readonly Worker[] {
    return this.#piscina.threads;
  }

  stats(): DspPoolStats {
    return {
      threads: this.#lanes.length,
      calls: this.#calls,
      workerCalls: this.#lanes.reduce((s, l) => s + l.liveCalls, 0),
      ...this.#stats,
    };
  }

  /** Round trips (dispatch → results delivered) of the most recent batches, ms, oldest first; at most 1024. */
  recentRoundTripsMs(): number[] {
    const n = Math.min(this.#rttCount, RTT_KEEP);
    const rtt: number[] = [];
    for (let i = this.#rttCount - n; i < this.#rttCount; i++) rtt.push(this.#rtt[i % RTT_KEEP]!);
    return rtt;
  }

  /** Resolves once no batch is queued or in flight (every result so far delivered). */
  settled(): Promise<void> {
    if (this.#lanes.every((l) => l.idle)) return Promise.resolve();
    return new Promise((resolve) => this.#settledWaiters.push(resolve));
  }

  /** Waits (bounded) for the last batches, then stops the workers. */
  async close(timeoutMs = 2000): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    let t: NodeJS.Timeout | undefined;
    await Promise.race([this.settled(), new Promise<void>((r) => (t = setTimeout(r, timeoutMs)))]);
    clearTimeout(t);
    await this.#piscina.destroy();
  }

  // ── called by lanes and calls ──
  run(task: LaneTask): Promise<BatchResult> {
    return this.#piscina.run(task);
  }
  recordWritten(): void {
    this.#stats.records++;
  }
  addBusy(ms: number): void {
    this.#stats.busyMs += ms;
  }
  batchDone(rttMs: number): void {
    this.#stats.batches++;
    this.#rtt[this.#rttCount++ % RTT_KEEP] = rttMs;
  }
  batchFailed(lane: number, reason: string, calls: number): void {
    this.#stats.failedBatches++;
    this.log?.('error', 'DSP pool batch failed; failing the lane\'s calls', { lane, calls, reason });
  }
  callClosed(): void {
    this.#calls--;
  }
  checkSettled(): void {
    if (this.#settledWaiters.length === 0 || !this.#lanes.every((l) => l.idle)) return;
    const w = this.#settledWaiters;
    this.#settledWaiters = [];
    for (const r of w) r();
  }
}
