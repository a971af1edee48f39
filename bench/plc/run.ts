/**
 * `npm run bench:plc`: speech quality of packet-loss concealment, measured with
 * PESQ-NB (ITU-T P.862, PyPI `pesq`). A benchmark, not a CI gate.
 *
 * Speech: the repo's caller clips (test/fixtures/*.8k-ulaw.wav) plus clips synthesized
 * here with Debian's espeak-ng (several voices, male and female, sentences written for
 * this bench), resampled to 8 kHz by the repo's own resampler and μ-law coded, as a
 * caller's audio arrives. The clean reference is the μ-law-decoded clip.
 *
 * Loss (20 ms frames, seeded xorshift32): random 5 %, 10 %, 20 %, and bursts of 2–3
 * frames at 10 % overall; the first 5 frames and the last frame are never lost.
 *
 * Methods, each given the same lost frames:
 *   silence  — a lost frame is zeros;
 *   repeat   — a lost frame repeats the last received frame;
 *   ours     — the inbound pipeline (jitter buffer + PLC) at 8 kHz, native and ts
 *              backends; the run fails unless both give identical samples;
 *   spandsp  — Debian's libspandsp plc_rx/plc_fillin (a G.711 Appendix-I-style
 *              concealer) through ctypes in bench/plc/score.py: a yardstick only.
 *
 * Setup it does itself: a Python venv in bench/.venv (git-ignored) with pesq and numpy.
 * Needs espeak-ng and libspandsp-dev from Debian: when missing it prints the apt-get
 * command, or installs them as root given --install-deps (or VB_INSTALL_TEST_DEPS=1).
 *
 * Output: a table of mean PESQ per method per pattern and ours − spandsp, and a JSON
 * report in bench/results/plc-<time>.json (git-ignored).
 *
 * Options: --seeds=N loss masks per clip and pattern (default 8), --clips=N (default 12,
 * at most 102), --backend=ts (ts only, e.g. without the addon; no native ⇄ ts check),
 * --keep (keep the temp dir), --install-deps (see above). About 1.5 minutes by default.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadDsp } from '../../src/dsp/load.js';
import type { DspBackend } from '../../src/dsp/backend.js';
import { decodeUlaw, encodeUlaw } from '../../src/dsp/ts/g711.js';

const root = join(import.meta.dirname, '..', '..');
const opt = (name: string): string | undefined =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const seeds = Number(opt('seeds') ?? 8);
const clipCount = Math.min(Number(opt('clips') ?? 12), 102);
const tsOnly = opt('backend') === 'ts';
const keep = process.argv.includes('--keep');
const FRAME = 160;

// ---- setup --------------------------------------------------------------------------

function have(cmd: string, args: string[]): boolean {
  return spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
}

/** Debian packages: installed only as root with consent (--install-deps, or
 * VB_INSTALL_TEST_DEPS=1 as for npm test); otherwise the apt-get command is printed. */
function ensureDebianPackages(): void {
  const missing: string[] = [];
  if (!have('espeak-ng', ['--version'])) missing.push('espeak-ng');
  if (!have('sh', ['-c', 'ldconfig -p | grep -q libspandsp'])) missing.push('libspandsp-dev');
  if (missing.length === 0) return;
  const consent = process.argv.includes('--install-deps') || process.env.VB_INSTALL_TEST_DEPS === '1';
  if (!consent || process.getuid?.() !== 0 || !have('apt-get', ['--version'])) {
    console.error(`bench:plc needs Debian packages: apt-get install ${missing.join(' ')} (or npm run bench:plc -- --install-deps as root)`);
    process.exit(2);
  }
  console.error(`bench:plc: installing ${missing.join(' ')} with apt-get`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  execFileSync('apt-get', ['install', '-y', '-qq', ...missing], { stdio: 'inherit', env });
}

const PY_PKGS = ['pesq==0.0.4', 'numpy==2.4.6'];

function ensureVenv(): string {
  const venv = join(root, 'bench', '.venv');
  const py = join(venv, 'bin', 'python');
  const stamp = join(venv, '.bench-plc-packages');
  if (existsSync(py) && existsSync(stamp) && readFileSync(stamp, 'utf8') === PY_PKGS.join('\n')) return py;
  console.error(`bench:plc: setting up ${venv} (${PY_PKGS.join(', ')})`);
  execFileSync('python3', ['-m', 'venv', venv], { stdio: 'inherit' });
  execFileSync(py, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', ...PY_PKGS], {
    stdio: 'inherit',
  });
  writeFileSync(stamp, PY_PKGS.join('\n'));
  return py;
}

