/**
 * X-Twilio-Signature on the voice webhook, the status callback and the Media
 * Streams upgrade (accepted when right, 403 when missing or wrong), the TwiML the
 * webhook answers, and outbound calls through a fake Twilio REST API.
 */
import { describe, expect, it } from 'vitest';
import { runSimulatedCall } from '../../src/sim/simulator.js';
import { computeSignature } from '../../src/twilio/signature.js';
import { mintStreamToken, streamTokenKey } from '../../src/twilio/stream-token.js';
import { startFakeTwilioRest } from '../fakes/twilio-rest.js';
import { ulawClip, withBridge } from './helpers.js';
import { loadConfig } from '../../src/config.js';
import { startChildBridge } from '../lifecycle/child-bridge.js';

const TOKEN = 'f'.repeat(32);
const SID = 'AC' + 'a'.repeat(32);

function form(params: Record<string, string>): string {
  return new URLSearchParams(params).toString();
}

describe('X-Twilio-Signature', () => {
  it('the voice webhook answers a signed request with TwiML and refuses unsigned or wrongly signed ones', async () => {
    await withBridge({ TWILIO_AUTH_TOKEN: TOKEN, BRIDGE_PUBLIC_URL: 'https://bridge.example.com' }, async (bridge) => {
      const params = { CallSid: 'CA' + '1'.repeat(32), From: '+15551230000', To: '+15557654321', AccountSid: SID };
      const publicUrl = 'https://bridge.example.com/twilio/voice?agent=echo&voice=Puck';
      const post = (sig?: string) =>
        fetch(`${bridge.url}/twilio/voice?agent=echo&voice=Puck`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', ...(sig ? { 'x-twilio-signature': sig } : {}) },
          body: form(params),
        });
      expect((await post()).status).toBe(403);
      expect((await post(computeSignature('wrong-token', publicUrl, params))).status).toBe(403);
      expect((await post(computeSignature(TOKEN, 'https://bridge.example.com/twilio/voice', params))).status).toBe(403); // query string is signed too
      const ok = await post(computeSignature(TOKEN, publicUrl, params));
      expect(ok.status).toBe(200);
      expect(ok.headers.get('content-type')).toMatch(/text\/xml/);
      const xml = await ok.text();
      // The stream URL ends in this process's routing key (its instance id: the host name by default).
      expect(xml).toMatch(/<Connect><Stream url="wss:\/\/bridge\.example\.com\/twilio\/stream\/[A-Za-z0-9_-]+"/);
      expect(xml).toContain('<Parameter name="agent" value="echo"/>');
      expect(xml).toContain('<Parameter name="voice" value="Puck"/>');
      expect(xml).toContain('statusCallback="https://bridge.example.com/twilio/status"');
    });
  });

  it('the status callback is signed too, and recorded on the call', async () => {
    await withBridge({ TWILIO_AUTH_TOKEN: TOKEN, BRIDGE_PUBLIC_URL: 'https://bridge.example.com' }, async (bridge) => {
      const params = { CallSid: 'CA' + '4'.repeat(32), StreamSid: 'MZ' + '4'.repeat(32), StreamEvent: 'stream-started', AccountSid: SID };
      const post = (sig?: string) =>
        fetch(`${bridge.url}/twilio/status`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...(sig ? { 'x-twilio-signature': sig } : {}) }, body: form(params) });
      expect((await post()).status).toBe(403);
      expect((await post(computeSignature(TOKEN, 'https://bridge.example.com/twilio/status', params))).status).toBe(204);
    });
  });

  it('the Media Streams upgrade is checked over the wss:// URL: signed calls connect, unsigned ones get 403', async () => {
    const clip = (await ulawClip('caller-barge-in.8k-ulaw.wav')).subarray(0, 8000);
    await withBridge({ TWILIO_AUTH_TOKEN: TOKEN }, async (bridge) => {
      const unsigned = await runSimulatedCall({ url: bridge.streamUrl, audio: clip, fast: true, tailMs: 0, timeoutMs: 5000 });
      expect(unsigned.outcome).toBe('connect-failed');
      expect(unsigned.httpStatus).toBe(403);
      const wrong = await runSimulatedCall({ url: bridge.streamUrl, authToken: 'x'.repeat(32), audio: clip, fast: true, tailMs: 0, timeoutMs: 5000 });
      expect(wrong.httpStatus).toBe(403);
      const signed = await runSimulatedCall({ url: bridge.streamUrl, authToken: TOKEN, audio: clip, fast: true, tailMs: 0, timeoutMs: 10_000 });
      expect(signed.outcome).toBe('completed');
      expect(signed.framesSent).toBe(50);
    });
  });

  it('an unknown agent gets a polite refusal instead of a stream', async () => {
    await withBridge({}, async (bridge) => {
      const r = await fetch(`${bridge.url}/twilio/voice?agent=nosuch`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form({ CallSid: 'CA1' }) });
      const xml = await r.text();
      expect(xml).toContain('<Say>');
      expect(xml).toContain('<Hangup/>');
      expect(xml).not.toContain('<Stream');
    });
  });
});

