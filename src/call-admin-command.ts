/**
 * `voice-bridge say | hangup | transfer`: the live-call commands of the call console,
 * from a shell. They are requests to a running bridge's admin HTTP API — the same
 * routes the console uses (src/server/call-routes.ts), so a call on another instance
 * or worker is reached the same way (the bridge forwards to the call's owner):
 *
 *   voice-bridge say CALLSID "text"     POST /calls/:callSid/say       {text}
 *   voice-bridge hangup CALLSID         POST /calls/:callSid/hangup
 *   voice-bridge transfer CALLSID TO    POST /calls/:callSid/transfer  {to}
 *
 * Bridge: `--url`, else BRIDGE_INTERNAL_URL, else http://127.0.0.1:${PORT:-8080}.
 * Token: `Authorization: Bearer $BRIDGE_ADMIN_TOKEN`.
 * Exit codes: 0 (2xx), 1 (the bridge refused or failed: `voice-bridge <cmd>: <code>: <detail>`
 * on stderr, or it could not be reached), 2 (usage), 78 (no BRIDGE_ADMIN_TOKEN, bad URL).
 */
import { parseArgs } from 'node:util';
import type { CommandIo } from './store/calls-command.js';

export type CallAdminCommandName = 'say' | 'hangup' | 'transfer';

/** The longest text /say takes (its route's body schema). */
const MAX_SAY_TEXT = 5000;
/** The longest CallSid the routes take. */
const MAX_CALL_SID = 64;

const COMMON_OPTIONS = `      --url URL      the bridge (default BRIDGE_INTERNAL_URL, else http://127.0.0.1:$PORT,
                     PORT defaulting to 8080); any instance of a cluster will do
  -h, --help         this text
Needs BRIDGE_ADMIN_TOKEN (the bridge's admin token; sent as Authorization: Bearer).
Exit codes: 0 done, 1 refused or failed (its error code and detail on stderr), 2 usage,
78 configuration (no BRIDGE_ADMIN_TOKEN).`;

export const SAY_USAGE = `usage: voice-bridge say CALLSID "text" [--url URL]

Speaks the text into a live call with ElevenLabs TTS (POST /calls/:callSid/say on a
running bridge; the bridge needs ELEVENLABS_API_KEY and ELEVENLABS_VOICE_ID).
Words after the CallSid are joined by spaces; at most ${MAX_SAY_TEXT} characters.
${COMMON_OPTIONS}`;

export const HANGUP_USAGE = `usage: voice-bridge hangup CALLSID [--url URL]

Ends a live call (POST /calls/:callSid/hangup on a running bridge: through Twilio's
REST API when the bridge has credentials, else by closing the stream).
${COMMON_OPTIONS}`;

export const TRANSFER_USAGE = `usage: voice-bridge transfer CALLSID TO [--url URL]

Transfers a live call to TO, a number or SIP address (POST /calls/:callSid/transfer on a
running bridge, which redirects the call through Twilio). TO must be one of the
destinations the call's profile allows (its transfer_call tool; docs/profiles.md).
${COMMON_OPTIONS}`;

const USAGE: Record<CallAdminCommandName, string> = { say: SAY_USAGE, hangup: HANGUP_USAGE, transfer: TRANSFER_USAGE };

/** How long to wait for the bridge: /say waits for TTS (bounded at 20 s there, 25 s when forwarded to the owner). */
const TIMEOUT_MS: Record<CallAdminCommandName, number> = { say: 35_000, hangup: 15_000, transfer: 15_000 };

export interface CallAdminDeps {
  env?: Readonly<Record<string, string | undefined>>;
  io?: CommandIo;
  fetch?: typeof fetch;
}

const stdio: CommandIo = { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) };

/** The bridge's base URL (no trailing slash), or an error message. */
export function bridgeBaseUrl(flag: string | undefined, env: Readonly<Record<string, string | undefined>>): { url: string } | { error: string } {
  const port = env.PORT?.trim() || '8080';
  const raw = flag ?? (env.BRIDGE_INTERNAL_URL?.trim() || `http://127.0.0.1:${port}`);
  const from = flag !== undefined ? '--url' : env.BRIDGE_INTERNAL_URL?.trim() ? 'BRIDGE_INTERNAL_URL' : 'PORT';
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return { error: `${from}: not a URL: ${raw}` };
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return { error: `${from}: not an http(s) URL: ${raw}` };
  return { url: raw.replace(/\/+$/, '') };
}

