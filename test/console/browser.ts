/**
 * The browser harness of the call-console tests: a headless Chromium driven by
 * playwright-core (no browser download: Debian's chromium, installed by
 * scripts/ensure-test-deps.sh; VB_CHROMIUM names another build), and screenshots
 * under test/artifacts/console/ (git-ignored) for a look at what the test saw.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
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
  return chromium.launch({ executablePath, headless: true, args: ['--no-sandbox'] });
}

/** A full-page screenshot to test/artifacts/console/<name>.png; returns its path. */
export async function shot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS_DIR, { recursive: true });
  const path = join(ARTIFACTS_DIR, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** Builds the console (npx vite build) when dist/console-ui/index.html is missing. */
export async function ensureConsoleBuilt(): Promise<void> {
  if (existsSync(join(CONSOLE_BUILD_DIR, 'index.html'))) return;
  await new Promise<void>((resolve, reject) => {
    const p = spawn('npx', ['vite', 'build', '--config', 'console/vite.config.ts'], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`vite build failed (${code}):\n${out}`))));
  });
}