describe('outbound calls', () => {
  it('POST /calls places a call through the Twilio REST API with a <Stream> back to the bridge (admin token required)', async () => {
    const rest = await startFakeTwilioRest();
    try {
      await withBridge(
        {
          TWILIO_ACCOUNT_SID: rest.accountSid,
          TWILIO_AUTH_TOKEN: rest.authToken,
          TWILIO_API_URL: rest.url,
          TWILIO_FROM_NUMBER: '+15557654321',
          BRIDGE_ADMIN_TOKEN: 'admin-secret',
          BRIDGE_PUBLIC_URL: 'https://bridge.example.com',
        },
        async (bridge) => {
          const call = (auth?: string, body: object = { to: '+15551234567', agent: 'echo' }) =>
            fetch(`${bridge.url}/calls`, { method: 'POST', headers: { 'content-type': 'application/json', ...(auth ? { authorization: auth } : {}) }, body: JSON.stringify(body) });
          expect((await call()).status).toBe(401);
          expect((await call('Bearer nope')).status).toBe(401);
          expect((await call('Bearer admin-secret', { to: '5551234' })).status).toBe(400);
          const ok = await call('Bearer admin-secret');
          expect(ok.status).toBe(201);
          const body = (await ok.json()) as { callSid: string; status: string };
          expect(body.callSid).toMatch(/^CA[0-9a-f]{32}$/);
          const created = rest.requests.filter((q) => q.method === 'POST' && q.path.endsWith('/Calls.json'));
          expect(created.length).toBe(1);
          expect(created[0]!.form.To).toBe('+15551234567');
          expect(created[0]!.form.From).toBe('+15557654321');
          expect(created[0]!.form.Twiml).toContain('<Stream url="wss://bridge.example.com/twilio/stream"');
          expect(created[0]!.form.Twiml).toContain('<Parameter name="agent" value="echo"/>');
        },
      );
      await withBridge({}, async (bridge) => {
        const r = await fetch(`${bridge.url}/calls`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"to":"+15551234567"}' });
        expect(r.status).toBe(403); // admin routes are off without BRIDGE_ADMIN_TOKEN
      });
    } finally {
      await rest.close();
    }
  });
});

describe('hostile peers: webhook limits and forwarded headers', () => {
  const sid = 'CA' + '1'.repeat(32);
  const post = (url: string, params: Record<string, string>, headers: Record<string, string> = {}) =>
    fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', connection: 'close', ...headers }, body: form(params) });

  it('unsigned webhooks are refused before the rate limit: 150 forged posts do not make a signed webhook wait', async () => {
    // The load gate off: this is about the rate limit and signatures, and a loaded CI box would trip the gate.
    await withBridge({ TWILIO_AUTH_TOKEN: TOKEN, BRIDGE_WEBHOOK_RATE_PER_MIN: '20', BRIDGE_LOAD_THRESHOLD: 'off' }, async (bridge) => {
      const url = `${bridge.url}/twilio/voice`;
      const statuses = new Map<number, number>();
      for (let i = 0; i < 150; i++) {
        const r = await post(url, { CallSid: sid }, { 'x-twilio-signature': i % 2 ? 'forged' : '' });
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
        await r.arrayBuffer();
      }
      expect([...statuses]).toEqual([[403, 150]]); // before: 403 × 20, then 429 × 130
      const params = { CallSid: sid, From: '+15551230000', To: '+15557650000' };
      const ok = await post(url, params, { 'x-twilio-signature': computeSignature(TOKEN, url, params) });
      expect(ok.status).toBe(200); // before: 429
      expect(await ok.text()).toContain('<Connect><Stream');
    });
  });

  it('X-Forwarded-Host/-Proto from a peer outside BRIDGE_TRUST_PROXY steer neither the signature URL nor the stream URL', async () => {
    await withBridge({ TWILIO_AUTH_TOKEN: TOKEN, BRIDGE_TRUST_PROXY: '0' }, async (bridge) => {
      const url = `${bridge.url}/twilio/voice`;
      const params = { CallSid: sid };
      const forwarded = { 'x-forwarded-host': 'other.example.com', 'x-forwarded-proto': 'https' };
      // A signature made for another host of the same account: refused (before: accepted).
      const forged = await post(url, params, { ...forwarded, 'x-twilio-signature': computeSignature(TOKEN, 'https://other.example.com/twilio/voice', params) });
      expect(forged.status).toBe(403);
      // Twilio's real request, with the same headers added by someone on the way: the URL we answer with is ours.
      const ok = await post(url, params, { ...forwarded, 'x-twilio-signature': computeSignature(TOKEN, url, params) });
      expect(ok.status).toBe(200);
      const xml = await ok.text();
      expect(xml).toContain(`<Stream url="${bridge.url.replace(/^http/, 'ws')}/twilio/stream/`);
      expect(xml).not.toContain('other.example.com');
    });
  });

  it('from a trusted proxy (loopback, the default) the forwarded headers are honoured, as before', async () => {
    await withBridge({ TWILIO_AUTH_TOKEN: TOKEN }, async (bridge) => {
      const params = { CallSid: sid };
      const r = await post(`${bridge.url}/twilio/voice`, params, { 'x-forwarded-host': 'bridge.example.com', 'x-forwarded-proto': 'https', 'x-twilio-signature': computeSignature(TOKEN, 'https://bridge.example.com/twilio/voice', params) });
      expect(r.status).toBe(200);
      expect(await r.text()).toContain('<Stream url="wss://bridge.example.com/twilio/stream/');
    });
  });
});

