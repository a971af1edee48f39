/**
 * selectProfile (src/profiles/select-profile.ts): `?profile=` by name first, then the
 * called number exactly, then the default profile, else none.
 */
import { describe, expect, it } from 'vitest';
import { parseProfiles } from '../../src/profiles/load.js';
import { selectProfile } from '../../src/profiles/select-profile.js';

const profiles = parseProfiles(
  JSON.stringify({
    profiles: [
      { name: 'support', match: { to: ['+15550001111', '+15550001112'] }, agent: 'openai' },
      { name: 'sales', match: { to: ['+15550003333'] }, agent: 'gemini' },
      { name: 'fallback', match: { to: '*' }, agent: 'echo' },
    ],
  }),
  { format: 'json', env: {} },
);
const withoutDefault = profiles.filter((p) => p.name !== 'fallback');
const name = (p: { name: string } | undefined) => p?.name;

describe('selectProfile', () => {
  it('picks the profile whose match.to lists the called number exactly', () => {
    expect(name(selectProfile(profiles, { to: '+15550001112' }))).toBe('support');
    expect(name(selectProfile(profiles, { to: '+15550003333' }))).toBe('sales');
  });

  it('?profile=NAME wins over the called number', () => {
    expect(name(selectProfile(profiles, { to: '+15550001111', profileName: 'sales' }))).toBe('sales');
  });

  it('an unknown ?profile= name selects nothing (never quietly another profile: the webhook refuses it)', () => {
    expect(selectProfile(profiles, { to: '+15550001111', profileName: 'nope' })).toBeUndefined();
  });

  it('a number no profile lists, or no number at all, goes to the default profile', () => {
    expect(name(selectProfile(profiles, { to: '+15559999999' }))).toBe('fallback');
    expect(name(selectProfile(profiles, {}))).toBe('fallback');
    expect(name(selectProfile(profiles, { to: 'sip:someone@pbx.example.com' }))).toBe('fallback');
  });

  it('without a default profile, an unlisted number selects nothing (the environment-based behaviour stays)', () => {
    expect(selectProfile(withoutDefault, { to: '+15559999999' })).toBeUndefined();
    expect(selectProfile([], { to: '+15550001111' })).toBeUndefined();
  });

  it('the called number must match exactly ("*" as To is not the default\'s wildcard)', () => {
    expect(name(selectProfile(profiles, { to: '15550001111' }))).toBe('fallback');
    expect(selectProfile(withoutDefault, { to: '*' })).toBeUndefined();
  });

  it('["*"] is the default as well as "*"', () => {
    const list = parseProfiles('profiles:\n  - { name: d, match: { to: ["*"] }, agent: echo }\n', { format: 'yaml', env: {} });
    expect(name(selectProfile(list, { to: '+15550001111' }))).toBe('d');
  });
});
