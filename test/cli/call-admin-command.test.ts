/**
 * `voice-bridge say | hangup | transfer` against a real HTTP server on 127.0.0.1:0 that
 * stands in for a running bridge: the bridge's own admin check (an onRequest hook) and
 * problem-details handler, and the live-call routes' params and body schemas and
 * answers (202; a problem with a `code` for an unknown call, a call not streaming…).
 * Every request is recorded, so the tests see exactly what the CLI sent.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { callAdminCommand, type CallAdminCommandName } from '../../src/call-admin-command.js';
import { run } from '../../src/cli.js';
import { ErrorCodes, HttpProblem } from '../../src/errors.js';
import { adminAuth } from '../../src/server/admin-auth.js';
import { useProblemDetails } from '../../src/server/problem.js';
import { closedPort } from '../store/helpers.js';

const TOKEN = 'test-admin-token';
const LIVE = 'CA' + 'a'.repeat(32);
/** A call that exists but is not streaming (say answers 409). */
const QUIET = 'CA' + 'b'.repeat(32);
const GONE = 'CA' + 'f'.repeat(32);
/** The destinations the call's profile allows (its transfer_call tool). */
const TRANSFER_TARGETS = ['+15550001111', 'sip:desk@example.com'];

interface Seen {
  method: string;
  url: string;
  authorization: string | undefined;
  contentType: string | undefined;
  body: unknown;
}

let app: FastifyInstance;
let base = '';
let port = 0;
const seen: Seen[] = [];

/** The bridge's routes as src/server/call-routes.ts declares them (transfer: 202 {callSid, to}). */
async function fakeBridge(): Promise<FastifyInstance> {
  const f = Fastify();
  useProblemDetails(f);
  const auth = adminAuth({ adminToken: TOKEN, loopbackOnly: true });
  f.addHook('onRequest', async (req) => {
    seen.push({ method: req.method, url: req.url, authorization: req.headers.authorization, contentType: req.headers['content-type'], body: undefined });
  });
  f.addHook('preHandler', async (req) => {
    seen.at(-1)!.body = req.body;
  });
  const callParams = { type: 'object', required: ['callSid'], properties: { callSid: { type: 'string', minLength: 1, maxLength: 64 } } } as const;
  const sayBody = { type: 'object', required: ['text'], properties: { text: { type: 'string', minLength: 1, maxLength: 5000, pattern: '\\S' } } } as const;
  const transferBody = { type: 'object', required: ['to'], properties: { to: { type: 'string', minLength: 1, maxLength: 256 } } } as const;
  const live = (callSid: string) => {
    if (callSid !== LIVE && callSid !== QUIET) throw new HttpProblem(ErrorCodes.CALL_NOT_FOUND, `no active call ${callSid}`);
  };
  f.post('/calls/:callSid/say', { onRequest: auth.admin, schema: { params: callParams, body: sayBody } }, async (req, reply) => {
    const { callSid } = req.params as { callSid: string };
    live(callSid);
    if (callSid === QUIET) throw new HttpProblem(ErrorCodes.CALL_NOT_STREAMING, 'the call is not streaming');
    return reply.code(202).send({ callSid, queuedMs: 1840 });
  });
  f.post('/calls/:callSid/hangup', { onRequest: auth.admin, schema: { params: callParams } }, async (req, reply) => {
    const { callSid } = req.params as { callSid: string };
    live(callSid);
    return reply.code(202).send({ callSid, ended: true, viaRest: false });
  });
  f.post('/calls/:callSid/transfer', { onRequest: auth.admin, schema: { params: callParams, body: transferBody } }, async (req, reply) => {
    const { callSid } = req.params as { callSid: string };
    live(callSid);
    const { to } = req.body as { to: string };
    // Only the profile's transfer_call destinations (the bridge's 403 problem, as it sends it).
    if (!TRANSFER_TARGETS.includes(to)) {
      const code = 'BRIDGE_ERR_TRANSFER_NOT_ALLOWED';
      return reply
        .code(403)
        .type('application/problem+json')
        .send({ type: `tag:voice-bridge,2026:error:${code}`, title: 'not allowed', status: 403, detail: `${to} is not one of this call's transfer destinations (${TRANSFER_TARGETS.join(', ')})`, code });
    }
    return reply.code(202).send({ callSid, to });
  });
  return f;
}

beforeAll(async () => {
  app = await fakeBridge();
  base = await app.listen({ port: 0, host: '127.0.0.1' });
  port = Number(new URL(base).port);
});
afterAll(async () => {
  await app?.close();
});
afterEach(() => {
  seen.length = 0;
  vi.restoreAllMocks();
  vi.unstubAllEnvs();
});

async function cli(name: CallAdminCommandName, argv: string[], env: Record<string, string | undefined> = { BRIDGE_ADMIN_TOKEN: TOKEN, BRIDGE_INTERNAL_URL: base }) {
  let out = '';
  let err = '';
  const code = await callAdminCommand(name, argv, { env, io: { out: (t) => void (out += t), err: (t) => void (err += t) } });
  return { code, out, err };
}