describe('fail closed without TWILIO_AUTH_TOKEN', () => {
  it('binds loopback by default; any other bind unsigned is a configuration error unless BRIDGE_ALLOW_UNSIGNED=1', () => {
    expect(loadConfig({}).host).toBe('127.0.0.1');
    expect(loadConfig({ TWILIO_AUTH_TOKEN: TOKEN }).host).toBe('0.0.0.0');
    expect(() => loadConfig({ HOST: '0.0.0.0' })).toThrow(/BRIDGE_ALLOW_UNSIGNED=1/);
    expect(() => loadConfig({ HOST: '0.0.0.0', TWILIO_AUTH_TOKEN: TOKEN, TWILIO_VALIDATE_SIGNATURES: '0' })).toThrow(/HOST=0\.0\.0\.0 without Twilio signature checks/);
    expect(loadConfig({ HOST: '0.0.0.0', BRIDGE_ALLOW_UNSIGNED: '1' })).toMatchObject({ host: '0.0.0.0', unsignedExposed: true });
    expect(loadConfig({ HOST: '127.0.0.2' })).toMatchObject({ unsignedExposed: false });
  });

  it('opted in on 0.0.0.0: a warning at start and on /readyz, and call data needs the admin token', async () => {
    const b = await startChildBridge({ HOST: '0.0.0.0', BRIDGE_ALLOW_UNSIGNED: '1', BRIDGE_LOG_LEVEL: 'warn' });
    try {
      const url = `http://127.0.0.1:${b.port}`;
      await b.waitFor(/signature checks are OFF on a non-loopback address/);
      const ready = (await (await fetch(`${url}/readyz`)).json()) as { warning?: string };
      expect(ready.warning).toMatch(/signature checks are off/);
      for (const path of ['/calls', `/calls/CA${'1'.repeat(32)}`]) {
        const r = await fetch(`${url}${path}`);
        expect([path, r.status, r.headers.get('content-type'), ((await r.json()) as { code: string }).code]).toEqual([path, 403, 'application/problem+json; charset=utf-8', 'BRIDGE_ERR_ADMIN_DISABLED']);
      }
    } finally {
      b.kill();
    }
  });

  it('unsigned status callbacks are not attached to call records', async () => {
    await withBridge({}, async (bridge) => {
      const callSid = 'CA' + '5'.repeat(32);
      const s = await fetch(`${bridge.url}/twilio/status`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form({ CallSid: callSid, CallStatus: 'in-progress', Junk: 'x'.repeat(60_000) }) });
      expect(s.status).toBe(204);
      const clip = (await ulawClip('caller-barge-in.8k-ulaw.wav')).subarray(0, 4000);
      const r = await runSimulatedCall({ url: bridge.streamUrl, callSid, audio: clip, fast: true, tailMs: 300, timeoutMs: 20_000 });
      expect(r.outcome).toBe('completed');
      const rec = (await (await fetch(`${bridge.url}/calls/${callSid}`)).json()) as { status: unknown[] };
      expect(rec.status).toEqual([]);
    });
  });
});