// ---- speech ----------------------------------------------------------------------------

/** Written for this bench: call-centre phrasing, varied phonetics. */
const SENTENCES = [
  'Hello, I am calling about the parcel that was supposed to arrive on Tuesday morning.',
  'Could you please read me the last four digits of the card you used for the payment?',
  'The meeting has been moved to half past three, so we will need a bigger room.',
  'My daughter visited the museum twice last summer and loved the dinosaur gallery.',
  'If the light keeps flashing red, unplug the router and wait thirty seconds.',
  'We would like to book a table for six people near the window, if possible.',
  'Yes, that is right, the invoice number starts with seven and ends with nine.',
  'The train to the airport leaves every fifteen minutes from platform number two.',
  'I have already tried resetting my password three times and it still does not work.',
  'Thank you so much for your patience; someone from billing will call you back today.',
];
/** espeak-ng voice, speed (wpm), pitch (0–99): men and women, several accents. */
const VOICES: Array<[string, number, number]> = [
  ['en-us+f2', 160, 60],
  ['en-gb+m3', 155, 40],
  ['en-us+f4', 170, 70],
  ['en-gb-x-rp+m1', 150, 35],
  ['en-us+m7', 165, 50],
  ['en-gb+f1', 160, 65],
  ['en-029+m2', 155, 45],
  ['en-gb-scotland+f3', 150, 55],
  ['en-us+m4', 175, 30],
  ['en-gb+f5', 165, 75],
];

type Clip = { name: string; ulaw: Uint8Array; ref: Int16Array; source: string };

function fromUlawFixture(file: string): Clip {
  const bytes = readFileSync(join(root, 'test', 'fixtures', file));
  let i = 12;
  while (i + 8 <= bytes.length) {
    const id = bytes.toString('latin1', i, i + 4);
    const len = bytes.readUInt32LE(i + 4);
    if (id === 'data') {
      const n = Math.floor(Math.min(len, bytes.length - i - 8) / FRAME) * FRAME;
      const ulaw = new Uint8Array(bytes.subarray(i + 8, i + 8 + n));
      const ref = new Int16Array(n);
      decodeUlaw(ulaw, ref);
      return { name: file.replace(/\.8k-ulaw\.wav$/, ''), ulaw, ref, source: `test/fixtures/${file}` };
    }
    i += 8 + len + (len & 1);
  }
  throw new Error(`${file}: no data chunk`);
}

function readPcm16Wav(path: string): { rate: number; samples: Int16Array } {
  const b = readFileSync(path);
  let i = 12;
  let rate = 0;
  while (i + 8 <= b.length) {
    const id = b.toString('latin1', i, i + 4);
    let len = b.readUInt32LE(i + 4);
    if (id === 'fmt ') rate = b.readUInt32LE(i + 12);
    if (id === 'data') {
      // espeak-ng writing to a file may leave the size field at 0x7fffffff: take what is there.
      len = Math.min(len, b.length - i - 8);
      const s = new Int16Array(len >> 1);
      for (let k = 0; k < s.length; k++) s[k] = b.readInt16LE(i + 8 + 2 * k);
      return { rate, samples: s };
    }
    i += 8 + len + (len & 1);
  }
  throw new Error(`${path}: no data chunk`);
}

function synthesize(dsp: DspBackend, dir: string, k: number): Clip {
  // Every (sentence, voice) pair differs for k < 100.
  const [voice, speed, pitch] = VOICES[(k + Math.floor(k / SENTENCES.length)) % VOICES.length]!;
  const text = SENTENCES[k % SENTENCES.length]!;
  const wav = join(dir, `tts-${k}.wav`);
  execFileSync('espeak-ng', ['-v', voice, '-s', String(speed), '-p', String(pitch), '-w', wav, text]);
  const { rate, samples } = readPcm16Wav(wav);
  const r = dsp.createResampler({ fromHz: rate, toHz: 8000, quality: 10 });
  const out = new Int16Array(r.maxOutput(samples.length) + r.outputLatency + 1);
  let n = r.process(samples, out);
  n += r.flush(out.subarray(n));
  r.close();
  const len = Math.floor(n / FRAME) * FRAME;
  const pcm = out.subarray(0, len);
  const ulaw = new Uint8Array(len);
  encodeUlaw(pcm, ulaw);
  const ref = new Int16Array(len);
  decodeUlaw(ulaw, ref);
  const sha = createHash('sha256').update(ulaw).digest('hex').slice(0, 16);
  return { name: `tts-${k}-${voice}`, ulaw, ref, source: `espeak-ng -v ${voice} -s ${speed} -p ${pitch} "${text}" (μ-law sha256 ${sha}…)` };
}

