/**
 * `npm run docs:env`: writes the README's environment table, the variable tables of
 * docs/operations/*.md and `.env.example` from the schema (src/env-schema.ts, rendered
 * by src/env-docs.ts). `--check` writes nothing and exits 1 when a file differs
 * (test/config/env-docs.test.ts checks the same).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DOCS_WITH_ENV_TABLES, renderEnvExample, withEnvTable, withVarsTables } from '../src/env-docs.js';

const root = join(import.meta.dirname, '..');
const check = process.argv.includes('--check');
const files: [string, (old: string) => string][] = [
  [join(root, 'README.md'), withEnvTable],
  ...DOCS_WITH_ENV_TABLES.map((f): [string, (old: string) => string] => [join(root, f), withVarsTables]),
  [join(root, '.env.example'), () => renderEnvExample()],
];
let stale = 0;
for (const [path, render] of files) {
  let old = '';
  try {
    old = readFileSync(path, 'utf8');
  } catch {
    // .env.example may not exist yet.
  }
  const next = render(old);
  if (next === old) continue;
  stale++;
  if (check) console.error(`${path} is out of date: run npm run docs:env`);
  else {
    writeFileSync(path, next);
    console.log(`wrote ${path}`);
  }
}
process.exit(check && stale > 0 ? 1 : 0);
