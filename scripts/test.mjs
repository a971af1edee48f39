#!/usr/bin/env node
// `npm test`: the Rust core's own tests (cargo), then the vitest suites, then one
// plain closing line "N passed, N failed" with the real combined counts.
// Exits non-zero on any failure, on a skipped/todo test, or when nothing ran.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const args = process.argv.slice(2);
let passed = 0;
let failed = 0;
let skipped = 0;
let ok = true;

const hasCargo = spawnSync('cargo', ['--version'], { stdio: 'ignore' }).status === 0;
const nativeRequired = process.env.BRIDGE_DSP === 'native';
if (hasCargo && args.length === 0) {
  const r = spawnSync('cargo', ['test', '--release', '-p', 'dsp-core', '--manifest-path', 'native/Cargo.toml'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  process.stdout.write(r.stdout);
  for (const m of r.stdout.matchAll(/test result: \w+\. (\d+) passed; (\d+) failed; (\d+) ignored/g)) {
    passed += Number(m[1]);
    failed += Number(m[2]);
    skipped += Number(m[3]);
  }
  if (r.status !== 0) {
    ok = false;
    if (failed === 0) failed = 1; // a build failure is a failure even if no test reported
  }
} else if (nativeRequired && args.length === 0) {
  console.error('BRIDGE_DSP=native but cargo is not installed: the Rust core cannot be tested');
  ok = false;
  failed++;
}

// nginx and a PostgreSQL server (Debian packages) when missing.
if (args.length === 0) {
  const deps = spawnSync('bash', ['scripts/ensure-test-deps.sh'], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (deps.status !== 0) console.error('could not install nginx / postgresql: the scale-out and PostgreSQL tests will fail');
}

// The PostgreSQL store tests need a real server: provision a throwaway one (installs
// Debian's postgresql when missing; reuses a running one) unless TEST_DATABASE_URL is set.
if (!process.env.TEST_DATABASE_URL && args.length === 0) {
  const pg = spawnSync('bash', ['scripts/ci-postgres.sh'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const last = pg.stdout.trim().split('\n').pop() ?? '';
  if (pg.status === 0 && last.startsWith('TEST_DATABASE_URL=')) {
    process.env.TEST_DATABASE_URL = last.slice('TEST_DATABASE_URL='.length);
    console.log(`PostgreSQL for the store tests: ${process.env.TEST_DATABASE_URL.replace(/:[^:@/]*@/, ':***@')}`);
  } else {
    console.error('could not provision PostgreSQL (scripts/ci-postgres.sh); the PostgreSQL store tests will fail. Set TEST_DATABASE_URL to a server you have.');
  }
}

// Python tools (kubernetes-validate) in a project-local venv, from PyPI, as this user.
if (!process.env.VB_PY_TOOLS_BIN) {
  const py = spawnSync('bash', ['scripts/ensure-py-tools.sh'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const bin = py.stdout.trim().split('\n').pop() ?? '';
  if (py.status === 0 && bin) process.env.VB_PY_TOOLS_BIN = bin;
  else console.error('could not set up the Python test tools (scripts/ensure-py-tools.sh needs python3 with venv and PyPI): the manifest validation test will fail');
}

const out = join(mkdtempSync(join(tmpdir(), 'vb-test-')), 'vitest.json');
const v = spawnSync('npx', ['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${out}`, ...args], { stdio: 'inherit' });
try {
  const report = JSON.parse(readFileSync(out, 'utf8'));
  passed += report.numPassedTests;
  failed += report.numFailedTests;
  skipped += report.numPendingTests + report.numTodoTests;
  // A suite that fails to load counts no test but must not pass.
  const brokenSuites = report.testResults.filter((s) => s.status === 'failed' && s.assertionResults.length === 0).length;
  failed += brokenSuites;
} catch (e) {
  console.error(`vitest produced no JSON report (${e.message})`);
  failed++;
}
if (v.status !== 0) ok = false;
if (skipped > 0) {
  console.error(`${skipped} test(s) skipped or todo: not allowed`);
  ok = false;
}
if (passed === 0) ok = false;
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(ok && failed === 0 ? 0 : 1);
