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
 * and the event-loop delay's p99 (`monitorEventLoopDelay`), which says how late a
 * timer — e.g. the frame clock — fires.
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
import { monitorEventLoopDelay, performance, type EventLoopUtilization, type IntervalHistogram } from 'node:perf_hooks';

export interface LoadSnapshot {
  /** Event-loop utilisation over the window, 0–1 (the gated figure). */
  load: number;
  /** Process CPU over the window, in cores (user + system, all threads). */
  cpu: number;
  /** Worst per-sample p99 event-loop delay over the window (ms). */
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
  #hist: IntervalHistogram | undefined;
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
    this.#hist = monitorEventLoopDelay({ resolution: 10 });
    this.#hist.enable();
    this.#timer = setInterval(() => this.#sample(), this.sampleMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#hist?.disable();
    this.#hist = undefined;
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
    const h = this.#hist!;
    const lagP99Ms = h.count > 0 ? Math.max(0, h.percentile(99) / 1e6 - 10) : 0; // minus the histogram's 10 ms resolution timer
    h.reset();
    this.#ring.push({ active: d.active, idle: d.idle, cpuUs, wallMs, lagP99Ms });
    if (this.#ring.length > this.#capacity) this.#ring.shift();
    this.#update();
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
