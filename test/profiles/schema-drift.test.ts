/**
 * docs/profiles.schema.json is generated from src/profiles/schema.ts
 * (`npx tsx scripts/gen-profiles-schema.ts`): this fails when one changed without the other.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderProfilesJsonSchema } from '../../src/profiles/schema.js';

const published = join(import.meta.dirname, '..', '..', 'docs', 'profiles.schema.json');

describe('the published JSON Schema of the profiles file', () => {
  it('is the rendered one (run `npx tsx scripts/gen-profiles-schema.ts` after changing src/profiles/schema.ts)', () => {
    expect(readFileSync(published, 'utf8')).toBe(renderProfilesJsonSchema());
  });

  it('is plain JSON Schema: draft-07, unknown keys refused at every level of ours', () => {
    const schema = JSON.parse(readFileSync(published, 'utf8')) as Record<string, any>;
    expect(schema.$schema).toBe('http://json-schema.org/draft-07/schema#');
    expect(schema.additionalProperties).toBe(false);
    const profile = schema.properties.profiles.items;
    expect(profile.additionalProperties).toBe(false);
    expect(profile.properties.match.additionalProperties).toBe(false);
    expect(profile.properties.events.additionalProperties).toBe(false);
    for (const tool of profile.properties.tools.items.anyOf) expect(tool.additionalProperties).toBe(false);
  });
});
