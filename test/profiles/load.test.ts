/**
 * Loading a profiles file (src/profiles/load.ts): the example in YAML and in
 * JSON reads the same; every kind of bad input is refused with every problem listed at
 * once, each with its path; `${VAR}` comes from the environment and an unset one is a
 * problem, never an empty string.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ErrorCodes, isBridgeError } from '../../src/errors.js';
import { loadProfilesFile, parseProfiles } from '../../src/profiles/load.js';
import { ProfilesError } from '../../src/profiles/profiles-error.js';

const fixtures = join(import.meta.dirname, 'fixtures');
const ENV = { ACME_WEBHOOK_SECRET: 'whsec-test' };

/** The problems of a refused text (fails the test when it is accepted). */
function problemsOf(text: string, env: Record<string, string> = ENV, format: 'yaml' | 'json' = 'yaml'): readonly string[] {
  try {
    parseProfiles(text, { format, env });
  } catch (e) {
    expect(e).toBeInstanceOf(ProfilesError);
    expect(isBridgeError(e, ErrorCodes.PROFILES)).toBe(true);
    return (e as ProfilesError).problems;
  }
  throw new Error('accepted');
}

const profile = (extra: string) => `profiles:\n  - name: p\n    match: { to: ["+15550001111"] }\n    agent: echo\n${extra}`;

describe('the issue example', () => {
  it('YAML and JSON of the same file load equal, with defaults filled in and ${VAR} substituted', () => {
    const fromYaml = loadProfilesFile(join(fixtures, 'issue-example.yaml'), ENV);
    const fromJson = loadProfilesFile(join(fixtures, 'issue-example.json'), ENV);
    expect(fromJson).toEqual(fromYaml);
    expect(fromYaml).toHaveLength(1);
    const [p] = fromYaml;
    expect(p).toMatchObject({
      name: 'support',
      match: { to: ['+15550001111'] },
      agent: 'openai',
      options: { voice: 'marin', instructions: "You are Acme's phone assistant…" },
      greeting: 'Thanks for calling Acme, how can I help?',
      events: { url: 'https://app.example.com/voice-events' },
      secret: 'whsec-test',
    });
    expect(p!.tools).toEqual([
      {
        name: 'lookup_order',
        description: 'Look up an order by its number',
        parameters: { type: 'object', properties: { order_id: { type: 'string' } }, required: ['order_id'] },
        url: 'https://app.example.com/tools/lookup_order',
        timeoutMs: 5000,
      },
      { builtin: 'end_call' },
      { builtin: 'transfer_call', to: ['+15550002222', 'sip:desk@pbx.example.com'] },
    ]);
    expect(Object.isFrozen(p)).toBe(true);
    expect(Object.isFrozen(p!.tools![0])).toBe(true);
  });

  it('timeoutMs defaults to 5000; options and tools may be left out; an instruction of any length is kept whole', () => {
    const long = 'x'.repeat(100_000);
    const [p] = parseProfiles(JSON.stringify({ profiles: [{ name: 'p', match: { to: '*' }, agent: 'echo', options: { instructions: long }, tools: [{ name: 't', description: 'd', url: 'http://127.0.0.1:9/t' }] }] }), { format: 'json', env: {} });
    expect(p!.tools![0]).toMatchObject({ timeoutMs: 5000 });
    expect((p!.options as { instructions: string }).instructions).toHaveLength(100_000);
    const [bare] = parseProfiles(profile(''), { format: 'yaml', env: {} });
    expect(bare).toEqual({ name: 'p', match: { to: ['+15550001111'] }, agent: 'echo' });
  });
});

