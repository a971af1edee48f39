/**
 * One error body for the whole HTTP surface, against a real bridge on 127.0.0.1:
 * RFC 9457 problem details (`application/problem+json`; type, title, status,
 * detail, and our stable `code`) for an unknown route, a refused admin token (refused
 * at onRequest, before the body is read), a bad Twilio signature (webhook and
 * upgrade), and input that fails a route's JSON schema.
 */
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { runSimulatedCall } from '../../src/sim/simulator.js';
import { computeSignature } from '../../src/twilio/signature.js';
import { errorSpec, PROBLEM_TYPE_PREFIX } from '../../src/errors.js';
import { withBridge } from './helpers.js';

const ADMIN = 'admin-secret';
const TOKEN = 'f'.repeat(32);
const PUBLIC = 'https://bridge.example.com';

/** Asserts `res` is a problem body for `code` with `status`; returns the body. */
async function expectProblem(res: Response, status: number, code: string): Promise<Record<string, unknown>> {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toBe('application/problem+json; charset=utf-8');
  const body = (await res.json()) as Record<string, unknown>;
  expect(body).toMatchObject({ type: `${PROBLEM_TYPE_PREFIX}${code}`, title: errorSpec(code)!.meaning, status, code, detail: expect.any(String) });
  return body;
}

/**
 * Sends a request's head and the first bytes of a body of `contentLength`, and resolves
 * with the raw response once its head and body have arrived — while the rest of the
 * request body is still unsent. A server that read the body first would never answer.
 */
