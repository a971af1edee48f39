/**
 * How busy this process is, over a short moving window, for admission (after
 * LiveKit's worker load gate: stop taking jobs above 0.7 load).
 *
 * The load is the event-loop utilisation (ELU, `performance.eventLoopUtilization()`):
 * the share of wall time the loop spent running JavaScript and native callbacks
 * rather than waiting in the poll phase. For this bridge it is the right measure:
 * every frame of every call is handled on this one thread (the shared 20 ms clock,
 * the DSP calls, the sockets), so when the loop is 100 % busy frames start to be
 * late, whatever the machine's other cores are doing. We also report, not gate on:
 * the process's CPU (user + system, all threads; can exceed 1 with worker threads)
 * and the event-loop delay's p99, which says how late a timer — e.g. the frame clock —
 * fires. The delay comes from our own 10 ms probe timer (the gap between its runs,
 * minus 10 ms), not `monitorEventLoopDelay`: that histogram forgets its previous
 * timestamp on `reset()`, so a busy stretch that ends just before a sample is never
 * recorded — and with a periodic load the sampler and the busy stretches phase-lock
 * and it reports no lag at all (seen in CI: 0.1 ms under an 85 %-busy loop).
 *
 * ```text
 *   every sampleMs:  Δ(ELU active, idle), Δ(cpu µs), Δ(wall), p99 delay  ──►  ring of samples (windowMs)
 *   load = Σ active / Σ (active + idle) over the ring
 *   overloaded: load ≥ threshold (with ≥ 2 samples); clears below 0.85 × threshold (hysteresis)
 * ```
 *
 * One timer per process, unref'd; nothing on the frame path. A synchronous busy
 * stretch is seen by the first sample after it (ELU counts it as active time).
 */
import { performance, type EventLoopUtilization } from 'node:perf_hooks';

export interface LoadSnapshot {
  /** Event-loop utilisation over the window, 0–1 (the gated figure). */
  load: number;
  /** Process CPU over the window, in cores (user + system, all threads). */
  cpu: number;
  /** Worst per-sample p99 event-loop delay over the window (ms): how late a 10 ms probe timer ran. */
  lagP99Ms: number;
  threshold: number | null;
  windowMs: number;
  overloaded: boolean;
  samples: number;
}

export interface LoadMonitorOptions {
  /** ELU at or above which the process is overloaded; undefined = never (figures still reported). */
  threshold: number | undefined;
  windowMs: number;
  /** Default: windowMs / 10, from 50 to 1000 ms. */
  sampleMs?: number;
}

interface Sample {
  active: number;
  idle: number;
  cpuUs: number;
  wallMs: number;
  lagP99Ms: number;
}

const HYSTERESIS = 0.85;
const PROBE_MS = 10;
/** Probe latenesses kept per sample (a 1 s sample holds ~100; more than this are folded into the last slot's max). */
const PROBE_SLOTS = 256;

export class LoadMonitor {
  readonly threshold: number | undefined;
  readonly windowMs: number;
  readonly sampleMs: number;
  readonly #ring: Sample[] = [];
  readonly #capacity: number;
  #timer: NodeJS.Timeout | undefined;
  #elu: EventLoopUtilization | undefined;
  #cpu: NodeJS.CpuUsage | undefined;
  #wall = 0;
  #probe: NodeJS.Timeout | undefined;
  #probeLast = 0;
  readonly #late = new Float64Array(PROBE_SLOTS);
  #lateCount = 0;
  #overloaded = false;
  #listeners = new Set<(overloaded: boolean) => void>();

  constructor(options: LoadMonitorOptions) {
    this.threshold = options.threshold;
    this.windowMs = options.windowMs;
    this.sampleMs = options.sampleMs ?? Math.min(1000, Math.max(50, Math.round(options.windowMs / 10)));
    this.#capacity = Math.max(2, Math.round(this.windowMs / this.sampleMs));
  }

  start(): void {
    if (this.#timer) return;
    this.#elu = performance.eventLoopUtilization();
    this.#cpu = process.cpuUsage();
    this.#wall = performance.now();
    this.#probeLast = this.#wall;
    this.#lateCount = 0;
    this.#probe = setInterval(() => this.#onProbe(), PROBE_MS);
    this.#probe.unref();
    this.#timer = setInterval(() => this.#sample(), this.sampleMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    if (this.#probe) clearInterval(this.#probe);
    this.#probe = undefined;
  }

  /** Called with the new state whenever `overloaded` changes. */
  onChange(fn: (overloaded: boolean) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  get overloaded(): boolean {
    return this.#overloaded;
  }

  #sample(): void {
    const elu = performance.eventLoopUtilization();
    const d = performance.eventLoopUtilization(elu, this.#elu);
    this.#elu = elu;
    const cpu = process.cpuUsage();
    const cpuUs = cpu.user - this.#cpu!.user + (cpu.system - this.#cpu!.system);
    this.#cpu = cpu;
    const now = performance.now();
    const wallMs = now - this.#wall;
    this.#wall = now;
    const lagP99Ms = this.#probeP99();
    this.#ring.push({ active: d.active, idle: d.idle, cpuUs, wallMs, lagP99Ms });
    if (this.#ring.length > this.#capacity) this.#ring.shift();
    this.#update();
  }

  #onProbe(): void {
    const now = performance.now();
    const late = Math.max(0, now - this.#probeLast - PROBE_MS);
    this.#probeLast = now;
    if (this.#lateCount < PROBE_SLOTS) this.#late[this.#lateCount++] = late;
    else this.#late[PROBE_SLOTS - 1] = Math.max(this.#late[PROBE_SLOTS - 1]!, late);
  }

  /** p99 of the probe's lateness since the last sample (nearest rank), then start afresh. */
  #probeP99(): number {
    const n = this.#lateCount;
    this.#lateCount = 0;
    if (n === 0) return 0;
    const sorted = this.#late.subarray(0, n).sort();
    return sorted[Math.min(n - 1, Math.ceil(0.99 * n) - 1)]!;
  }

  #update(): void {
    if (this.threshold === undefined || this.#ring.length < 2) return;
    const load = this.#load();
    const next = this.#overloaded ? load >= this.threshold * HYSTERESIS : load >= this.threshold;
    if (next === this.#overloaded) return;
    this.#overloaded = next;
    for (const fn of this.#listeners) fn(next);
  }

  #load(): number {
    let active = 0;
    let total = 0;
    for (const s of this.#ring) {
      active += s.active;
      total += s.active + s.idle;
    }
    return total > 0 ? active / total : 0;
  }

  snapshot(): LoadSnapshot {
    let cpuUs = 0;
    let wallMs = 0;
    let lag = 0;
    for (const s of this.#ring) {
      cpuUs += s.cpuUs;
      wallMs += s.wallMs;
      lag = Math.max(lag, s.lagP99Ms);
    }
    const round = (x: number) => Math.round(x * 1000) / 1000;
    return {
      load: round(this.#load()),
      cpu: round(wallMs > 0 ? cpuUs / 1000 / wallMs : 0),
      lagP99Ms: Math.round(lag * 10) / 10,
      threshold: this.threshold ?? null,
      windowMs: this.windowMs,
      overloaded: this.#overloaded,
      samples: this.#ring.length,
    };
  }
}
