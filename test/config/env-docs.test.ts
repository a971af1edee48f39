/**
 * The README's environment table, the variable tables of docs/operations/*.md and
 * .env.example are generated from the schema (src/env-schema.ts → src/env-docs.ts,
 * written by `npm run docs:env`): this fails when one was edited by hand or the schema
 * changed without regenerating them.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DOCS_WITH_ENV_TABLES, README_BEGIN, README_END, renderEnvExample, renderEnvTable, varsTableCount, withVarsTables } from '../../src/env-docs.js';
import { ENV_NAMES, envVar } from '../../src/env-schema.js';

const root = join(import.meta.dirname, '..', '..');
const read = (f: string) => readFileSync(join(root, f), 'utf8');

describe('environment docs generated from the schema', () => {
  it("README.md's table is the rendered one (run `npm run docs:env` after changing src/env-schema.ts)", () => {
    const readme = read('README.md');
    const section = readme.slice(readme.indexOf(README_BEGIN), readme.indexOf(README_END) + README_END.length);
    expect(section).toBe(renderEnvTable());
  });

  it.each(DOCS_WITH_ENV_TABLES)('%s: its variable tables are the rendered ones', (doc) => {
    const text = read(doc);
    expect(varsTableCount(text)).toBeGreaterThan(0);
    expect(text).toBe(withVarsTables(text));
  });

  it('.env.example is the rendered one', () => {
    expect(read('.env.example')).toBe(renderEnvExample());
  });

  it('documents every variable: each has a row in the README, and each a user sets a line in .env.example', () => {
    const table = renderEnvTable();
    const example = renderEnvExample();
    for (const name of ENV_NAMES) {
      expect(envVar(name).description.length, name).toBeGreaterThan(5);
      expect(table).toContain(`| \`${name}\` |`);
      if (!envVar(name).internal) expect(example).toMatch(new RegExp(`^# ${name}=`, 'm'));
    }
  });

  it('.env.example gives no secret a value, and is inert as it is (every line a comment)', () => {
    const example = renderEnvExample();
    for (const name of ENV_NAMES.filter((n) => envVar(n).secret)) expect(example).toMatch(new RegExp(`^# ${name}=$`, 'm'));
    expect(example.split('\n').filter((l) => l !== '' && !l.startsWith('#'))).toEqual([]);
  });
});
