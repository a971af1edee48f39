/**
 * The call console in a real browser (headless Chromium via playwright-core) against a
 * real bridge in this process: the login form, a wrong and a right token, the live view,
 * the token kept out of every URL, no number-like string in the page or its bundles, and
 * a call page for an unknown call degrading to a message. Screenshots go to
 * test/artifacts/console/. Needs Chromium (scripts/ensure-test-deps.sh installs it).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startBridge, type RunningBridge } from '../../src/main.js';
import { ensureConsoleBuilt, launchChromium, shot } from './browser.js';

const TOKEN = 'console-test-token-Zq9xK4';
const TOKEN_KEY = 'voice-bridge.console.token';
/** E.164, NANP with separators or parentheses, or a long bare digit run. */
const PHONE_LIKE = [/\+\d[\d\s().-]{6,}\d/, /\b\d{3}[-.\s]\d{3}[-.\s]\d{4}\b/, /\(\d{3}\)\s*\d{3}-\d{4}/, /\b\d{10,15}\b/];

let bridge: RunningBridge;
let browser: Browser;

beforeAll(async () => {
  await ensureConsoleBuilt();
  const dataDir = mkdtempSync(join(tmpdir(), 'vb-data-'));
  bridge = await startBridge(
    { BRIDGE_LOG_LEVEL: 'silent', BRIDGE_DSP: process.env.BRIDGE_DSP ?? 'auto', BRIDGE_DSP_POOL: '0', BRIDGE_DATA_DIR: dataDir, BRIDGE_LOAD_THRESHOLD: 'off', BRIDGE_ADMIN_TOKEN: TOKEN, PORT: '0', HOST: '127.0.0.1' },
    { port: 0, host: '127.0.0.1' },
  );
  browser = await launchChromium();
}, 240_000);

afterAll(async () => {
  await browser?.close();
  await bridge?.close();
});

interface Session {
  context: BrowserContext;
  page: Page;
  requests: string[];
  problems: string[];
}
const sessions: Session[] = [];
afterEach(async () => {
  for (const s of sessions.splice(0)) await s.context.close();
});

async function open(viewport = { width: 1366, height: 900 }): Promise<Session> {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  const requests: string[] = [];
  const problems: string[] = [];
  page.on('request', (r) => requests.push(r.url()));
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy|Refused to/i.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  const s = { context, page, requests, problems };
  sessions.push(s);
  return s;
}

/** The token the page keeps (a string expression: this file is type-checked without the DOM lib). */
const storedToken = (page: Page) => page.evaluate<string | null>(`sessionStorage.getItem(${JSON.stringify(TOKEN_KEY)})`);

async function signIn(page: Page, token: string): Promise<void> {
  await page.getByLabel('Admin token').fill(token);
  await page.getByTestId('login-submit').click();
}

function expectTokenNowhere(s: Session): void {
  expect(s.page.url()).not.toContain(TOKEN);
  expect(s.requests.length).toBeGreaterThan(0);
  for (const url of s.requests) {
    expect(url).not.toContain(TOKEN);
    expect(decodeURIComponent(url)).not.toContain(TOKEN);
  }
}

