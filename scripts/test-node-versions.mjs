#!/usr/bin/env node
// `npm test` once per Node.js runtime, then one closing line "N passed, N failed": the sums of
// all runs (each run's own counts are printed above it). Exits non-zero when any run failed.
//
//   node scripts/test-node-versions.mjs [current | 22 | 24 | 24.22.3 …]    (default: current 22 24)
//
// - "current" is the node running this script; a major maps to the version pinned in PINNED; a full
//   version is used as given. Other runtimes are the official builds that npm's node-<os>-<arch>
//   package ships (bin/node and include/node), fetched with `npm pack` into a cache
//   (~/.cache/voice-bridge/node/<version>, or $VB_CACHE_DIR) and put first on PATH for that run
//   only: the system's Node is never touched.
// - better-sqlite3 is compiled for one Node ABI: it is rebuilt from source for each runtime's ABI
//   (with that runtime's headers; no download), each build cached per ABI, and the build the tree
//   had is put back at the end. The Rust addon is N-API (ABI-stable): no rebuild.
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const PINNED = { 20: '20.20.2', 22: '22.23.5', 24: '24.22.3' };
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cache = process.env.VB_CACHE_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'voice-bridge');
const specs = process.argv.slice(2).length ? process.argv.slice(2) : ['current', '22', '24'];

function log(msg) {
  console.log(`== ${msg}`);
}

/** The bin dir of a runtime ("" for the current node, which needs no PATH change). */
function fetchNode(spec) {
  if (spec === 'current') return { version: process.version, binDir: dirname(process.execPath), home: null };
  const version = PINNED[spec] ?? spec;
  if (!/^\d+\.\d+\.\d+$/.test(version)) throw new Error(`not a Node.js version: ${spec}`);
  if (`v${version}` === process.version) return { version: process.version, binDir: dirname(process.execPath), home: null };
  const os = process.platform === 'win32' ? 'win' : process.platform;
  const pkg = `node-${os}-${process.arch}`;
  const home = join(cache, 'node', version);
  const node = join(home, 'bin', 'node');
  if (!existsSync(node)) {
    log(`fetching Node.js ${version} (npm package ${pkg}@${version}) into ${home}`);
    mkdirSync(join(cache, 'node'), { recursive: true });
    const tmp = mkdtempSync(join(cache, 'node', `.${version}-`));
    run('npm', ['pack', `${pkg}@${version}`, '--pack-destination', tmp, '--silent'], { cwd: tmp });
    const tgz = join(tmp, `${pkg}-${version}.tgz`);
    const dest = join(tmp, 'node');
    mkdirSync(dest);
    run('tar', ['xzf', tgz, '-C', dest, '--strip-components=1']);
    rmSync(tgz);
    // Another run (another clone on this machine) may have put it there meanwhile: keep theirs.
    if (existsSync(home) && !existsSync(node)) rmSync(home, { recursive: true, force: true });
    try {
      renameSync(dest, home);
    } catch (e) {
      if (!existsSync(node)) throw e;
    }
    rmSync(tmp, { recursive: true, force: true });
  }
  const v = spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim();
  if (v !== `v${version}`) throw new Error(`${node} --version said '${v}', not v${version}`);
  return { version: v, binDir: join(home, 'bin'), home };
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'], ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.error?.message ?? `exit ${r.status}`})`);
  return r;
}

function envFor(rt, extra = {}) {
  return { ...process.env, PATH: `${rt.binDir}${delimiter}${process.env.PATH ?? ''}`, ...extra };
}

// better-sqlite3 (optional dependency): one build per Node ABI.
const bsqDir = join(root, 'node_modules', 'better-sqlite3');
const bsqNode = join(bsqDir, 'build', 'Release', 'better_sqlite3.node');
const bsqVersion = existsSync(bsqDir) ? JSON.parse(readFileSync(join(bsqDir, 'package.json'), 'utf8')).version : null;
const abiOf = (rt) => spawnSync(join(rt.binDir, 'node'), ['-p', 'process.versions.modules'], { encoding: 'utf8' }).stdout.trim();
const cachedBuild = (abi) => join(cache, 'better-sqlite3', bsqVersion ?? 'none', `abi-${abi}`, 'better_sqlite3.node');
const loads = (rt) =>
  spawnSync(join(rt.binDir, 'node'), ['-e', "new (require('better-sqlite3'))(':memory:').prepare('select 1').get()"], { cwd: root, stdio: 'ignore' }).status === 0;

