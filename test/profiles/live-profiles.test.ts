/**
 * LiveProfiles (src/profiles/live-profiles.ts) on its own: what a reload keeps and
 * reports, and a profile's options as agent parameters (src/profiles/profile-options.ts).
 */
import { rmSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { LiveProfiles } from '../../src/profiles/live-profiles.js';
import { profileAgentParameters } from '../../src/profiles/profile-options.js';
import { ProfilesError } from '../../src/profiles/profiles-error.js';
import { profilesFile } from './profiles-helpers.js';

const named = (name: string) => `profiles:\n  - name: ${name}\n    match: { to: "*" }\n    agent: echo\n`;

describe('profile options as agent parameters', () => {
  it('text as it is, numbers and booleans as text, lists and mappings as JSON; nothing dropped, whatever its length', () => {
    const long = 'x'.repeat(20_000);
    expect(profileAgentParameters({ options: { voice: 'marin', temperature: 0.7, n: 3, vad: false, instructions: long, list: [1, 'two'], map: { a: { b: null } }, nothing: null } })).toEqual({
      voice: 'marin',
      temperature: '0.7',
      n: '3',
      vad: 'false',
      instructions: long,
      list: '[1,"two"]',
      map: '{"a":{"b":null}}',
      nothing: 'null',
    });
    expect(profileAgentParameters({})).toEqual({});
  });
});

describe('LiveProfiles', () => {
  it('a bad file at load throws every problem; a good one is in force', () => {
    expect(() => LiveProfiles.load(profilesFile('profiles:\n  - name: a\n'))).toThrow(ProfilesError);
    const live = LiveProfiles.load(profilesFile(named('a')));
    expect(live.current.map((p) => p.name)).toEqual(['a']);
    expect(live.select({ to: '+15550001111' })?.name).toBe('a');
    expect(live.byName('b')).toBeUndefined();
  });

  it('a change check reloads only a changed text; a file gone is reported once and keeps the profiles; its return loads it; SIGHUP always reads', () => {
    const file = profilesFile(named('a'));
    const live = LiveProfiles.load(file);
    const seen: unknown[] = [];
    live.on('reload', (r) => seen.push(r));
    expect(live.reload('change', true)).toBeUndefined(); // same text
    rmSync(file);
    expect(live.reload('change', true)).toMatchObject({ result: 'error', problems: ['cannot be read: ENOENT'], kept: ['a'] });
    expect(live.reload('change', true)).toBeUndefined(); // still gone: said once
    expect(live.current.map((p) => p.name)).toEqual(['a']);
    writeFileSync(file, named('b'));
    expect(live.reload('change', true)).toMatchObject({ result: 'ok', trigger: 'change', names: ['b'] });
    expect(live.reload('signal')).toMatchObject({ result: 'ok', trigger: 'signal', names: ['b'] }); // unchanged, read all the same
    expect(seen).toHaveLength(3);
    live.close();
  });

  it('a reload replaces the list, never edits it: a call holding the old profile keeps it', () => {
    const file = profilesFile(named('a'));
    const live = LiveProfiles.load(file);
    const held = live.byName('a')!;
    writeFileSync(file, `profiles:\n  - name: a\n    match: { to: "*" }\n    agent: openai\n`);
    live.reload('signal');
    expect(live.byName('a')!.agent).toBe('openai');
    expect(held.agent).toBe('echo');
    expect(Object.isFrozen(held)).toBe(true);
  });
});