describe('streams bound to their webhook (stream tokens, signature checks on)', () => {
  const base = (n: string) => 'CA' + n.repeat(32);

  it('the webhook issues a token; a start without it, with another call\'s, an expired one, or one used before is closed before any agent or record', async () => {
    await withBridge({ TWILIO_AUTH_TOKEN: TOKEN }, async (bridge) => {
      const url = `${bridge.url}/twilio/voice`;
      const sid = base('7');
      const params = { CallSid: sid, From: '+15551230000', To: '+15557650000' };
      const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': computeSignature(TOKEN, url, params) }, body: form(params) });
      const twiml = await res.text();
      const token = /<Parameter name="vb_token" value="([^"]+)"\/>/.exec(twiml)?.[1];
      expect(token).toMatch(/^\d{13}\.[A-Za-z0-9_-]{43}$/);
      const clip = (await ulawClip('caller-barge-in.8k-ulaw.wav')).subarray(0, 4000);
      const stream = (callSid: string, vbToken: string) =>
        runSimulatedCall({ url: bridge.streamUrl, authToken: TOKEN, callSid, audio: clip, fast: true, tailMs: 300, timeoutMs: 20_000, customParameters: { format: 'ulaw', vb_token: vbToken } });

      const real = await stream(sid, token!);
      expect(real.outcome).toBe('completed');
      const key = streamTokenKey(TOKEN);
      const cases: [string, string, string][] = [
        ['the same token again (a replayed upgrade)', sid, token!],
        ['no token', base('8'), ''],
        ['another call\'s token', base('9'), token!],
        ['an expired token', base('a'), mintStreamToken(key, base('a'), Date.now() - 200_000)],
        ['a token not made with our key', base('b'), mintStreamToken(streamTokenKey('x'.repeat(32)), base('b'))],
      ];
      const reasons: string[] = [];
      for (const [what, callSid, t] of cases) {
        const r = await stream(callSid, t);
        expect([what, r.outcome]).toEqual([what, 'server-closed']);
        expect(r.framesReceived).toBe(0);
        reasons.push(r.close!.reason);
      }
      expect(reasons).toEqual(['stream-token-reused', 'stream-token-missing', 'stream-token-mismatch', 'stream-token-expired', 'stream-token-mismatch']);
      // The real call's record is intact; the refused ones have none.
      const rec = (await (await fetch(`${bridge.url}/calls/${sid}`)).json()) as { framesIn: number; endReason: string };
      expect(rec.endReason).toBe('twilio-stop');
      expect(rec.framesIn).toBeGreaterThan(0);
      for (const n of ['8', '9', 'a', 'b']) expect((await fetch(`${bridge.url}/calls/${base(n)}`)).status).toBe(404);
    });
  });

  it('a start with SIDs that are not Twilio\'s is not a call', async () => {
    await withBridge({}, async (bridge) => {
      const clip = (await ulawClip('caller-barge-in.8k-ulaw.wav')).subarray(0, 4000);
      const r = await runSimulatedCall({ url: bridge.streamUrl, callSid: 'not-a-call-sid', audio: clip, fast: true, tailMs: 300, timeoutMs: 20_000, customParameters: { format: 'ulaw' } });
      expect(r.framesReceived).toBe(0);
      expect((await fetch(`${bridge.url}/calls/not-a-call-sid`)).status).toBe(404);
      const calls = (await (await fetch(`${bridge.url}/calls`)).json()) as { calls: unknown[] };
      expect(calls.calls).toEqual([]);
    });
  });
});

describe('no caller data in logs with BRIDGE_LOG_PII off', () => {
  it('agent options refused at the webhook and at the stream are logged by code; their values only under pii (redacted)', async () => {
    const secret = 'secret-caller-data-4471'; // lower case: the echo agent lower-cases the value it quotes
    const b = await startChildBridge({ BRIDGE_LOG_LEVEL: 'warn' });
    try {
      const sid = 'CA' + 'd'.repeat(32);
      const hook = await fetch(`${b.url}/twilio/voice?agent=echo&format=${secret}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form({ CallSid: sid }) });
      expect(hook.status).toBe(200);
      const clip = (await ulawClip('caller-barge-in.8k-ulaw.wav')).subarray(0, 2000);
      await runSimulatedCall({ url: b.streamUrl, callSid: sid, audio: clip, tailMs: 300, timeoutMs: 20_000, customParameters: { agent: 'echo', format: secret } });
      await b.waitFor(/no agent for call/);
      await b.waitFor(/could not pre-connect agent/);
      expect(b.output()).not.toContain(secret); // before: quoted in both warnings' "error"
      expect(b.output()).toContain('"pii":"[redacted]"');
    } finally {
      b.kill();
    }
  });
});
