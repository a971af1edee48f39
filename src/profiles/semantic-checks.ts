/**
 * What the schema cannot say about a profiles file: relations between entries and the
 * shape of URLs and destinations. Runs on the file as read even when the schema found
 * problems (every check looks before it trusts a type), so one run lists every problem.
 *
 *   - profile names are unique;
 *   - a called number is matched by one profile at most, and "*" (the default) by one
 *     profile at most, and "*" stands alone in its `to`;
 *   - within a profile, tool names are unique (a builtin counts under its own name), and
 *     no tool of ours is named end_call or transfer_call;
 *   - tool and event URLs are http(s) (the bridge POSTs to them);
 *   - a transfer destination is an E.164 number or a sip: URI (what TwiML `<Dial>` takes:
 *     https://www.twilio.com/docs/voice/twiml/number, https://www.twilio.com/docs/voice/twiml/sip).
 */
import { BUILTIN_TOOL_NAMES, DEFAULT_MATCH, E164_PATTERN } from './schema.js';
import { formatPath, type Problem, type ValuePath } from './value-path.js';

const E164 = new RegExp(E164_PATTERN);
/** sip:[user@]host[:port][;params] — RFC 3261 §19.1, the parts Twilio's <Sip> uses. */
const SIP_URI = /^sip:([^@\s;?]+@)?[A-Za-z0-9.-]+(:\d{1,5})?(;[^\s]*)?$/;

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const listOf = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

export function semanticProblems(file: unknown): Problem[] {
  const problems: Problem[] = [];
  const add = (path: ValuePath, message: string) => problems.push({ path, message });
  const profiles = isRecord(file) ? listOf(file['profiles']) : [];
  const byName = new Map<string, number>();
  const byNumber = new Map<string, number>();
  let defaultAt: number | undefined;
  const label = (i: number) => {
    const name = isRecord(profiles[i]) ? profiles[i]['name'] : undefined;
    return typeof name === 'string' ? `profiles[${i}] (${name})` : `profiles[${i}]`;
  };

  profiles.forEach((profile, i) => {
    if (!isRecord(profile)) return;
    const at: ValuePath = ['profiles', i];
    const name = profile['name'];
    if (typeof name === 'string') {
      const first = byName.get(name);
      if (first === undefined) byName.set(name, i);
      else add([...at, 'name'], `duplicate profile name "${name}" (also ${formatPath(['profiles', first])})`);
    }

    const match = profile['match'];
    const to = isRecord(match) ? match['to'] : undefined;
    const entries = to === DEFAULT_MATCH ? [DEFAULT_MATCH] : Array.isArray(to) ? to : [];
    const toPath = (j: number): ValuePath => (to === DEFAULT_MATCH ? [...at, 'match', 'to'] : [...at, 'match', 'to', j]);
    if (Array.isArray(to) && to.length > 1 && to.includes(DEFAULT_MATCH)) add([...at, 'match', 'to'], '"*" (the default profile) stands alone: list numbers in another profile');
    const own = new Set<string>();
    entries.forEach((n, j) => {
      if (typeof n !== 'string') return;
      if (n === DEFAULT_MATCH) {
        if (defaultAt === undefined) defaultAt = i;
        else if (defaultAt !== i) add(toPath(j), `a second default profile ("*"): ${label(defaultAt)} is the default already`);
        return;
      }
      if (!E164.test(n)) return; // the schema says what is wrong with it
      if (own.has(n)) {
        add(toPath(j), 'this number is listed twice');
        return;
      }
      own.add(n);
      const first = byNumber.get(n);
      if (first === undefined) byNumber.set(n, i);
      else add(toPath(j), `this number is matched by ${label(first)} already (a called number picks one profile)`);
    });

    const events = profile['events'];
    if (isRecord(events) && typeof events['url'] === 'string') checkUrl(events['url'], [...at, 'events', 'url'], add);

    const toolNames = new Map<string, number>();
    listOf(profile['tools']).forEach((tool, t) => {
      if (!isRecord(tool)) return;
      const tp: ValuePath = [...at, 'tools', t];
      const builtin = tool['builtin'];
      const isBuiltin = typeof builtin === 'string';
      const toolName = isBuiltin ? builtin : tool['name'];
      if (!isBuiltin && typeof toolName === 'string' && (BUILTIN_TOOL_NAMES as readonly string[]).includes(toolName)) {
        add([...tp, 'name'], `"${toolName}" is a builtin tool's name: write { builtin: ${toolName} } to use it, or name this tool otherwise`);
      } else if (typeof toolName === 'string') {
        const first = toolNames.get(toolName);
        if (first === undefined) toolNames.set(toolName, t);
        else add(isBuiltin ? [...tp, 'builtin'] : [...tp, 'name'], `duplicate tool name "${toolName}" in this profile (also ${formatPath([...at, 'tools', first])})`);
      }
      if (!isBuiltin && typeof tool['url'] === 'string') checkUrl(tool['url'], [...tp, 'url'], add);
      if (builtin === 'transfer_call') {
        listOf(tool['to']).forEach((dest, d) => {
          if (typeof dest !== 'string') return; // the schema says so
          if (!E164.test(dest) && !SIP_URI.test(dest)) add([...tp, 'to', d], 'must be an E.164 number like +15550002222 or a sip: URI like sip:desk@pbx.example.com');
        });
      }
    });
  });
  return problems;
}

function checkUrl(text: string, path: ValuePath, add: (p: ValuePath, m: string) => void): void {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    add(path, 'must be an absolute http(s) URL, e.g. https://app.example.com/tools/lookup_order');
    return;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') add(path, `must be an http(s) URL, not ${url.protocol}`);
}
