/**
 * `npm run docs:profiles-schema` (`npx tsx scripts/gen-profiles-schema.ts`): writes docs/profiles.schema.json, the JSON
 * Schema of the profiles file, from its one declaration (src/profiles/schema.ts).
 * `--check` writes nothing and exits 1 when the file differs
 * (test/profiles/schema-drift.test.ts checks the same).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderProfilesJsonSchema } from '../src/profiles/schema.js';

const path = join(import.meta.dirname, '..', 'docs', 'profiles.schema.json');
let old = '';
try {
  old = readFileSync(path, 'utf8');
} catch {
  // Not written yet.
}
const next = renderProfilesJsonSchema();
if (next === old) process.exit(0);
if (process.argv.includes('--check')) {
  console.error(`${path} is out of date: run npx tsx scripts/gen-profiles-schema.ts`);
  process.exit(1);
}
writeFileSync(path, next);
console.log(`wrote ${path}`);
