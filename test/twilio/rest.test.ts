import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TwilioRest, TwilioRestCodes, TwilioRestError, twilioRestFromConfig } from '../../src/twilio/rest.js';
import { startFakeTwilioRest, type FakeTwilioRest } from '../fakes/twilio-rest.js';

let fake: FakeTwilioRest;
let rest: TwilioRest;
beforeAll(async () => {
  fake = await startFakeTwilioRest();
  rest = new TwilioRest({ accountSid: fake.accountSid, authToken: fake.authToken, apiUrl: fake.url, timeoutMs: 2000 });
});
afterAll(async () => {
  await fake.close();
});
afterEach(() => {
  fake.requests.length = 0;
  fake.holdMs = 0;
});

async function rejection(p: Promise<unknown>): Promise<TwilioRestError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(TwilioRestError);
  return e as TwilioRestError;
}

const TWIML = '<Response><Connect><Stream url="wss://bridge.example.com/twilio/stream"/></Connect></Response>';

describe('TwilioRest against the local fake', () => {
  it('createCall posts a Basic-auth form and returns the sid and status', async () => {
    const call = await rest.createCall({ to: '+15551234567', from: '+15557654321', twiml: TWIML, statusCallback: 'https://bridge.example.com/twilio/status', statusCallbackEvent: ['initiated', 'completed'] });
    expect(call.sid).toMatch(/^CA[0-9a-f]{32}$/);
    expect(call.status).toBe('queued');
    const [req] = fake.requests;
    expect(req!.method).toBe('POST');
    expect(req!.path).toBe(`/2010-04-01/Accounts/${fake.accountSid}/Calls.json`);
    expect(req!.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(req!.username).toBe(fake.accountSid);
    expect(req!.form).toMatchObject({ To: '+15551234567', From: '+15557654321', Twiml: TWIML, StatusCallback: 'https://bridge.example.com/twilio/status' });
    expect(req!.formAll.StatusCallbackEvent).toEqual(['initiated', 'completed']);
    expect(fake.calls.get(call.sid)).toMatchObject({ twiml: TWIML, status: 'queued' });
  });

  it('createCall with a Url instead of Twiml', async () => {
    const call = await rest.createCall({ to: '+15551234567', from: '+15557654321', url: 'https://bridge.example.com/twilio/voice' });
    expect(fake.requests[0]!.form.Url).toBe('https://bridge.example.com/twilio/voice');
    expect(fake.requests[0]!.form.Twiml).toBeUndefined();
    expect(fake.calls.get(call.sid)!.url).toBe('https://bridge.example.com/twilio/voice');
  });

  it('endCall posts Status=completed; a second hang-up of an unknown sid (404/20404) resolves as already ended', async () => {
    const { sid } = await rest.createCall({ to: '+15551234567', from: '+15557654321', twiml: TWIML });
    const ended = await rest.endCall(sid);
    expect(ended).toEqual({ sid, status: 'completed', alreadyEnded: false });
    expect(fake.requests.at(-1)!.path).toBe(`/2010-04-01/Accounts/${fake.accountSid}/Calls/${sid}.json`);
    expect(fake.requests.at(-1)!.form).toEqual({ Status: 'completed' });
    const unknown = `CA${'0'.repeat(32)}`;
    expect(await rest.endCall(unknown)).toEqual({ sid: unknown, status: 'completed', alreadyEnded: true });
  });

  it('fetchAccount returns the account (for doctor)', async () => {
    expect(await rest.fetchAccount()).toEqual({ sid: fake.accountSid, friendlyName: 'Fake Twilio account', status: 'active', type: 'Full' });
    expect(fake.requests[0]!.method).toBe('GET');
  });

  it('wrong credentials → BRIDGE_ERR_TWILIO_AUTH with Twilio code 20003, not retryable', async () => {
    const bad = new TwilioRest({ accountSid: fake.accountSid, authToken: 'wrong', apiUrl: fake.url });
    const e = await rejection(bad.fetchAccount());
    expect(e).toMatchObject({ code: TwilioRestCodes.AUTH, status: 401, twilioCode: 20003, retryable: false, category: 'invalid-input' });
    // a 401 on hang-up is an error too, not "already ended"
    expect((await rejection(bad.endCall(`CA${'1'.repeat(32)}`))).code).toBe(TwilioRestCodes.AUTH);
  });

  it('a wrong account SID → 404 NOT_FOUND (not swallowed by endCall unless the code is 20404 on a call)', async () => {
    const other = new TwilioRest({ accountSid: `AC${'f'.repeat(32)}`, authToken: fake.authToken, apiUrl: fake.url });
    expect((await rejection(other.fetchAccount())).code).toBe(TwilioRestCodes.AUTH); // Basic auth fails first
    fake.failNext(404, { code: 20404, message: 'not found', status: 404 });
    expect((await rejection(rest.fetchAccount())).code).toBe(TwilioRestCodes.NOT_FOUND);
  });

  it('Twilio validation errors and 5xx carry their codes; 5xx/429 are retryable', async () => {
    fake.failNext(400, { code: 21211, message: "Invalid 'To' Phone Number", more_info: 'https://www.twilio.com/docs/errors/21211', status: 400 });
    const e400 = await rejection(rest.createCall({ to: '+1', from: '+15557654321', twiml: TWIML }));
    expect(e400).toMatchObject({ code: TwilioRestCodes.REST, status: 400, twilioCode: 21211, retryable: false, moreInfo: 'https://www.twilio.com/docs/errors/21211' });
    expect(e400.message).toContain("Invalid 'To' Phone Number");
    fake.failNext(503, { message: 'Service Unavailable' });
    expect(await rejection(rest.fetchAccount())).toMatchObject({ code: TwilioRestCodes.REST, status: 503, retryable: true });
    fake.failNext(429, { code: 20429, message: 'Too Many Requests', status: 429 });
    expect(await rejection(rest.fetchAccount())).toMatchObject({ status: 429, retryable: true });
  });

  it('the fake itself enforces To/From/Url-or-Twiml (raw request)', async () => {
    const auth = `Basic ${Buffer.from(`${fake.accountSid}:${fake.authToken}`).toString('base64')}`;
    const res = await fetch(`${fake.url}/2010-04-01/Accounts/${fake.accountSid}/Calls.json`, {
      method: 'POST',
      headers: { authorization: auth, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'To=%2B15551234567&From=%2B15557654321',
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ code: 21205, status: 400 });
  });

  it('a non-JSON success body → BAD_RESPONSE', async () => {
    fake.failNext(200, 'just a string');
    expect((await rejection(rest.fetchAccount())).code).toBe(TwilioRestCodes.BAD_RESPONSE);
  });

  it('every request is bounded: a silent server → BRIDGE_ERR_TWILIO_TIMEOUT, retryable', async () => {
    fake.holdMs = 5000;
    const quick = new TwilioRest({ accountSid: fake.accountSid, authToken: fake.authToken, apiUrl: fake.url, timeoutMs: 150 });
    const t0 = performance.now();
    const e = await rejection(quick.fetchAccount());
    expect(e).toMatchObject({ code: TwilioRestCodes.TIMEOUT, retryable: true });
    expect(performance.now() - t0).toBeLessThan(4500); // the server answers at 5 s: the bound, not the answer, ended it
  });

  it('a caller AbortSignal cancels the request', async () => {
    fake.holdMs = 5000;
    const ac = new AbortController();
    const p = rest.fetchAccount({ signal: ac.signal });
    ac.abort();
    expect((await rejection(p)).code).toBe(TwilioRestCodes.NETWORK);
  });

  it('connection refused → BRIDGE_ERR_TWILIO_NETWORK', async () => {
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const { port } = srv.address() as AddressInfo;
    await new Promise<void>((r) => srv.close(() => r()));
    const dead = new TwilioRest({ accountSid: fake.accountSid, authToken: fake.authToken, apiUrl: `http://127.0.0.1:${port}` });
    const e = await rejection(dead.fetchAccount());
    expect(e).toMatchObject({ code: TwilioRestCodes.NETWORK, retryable: true });
    expect(e.message).toContain('ECONNREFUSED');
  });

  it('checks its own arguments before sending anything', async () => {
    const before = fake.requests.length;
    expect((await rejection(rest.createCall({ to: '+15551234567', from: '+15557654321', twiml: TWIML, url: 'https://x' } as never))).code).toBe(TwilioRestCodes.ARGUMENT);
    expect((await rejection(rest.createCall({ to: '', from: '+15557654321', twiml: TWIML }))).code).toBe(TwilioRestCodes.ARGUMENT);
    expect((await rejection(rest.createCall({ to: '+15551234567', from: '+15557654321', twiml: 'x'.repeat(4001) }))).code).toBe(TwilioRestCodes.ARGUMENT);
    expect((await rejection(rest.createCall({ to: '+15551234567', from: '+15557654321', url: 'ftp://x' }))).code).toBe(TwilioRestCodes.ARGUMENT);
    expect((await rejection(rest.endCall('../../Accounts'))).code).toBe(TwilioRestCodes.ARGUMENT);
    expect(fake.requests.length).toBe(before);
    expect(() => new TwilioRest({ accountSid: 'nope', authToken: 'x' })).toThrow(TwilioRestError);
    expect(() => twilioRestFromConfig({ twilio: {} })).toThrow(/TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN/);
    expect(twilioRestFromConfig({ twilio: { accountSid: fake.accountSid, authToken: 't', apiUrl: fake.url } }).apiUrl).toBe(fake.url);
  });
});
