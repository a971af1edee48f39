/**
 * `${VAR}` in the string values of a profiles file, replaced by the environment's
 * value. A variable that is unset (or empty: the bridge reads empty as unset, like
 * every environment variable, src/env-schema.ts) is a problem, never an empty string:
 * a `secret: ${ACME_WEBHOOK_SECRET}` that silently became "" would sign with nothing.
 * `$${VAR}` is the escape for a literal `${VAR}`. Keys are never substituted, and
 * the result is always a string (`timeoutMs: ${T}` stays text and fails the schema).
 */
import type { Problem, ValuePath } from './value-path.js';

type Env = Readonly<Record<string, string | undefined>>;

const REFERENCE = /\$(\$?)\{([^}]*)\}/g;
const VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A copy of `value` with every `${VAR}` in its strings replaced, and a problem for each that could not be. */
export function substituteEnv(value: unknown, env: Env): { value: unknown; problems: Problem[] } {
  const problems: Problem[] = [];
  const walk = (v: unknown, path: ValuePath): unknown => {
    if (typeof v === 'string') return substituteString(v, env, path, problems);
    if (Array.isArray(v)) return v.map((item, i) => walk(item, [...path, i]));
    if (v !== null && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, item] of Object.entries(v)) out[k] = walk(item, [...path, k]);
      return out;
    }
    return v;
  };
  return { value: walk(value, []), problems };
}

function substituteString(text: string, env: Env, path: ValuePath, problems: Problem[]): string {
  return text.replace(REFERENCE, (whole, escape: string, name: string) => {
    if (escape) return whole.slice(1);
    if (!VAR_NAME.test(name)) {
      problems.push({ path, message: `\${${name}} is not a variable reference (a name of letters, digits and _; write $\${…} for a literal)` });
      return whole;
    }
    const v = env[name];
    if (v === undefined || v.trim() === '') {
      problems.push({ path, message: `\${${name}}: ${name} is not set in the environment (or empty)` });
      return whole;
    }
    return v;
  });
}
