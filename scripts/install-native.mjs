#!/usr/bin/env node
// `npm install` hook: builds the Rust DSP addon when cargo is available.
// Without cargo (or if the build fails) install still succeeds and the pure-TS
// fallback is used; the reason is printed here and recorded by loadDsp() at run time.
import { spawnSync } from 'node:child_process';

const hasCargo = spawnSync('cargo', ['--version'], { stdio: 'ignore' }).status === 0;
if (process.env.BRIDGE_SKIP_NATIVE_BUILD === '1') {
  console.log('[voice-bridge] BRIDGE_SKIP_NATIVE_BUILD=1: not building the native DSP addon; the TS fallback will be used.');
  process.exit(0);
}
if (!hasCargo) {
  console.log('[voice-bridge] cargo not found: skipping the native DSP addon; the pure-TS DSP fallback will be used.');
  process.exit(0);
}
const r = spawnSync('npm', ['run', 'build:native'], { stdio: 'inherit' });
if (r.status !== 0) {
  console.log('[voice-bridge] the native DSP addon failed to build; the pure-TS DSP fallback will be used (BRIDGE_DSP=native will refuse to start).');
}
process.exit(0);
