#!/usr/bin/env node
// `npm start`'s prestart: compiles TypeScript to dist/ only when a source is newer than
// the last build (a fresh clone, or an edit) — not on every start. build:ts also builds the
// call console; when only console/ changed, only the console is rebuilt.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const stamp = join(root, 'dist', '.build-stamp');
if (!existsSync(join(root, 'src'))) process.exit(0); // an installed package ships dist/ only

function newest(path) {
  const s = statSync(path);
  if (!s.isDirectory()) return s.mtimeMs;
  let m = 0;
  for (const e of readdirSync(path)) m = Math.max(m, newest(join(path, e)));
  return m;
}

const inputs = Math.max(newest(join(root, 'src')), ...['tsconfig.json', 'tsconfig.build.json', 'package.json'].map((f) => statSync(join(root, f)).mtimeMs));
const built = existsSync(stamp) ? statSync(stamp).mtimeMs : 0;
// The call console (console/ → dist/console-ui by Vite): stale when a source of it is newer
// than its built page, or when there is none.
const consoleSrc = join(root, 'console');
const consoleIndex = join(root, 'dist', 'console-ui', 'index.html');
const consoleStale = existsSync(consoleSrc) && (!existsSync(consoleIndex) || newest(consoleSrc) > statSync(consoleIndex).mtimeMs);
if (built >= inputs && existsSync(join(root, 'dist', 'cli.js'))) {
  if (!consoleStale) process.exit(0);
  const r = spawnSync('npm', ['run', '--silent', 'build:console'], { cwd: root, stdio: 'inherit' });
  process.exit(r.status ?? 1);
}
const startedAt = Date.now();
const r = spawnSync('npm', ['run', '--silent', 'build:ts'], { cwd: root, stdio: 'inherit' });
if (r.status !== 0) process.exit(r.status ?? 1);
writeFileSync(stamp, `${new Date(startedAt).toISOString()}\n`);