describe('bad input: refused with every problem listed at once', () => {
  it('one file with every kind of mistake lists them all, each with its path', () => {
    const problems = problemsOf(`profiles:
  - name: support
    match: { to: ["+15550001111"] }
    agent: openai
    greting: hi
    tools:
      - name: lookup_order
        description: Look up an order
      - name: lookup_order
        description: again
        url: ftp://files.example.com/a
      - name: end_call
        description: mine
        url: https://app.example.com/end
      - builtin: transfer_call
        to: ["5550002222", "sip:desk@pbx.example.com", "tel:+15550002222"]
  - name: support
    match: { to: ["+15550001111"] }
    agent: openai
  - name: fallback
    match: { to: "*" }
    agent: echo
  - name: fallback2
    match: { to: ["*"] }
    agent: echo
    events: { url: "not a url" }
`);
    expect(problems).toEqual([
      'profiles[0].greting: unknown key (did you mean "greeting"?); allowed here: name, match, agent, options, greeting, tools, events, secret',
      'profiles[0].tools[0].url: missing (required)',
      'profiles[0].tools[1].name: duplicate tool name "lookup_order" in this profile (also profiles[0].tools[0])',
      'profiles[0].tools[1].url: must be an http(s) URL, not ftp:',
      'profiles[0].tools[2].name: "end_call" is a builtin tool\'s name: write { builtin: end_call } to use it, or name this tool otherwise',
      'profiles[0].tools[3].to[0]: must be an E.164 number like +15550002222 or a sip: URI like sip:desk@pbx.example.com',
      'profiles[0].tools[3].to[2]: must be an E.164 number like +15550002222 or a sip: URI like sip:desk@pbx.example.com',
      'profiles[1].name: duplicate profile name "support" (also profiles[0])',
      'profiles[1].match.to[0]: this number is matched by profiles[0] (support) already (a called number picks one profile)',
      'profiles[3].match.to[0]: a second default profile ("*"): profiles[2] (fallback) is the default already',
      'profiles[3].events.url: must be an absolute http(s) URL, e.g. https://app.example.com/tools/lookup_order',
    ]);
  });

  it.each([
    ['an unknown key at the top', 'profiles: []\nversion: 2\n', ['version: unknown key; allowed here: profiles', 'profiles: must list at least one']],
    ['an unknown key in a tool', profile('    tools:\n      - { name: t, description: d, url: "https://a.example.com", method: GET }\n'), ['profiles[0].tools[0].method: unknown key; allowed here: name, description, parameters, url, timeoutMs']],
    ['an unknown key in a builtin', profile('    tools:\n      - { builtin: end_call, reason: bye }\n'), ['profiles[0].tools[0].reason: unknown key; allowed here: builtin']],
    ['an unknown builtin', profile('    tools:\n      - { builtin: hold }\n'), ['profiles[0].tools[0].builtin: must be one of end_call, transfer_call']],
    ['a transfer without destinations', profile('    tools:\n      - { builtin: transfer_call }\n'), ['profiles[0].tools[0].to: missing (required)']],
    ['an unknown agent', 'profiles:\n  - { name: p, match: { to: "*" }, agent: gpt }\n', ['profiles[0].agent: must be one of echo, openai, gemini, elevenlabs, hume, pipecat']],
    ['an unquoted number (YAML reads a number)', 'profiles:\n  - { name: p, match: { to: [+15550001111] }, agent: echo }\n', ['profiles[0].match.to[0]: must be text: put it in quotes ("+1555…"; YAML reads an unquoted +1555… as a number)']],
    ['a number that is not E.164', 'profiles:\n  - { name: p, match: { to: ["5550001111"] }, agent: echo }\n', ['profiles[0].match.to[0]: must be an E.164 number like +15550001111 (or "*" alone, for the default profile)']],
    ['"*" listed with numbers', 'profiles:\n  - { name: p, match: { to: ["*", "+15550001111"] }, agent: echo }\n', ['profiles[0].match.to: "*" (the default profile) stands alone: list numbers in another profile']],
    ['a single number not in a list', 'profiles:\n  - { name: p, match: { to: "+15550001111" }, agent: echo }\n', ['profiles[0].match.to: must be "*" or a list']],
    ['a number listed twice in one profile', 'profiles:\n  - { name: p, match: { to: ["+15550001111", "+15550001111"] }, agent: echo }\n', ['profiles[0].match.to[1]: this number is listed twice']],
    ['a missing match and a bad name', 'profiles:\n  - { name: "my profile", agent: echo }\n', ['profiles[0].match: missing (required)', "profiles[0].name: must be 1–64 letters, digits, '_' or '-', starting with a letter or digit"]],
    ['a tool name no provider takes', profile('    tools:\n      - { name: "look up", description: d, url: "https://a.example.com" }\n'), ["profiles[0].tools[0].name: must be 1–63 letters, digits, '_' or '-', starting with a letter or '_' (what every provider accepts)"]],
    ['two builtins of one kind', profile('    tools:\n      - { builtin: end_call }\n      - { builtin: end_call }\n'), ['profiles[0].tools[1].builtin: duplicate tool name "end_call" in this profile (also profiles[0].tools[0])']],
    ['a timeout out of range, parameters that are not an object schema', profile('    tools:\n      - { name: t, description: d, url: "https://a.example.com", timeoutMs: 0, parameters: { type: string } }\n'), ['profiles[0].tools[0].parameters.type: must be "object"', 'profiles[0].tools[0].timeoutMs: must be an integer from 100 to 60000']],
    ['an empty greeting', profile('    greeting: ""\n'), ['profiles[0].greeting: must not be empty']],
  ])('%s', (_what, text, expected) => {
    expect(problemsOf(text)).toEqual(expected);
  });

  it('YAML that does not parse, a duplicate key, JSON that does not parse: the parser\'s message with its position', () => {
    expect(problemsOf('profiles:\n  - name: [unclosed\n')[0]).toMatch(/^not valid YAML: .*line \d+/);
    expect(problemsOf('profiles:\n  - name: a\n    name: b\n')[0]).toMatch(/^not valid YAML: Map keys must be unique/);
    expect(problemsOf('{"profiles": [', {}, 'json')[0]).toMatch(/^not valid JSON: /);
    expect(problemsOf('profiles:\n  - name: a\n---\nx: 1\n')).toEqual(['not valid YAML: one document only (a second starts at line 3)']);
    expect(problemsOf('# nothing yet\n')).toEqual(['empty: a profiles file starts with `profiles:`']);
    expect(problemsOf('- a\n')).toEqual(['(top level): must be a mapping (key: value)']);
  });

  it('a missing file, and a path that is not a file, are refused with the path named', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vb-profiles-'));
    expect(() => loadProfilesFile(join(dir, 'nope.yaml'), {})).toThrow(`invalid profiles file ${join(dir, 'nope.yaml')}:\n  - cannot be read: ENOENT`);
    expect(() => loadProfilesFile(dir, {})).toThrow('not a regular file');
  });
});