// ---- loss patterns ---------------------------------------------------------------------

class Rng {
  constructor(private s: number) {
    this.s = s >>> 0 || 1;
  }
  next(): number {
    let s = this.s;
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    this.s = s >>> 0;
    return this.s;
  }
  f(): number {
    return this.next() / 4294967296;
  }
}

type Pattern = { name: string; mask: (frames: number, rng: Rng) => boolean[] };

const random = (p: number): Pattern => ({
  name: `random ${p * 100} %`,
  mask: (frames, rng) => Array.from({ length: frames }, (_, k) => k >= 5 && k < frames - 1 && rng.f() < p),
});

/** Bursts of 2 or 3 frames: after each received frame a burst starts with probability q,
 * q·2.5 / (1 + q·2.5) = loss → q = loss / (2.5 (1 − loss)). */
const bursty = (loss: number): Pattern => ({
  name: `bursts 2–3, ${loss * 100} %`,
  mask: (frames, rng) => {
    const q = loss / (2.5 * (1 - loss));
    const m = new Array<boolean>(frames).fill(false);
    for (let k = 5; k < frames - 1; k++) {
      if (rng.f() < q) {
        const len = 2 + (rng.next() % 2);
        for (let j = 1; j <= len && k + j < frames - 1; j++) m[k + j] = true;
        k += len;
      }
    }
    return m;
  },
});

const PATTERNS: Pattern[] = [random(0.05), random(0.1), random(0.2), bursty(0.1)];

// ---- methods run here ------------------------------------------------------------------

function silenceFill(ref: Int16Array, mask: boolean[]): Int16Array {
  const out = ref.slice(0, mask.length * FRAME);
  mask.forEach((lost, k) => lost && out.fill(0, k * FRAME, (k + 1) * FRAME));
  return out;
}

function frameRepeat(ref: Int16Array, mask: boolean[]): Int16Array {
  const out = ref.slice(0, mask.length * FRAME);
  mask.forEach((lost, k) => {
    if (lost && k > 0) out.copyWithin(k * FRAME, (k - 1) * FRAME, k * FRAME);
  });
  return out;
}

/** The caller's frames through the inbound pipeline at 8 kHz, lost frames never sent. */
function ours(dsp: DspBackend, ulaw: Uint8Array, mask: boolean[]): Int16Array {
  const p = dsp.createInboundPipeline({ toHz: 8000 });
  const out = new Int16Array(mask.length * FRAME);
  const dst = new Int16Array(p.maxFrameOutput * 8);
  let o = 0;
  const take = (n: number) => {
    if (o + n > out.length) throw new Error('pipeline produced more samples than it was given');
    out.set(dst.subarray(0, n), o);
    o += n;
  };
  for (let k = 0; k < mask.length; k++) {
    const now = k * 20;
    if (!mask[k]) take(p.push(ulaw.subarray(k * FRAME, (k + 1) * FRAME), k, k * 20, now, dst));
    take(p.poll(now, dst));
  }
  for (let n = p.flush(dst); n > 0; n = p.flush(dst)) take(n);
  p.close();
  if (o !== out.length) throw new Error(`pipeline produced ${o} samples, expected ${out.length}`);
  return out;
}

// ---- main ------------------------------------------------------------------------------

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

