/**
 * The call console's page (the SPA built from console/ into dist/console-ui by
 * `npm run build:console`): static and public — it holds no data; every data route it
 * calls needs the admin token (issue 15). Not dist/console: that is where tsc puts this
 * module and the rest of src/console, and the Vite build empties its output directory.
 *
 *   GET /console, GET /console/   index.html, never cached, under a strict CSP
 *   GET /console/assets/*         the hashed bundles: files directly under dir/assets only,
 *                                 cached for a year (their names change with their content)
 *
 * Without a build (no dir/index.html) the page is a 503 problem BRIDGE_ERR_CONSOLE_NOT_BUILT.
 */
import { readFile, stat } from 'node:fs/promises';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { ErrorCodes, HttpProblem } from '../errors.js';

/**
 * <repo>/dist/console-ui from this module's location: the same two levels up from
 * src/console/ (tsx) and from dist/console/ (built, or an installed package).
 */
export const CONSOLE_BUILD_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'console-ui');

export interface ConsoleStaticOptions {
  /** The built console (CONSOLE_BUILD_DIR): index.html and assets/. */
  dir: string;
}

/** Scripts and styles only from this origin (no inline code), audio from blob: URLs, no framing. */
export const CONSOLE_CSP = "default-src 'self'; media-src 'self' blob:; connect-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'";

const CONTENT_TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.woff2': 'font/woff2',
  '.png': 'image/png',
};

/** A plain asset file name: letters, digits, '-', '_', '.', no leading dot (so no '..', no '/', no '\\'). */
const ASSET_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;

export async function consoleStaticRoutes(app: FastifyInstance, o: ConsoleStaticOptions): Promise<void> {
  const assetsDir = join(o.dir, 'assets');

  const index = async (_req: unknown, reply: FastifyReply) => {
    let html: Buffer;
    try {
      html = await readFile(join(o.dir, 'index.html'));
    } catch {
      throw new HttpProblem(ErrorCodes.CONSOLE_NOT_BUILT, 'the console is not built: run npm run build');
    }
    return reply
      .header('content-type', 'text/html; charset=utf-8')
      .header('cache-control', 'no-store')
      .header('content-security-policy', CONSOLE_CSP)
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .send(html);
  };
  app.get('/console', index);
  app.get('/console/', index);

  app.get<{ Params: { '*': string } }>('/console/assets/*', async (req, reply) => {
    const name = req.params['*'];
    const type = CONTENT_TYPES[extname(name).toLowerCase()];
    if (!ASSET_NAME.test(name) || !type) throw new HttpProblem(ErrorCodes.NOT_FOUND, `no console asset ${JSON.stringify(name.slice(0, 100))}`);
    const path = join(assetsDir, name);
    try {
      if (!(await stat(path)).isFile()) throw new Error('not a file');
    } catch {
      throw new HttpProblem(ErrorCodes.NOT_FOUND, `no console asset ${JSON.stringify(name.slice(0, 100))}`);
    }
    const body = await readFile(path);
    return reply
      .header('content-type', type)
      .header('cache-control', 'public, max-age=31536000, immutable')
      .header('x-content-type-options', 'nosniff')
      .send(body);
  });
}