describe('call console in Chromium', () => {
  it('shows the login form, refuses a wrong token, and signs in to the live view with the right one', async () => {
    const s = await open();
    const { page } = s;
    await page.goto(`${bridge.url}/console`);
    const field = page.getByLabel('Admin token');
    await field.waitFor();
    expect(await field.getAttribute('type')).toBe('password');
    expect(await page.getByTestId('login-token').count()).toBe(1);
    await shot(page, 'login');

    await signIn(page, `${TOKEN}-wrong`);
    const error = page.getByTestId('login-error');
    await error.filter({ hasText: 'Wrong token' }).waitFor();
    expect(await storedToken(page)).toBeNull();
    await shot(page, 'login-wrong-token');

    // By keyboard alone: the field takes focus, Enter submits.
    await field.focus();
    await page.keyboard.press('ControlOrMeta+a');
    await page.keyboard.type(TOKEN);
    await page.keyboard.press('Enter');
    await page.getByTestId('live-empty').filter({ hasText: 'No live calls' }).waitFor();
    expect(new URL(page.url()).hash).toBe('#/live');
    // The navigation is reachable with Tab and follows Enter.
    const history = page.getByRole('link', { name: 'History' });
    for (let i = 0; i < 10 && !(await history.evaluate((el) => el === (el.ownerDocument as unknown as { activeElement: unknown }).activeElement)); i++) await page.keyboard.press('Tab');
    await page.keyboard.press('Enter');
    await page.getByTestId('history-search').waitFor();
    await page.getByRole('link', { name: 'Live' }).click();
    await page.getByTestId('live-empty').waitFor();
    expect(await storedToken(page)).toBe(TOKEN);
    await page.getByTestId('logout').waitFor();
    await shot(page, 'live-1366');

    // A reload keeps the session (sessionStorage), still on the live view.
    await page.reload();
    await page.getByTestId('live-empty').filter({ hasText: 'No live calls' }).waitFor();

    // History and an unknown call: pages that answer with a message, never a blank page.
    await page.getByRole('link', { name: 'History' }).click();
    await page.getByTestId('history-search').waitFor();
    await page.getByTestId('history-q').fill('5550100');
    await page.getByTestId('history-search').click();
    await page.getByTestId('history-status').filter({ hasText: /No calls match|call/ }).waitFor();
    expect(page.url()).not.toContain('5550100');
    await shot(page, 'history');

    await page.goto(`${bridge.url}/console/#/calls/CA00000000000000000000000000000000`);
    await page.getByTestId('call-error').filter({ hasText: /No call CA0+/ }).waitFor();
    await shot(page, 'call-unknown');

    expectTokenNowhere(s);
    // The search goes to the API in a POST body: the fragment is in no URL, the page's or a request's.
    expect(s.requests.some((u) => new URL(u).pathname === '/console/api/history')).toBe(true);
    for (const u of s.requests) expect(u).not.toContain('5550100');
    expect(page.url()).not.toContain('5550100');
    expect(s.problems).toEqual([]);

    // Sign out: back to the form, the token gone from the tab.
    await page.getByTestId('logout').click();
    await page.getByLabel('Admin token').waitFor();
    expect(await storedToken(page)).toBeNull();
  });

  it('works at 375 px wide (login and live view)', async () => {
    const s = await open({ width: 375, height: 740 });
    const { page } = s;
    await page.goto(`${bridge.url}/console/`);
    await page.getByLabel('Admin token').waitFor();
    await shot(page, 'login-375');
    await signIn(page, TOKEN);
    await page.getByTestId('live-empty').filter({ hasText: 'No live calls' }).waitFor();
    // Nothing wider than the screen.
    expect(await page.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(375);
    await shot(page, 'live-375');
    expectTokenNowhere(s);
    expect(s.problems).toEqual([]);
  });

  it('says so when the bridge has no BRIDGE_ADMIN_TOKEN', async () => {
    const bare = await startBridge(
      { BRIDGE_LOG_LEVEL: 'silent', BRIDGE_DSP: process.env.BRIDGE_DSP ?? 'auto', BRIDGE_DSP_POOL: '0', BRIDGE_DATA_DIR: mkdtempSync(join(tmpdir(), 'vb-data-')), BRIDGE_LOAD_THRESHOLD: 'off', BRIDGE_ADMIN_TOKEN: '' },
      { port: 0, host: '127.0.0.1' },
    );
    try {
      const { page } = await open();
      await page.goto(`${bare.url}/console`);
      await signIn(page, 'anything');
      await page.getByTestId('login-error').filter({ hasText: 'no BRIDGE_ADMIN_TOKEN set' }).waitFor();
      expect(await storedToken(page)).toBeNull();
      await shot(page, 'login-admin-disabled');
    } finally {
      await bare.close();
    }
  });

  it('serves the page with its CSP and no number-like string in the HTML or any asset', async () => {
    const res = await fetch(`${bridge.url}/console`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect(res.headers.get('cache-control')).toBe('no-store');
    const html = await res.text();
    const assets = [...html.matchAll(/(?:src|href)="(\/console\/assets\/[^"]+)"/g)].map((m) => m[1]!);
    expect(assets.some((a) => a.endsWith('.js'))).toBe(true);
    expect(assets.some((a) => a.endsWith('.css'))).toBe(true);
    for (const [name, text] of [['index.html', html] as const, ...(await Promise.all(assets.map(async (a) => [a, await (await fetch(`${bridge.url}${a}`)).text()] as const)))]) {
      for (const re of PHONE_LIKE) expect(text.match(re)?.[0], `${name} ${re}`).toBeUndefined();
    }
  });
});
