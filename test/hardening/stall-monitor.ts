/**
 * Tells a stall of this thread's event loop that the OS caused (the thread was not
 * scheduled: other processes had the cores) from one this thread caused (it was busy).
 * Every 10 ms it notes how late the timer fired and how much CPU the main thread used
 * meanwhile (/proc/self/task/<pid>/stat, utime + stime, 10 ms ticks on Linux). A stall
 * during which the thread used less than half the time on CPU was starvation.
 *
 * The fuzz test uses it to keep its strict "no playout gap" check about the bridge: a
 * gap on a real call is excused only when a starvation stall covers it; a gap from a
 * busy bridge (hostile input costing CPU on the event loop) is still a failure.
 * Without /proc (not Linux) nothing is excused.
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

export interface Stall {
  /** performance.now() when the late tick was due. */
  fromMs: number;
  toMs: number;
  lateMs: number;
  /** CPU the main thread used during the stall (10 ms resolution). */
  cpuMs: number;
  starved: boolean;
}

function threadCpuMs(): number | undefined {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'latin1');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * 10; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return undefined;
  }
}

export class StallMonitor {
  readonly stalls: Stall[] = [];
  #timer: NodeJS.Timeout | undefined;
  constructor(
    private readonly periodMs = 10,
    private readonly minStallMs = 40,
  ) {}

  start(): void {
    let last = performance.now();
    let lastCpu = threadCpuMs();
    this.#timer = setInterval(() => {
      const now = performance.now();
      const cpu = threadCpuMs();
      const late = now - last - this.periodMs;
      if (late >= this.minStallMs) {
        const cpuMs = cpu !== undefined && lastCpu !== undefined ? cpu - lastCpu : Number.NaN;
        this.stalls.push({ fromMs: last + this.periodMs, toMs: now, lateMs: late, cpuMs, starved: Number.isFinite(cpuMs) && cpuMs <= (now - last) / 2 });
      }
      last = now;
      lastCpu = cpu;
    }, this.periodMs);
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** A starvation stall overlapping [fromMs, toMs] (performance.now() times), if any. */
  starvedWithin(fromMs: number, toMs: number): Stall | undefined {
    return this.stalls.find((s) => s.starved && s.toMs >= fromMs && s.fromMs <= toMs);
  }

  summary(): { stalls: number; starved: number; busy: number; maxLateMs: number } {
    return {
      stalls: this.stalls.length,
      starved: this.stalls.filter((s) => s.starved).length,
      busy: this.stalls.filter((s) => !s.starved).length,
      maxLateMs: Math.round(Math.max(0, ...this.stalls.map((s) => s.lateMs))),
    };
  }
}
