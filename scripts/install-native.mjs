#!/usr/bin/env node
// `npm install` hook: makes the Rust DSP addon available when it can, and never fails
// the install — without it the pure-TS DSP fallback is used, and the reason is said
// here and recorded by loadDsp() at run time (GET /readyz, the start-up line).
//
// - A git checkout (development): builds the addon with napi-rs's CLI when cargo is
//   there (`npm run build:native`), as every change to native/ needs a rebuild.
// - An installed package: uses the prebuilt addon shipped in the package when it loads
//   on this platform (linux-x64-gnu); otherwise builds it from the shipped sources with
//   plain `cargo build` when cargo is there; otherwise the TS fallback.
// BRIDGE_SKIP_NATIVE_BUILD=1 skips all of it.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const addonDir = join(root, 'native', 'dsp-node');
const loader = join(addonDir, 'index.cjs');
const say = (m) => console.log(`[voice-bridge] ${m}`);

if (process.env.BRIDGE_SKIP_NATIVE_BUILD === '1') {
  say('BRIDGE_SKIP_NATIVE_BUILD=1: not building the native DSP addon; the TS fallback will be used.');
  process.exit(0);
}

/** Why the addon does not load here, or undefined when it does. */
function loadProblem() {
  if (!existsSync(loader)) return 'no addon loader';
  try {
    const addon = createRequire(import.meta.url)(loader);
    return typeof addon.simdLevel === 'function' ? undefined : 'the addon lacks its functions';
  } catch (e) {
    return String(e?.message ?? e).split('\n')[0];
  }
}

const hasCargo = spawnSync('cargo', ['--version'], { stdio: 'ignore' }).status === 0;
const isCheckout = existsSync(join(root, '.git'));

if (isCheckout) {
  if (!hasCargo) {
    say('cargo not found: skipping the native DSP addon; the pure-TS DSP fallback will be used.');
    process.exit(0);
  }
  const r = spawnSync('npm', ['run', 'build:native'], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) say('the native DSP addon failed to build; the pure-TS DSP fallback will be used (BRIDGE_DSP=native will refuse to start).');
  process.exit(0);
}

const before = loadProblem();
if (before === undefined) {
  say(`native DSP addon: the prebuilt ${process.platform}-${process.arch} build loads.`);
  process.exit(0);
}
if (!hasCargo) {
  say(`no prebuilt native DSP addon for ${process.platform}-${process.arch} (${before}) and cargo not found: the pure-TS DSP fallback will be used. Install Rust and reinstall for the native core.`);
  process.exit(0);
}

// Build from the shipped sources. The file name is the one napi-rs's loader (index.cjs) looks for.
const triple = {
  'linux-x64': 'linux-x64-gnu',
  'linux-arm64': 'linux-arm64-gnu',
  'darwin-x64': 'darwin-x64',
  'darwin-arm64': 'darwin-arm64',
  'win32-x64': 'win32-x64-msvc',
}[`${process.platform}-${process.arch}`];
const lib = { linux: 'libdsp_node.so', darwin: 'libdsp_node.dylib', win32: 'dsp_node.dll' }[process.platform];
if (!triple || !lib || !existsSync(join(root, 'native', 'Cargo.toml'))) {
  say(`no native DSP build for ${process.platform}-${process.arch} (${before}): the pure-TS DSP fallback will be used.`);
  process.exit(0);
}
say(`no prebuilt native DSP addon for ${process.platform}-${process.arch} (${before}): building it with cargo…`);
const target = join(root, 'native', 'target');
const r = spawnSync('cargo', ['build', '--release', '--manifest-path', join(root, 'native', 'Cargo.toml'), '-p', 'dsp-node', '--target-dir', target], { stdio: 'inherit' });
if (r.status === 0 && existsSync(join(target, 'release', lib))) {
  copyFileSync(join(target, 'release', lib), join(addonDir, `voice-bridge-dsp.${triple}.node`));
  const after = loadProblem();
  say(after === undefined ? 'native DSP addon built.' : `the native DSP addon was built but does not load (${after}); the pure-TS DSP fallback will be used.`);
} else {
  say('the native DSP addon failed to build; the pure-TS DSP fallback will be used (BRIDGE_DSP=native will refuse to start).');
}
process.exit(0);
