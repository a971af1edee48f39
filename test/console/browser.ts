/**
 * The browser harness of the call-console tests: a headless Chromium driven by
 * playwright-core (no browser download: Debian's chromium, installed by
 * scripts/ensure-test-deps.sh; VB_CHROMIUM names another build), and screenshots
 * under test/artifacts/console/ (git-ignored) for a look at what the test saw.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

export const REPO_ROOT = join(import.meta.dirname, '..', '..');
export const CONSOLE_BUILD_DIR = join(REPO_ROOT, 'dist', 'console-ui');
export const ARTIFACTS_DIR = join(REPO_ROOT, 'test', 'artifacts', 'console');

export function chromiumPath(): string {
  return process.env.VB_CHROMIUM || '/usr/bin/chromium';
}

export async function launchChromium(): Promise<Browser> {
  const executablePath = chromiumPath();
  if (!existsSync(executablePath)) throw new Error(`no Chromium at ${executablePath}: apt-get install chromium (scripts/ensure-test-deps.sh), or set VB_CHROMIUM`);
  return chromium.launch({ executablePath, headless: true, args: ['--no-sandbox', '--autoplay-policy=no-user-gesture-required'] });
}

/** A full-page screenshot to test/artifacts/console/<name>.png; returns its path. */
export async function shot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS_DIR, { recursive: true });
  const path = join(ARTIFACTS_DIR, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

function newest(path: string): number {
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let m = st.mtimeMs;
  for (const e of readdirSync(path)) m = Math.max(m, newest(join(path, e)));
  return m;
}

function consoleBuildIsFresh(): boolean {
  const index = join(CONSOLE_BUILD_DIR, 'index.html');
  return existsSync(index) && statSync(index).mtimeMs >= newest(join(REPO_ROOT, 'console'));
}

/**
 * Builds the console (npx vite build) when dist/console-ui/index.html is missing or older
 * than a source in console/. Test files run in parallel: one builds (a lock directory),
 * the others wait for it.
 */
export async function ensureConsoleBuilt(timeoutMs = 180_000): Promise<void> {
  const lock = join(REPO_ROOT, 'dist', '.console-build.lock');
  const end = Date.now() + timeoutMs;
  mkdirSync(join(REPO_ROOT, 'dist'), { recursive: true });
  for (;;) {
    if (consoleBuildIsFresh()) return;
    try {
      mkdirSync(lock);
      break;
    } catch {
      // Another test file is building; a lock older than the timeout is a leftover.
      if (existsSync(lock) && Date.now() - statSync(lock).mtimeMs > timeoutMs) rmSync(lock, { recursive: true, force: true });
      if (Date.now() > end) throw new Error('timed out waiting for another console build');
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  try {
    if (consoleBuildIsFresh()) return;
    await new Promise<void>((resolve, reject) => {
      const p = spawn('npx', ['vite', 'build', '--config', 'console/vite.config.ts'], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      p.stdout.on('data', (d) => (out += d));
      p.stderr.on('data', (d) => (out += d));
      p.on('error', reject);
      p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`vite build failed (${code}):\n${out}`))));
    });
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}
