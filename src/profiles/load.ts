/**
 * Reading a profiles file (docs/profiles.md): YAML or JSON text → `${VAR}` substituted
 * from the environment → the schema (src/profiles/schema.ts) and the checks it cannot
 * express (src/profiles/semantic-checks.ts) → a frozen list of profiles with defaults
 * filled in. Every problem is reported at once, each with its path, as one
 * ProfilesError (BRIDGE_ERR_PROFILES); nothing half-valid is ever returned.
 *
 * The format is chosen by the file name: `.json` is JSON, anything else YAML (YAML 1.2,
 * of which JSON is a subset; duplicate keys are refused).
 */
import { readFileSync, statSync } from 'node:fs';
import { Value } from '@sinclair/typebox/value';
import { parseDocument } from 'yaml';
import { ProfilesError } from './profiles-error.js';
import { schemaProblems } from './schema-problems.js';
import { ProfilesFileSchema, type Profile } from './schema.js';
import { semanticProblems } from './semantic-checks.js';
import { substituteEnv } from './substitute-env.js';
import { problemLine, type Problem } from './value-path.js';

export type ProfilesFormat = 'yaml' | 'json';
type Env = Readonly<Record<string, string | undefined>>;

/** Bigger than any sensible file (hundreds of long prompts), small enough that a wrong path (a log, a device) fails fast. */
export const MAX_PROFILES_FILE_BYTES = 8 * 1024 * 1024;

export const formatOf = (path: string): ProfilesFormat => (/\.json$/i.test(path) ? 'json' : 'yaml');

/** Reads and validates a profiles file; throws ProfilesError listing every problem. */
export function loadProfilesFile(path: string, env: Env = process.env): readonly Profile[] {
  let text: string;
  try {
    const st = statSync(path);
    if (!st.isFile()) throw new ProfilesError(path, ['not a regular file']);
    if (st.size > MAX_PROFILES_FILE_BYTES) throw new ProfilesError(path, [`larger than ${MAX_PROFILES_FILE_BYTES / 1024 / 1024} MiB`]);
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if (e instanceof ProfilesError) throw e;
    throw new ProfilesError(path, [`cannot be read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`]);
  }
  return parseProfiles(text, { format: formatOf(path), env, source: path });
}

/** Validates a profiles file's text (the pure part of loadProfilesFile, for reloads that read the file themselves). */
export function parseProfiles(text: string, options: { format: ProfilesFormat; env?: Env; source?: string }): readonly Profile[] {
  const source = options.source ?? `(${options.format})`;
  const parsed = options.format === 'json' ? parseJson(text) : parseYaml(text);
  if ('problems' in parsed) throw new ProfilesError(source, parsed.problems);
  if (parsed.value === null || parsed.value === undefined) throw new ProfilesError(source, ['empty: a profiles file starts with `profiles:`']);
  const substituted = substituteEnv(parsed.value, options.env ?? process.env);
  const problems: Problem[] = [...substituted.problems, ...schemaProblems(ProfilesFileSchema, substituted.value), ...semanticProblems(substituted.value)];
  if (problems.length > 0) throw new ProfilesError(source, sortByProfile(problems).map(problemLine));
  // Valid: fill in the defaults (timeoutMs) on the copy substituteEnv made.
  const file = Value.Default(ProfilesFileSchema, substituted.value) as { profiles: Profile[] };
  return deepFreeze(file.profiles);
}

function parseJson(text: string): { value: unknown } | { problems: string[] } {
  try {
    return { value: JSON.parse(text) as unknown };
  } catch (e) {
    return { problems: [`not valid JSON: ${(e as Error).message}`] };
  }
}

function parseYaml(text: string): { value: unknown } | { problems: string[] } {
  // prettyErrors: each message carries its line and column.
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    return {
      problems: doc.errors.map((e) =>
        e.code === 'MULTIPLE_DOCS' ? `not valid YAML: one document only (a second starts at line ${e.linePos?.[0].line ?? '?'})` : `not valid YAML: ${e.message.split('\n')[0]}`,
      ),
    };
  }
  try {
    return { value: doc.toJS({ maxAliasCount: 100 }) as unknown };
  } catch (e) {
    return { problems: [`not valid YAML: ${(e as Error).message}`] };
  }
}

/** Problems of the top level first, then profile by profile (each in the order found). */
function sortByProfile(problems: Problem[]): Problem[] {
  const key = (p: Problem) => (p.path[0] === 'profiles' && typeof p.path[1] === 'number' ? p.path[1] : -1);
  return [...problems].sort((a, b) => key(a) - key(b));
}

function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === 'object' && !Object.isFrozen(v)) {
    for (const item of Object.values(v)) deepFreeze(item);
    Object.freeze(v);
  }
  return v;
}