function rawPost(url: string, path: string, headers: Record<string, string>, contentLength: number): Promise<{ head: string; body: string; bodyBytesSent: number }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    const first = '{"to":"';
    let raw = '';
    socket.setEncoding('utf8');
    socket.on('error', reject);
    socket.on('data', (chunk: string) => {
      raw += chunk;
      const end = raw.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = raw.slice(0, end);
      const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? NaN);
      const body = raw.slice(end + 4);
      if (Buffer.byteLength(body) < length) return;
      socket.destroy();
      resolve({ head, body, bodyBytesSent: first.length });
    });
    socket.on('connect', () => {
      const lines = [`POST ${path} HTTP/1.1`, `host: ${hostname}:${port}`, `content-length: ${contentLength}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
      socket.write(`${lines.join('\r\n')}\r\n\r\n${first}`);
    });
  });
}

describe('HTTP errors are RFC 9457 problem details', () => {
  it('an unknown route is 404 BRIDGE_ERR_NOT_FOUND, query string left out of the detail', async () => {
    await withBridge({}, async (bridge) => {
      const body = await expectProblem(await fetch(`${bridge.url}/no/such/route?secret=1`), 404, 'BRIDGE_ERR_NOT_FOUND');
      expect(body.detail).toBe('no route for GET /no/such/route');
      await expectProblem(await fetch(`${bridge.url}/healthz`, { method: 'DELETE' }), 404, 'BRIDGE_ERR_NOT_FOUND');
    });
  });

  it('a wrong admin token is 401 BRIDGE_ERR_ADMIN_AUTH, refused at onRequest before the body is read', async () => {
    await withBridge({ BRIDGE_ADMIN_TOKEN: ADMIN }, async (bridge) => {
      for (const authorization of [undefined, 'Bearer nope', `Bearer ${ADMIN}x`]) {
        const res = await fetch(`${bridge.url}/calls/history?limit=abc`, { headers: authorization ? { authorization } : {} });
        // The token is judged before the query string: 401, not the schema's 400.
        expect((await expectProblem(res, 401, 'BRIDGE_ERR_ADMIN_AUTH')).detail).toBe('missing or wrong admin token');
      }
      // A body far over the 64 KiB limit, and one under it that never finishes: the answer
      // is the token's 401 (not the body parser's 413), sent while the body is still unsent.
      for (const contentLength of [512 * 1024 * 1024, 60_000]) {
        const r = await rawPost(bridge.url, '/calls', { 'content-type': 'application/json', authorization: 'Bearer wrong' }, contentLength);
        expect(r.head).toMatch(/^HTTP\/1\.1 401 /);
        expect(r.head).toMatch(/content-type: application\/problem\+json/i);
        expect(JSON.parse(r.body)).toMatchObject({ status: 401, code: 'BRIDGE_ERR_ADMIN_AUTH' });
        expect(r.bodyBytesSent).toBeLessThan(contentLength);
      }
      // The right token reaches the route (and its schema).
      await expectProblem(await fetch(`${bridge.url}/calls/history?limit=abc`, { headers: { authorization: `Bearer ${ADMIN}` } }), 400, 'BRIDGE_ERR_BAD_REQUEST');
    });
  });

  it('admin routes without BRIDGE_ADMIN_TOKEN are 403 BRIDGE_ERR_ADMIN_DISABLED', async () => {
    await withBridge({}, async (bridge) => {
      await expectProblem(await fetch(`${bridge.url}/calls/CA${'0'.repeat(32)}/hangup`, { method: 'POST' }), 403, 'BRIDGE_ERR_ADMIN_DISABLED');
    });
  });

  it('a missing or wrong X-Twilio-Signature is 403 BRIDGE_ERR_TWILIO_SIGNATURE on the webhooks and the upgrade', async () => {
    await withBridge({ TWILIO_AUTH_TOKEN: TOKEN, BRIDGE_PUBLIC_URL: PUBLIC }, async (bridge) => {
      const params = { CallSid: `CA${'1'.repeat(32)}`, From: '+15551230000', To: '+15557654321' };
      const post = (path: string, sig?: string) =>
        fetch(`${bridge.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...(sig ? { 'x-twilio-signature': sig } : {}) }, body: new URLSearchParams(params).toString() });
      for (const path of ['/twilio/voice', '/twilio/status']) {
        await expectProblem(await post(path), 403, 'BRIDGE_ERR_TWILIO_SIGNATURE'); // no header: refused at onRequest
        await expectProblem(await post(path, computeSignature('wrong-token', `${PUBLIC}${path}`, params)), 403, 'BRIDGE_ERR_TWILIO_SIGNATURE');
      }
      expect((await post('/twilio/voice', computeSignature(TOKEN, `${PUBLIC}/twilio/voice`, params))).status).toBe(200);

      // The upgrade: refused with an HTTP response in the same shape, never upgraded.
      const refused = await new Promise<{ status: number; type: string | undefined; body: string }>((resolve, reject) => {
        const ws = new WebSocket(`${bridge.streamUrl}`, { headers: { 'x-twilio-signature': 'forged' } });
        ws.on('open', () => reject(new Error('upgraded')));
        ws.on('error', () => undefined);
        ws.on('unexpected-response', (_req, res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], body }));
        });
      });
      expect(refused.status).toBe(403);
      expect(refused.type).toBe('application/problem+json; charset=utf-8');
      expect(JSON.parse(refused.body)).toMatchObject({ status: 403, code: 'BRIDGE_ERR_TWILIO_SIGNATURE', type: `${PROBLEM_TYPE_PREFIX}BRIDGE_ERR_TWILIO_SIGNATURE` });
      // `voice-bridge simulate` names the refusal from that body.
      const sim = await runSimulatedCall({ url: bridge.streamUrl, audio: new Uint8Array(160), fast: true, tailMs: 0, timeoutMs: 5000 });
      expect(sim).toMatchObject({ outcome: 'connect-failed', httpStatus: 403, error: 'upgrade refused: HTTP 403 BRIDGE_ERR_TWILIO_SIGNATURE: missing or invalid X-Twilio-Signature' });
    });
  });

  it("a malformed query string or body on an admin route is 400 BRIDGE_ERR_BAD_REQUEST with the schema's message", async () => {
    await withBridge({ BRIDGE_ADMIN_TOKEN: ADMIN }, async (bridge) => {
      const auth = { authorization: `Bearer ${ADMIN}` };
      const q = await expectProblem(await fetch(`${bridge.url}/calls/history?limit=abc`, { headers: auth }), 400, 'BRIDGE_ERR_BAD_REQUEST');
      expect(q.detail).toBe('querystring/limit must be integer');
      const range = await expectProblem(await fetch(`${bridge.url}/calls/history?limit=501`, { headers: auth }), 400, 'BRIDGE_ERR_BAD_REQUEST');
      expect(range.detail).toBe('querystring/limit must be <= 500');
      const say = (body: string) => fetch(`${bridge.url}/calls/CA${'0'.repeat(32)}/say`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body });
      expect((await expectProblem(await say('{"text":""}'), 400, 'BRIDGE_ERR_BAD_REQUEST')).detail).toBe('body/text must NOT have fewer than 1 characters');
      expect((await expectProblem(await say('{}'), 400, 'BRIDGE_ERR_BAD_REQUEST')).detail).toBe("body must have required property 'text'");
      expect((await expectProblem(await say('{"text":'), 400, 'BRIDGE_ERR_BAD_REQUEST')).detail).toMatch(/JSON/);
      // A well-formed request for a call nobody carries: the route's own 404.
      await expectProblem(await say('{"text":"hello"}'), 404, 'BRIDGE_ERR_CALL_NOT_FOUND');
      // What fastify refuses itself comes in the same shape.
      const tooBig = await fetch(`${bridge.url}/twilio/status`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `Junk=${'x'.repeat(70 * 1024)}` });
      await expectProblem(tooBig, 413, 'BRIDGE_ERR_BODY_TOO_LARGE');
      const text = await fetch(`${bridge.url}/calls/CA${'0'.repeat(32)}/say`, { method: 'POST', headers: { ...auth, 'content-type': 'application/xml' }, body: '<text>hello</text>' });
      await expectProblem(text, 415, 'BRIDGE_ERR_UNSUPPORTED_MEDIA_TYPE');
    });
  });
});
