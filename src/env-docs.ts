/**
 * The README's environment table and `.env.example`, rendered from the schema
 * (src/env-schema.ts). Written by `npm run docs:env` (scripts/gen-env-docs.ts);
 * test/config/env-docs.test.ts fails when the files differ from what this renders.
 */
import { ENV_GROUP_TITLES, ENV_NAMES, envVar, type EnvGroup, type EnvName } from './env-schema.js';

export const README_BEGIN = '<!-- env-table:begin — generated from src/env-schema.ts by `npm run docs:env`; edit the schema, not this table -->';
export const README_END = '<!-- env-table:end -->';

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function shown(v: unknown): string {
  if (typeof v === 'boolean') return v ? '1' : '0';
  return String(v);
}

/** The default as the docs say it. */
export function defaultText(name: EnvName): string {
  const s = envVar(name);
  if (s.defaultDoc !== undefined) return s.defaultDoc;
  return s.default === undefined ? 'unset' : `\`${shown(s.default)}\``;
}

/** What values a variable takes, from its type and keywords. */
export function valuesText(name: EnvName): string {
  const s = envVar(name) as ReturnType<typeof envVar> & { minimum?: number; maximum?: number; multipleOf?: number; anyOf?: { const: string }[]; maxLength?: number };
  const range = `${s.minimum}–${s.maximum}`;
  switch (s.type) {
    case 'integer':
      return `integer ${range}${s.multipleOf ? `, a multiple of ${s.multipleOf}` : ''}`;
    case 'number':
      return `number ${range}`;
    case 'boolean':
      return 'boolean';
    case 'string':
      if (s.protocols) return `${s.protocols.map((p) => `${p}//`).join(' or ')} URL`;
      return s.maxLength !== undefined ? `text ≤ ${s.maxLength}` : 'text';
    default:
      return (s.anyOf ?? []).map((x) => `\`${x.const}\``).join(', ');
  }
}

/** The variables by group, in the order of ENV_GROUP_TITLES, each in declaration order. */
function groups(): [EnvGroup, EnvName[]][] {
  return (Object.keys(ENV_GROUP_TITLES) as EnvGroup[]).map((g) => [g, ENV_NAMES.filter((n) => envVar(n).group === g)] as [EnvGroup, EnvName[]]).filter(([, names]) => names.length > 0);
}

/** The README section between README_BEGIN and README_END (markers included). */
export function renderEnvTable(): string {
  const out = [
    README_BEGIN,
    '',
    'Booleans take `1`/`0`, `true`/`false`, `yes`/`no` or `on`/`off` (any case); any other word is an error, never "off". Integers are decimal digits. Unset and empty are the same: the default applies.',
  ];
  for (const [g, names] of groups()) {
    out.push('', `**${ENV_GROUP_TITLES[g]}**`, '', '| Variable | Default | Values | Meaning |', '|---|---|---|---|');
    for (const n of names) {
      const s = envVar(n);
      const meaning = `${s.internal ? '(Set by the bridge for its cluster workers; not for users.) ' : ''}${s.description}`;
      out.push(`| \`${n}\` | ${cell(defaultText(n))} | ${cell(valuesText(n))} | ${cell(meaning)} |`);
    }
  }
  out.push('', README_END);
  return out.join('\n');
}

/** `.env.example`: every variable a user sets, commented out at its default. */
export function renderEnvExample(): string {
  const out = [
    '# voice-bridge configuration: every variable, commented out at its default.',
    '# Generated from src/env-schema.ts by `npm run docs:env`: edit the schema, not this file.',
    '# Copy it to .env, set what you need, and run `voice-bridge start --env-file .env`',
    '# (variables already in the environment win over the file).',
  ];
  for (const [g, names] of groups()) {
    const visible = names.filter((n) => !envVar(n).internal);
    if (visible.length === 0) continue;
    out.push('', `# ── ${ENV_GROUP_TITLES[g]} ──`);
    for (const n of visible) {
      const s = envVar(n);
      out.push(`# ${s.description.replace(/`/g, '')} [${valuesText(n).replace(/`/g, '')}; default: ${defaultText(n).replace(/`/g, '')}]`);
      out.push(`# ${n}=${s.default === undefined || s.secret ? '' : shown(s.default)}`);
    }
  }
  return `${out.join('\n')}\n`;
}

/** The README with its table section replaced by the rendered one. */
export function withEnvTable(readme: string): string {
  const a = readme.indexOf(README_BEGIN);
  const b = readme.indexOf(README_END);
  if (a < 0 || b < a) throw new Error(`README.md has no ${README_BEGIN} … ${README_END} section`);
  return readme.slice(0, a) + renderEnvTable() + readme.slice(b + README_END.length);
}
