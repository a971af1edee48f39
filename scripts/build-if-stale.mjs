#!/usr/bin/env node
// `npm start`'s prestart: compiles TypeScript to dist/ only when a source is newer than
// the last build (a fresh clone, or an edit) — not on every start.
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
if (built >= inputs && existsSync(join(root, 'dist', 'cli.js'))) process.exit(0);
const startedAt = Date.now();
const r = spawnSync('npm', ['run', '--silent', 'build:ts'], { cwd: root, stdio: 'inherit' });
if (r.status !== 0) process.exit(r.status ?? 1);
writeFileSync(stamp, `${new Date(startedAt).toISOString()}\n`);
