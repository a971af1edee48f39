/**
 * The schema's verdict on a profiles file as problems a person can act on: one line per
 * offending value, led by its path as the file reads (`profiles[0].tools[1].url`), every
 * one at once. TypeBox reports JSON pointers and its own wording; this turns them into
 * ours. Where the schema offers alternatives (a tool is a function tool or a builtin;
 * `match.to` is "*" or a list), the alternative meant is chosen — by a discriminating
 * key the value has (`builtin:`), else the one that fails deepest with the fewest
 * errors — and only its problems are reported, not every branch's.
 */
import { type TSchema } from '@sinclair/typebox';
import { ValueErrorType, type ValueError } from '@sinclair/typebox/errors';
import { Value } from '@sinclair/typebox/value';
import { E164_PATTERN, MATCH_TO_PATTERN, PROFILE_NAME_PATTERN, TOOL_NAME_PATTERN } from './schema.js';
import type { Problem, ValuePath } from './value-path.js';

const PATTERN_MESSAGES: Readonly<Record<string, string>> = {
  [E164_PATTERN]: 'must be an E.164 number like +15550001111',
  [MATCH_TO_PATTERN]: 'must be an E.164 number like +15550001111 (or "*" alone, for the default profile)',
  [PROFILE_NAME_PATTERN]: "must be 1–64 letters, digits, '_' or '-', starting with a letter or digit",
  [TOOL_NAME_PATTERN]: "must be 1–63 letters, digits, '_' or '-', starting with a letter or '_' (what every provider accepts)",
};

type Schema = TSchema & { const?: unknown; type?: unknown; properties?: Record<string, Schema>; required?: string[]; anyOf?: Schema[]; pattern?: string; minimum?: number; maximum?: number };

export function schemaProblems(schema: TSchema, value: unknown): Problem[] {
  const problems: Problem[] = [];
  const seen = new Set<string>();
  const add = (path: ValuePath, message: string) => {
    const key = JSON.stringify(path);
    if (seen.has(key)) return; // one problem per value: "missing" says it, not also "must be text"
    seen.add(key);
    problems.push({ path, message });
  };
  const report = (errors: Iterable<ValueError>) => {
    for (const e of errors) {
      const path = toPath(e.path, value);
      if (e.type === ValueErrorType.Union) chooseBranch(e, path, add, report);
      else add(path, messageFor(e));
    }
  };
  report(Value.Errors(schema, value));
  return problems;
}

/** A JSON pointer (RFC 6901) as path segments, indices where the value there is a list. */
function toPath(pointer: string, root: unknown): ValuePath {
  const out: (string | number)[] = [];
  let at: unknown = root;
  for (const raw of pointer.split('/').slice(1)) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(at)) {
      out.push(Number(key));
      at = at[Number(key)];
    } else {
      out.push(key);
      at = isRecord(at) ? at[key] : undefined;
    }
  }
  return out;
}

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

function chooseBranch(e: ValueError, path: ValuePath, add: (p: ValuePath, m: string) => void, report: (errors: Iterable<ValueError>) => void): void {
  const anyOf = (e.schema as Schema).anyOf ?? [];
  let branches = anyOf.map((schema, i) => ({ schema, errors: [...(e.errors[i] ?? [])] }));
  if (branches.length > 0 && branches.every((b) => b.schema.const !== undefined)) {
    add(path, `must be one of ${branches.map((b) => String(b.schema.const)).join(', ')}`);
    return;
  }
  if (isRecord(e.value)) {
    const value = e.value;
    // A key whose value picks the alternative (`builtin: transfer_call`).
    const key = branches.flatMap((b) => Object.entries(b.schema.properties ?? {}).filter(([k, s]) => s.const !== undefined && k in value).map(([k]) => k))[0];
    if (key !== undefined) {
      const consts = branches.map((b) => b.schema.properties?.[key]?.const).filter((c) => c !== undefined);
      branches = branches.filter((b) => b.schema.properties?.[key]?.const === value[key]);
      if (branches.length === 0) {
        add([...path, key], `must be one of ${consts.map(String).join(', ')}`);
        return;
      }
    } else {
      // No discriminator in the value: the alternatives that need one are not meant.
      const open = branches.filter((b) => !Object.entries(b.schema.properties ?? {}).some(([k, s]) => s.const !== undefined && b.schema.required?.includes(k)));
      if (open.length > 0) branches = open;
    }
  }
  const depth = (b: (typeof branches)[number]) => Math.min(...b.errors.map((x) => x.path.length));
  const deep = branches.filter((b) => b.errors.some((x) => x.path !== e.path) || b.errors.length === 0);
  if (deep.length === 0) {
    add(path, `must be ${branches.map((b) => kindOf(b.schema)).join(' or ')}`);
    return;
  }
  deep.sort((a, b) => a.errors.length - b.errors.length || depth(b) - depth(a));
  report(deep[0]!.errors);
}

function kindOf(s: Schema): string {
  if (s.const !== undefined) return JSON.stringify(s.const);
  if (s.type === 'array') return 'a list';
  if (s.type === 'object') return 'a mapping (key: value)';
  if (s.type === 'string') return 'text';
  return String(s.type);
}

function messageFor(e: ValueError): string {
  const s = e.schema as Schema;
  switch (e.type) {
    case ValueErrorType.ObjectAdditionalProperties: {
      // TypeBox reports it with the object's schema and the key's path.
      const key = e.path.split('/').pop()?.replace(/~1/g, '/').replace(/~0/g, '~') ?? '';
      const known = Object.keys(s.properties ?? {});
      const near = known.find((k) => editDistance(k.toLowerCase(), key.toLowerCase()) <= 2);
      return `unknown key${near ? ` (did you mean "${near}"?)` : ''}; allowed here: ${known.join(', ')}`;
    }
    case ValueErrorType.ObjectRequiredProperty:
      return 'missing (required)';
    case ValueErrorType.Object:
      return 'must be a mapping (key: value)';
    case ValueErrorType.Array:
      return 'must be a list';
    case ValueErrorType.ArrayMinItems:
      return 'must list at least one';
    case ValueErrorType.String:
      // YAML reads an unquoted +15550001111 as the number 15550001111.
      if (typeof e.value === 'number') return 'must be text: put it in quotes ("+1555…"; YAML reads an unquoted +1555… as a number)';
      return 'must be text';
    case ValueErrorType.StringMinLength:
      return 'must not be empty';
    case ValueErrorType.StringPattern:
      return PATTERN_MESSAGES[s.pattern ?? ''] ?? `must match ${s.pattern}`;
    case ValueErrorType.Literal:
      return `must be ${JSON.stringify(s.const)}`;
    case ValueErrorType.Integer:
    case ValueErrorType.IntegerMinimum:
    case ValueErrorType.IntegerMaximum:
      return `must be an integer from ${s.minimum} to ${s.maximum}`;
    default:
      return e.message;
  }
}

/** Levenshtein distance, for "did you mean": keys are short, so the plain table is enough. */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length]!;
}