describe('${VAR} from the environment', () => {
  it('is replaced anywhere in a string value, nested ones too; $${VAR} stays literal; keys are left alone', () => {
    const [p] = parseProfiles(
      profile('    options: { instructions: "Hello from ${COMPANY}, cost $${PRICE}", "${KEY}": x }\n    tools:\n      - { name: t, description: d, url: "${TOOLS_BASE}/t" }\n'),
      { format: 'yaml', env: { COMPANY: 'Acme', TOOLS_BASE: 'https://app.example.com/tools' } },
    );
    expect(p!.options).toEqual({ instructions: 'Hello from Acme, cost ${PRICE}', '${KEY}': 'x' });
    expect(p!.tools![0]).toMatchObject({ url: 'https://app.example.com/tools/t' });
  });

  it('an unset or empty variable is a problem (never an empty string), listed with the rest; the value is never quoted', () => {
    const problems = problemsOf(profile('    secret: ${ACME_SECRET}\n    events: { url: "${EVENTS_URL}" }\n    greeting: "${ }"\n'), { ACME_SECRET: '' });
    expect(problems).toEqual([
      'profiles[0].secret: ${ACME_SECRET}: ACME_SECRET is not set in the environment (or empty)',
      'profiles[0].events.url: ${EVENTS_URL}: EVENTS_URL is not set in the environment (or empty)',
      'profiles[0].greeting: ${ } is not a variable reference (a name of letters, digits and _; write $${…} for a literal)',
      'profiles[0].events.url: must be an absolute http(s) URL, e.g. https://app.example.com/tools/lookup_order',
    ]);
  });

  it('a substituted value is validated like a written one (and not echoed in the problem)', () => {
    const problems = problemsOf(profile('    tools:\n      - { name: t, description: d, url: "${TOOL_URL}" }\n'), { TOOL_URL: 'ftp://user:hunter2@files.example.com' });
    expect(problems).toEqual(['profiles[0].tools[0].url: must be an http(s) URL, not ftp:']);
    expect(problems.join('\n')).not.toContain('hunter2');
  });
});
