/**
 * V8's garbage collector on one CPU (BRIDGE_GC).
 *
 * By default V8 marks and scavenges with helper threads beside the JavaScript thread. With
 * cores to spare that shortens the pauses. A process that has one CPU to itself — pinned
 * (`taskset`, a cpuset of one), a container quota of one CPU, or one of `--workers N` on N
 * cores — gets the opposite: the helpers run on the event loop's own CPU and preempt it for
 * whole scheduler slices. Measured with the capacity bench (bridge pinned to one CPU, 300
 * calls, PCM 24 kHz through the DSP, alternating runs): p99 inbound added delay median 24 ms
 * with the helpers, 7.7 ms (6.6–9.9) with V8's `--single-threaded-gc`, at no more CPU per
 * call-second (docs/operations/scaling.md).
 *
 * The flag must be on node's command line (V8 refuses it at run time and NODE_OPTIONS does
 * not take it), so `start` runs the bridge in a child process with it when needed
 * (`relaunchArgs`), and the cluster primary gives it to its workers.
 *
 *   auto             single-threaded when this process (or each worker) has at most one CPU
 *   single-threaded  always
 *   parallel         never: V8's default
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, constants } from 'node:os';

const osSignals = constants.signals as Record<string, number>;

export type GcSetting = 'auto' | 'parallel' | 'single-threaded';
export type GcMode = 'parallel' | 'single-threaded';

export const SINGLE_THREADED_GC_FLAG = '--single-threaded-gc';

/** The GC this process runs with (from node's command line). */
export function gcModeOfThisProcess(execArgv: readonly string[] = process.execArgv): GcMode {
  return execArgv.includes(SINGLE_THREADED_GC_FLAG) ? 'single-threaded' : 'parallel';
}

/**
 * CPUs from a cgroup CPU quota: cgroup v2 `cpu.max` ("max 100000", or "150000 100000" for
 * 1.5 CPUs), else cgroup v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us` (-1: none). Infinity
 * when there is no quota or nothing can be read.
 */
export function cgroupCpus(read: (path: string) => string | undefined = readText): number {
  const v2 = read('/sys/fs/cgroup/cpu.max')?.trim().split(/\s+/);
  if (v2 && v2.length >= 2) {
    const quota = Number(v2[0]);
    const period = Number(v2[1]);
    return v2[0] !== 'max' && quota > 0 && period > 0 ? quota / period : Infinity;
  }
  const quota = Number(read('/sys/fs/cgroup/cpu/cpu.cfs_quota_us')?.trim());
  const period = Number(read('/sys/fs/cgroup/cpu/cpu.cfs_period_us')?.trim());
  return quota > 0 && period > 0 ? quota / period : Infinity;
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** The CPUs this process may use: those it may run on (affinity), bounded by its cgroup quota. */
export function effectiveCpus(): number {
  return Math.min(availableParallelism(), cgroupCpus());
}

/** The GC for a process that gets `cpus` CPUs (a worker: its share). */
export function resolveGcMode(setting: GcSetting, cpus: number): GcMode {
  if (setting === 'auto') return cpus <= 1 ? 'single-threaded' : 'parallel';
  return setting;
}

/**
 * The node arguments to run this same command again with the single-threaded GC, or
 * undefined when this process already runs with the GC `mode` asks for. (Only
 * 'single-threaded' can need it: 'parallel' is node's default.)
 */
export function relaunchArgs(mode: GcMode, execArgv: readonly string[] = process.execArgv, argv: readonly string[] = process.argv): string[] | undefined {
  if (mode !== 'single-threaded' || gcModeOfThisProcess(execArgv) === 'single-threaded') return undefined;
  return [SINGLE_THREADED_GC_FLAG, ...execArgv, ...argv.slice(1)];
}

/** Set in the child `start` runs with the single-threaded GC: it takes drain, hurry and reload from its parent over IPC. */
export const GC_CHILD_ENV = 'VB_GC_CHILD';
/** What the child says once it listens for its parent: what the parent had to say before then is sent now. */
export const GC_CHILD_LISTENING = 'voice-bridge:gc-child-listening';

/**
 * Runs the bridge in a child process with `args` (relaunchArgs) and stands between it and the
 * outside, as the cluster primary does for its workers: the child inherits stdout/stderr; the
 * first SIGTERM/SIGINT here starts its drain, a second one cuts the drain short, SIGHUP reloads
 * its profiles — each said once over IPC, so a signal that reaches both processes (Ctrl-C in a
 * terminal, systemd's control-group kill) is not counted twice. Without a profiles file SIGHUP
 * ends the bridge, as it does a bridge run without the child. Resolves to the child's exit code.
 */
export function runGcChild(args: string[], env: Record<string, string | undefined>): Promise<number> {
  let signals = 0;
  // Until the child listens (its modules still loading), a message would be lost: kept, sent then.
  let listening = false;
  const held: { type: string; signal: NodeJS.Signals }[] = [];
  const say = (type: string, signal: NodeJS.Signals) => {
    if (!listening) held.push({ type, signal });
    else if (child.connected) child.send({ type, signal }, () => undefined);
  };
  // The handlers first: a signal from the moment the child exists is the child's to get.
  const onStop = (signal: NodeJS.Signals) => say(++signals === 1 ? 'voice-bridge:drain' : 'voice-bridge:hurry', signal);
  const profiles = (env.BRIDGE_PROFILES ?? '') !== '';
  const onHup = () => (profiles ? say('voice-bridge:reload-profiles', 'SIGHUP') : child.kill('SIGHUP'));
  process.on('SIGTERM', onStop);
  process.on('SIGINT', onStop);
  process.on('SIGHUP', onHup);
  const child = spawn(process.execPath, args, { stdio: ['inherit', 'inherit', 'inherit', 'ipc'], env: { ...env, [GC_CHILD_ENV]: '1' } });
  child.on('message', (m: { type?: string } | null) => {
    if (m?.type !== GC_CHILD_LISTENING || listening) return;
    listening = true;
    for (const h of held.splice(0)) say(h.type, h.signal);
  });
  return new Promise<number>((resolve) => {
    const done = (code: number) => {
      process.off('SIGTERM', onStop);
      process.off('SIGINT', onStop);
      process.off('SIGHUP', onHup);
      resolve(code);
    };
    child.once('error', (e) => {
      console.error(`voice-bridge: cannot start the bridge with ${SINGLE_THREADED_GC_FLAG}: ${e.message}`);
      done(1);
    });
    child.once('exit', (code, signal) => done(code ?? (signal ? 128 + (osSignals[signal] ?? 0) : 1)));
  });
}
