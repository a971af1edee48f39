/** GET /console and its assets (src/console/static-routes.ts), on a bare fastify with the bridge's problem handler. */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { CONSOLE_CSP, consoleStaticRoutes } from '../../src/console/static-routes.js';
import { useProblemDetails } from '../../src/server/problem.js';

const apps: { close(): Promise<unknown> }[] = [];
afterEach(async () => {
  for (const a of apps.splice(0)) await a.close();
});

async function appFor(dir: string) {
  const app = Fastify();
  useProblemDetails(app);
  await app.register(consoleStaticRoutes, { dir });
  apps.push(app);
  return app;
}

function builtDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'vb-console-'));
  mkdirSync(join(dir, 'assets'));
  writeFileSync(join(dir, 'index.html'), '<!doctype html><title>console</title>');
  writeFileSync(join(dir, 'assets', 'index-abc123.js'), 'console.log(1)');
  writeFileSync(join(dir, 'assets', 'index-abc123.css'), 'body{}');
  writeFileSync(join(dir, 'secret.txt'), 'not an asset');
  writeFileSync(join(dir, 'assets', 'notes.txt'), 'not a served type');
  return dir;
}

describe('console static routes', () => {
  it('serves index.html at /console and /console/ with no-store and the strict CSP', async () => {
    const app = await appFor(builtDir());
    for (const url of ['/console', '/console/']) {
      const r = await app.inject({ url });
      expect(r.statusCode).toBe(200);
      expect(r.headers['content-type']).toMatch(/^text\/html/);
      expect(r.headers['cache-control']).toBe('no-store');
      expect(r.headers['content-security-policy']).toBe(CONSOLE_CSP);
      expect(CONSOLE_CSP).toContain("default-src 'self'");
      expect(CONSOLE_CSP).toContain("frame-ancestors 'none'");
      expect(r.body).toContain('<title>console</title>');
    }
  });

  it('serves assets with their type, cached immutable', async () => {
    const app = await appFor(builtDir());
    const js = await app.inject({ url: '/console/assets/index-abc123.js' });
    expect(js.statusCode).toBe(200);
    expect(js.headers['content-type']).toMatch(/^text\/javascript/);
    expect(js.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(js.body).toBe('console.log(1)');
    const css = await app.inject({ url: '/console/assets/index-abc123.css' });
    expect(css.headers['content-type']).toMatch(/^text\/css/);
  });

  it('refuses anything outside assets/ (traversal, encoded or not), unknown types and missing files with a 404 problem', async () => {
    const app = await appFor(builtDir());
    for (const url of [
      '/console/assets/../secret.txt',
      '/console/assets/..%2fsecret.txt',
      '/console/assets/%2e%2e/secret.txt',
      '/console/assets/..%5csecret.txt',
      '/console/assets/%2e%2e%2f%2e%2e%2fpackage.json',
      '/console/assets/notes.txt',
      '/console/assets/missing.js',
      '/console/assets/.hidden.js',
      '/console/assets/',
      '/console/assets/sub/index-abc123.js',
    ]) {
      const r = await app.inject({ url });
      expect(r.statusCode, url).toBe(404);
      expect(r.body, url).not.toContain('not an asset');
      expect(r.headers['content-type'], url).toMatch(/^application\/problem\+json/);
    }
  });

  it('is a 503 BRIDGE_ERR_CONSOLE_NOT_BUILT without a build', async () => {
    const app = await appFor(mkdtempSync(join(tmpdir(), 'vb-console-empty-')));
    const r = await app.inject({ url: '/console' });
    expect(r.statusCode).toBe(503);
    expect(r.json()).toMatchObject({ status: 503, code: 'BRIDGE_ERR_CONSOLE_NOT_BUILT', detail: 'the console is not built: run npm run build' });
  });
});
