/**
 * docs/profiles.md shows the file a user copies: its example must load, and be the
 * issue's example the other tests use (test/profiles/fixtures/issue-example.yaml).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadProfilesFile, parseProfiles } from '../../src/profiles/load.js';

const root = join(import.meta.dirname, '..', '..');

describe('docs/profiles.md', () => {
  it('its example loads, and equals the fixture', () => {
    const doc = readFileSync(join(root, 'docs', 'profiles.md'), 'utf8');
    const example = /```yaml\n(profiles:[\s\S]*?)```/.exec(doc)?.[1];
    expect(example).toBeDefined();
    const env = { ACME_WEBHOOK_SECRET: 'whsec-test' };
    expect(parseProfiles(example!, { format: 'yaml', env })).toEqual(loadProfilesFile(join(import.meta.dirname, 'fixtures', 'issue-example.yaml'), env));
  });
});