function saveBuild(abi) {
  const to = cachedBuild(abi);
  mkdirSync(dirname(to), { recursive: true });
  const tmp = `${to}.${process.pid}.tmp`; // other clones on this machine may save the same build
  copyFileSync(bsqNode, tmp);
  renameSync(tmp, to);
}

function useBetterSqlite(rt) {
  if (!bsqVersion) return;
  const abi = abiOf(rt);
  if (existsSync(bsqNode) && loads(rt)) return; // already built for this ABI
  if (existsSync(cachedBuild(abi))) {
    mkdirSync(dirname(bsqNode), { recursive: true });
    copyFileSync(cachedBuild(abi), bsqNode);
    if (loads(rt)) return console.log(`better-sqlite3 ${bsqVersion}: the cached build for ABI ${abi}`);
  }
  log(`better-sqlite3 ${bsqVersion}: building for Node ${rt.version} (ABI ${abi}) from source`);
  const t0 = Date.now();
  // With this node first on PATH; its own headers (no download); no prebuilt binary download.
  const extra = { npm_config_build_from_source: 'true', JOBS: 'max' };
  if (rt.home) extra.npm_config_nodedir = rt.home;
  run('npm', ['rebuild', 'better-sqlite3', '--no-audit', '--no-fund'], { cwd: root, env: envFor(rt, extra) });
  if (!loads(rt)) throw new Error(`better-sqlite3 rebuilt for Node ${rt.version} does not load`);
  saveBuild(abi);
  console.log(`better-sqlite3 built for ABI ${abi} in ${Math.round((Date.now() - t0) / 1000)} s (cached in ${dirname(cachedBuild(abi))})`);
}

/** npm test under `rt`, its output passed through; returns the counts of its closing line. */
function npmTest(rt) {
  return new Promise((resolvePromise) => {
    const t0 = Date.now();
    const child = spawn('npm', ['test'], { cwd: root, env: envFor(rt), stdio: ['ignore', 'pipe', 'inherit'] });
    let tail = '';
    let partial = '';
    const notPassed = [];
    child.stdout.on('data', (d) => {
      process.stdout.write(d);
      tail = (tail + d.toString()).slice(-4096);
      const lines = (partial + d.toString()).split('\n');
      partial = lines.pop() ?? '';
      for (const l of lines) if (l.startsWith('not passed: ')) notPassed.push(l.slice('not passed: '.length).trim());
    });
    child.on('close', (code) => {
      const lines = tail.split('\n').map((l) => l.trim()).filter(Boolean);
      const m = lines.length ? /^(\d+) passed, (\d+) failed(?:, (\d+) skipped)?$/.exec(lines[lines.length - 1]) : null;
      resolvePromise({
        version: rt.version,
        code,
        seconds: Math.round((Date.now() - t0) / 1000),
        passed: m ? Number(m[1]) : 0,
        failed: m ? Number(m[2]) : 1, // no closing line: the run failed
        skipped: m?.[3] ? Number(m[3]) : 0,
        notPassed,
      });
    });
  });
}

const original = { rt: { version: process.version, binDir: dirname(process.execPath), home: null } };
if (bsqVersion && existsSync(bsqNode) && loads(original.rt)) saveBuild(abiOf(original.rt));

const results = [];
let ok = true;
try {
  for (const spec of specs) {
    let rt;
    try {
      rt = fetchNode(spec);
      useBetterSqlite(rt);
    } catch (e) {
      console.error(`Node ${spec}: ${e.message}`);
      results.push({ version: spec, code: 1, seconds: 0, passed: 0, failed: 1, skipped: 0, notPassed: [`(no run: ${e.message})`] });
      ok = false;
      continue;
    }
    log(`npm test on Node ${rt.version} (${join(rt.binDir, 'node')})`);
    const r = await npmTest(rt);
    results.push(r);
    if (r.code !== 0) ok = false;
  }
} finally {
  // Leave better-sqlite3 built for the node that ran us, as npm install left it.
  try {
    useBetterSqlite(original.rt);
  } catch (e) {
    console.error(`could not restore better-sqlite3 for Node ${process.version}: ${e.message}`);
  }
}

log('per runtime');
for (const r of results) {
  console.log(`Node ${r.version} — ${r.passed} passed / ${r.failed} failed${r.skipped ? ` / ${r.skipped} skipped` : ''} in ${r.seconds} s (exit ${r.code})`);
  for (const name of r.notPassed) console.log(`  not passed: ${name}`);
}
const sum = (k) => results.reduce((n, r) => n + r[k], 0);
const skipped = sum('skipped');
console.log(`${sum('passed')} passed, ${sum('failed')} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(ok && sum('failed') === 0 ? 0 : 1);
