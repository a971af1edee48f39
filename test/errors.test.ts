/**
 * The one error-code table (src/errors.ts): every code unique, every code the
 * sources emit declared in it, no module spelling a code instead of importing it,
 * and docs/errors.md generated from it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BridgeError, ERROR_TABLE, ErrorCodes, errorSpec, HttpProblem, problemDetails, type ErrorSpec } from '../src/errors.js';
import { ERROR_DOCS_PATH, renderErrorDocs } from '../scripts/error-docs.js';

const ROOT = join(import.meta.dirname, '..');
const rows = Object.entries(ERROR_TABLE) as [string, ErrorSpec][];

function files(dir: string, exts: string[]): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && exts.some((x) => e.name.endsWith(x)) && !e.name.endsWith('.d.ts'))
    .map((e) => join(e.parentPath, e.name))
    .filter((p) => !p.includes(`${join('native', 'target')}`) && !p.includes('node_modules'));
}
const sources = [...files(join(ROOT, 'src'), ['.ts']), ...files(join(ROOT, 'native'), ['.rs'])].filter((p) => p !== join(ROOT, 'src', 'errors.ts'));

describe('the error-code table', () => {
  it('every code is unique, named after its key, with a status that is an HTTP error status', () => {
    const codes = rows.map(([, s]) => s.code);
    expect(new Set(codes).size).toBe(codes.length);
    for (const [key, s] of rows) {
      expect(s.code).toBe(`BRIDGE_ERR_${key}`);
      expect(s.code).toMatch(/^BRIDGE_ERR_[A-Z0-9_]{1,48}$/); // what metric labels accept (src/metrics/labels.ts)
      if (s.status !== undefined) expect([s.code, s.status >= 400 && s.status <= 599]).toEqual([s.code, true]);
      expect(s.meaning.length, s.code).toBeGreaterThan(10);
      expect(s.meaning, s.code).not.toMatch(/\n/);
      expect(s.fix.length, s.code).toBeGreaterThan(0);
    }
    expect(Object.values(ErrorCodes)).toEqual(codes);
  });

  it('every BRIDGE_ERR_* code in src/ and native/ is in the table', () => {
    const unknown: string[] = [];
    for (const path of sources) {
      const text = readFileSync(path, 'utf8');
      // Whole codes only: `BRIDGE_ERR_DSP_*` names a family, `BRIDGE_ERR_X` a placeholder.
      for (const m of text.matchAll(/BRIDGE_ERR_[A-Z0-9_]*[A-Z0-9](?![A-Z0-9_*…])/g)) {
        if (m[0] !== 'BRIDGE_ERR_X' && !errorSpec(m[0])) unknown.push(`${relative(ROOT, path)}: ${m[0]}`);
      }
    }
    expect(unknown).toEqual([]);
    expect(sources.length).toBeGreaterThan(50);
  });

  it('no module outside src/errors.ts spells a code as a string literal: they import ErrorCodes', () => {
    const literals: string[] = [];
    for (const path of sources.filter((p) => p.endsWith('.ts'))) {
      readFileSync(path, 'utf8')
        .split('\n')
        .forEach((line, i) => {
          if (/^\s*(\*|\/\/)/.test(line)) return; // comments may name codes
          // A quoted code on its own (a code named inside a longer doc string is prose).
          if (/(['"])BRIDGE_ERR_[A-Z0-9_]+\1/.test(line)) literals.push(`${relative(ROOT, path)}:${i + 1}`);
        });
    }
    expect(literals).toEqual([]);
  });

  it('docs/errors.md is generated from the table (npx tsx scripts/error-docs.ts --write)', () => {
    expect(readFileSync(ERROR_DOCS_PATH, 'utf8')).toBe(renderErrorDocs());
    for (const [, s] of rows) expect(renderErrorDocs()).toContain(`| \`${s.code}\` | ${s.status ?? '—'} |`);
  });

  it('errors take their category and HTTP status from the table', () => {
    expect(new BridgeError(ErrorCodes.AGENT_RATE_LIMIT, 'x')).toMatchObject({ category: 'unavailable', retryable: true });
    expect(new BridgeError(ErrorCodes.AGENT_AUTH, 'x')).toMatchObject({ category: 'invalid-input', retryable: false });
    expect(new HttpProblem(ErrorCodes.PENDING_STREAMS, 'x').statusCode).toBe(429);
    expect(new HttpProblem(ErrorCodes.STORE_CONFIG, 'x', { status: 503 }).statusCode).toBe(503);
    expect(problemDetails(ErrorCodes.CALL_NOT_FOUND, 'no call CA1', { extensions: { code: 'overridden?', extra: 1 } })).toEqual({
      type: 'tag:voice-bridge,2026:error:BRIDGE_ERR_CALL_NOT_FOUND',
      title: ERROR_TABLE.CALL_NOT_FOUND.meaning,
      status: 404,
      detail: 'no call CA1',
      code: 'BRIDGE_ERR_CALL_NOT_FOUND',
      extra: 1,
    });
  });
});
