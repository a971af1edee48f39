/**
 * Where a process's CPU goes, by layer — from `perf record -e cpu-clock` samples of it (Linux
 * `perf`, the linux-perf package). `npm run bench:capacity -- --perf` records the measured
 * process over each step's window and puts the split in the report beside CPU per call-second.
 * 'app JS' is the process's own code (the bridge's src/, the relay's minimal-relay.ts); JSON.parse
 * and JSON.stringify run in V8's runtime, base64 in node's C++.
 *
 * Why not V8's `--cpu-prof`: it samples on a wall-clock interval, so a thread descheduled in a
 * syscall (another process ran on its core) is charged to that JavaScript frame — on a loaded
 * machine `writev` looks several times as costly as it is. `cpu-clock` samples count only time
 * the process ran, kernel included.
 *
 * JIT frames are named from the map file node writes with `--perf-basic-prof` (/tmp/perf-PID.map,
 * one line per code object created: `start size name`). V8 reuses code space, so an address can
 * appear in several lines; the last one written is the code that lives there now (perf itself
 * may pick an older name — it showed a regexp of a startup-only library at the heart of the
 * frame path). With `--no-compact-code-space` code objects are not moved after they are logged.
 */
import { readFileSync } from 'node:fs';

export const LAYERS = ['kernel', 'appJs', 'wsJs', 'nodeJs', 'otherJs', 'v8Builtins', 'v8Runtime', 'nodeNative', 'dspAddon', 'otherAddons', 'libc'] as const;
export type Layer = (typeof LAYERS)[number];
/** Share of the samples per layer (0–1, two decimals), and how many samples there were. */
export type CpuLayers = { samples: number } & Record<Layer, number>;

export const LAYER_LABELS: Record<Layer, string> = {
  kernel: 'kernel',
  appJs: 'app JS',
  wsJs: 'ws',
  nodeJs: 'node JS',
  otherJs: 'other JS',
  v8Builtins: 'V8 builtins',
  v8Runtime: 'V8 runtime+GC',
  nodeNative: 'node/libuv C++',
  dspAddon: 'DSP addon',
  otherAddons: 'other addons',
  libc: 'libc',
};

interface JitMap {
  /** Per entry, sorted by start: [start, end, name, line number in the file]. */
  entries: [number, number, string, number][];
  maxSize: number;
}

export function readJitMap(path: string): JitMap {
  const entries: [number, number, string, number][] = [];
  let maxSize = 0;
  let lineNo = 0;
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    lineNo++;
    const a = line.indexOf(' ');
    const b = line.indexOf(' ', a + 1);
    if (a < 0 || b < 0) continue;
    const start = parseInt(line.slice(0, a), 16);
    const size = parseInt(line.slice(a + 1, b), 16);
    if (!Number.isFinite(start) || !Number.isFinite(size)) continue;
    entries.push([start, start + size, line.slice(b + 1), lineNo]);
    if (size > maxSize) maxSize = size;
  }
  entries.sort((x, y) => x[0] - y[0] || x[3] - y[3]);
  return { entries, maxSize };
}

/** The name of the code at `ip`: of the map lines covering it, the last one written. */
export function jitName(map: JitMap, ip: number): string | undefined {
  // The last entry starting at or before ip, then back over every entry that can still cover it.
  let lo = 0;
  let hi = map.entries.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (map.entries[mid]![0] <= ip) lo = mid + 1;
    else hi = mid;
  }
  let best: [number, number, string, number] | undefined;
  for (let i = lo - 1; i >= 0; i--) {
    const e = map.entries[i]!;
    if (e[0] < ip - map.maxSize) break;
    if (ip < e[1] && (!best || e[3] > best[3])) best = e;
  }
  return best?.[2];
}

/** The layer of one sample: its leaf frame's symbol and object (as `perf script -F ip,sym,dso` prints them). */
export function layerOf(sym: string, dso: string, jit: () => string | undefined): Layer {
  if (dso.includes('kernel')) return 'kernel';
  if (/perf-\d+\.map/.test(dso)) {
    const name = jit() ?? sym;
    if (name.includes('node_modules/ws/')) return 'wsJs';
    // The process's own code: the bridge's src/, or the relay's one file.
    if (name.includes('/src/') || name.includes('/minimal-relay.ts')) return 'appJs';
    if (/ node:|^JS:\S* node:/.test(name)) return 'nodeJs';
    return 'otherJs';
  }
  if (dso.includes('voice-bridge-dsp')) return 'dspAddon';
  if (dso.endsWith('.node')) return 'otherAddons';
  if (/lib(c|m|stdc\+\+|gcc_s|pthread)[.-]|ld-linux|vdso/.test(dso)) return 'libc';
  if (sym.startsWith('Builtins_')) return 'v8Builtins';
  if (sym.startsWith('v8::')) return 'v8Runtime';
  return 'nodeNative';
}

/** The split of `perf script -F ip,sym,dso` output (one sample per line, no call chains). */
export function splitSamples(script: string, map: JitMap | undefined): CpuLayers {
  const counts = Object.fromEntries(LAYERS.map((l) => [l, 0])) as Record<Layer, number>;
  let samples = 0;
  for (const raw of script.split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    // "7f52d78ae8b1 JS:*caller file:///…/call-media.ts:1:1273 (/tmp/perf-25302.map)"
    const sp = line.indexOf(' ');
    const open = line.lastIndexOf(' (');
    if (sp < 0 || open < sp) continue;
    const ip = parseInt(line.slice(0, sp), 16);
    const sym = line.slice(sp + 1, open);
    const dso = line.slice(open + 2, -1);
    counts[layerOf(sym, dso, () => (map ? jitName(map, ip) : undefined))]++;
    samples++;
  }
  const out = { samples } as CpuLayers;
  for (const l of LAYERS) out[l] = samples > 0 ? Math.round((counts[l] / samples) * 100) / 100 : 0;
  return out;
}

export function formatLayers(c: CpuLayers): string {
  return LAYERS.filter((l) => c[l] >= 0.005)
    .sort((a, b) => c[b] - c[a])
    .map((l) => `${LAYER_LABELS[l]} ${Math.round(c[l] * 100)}%`)
    .join(' · ');
}