/** Runs `voice-bridge <name> …`; returns the exit code. */
export async function callAdminCommand(name: CallAdminCommandName, argv: string[], deps: CallAdminDeps = {}): Promise<number> {
  const env = deps.env ?? process.env;
  const io = deps.io ?? stdio;
  const doFetch = deps.fetch ?? fetch;
  const usage = USAGE[name];
  const usageError = (msg: string): number => {
    io.err(`voice-bridge ${name}: ${msg}\n\n${usage}\n`);
    return 2;
  };

  let values: { url?: string; help?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { url: { type: 'string' }, help: { type: 'boolean', short: 'h' } } }));
  } catch (e) {
    return usageError((e as Error).message);
  }
  if (values.help) {
    io.out(`${usage}\n`);
    return 0;
  }

  const [callSid, ...rest] = positionals;
  if (callSid === undefined || callSid.trim() === '') return usageError('give the CallSid of a live call');
  if (callSid.length > MAX_CALL_SID) return usageError(`a CallSid is at most ${MAX_CALL_SID} characters`);
  let body: Record<string, string> | undefined;
  if (name === 'say') {
    const text = rest.join(' ');
    if (text.trim() === '') return usageError('give the text to say');
    if (text.length > MAX_SAY_TEXT) return usageError(`the text is ${text.length} characters; at most ${MAX_SAY_TEXT}`);
    body = { text };
  } else if (name === 'transfer') {
    if (rest.length !== 1 || rest[0]!.trim() === '') return usageError(rest.length > 1 ? `one destination, not ${rest.length}` : 'give the number (or SIP address) to transfer to');
    body = { to: rest[0]!.trim() };
  } else if (rest.length > 0) {
    return usageError(`unexpected argument "${rest[0]}"`);
  }

  const token = env.BRIDGE_ADMIN_TOKEN?.trim();
  if (!token) {
    io.err(`voice-bridge ${name}: BRIDGE_ADMIN_TOKEN is not set: set it to the running bridge's admin token (the call commands are admin routes)\n`);
    return 78;
  }
  const base = bridgeBaseUrl(values.url, env);
  if ('error' in base) {
    io.err(`voice-bridge ${name}: ${base.error}\n`);
    return values.url !== undefined ? 2 : 78;
  }

  const url = `${base.url}/calls/${encodeURIComponent(callSid)}/${name}`;
  const headers: Record<string, string> = { authorization: `Bearer ${token}`, accept: 'application/json, application/problem+json' };
  if (body) headers['content-type'] = 'application/json';
  let res: Response;
  let text: string;
  try {
    res = await doFetch(url, { method: 'POST', headers, ...(body ? { body: JSON.stringify(body) } : {}), signal: AbortSignal.timeout(TIMEOUT_MS[name]) });
    text = await res.text();
  } catch (e) {
    const err = e as Error & { cause?: { code?: string; message?: string } };
    const why = err.name === 'TimeoutError' ? `no answer within ${TIMEOUT_MS[name] / 1000} s` : (err.cause?.code ?? err.cause?.message ?? err.message);
    io.err(`voice-bridge ${name}: cannot reach the bridge at ${base.url}: ${why}\n`);
    return 1;
  }
  let json: Record<string, unknown> | undefined;
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) json = parsed as Record<string, unknown>;
  } catch {
    // not JSON: reported as it is below
  }

  if (res.ok) {
    io.out(`${success(name, callSid, body, json)}\n`);
    return 0;
  }
  if (json && typeof json.code === 'string') {
    const detail = typeof json.detail === 'string' ? json.detail : typeof json.title === 'string' ? json.title : `HTTP ${res.status}`;
    io.err(`voice-bridge ${name}: ${json.code}: ${detail}\n`);
  } else {
    // Not a bridge's problem details (a proxy's page, an older bridge without the route).
    const snippet = text.replace(/\s+/g, ' ').trim().slice(0, 200);
    io.err(`voice-bridge ${name}: HTTP ${res.status}${res.status === 404 ? ` (is ${base.url} a voice-bridge with this route?)` : ''}${snippet ? `: ${snippet}` : ''}\n`);
  }
  return 1;
}

/** The one line printed on success. */
function success(name: CallAdminCommandName, callSid: string, body: Record<string, string> | undefined, json: Record<string, unknown> | undefined): string {
  const owner = typeof json?.callSid === 'string' ? json.callSid : callSid;
  if (name === 'say') {
    const ms = typeof json?.queuedMs === 'number' ? ` (${Math.round(json.queuedMs)} ms of audio queued)` : '';
    return `said into ${owner}${ms}`;
  }
  if (name === 'hangup') return `hung up ${owner}${json?.viaRest === true ? ' (through Twilio)' : json?.viaRest === false ? ' (stream closed)' : ''}`;
  const to = typeof json?.to === 'string' ? json.to : body?.to;
  return `transferring ${owner} to ${to}`;
}
