/**
 * Which profile answers a call (pure; the voice webhook uses it from the next stage of
 * docs/profiles.md on):
 *   1. `?profile=NAME` given: the profile of that name, or none — a wrong name is never
 *      quietly replaced by another profile (the caller of this refuses it);
 *   2. else the profile whose `match.to` lists the called number exactly (E.164, as
 *      Twilio sends `To`);
 *   3. else the default profile (`match: { to: "*" }`), if there is one;
 *   4. else none (the environment-based behaviour).
 */
import { DEFAULT_MATCH, type Profile } from './schema.js';

export function isDefaultProfile(p: Profile): boolean {
  const to = p.match.to;
  return to === DEFAULT_MATCH || to.includes(DEFAULT_MATCH);
}

export function selectProfile(profiles: readonly Profile[], by: { to?: string; profileName?: string }): Profile | undefined {
  if (by.profileName !== undefined) return profiles.find((p) => p.name === by.profileName);
  const to = by.to;
  if (to !== undefined && to !== DEFAULT_MATCH) {
    const exact = profiles.find((p) => Array.isArray(p.match.to) && p.match.to.includes(to));
    if (exact) return exact;
  }
  return profiles.find(isDefaultProfile);
}
