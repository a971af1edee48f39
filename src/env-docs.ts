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
  if (s.valuesDoc !== undefined) return s.valuesDoc;
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
      out.push(`| \`${n}\` | ${cell(defaultText(n))} | ${cell(valuesText(n))} | ${cell(envVar(n).description)} |`);
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
      const plain = (t: string) => t.replace(/`|\*\*/g, '');
      out.push(`# ${plain(s.description)} [${plain(valuesText(n))}; default: ${plain(defaultText(n))}]`);
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

/** The marker of a doc's table of some variables (docs/operations/*.md). */
export const varsTableBegin = (names: readonly string[]) => `<!-- env-table:begin ${names.join(' ')} — generated from src/env-schema.ts by \`npm run docs:env\` -->`;
const VARS_TABLE = /<!-- env-table:begin ((?:[A-Z][A-Z0-9_]* ?)+) — [^>]*-->[\s\S]*?<!-- env-table:end -->/g;

/** A table of the named variables, between its markers. */
export function renderVarsTable(names: readonly EnvName[]): string {
  const rows = names.map((n) => `| \`${n}\` | ${cell(defaultText(n))} | ${cell(valuesText(n))} | ${cell(envVar(n).description)} |`);
  return [varsTableBegin(names), '', '| Variable | Default | Values | Meaning |', '|---|---|---|---|', ...rows, '', README_END].join('\n');
}

/** A doc with each of its variable tables rendered anew; throws on a name the schema lacks. */
export function withVarsTables(doc: string): string {
  return doc.replace(VARS_TABLE, (_, list: string) => {
    const names = list.trim().split(/\s+/);
    for (const n of names) if (!(ENV_NAMES as string[]).includes(n)) throw new Error(`${n} is not declared in src/env-schema.ts`);
    return renderVarsTable(names as EnvName[]);
  });
}

/** How many variable tables a doc has. */
export function varsTableCount(doc: string): number {
  return [...doc.matchAll(VARS_TABLE)].length;
}

/** The docs whose variable tables are generated (besides the README's whole table). */
export const DOCS_WITH_ENV_TABLES = [
  'docs/operations/lifecycle.md',
  'docs/operations/call-records.md',
  'docs/operations/recording.md',
  'docs/operations/scaling.md',
  'docs/operations/observability.md',
  'docs/agents/openai.md',
  'docs/agents/gemini.md',
  'docs/agents/elevenlabs.md',
  'docs/agents/elevenlabs-tts.md',
  'docs/agents/hume.md',
  'docs/agents/pipecat.md',
] as const;
