/**
 * A profile's `options` as agent parameters (AgentContext.parameters is text → text,
 * like the TwiML <Parameter>s it used to come from only): text as it is, numbers and
 * booleans as String() writes them, anything else (lists, mappings, null) as JSON.
 * Every option is kept, at any length — a profile is where long options belong.
 */
import type { Profile } from './schema.js';

export function profileAgentParameters(profile: Pick<Profile, 'options'>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(profile.options ?? {})) {
    if (v === undefined) continue;
    out[k] = typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint' ? String(v) : JSON.stringify(v);
  }
  return out;
}