describe('voice-bridge say | hangup | transfer, against a running bridge', () => {
  it('say: POST /calls/:callSid/say with {text} and the admin bearer token; one line, exit 0', async () => {
    expect(await cli('say', [LIVE, 'Your order ships tomorrow.'])).toEqual({ code: 0, out: `said into ${LIVE} (1840 ms of audio queued)\n`, err: '' });
    expect(seen).toEqual([{ method: 'POST', url: `/calls/${LIVE}/say`, authorization: `Bearer ${TOKEN}`, contentType: 'application/json', body: { text: 'Your order ships tomorrow.' } }]);
    seen.length = 0;
    // Words after the CallSid are one text.
    expect((await cli('say', [LIVE, 'one', 'more', 'thing'])).code).toBe(0);
    expect(seen[0]!.body).toEqual({ text: 'one more thing' });
  });

  it('hangup: POST /calls/:callSid/hangup, no body; transfer: POST /calls/:callSid/transfer with {to}', async () => {
    expect(await cli('hangup', [LIVE])).toEqual({ code: 0, out: `hung up ${LIVE} (stream closed)\n`, err: '' });
    expect(seen).toEqual([{ method: 'POST', url: `/calls/${LIVE}/hangup`, authorization: `Bearer ${TOKEN}`, contentType: undefined, body: undefined }]);
    seen.length = 0;
    expect(await cli('transfer', [LIVE, '+15550001111'])).toEqual({ code: 0, out: `transferring ${LIVE} to +15550001111\n`, err: '' });
    expect(seen).toEqual([{ method: 'POST', url: `/calls/${LIVE}/transfer`, authorization: `Bearer ${TOKEN}`, contentType: 'application/json', body: { to: '+15550001111' } }]);
  });

  it('the bridge: --url, else BRIDGE_INTERNAL_URL, else http://127.0.0.1:$PORT (a trailing slash is fine)', async () => {
    const elsewhere = `http://127.0.0.1:${await closedPort()}`;
    expect((await cli('hangup', [LIVE, '--url', `${base}/`], { BRIDGE_ADMIN_TOKEN: TOKEN, BRIDGE_INTERNAL_URL: elsewhere })).code).toBe(0);
    expect((await cli('hangup', [LIVE], { BRIDGE_ADMIN_TOKEN: TOKEN, BRIDGE_INTERNAL_URL: base, PORT: '1' })).code).toBe(0);
    expect((await cli('hangup', [LIVE], { BRIDGE_ADMIN_TOKEN: TOKEN, PORT: String(port) })).code).toBe(0);
    expect(seen.map((s) => s.url)).toEqual([`/calls/${LIVE}/hangup`, `/calls/${LIVE}/hangup`, `/calls/${LIVE}/hangup`]);
    // Nothing on the default port's neighbour: a clear failure, exit 1.
    const down = await cli('hangup', [LIVE], { BRIDGE_ADMIN_TOKEN: TOKEN, BRIDGE_INTERNAL_URL: elsewhere });
    expect(down.code).toBe(1);
    expect(down.err).toMatch(new RegExp(`^voice-bridge hangup: cannot reach the bridge at ${elsewhere}: ECONNREFUSED\\n$`));
  });

  it("the bridge's problem details: `voice-bridge <cmd>: <code>: <detail>` on stderr, exit 1", async () => {
    expect(await cli('say', [GONE, 'hello'])).toEqual({ code: 1, out: '', err: `voice-bridge say: BRIDGE_ERR_CALL_NOT_FOUND: no active call ${GONE}\n` });
    expect(await cli('say', [QUIET, 'hello'])).toEqual({ code: 1, out: '', err: 'voice-bridge say: BRIDGE_ERR_CALL_NOT_STREAMING: the call is not streaming\n' });
    expect(await cli('hangup', [GONE])).toEqual({ code: 1, out: '', err: `voice-bridge hangup: BRIDGE_ERR_CALL_NOT_FOUND: no active call ${GONE}\n` });
    expect(await cli('transfer', [GONE, '+15550001111'])).toEqual({ code: 1, out: '', err: `voice-bridge transfer: BRIDGE_ERR_CALL_NOT_FOUND: no active call ${GONE}\n` });
    expect(await cli('transfer', [LIVE, '+19995550000'])).toEqual({ code: 1, out: '', err: "voice-bridge transfer: BRIDGE_ERR_TRANSFER_NOT_ALLOWED: +19995550000 is not one of this call's transfer destinations (+15550001111, sip:desk@example.com)\n" });
    expect(seen.at(-1)!.body).toEqual({ to: '+19995550000' });
    const wrong = await cli('hangup', [LIVE], { BRIDGE_ADMIN_TOKEN: 'not-the-token', BRIDGE_INTERNAL_URL: base });
    expect(wrong).toEqual({ code: 1, out: '', err: 'voice-bridge hangup: BRIDGE_ERR_ADMIN_AUTH: missing or wrong admin token\n' });
    expect(seen.at(-1)!.authorization).toBe('Bearer not-the-token');
    // A bridge without the route (an older release): its 404 problem, as it is.
    const old = await cli('transfer', [LIVE, '+15550001111'], { BRIDGE_ADMIN_TOKEN: TOKEN, BRIDGE_INTERNAL_URL: `${base}/v0` });
    expect(old).toEqual({ code: 1, out: '', err: `voice-bridge transfer: BRIDGE_ERR_NOT_FOUND: no route for POST /v0/calls/${LIVE}/transfer\n` });
  });

  it('an answer that is not problem details (a proxy in between): its status and text, exit 1', async () => {
    let err = '';
    const code = await callAdminCommand('hangup', [LIVE], {
      env: { BRIDGE_ADMIN_TOKEN: TOKEN, BRIDGE_INTERNAL_URL: base },
      io: { out: () => undefined, err: (t) => void (err += t) },
      fetch: async () => new Response('<html>\n<h1>502 Bad Gateway</h1>\n</html>', { status: 502, headers: { 'content-type': 'text/html' } }),
    });
    expect(code).toBe(1);
    expect(err).toBe('voice-bridge hangup: HTTP 502: <html> <h1>502 Bad Gateway</h1> </html>\n');
  });

  it('usage errors exit 2 and send nothing; no BRIDGE_ADMIN_TOKEN exits 78 and sends nothing', async () => {
    const usage: [CallAdminCommandName, string[], RegExp][] = [
      ['say', [], /give the CallSid/],
      ['say', [LIVE], /give the text to say/],
      ['say', [LIVE, '   '], /give the text to say/],
      ['say', [LIVE, 'x'.repeat(5001)], /at most 5000/],
      ['hangup', [], /give the CallSid/],
      ['hangup', [LIVE, 'now'], /unexpected argument "now"/],
      ['transfer', [LIVE], /give the number/],
      ['transfer', [LIVE, '+1555', '+1666'], /one destination/],
      ['hangup', ['CA' + '1'.repeat(70)], /at most 64/],
      ['hangup', [LIVE, '--bogus'], /Unknown option '--bogus'/],
      ['hangup', [LIVE, '--url', 'ftp://example.com'], /--url: not an http\(s\) URL/],
      ['hangup', [LIVE, '--url', 'not a url'], /--url: not a URL/],
    ];
    for (const [name, argv, why] of usage) {
      const r = await cli(name, argv);
      expect([name, argv, r.code]).toEqual([name, argv, 2]);
      expect(r.err).toMatch(new RegExp(`^voice-bridge ${name}: `));
      expect(r.err).toMatch(why);
    }
    for (const env of [{ BRIDGE_INTERNAL_URL: base }, { BRIDGE_ADMIN_TOKEN: '  ', BRIDGE_INTERNAL_URL: base }]) {
      const r = await cli('hangup', [LIVE], env);
      expect(r.code).toBe(78);
      expect(r.err).toBe("voice-bridge hangup: BRIDGE_ADMIN_TOKEN is not set: set it to the running bridge's admin token (the call commands are admin routes)\n");
    }
    expect(seen).toEqual([]);
  });

  it('--help per command: its usage on stdout, exit 0, nothing sent', async () => {
    for (const name of ['say', 'hangup', 'transfer'] as const) {
      const r = await cli(name, [LIVE, '--help']);
      expect(r.code).toBe(0);
      expect(r.out).toMatch(new RegExp(`^usage: voice-bridge ${name} CALLSID`));
      expect(r.out).toContain('BRIDGE_ADMIN_TOKEN');
    }
    expect(seen).toEqual([]);
  });

  it('through the voice-bridge CLI: listed in --help, each with its --help, and run with the environment', async () => {
    let log = '';
    vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void (log += a.join(' ') + '\n'));
    expect(await run(['--help'])).toBe(0);
    for (const name of ['say', 'hangup', 'transfer']) expect(log).toMatch(new RegExp(`\\n  ${name}\\s+\\S`));
    for (const name of ['say', 'hangup', 'transfer']) {
      log = '';
      expect(await run([name, '--help'])).toBe(0);
      expect(log).toMatch(new RegExp(`^usage: voice-bridge ${name} CALLSID`));
    }
    let out = '';
    vi.spyOn(process.stdout, 'write').mockImplementation((t: string | Uint8Array) => ((out += String(t)), true));
    vi.stubEnv('BRIDGE_ADMIN_TOKEN', TOKEN);
    vi.stubEnv('BRIDGE_INTERNAL_URL', base);
    expect(await run(['transfer', LIVE, 'sip:desk@example.com'])).toBe(0);
    expect(out).toBe(`transferring ${LIVE} to sip:desk@example.com\n`);
    expect(seen).toEqual([{ method: 'POST', url: `/calls/${LIVE}/transfer`, authorization: `Bearer ${TOKEN}`, contentType: 'application/json', body: { to: 'sip:desk@example.com' } }]);
  });
});