async function main(): Promise<void> {
  ensureDebianPackages();
  const py = ensureVenv();
  const ts = await loadDsp({ backend: 'ts' });
  const native = tsOnly ? undefined : await loadDsp({ backend: 'native' });
  const work = mkdtempSync(join(tmpdir(), 'bench-plc-'));
  try {
    const clips: Clip[] = [fromUlawFixture('caller-order-status.8k-ulaw.wav'), fromUlawFixture('caller-barge-in.8k-ulaw.wav')];
    for (let k = 0; clips.length < clipCount; k++) clips.push(synthesize(ts, work, k));
    clips.length = clipCount;

    const items: unknown[] = [];
    const lossRates: Record<string, number[]> = {};
    let id = 0;
    const write = (x: Int16Array): string => {
      const f = `s${id++}.raw`;
      writeFileSync(join(work, f), Buffer.from(x.buffer, x.byteOffset, x.byteLength));
      return f;
    };
    for (const clip of clips) {
      const frames = clip.ref.length / FRAME;
      const ref = write(clip.ref);
      for (const pattern of PATTERNS) {
        for (let seed = 1; seed <= seeds; seed++) {
          const rng = new Rng(0x9e3779b9 ^ (seed * 0x01000193) ^ (PATTERNS.indexOf(pattern) << 20) ^ (clips.indexOf(clip) << 8));
          const mask = pattern.mask(frames, rng);
          (lossRates[pattern.name] ??= []).push(mask.filter(Boolean).length / frames);
          const oursTs = ours(ts, clip.ulaw, mask);
          if (native) {
            const oursNative = ours(native, clip.ulaw, mask);
            const same = Buffer.from(oursNative.buffer).equals(Buffer.from(oursTs.buffer));
            if (!same) throw new Error(`native and ts PLC differ on ${clip.name}, ${pattern.name}, seed ${seed}`);
          }
          items.push({
            clip: clip.name,
            pattern: pattern.name,
            seed,
            ref,
            mask: mask.map((l) => (l ? '1' : '0')).join(''),
            degraded: { silence: write(silenceFill(clip.ref, mask)), repeat: write(frameRepeat(clip.ref, mask)), ours: write(oursTs) },
          });
        }
      }
    }
    const manifest = join(work, 'manifest.json');
    writeFileSync(manifest, JSON.stringify({ items }));
    const scoresPath = join(work, 'scores.json');
    console.error(`bench:plc: scoring ${items.length} × 4 signals with PESQ-NB`);
    execFileSync(py, [join(root, 'bench', 'plc', 'score.py'), manifest, scoresPath], { stdio: 'inherit' });
    const { scores } = JSON.parse(readFileSync(scoresPath, 'utf8')) as {
      scores: Array<{ clip: string; pattern: string; seed: number; pesq: Record<string, number> }>;
    };

    const methods = ['silence', 'repeat', 'spandsp', 'ours'];
    const table = PATTERNS.map((p) => {
      const rows = scores.filter((s) => s.pattern === p.name);
      const m: Record<string, number> = {};
      for (const k of methods) m[k] = mean(rows.map((r) => r.pesq[k]!));
      const deltas = rows.map((r) => r.pesq.ours! - r.pesq.spandsp!);
      return {
        pattern: p.name,
        lossMeasured: mean(lossRates[p.name]!),
        n: rows.length,
        mean: m,
        oursMinusSpandsp: m.ours! - m.spandsp!,
        oursBetterThanSpandsp: deltas.filter((d) => d > 0).length,
      };
    });

    const pad = (s: string, n: number) => s.padEnd(n);
    const num = (x: number) => x.toFixed(3).padStart(8);
    const signed = (x: number) => (x >= 0 ? '+' : '−') + Math.abs(x).toFixed(3);
    console.log(`\nPLC, PESQ-NB (mean of ${clips.length} clips × ${seeds} seeds), inbound pipeline at 8 kHz${tsOnly ? ' (ts backend only)' : ', native = ts'}`);
    console.log(`${pad('pattern', 20)}${pad('loss', 7)}${methods.map((m) => m.padStart(8)).join('')}  ours−spandsp  ours>spandsp`);
    for (const r of table) {
      console.log(
        `${pad(r.pattern, 20)}${pad((r.lossMeasured * 100).toFixed(1) + '%', 7)}${methods.map((m) => num(r.mean[m]!)).join('')}  ${signed(r.oursMinusSpandsp).padStart(12)}  ${`${r.oursBetterThanSpandsp}/${r.n}`.padStart(12)}`,
      );
    }

    const commit = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).stdout.trim();
    const espeak = spawnSync('espeak-ng', ['--version'], { encoding: 'utf8' }).stdout.trim();
    const resultsDir = join(root, 'bench', 'results');
    mkdirSync(resultsDir, { recursive: true });
    const file = join(resultsDir, `plc-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    writeFileSync(
      file,
      JSON.stringify(
        {
          date: new Date().toISOString(),
          commit,
          backends: tsOnly ? ['ts'] : ['native', 'ts'],
          seeds,
          pythonPackages: PY_PKGS,
          espeak,
          clips: clips.map((c) => ({ name: c.name, seconds: c.ref.length / 8000, source: c.source })),
          table,
          scores,
        },
        null,
        2,
      ),
    );
    console.log(`\nreport: ${file}`);
  } finally {
    if (keep) console.error(`bench:plc: kept ${work}`);
    else rmSync(work, { recursive: true, force: true });
  }
}

await main();
