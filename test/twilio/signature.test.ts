import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { computeSignature, isValidSignature, publicUrlOf, toWebSocketUrl } from '../../src/twilio/signature.js';

/** twilio-node `src/webhooks/webhooks.ts`, independently: url + sorted (name + value), arrays de-duplicated and sorted; base64 HMAC-SHA1. */
function reference(token: string, url: string, params: Record<string, string | string[]>): string {
  let data = url;
  for (const name of Object.keys(params).sort()) {
    const v = params[name]!;
    if (Array.isArray(v)) for (const x of [...new Set(v)].sort()) data += name + x;
    else data += name + v;
  }
  return createHmac('sha1', token).update(Buffer.from(data, 'utf8')).digest('base64');
}

const TOKEN = '12345';
// Twilio's published vector (twilio-python tests/unit/test_request_validator.py, twilio.com/docs/usage/security).
const DOC_URL = 'https://mycompany.com/myapp.php?foo=1&bar=2';
const DOC_PARAMS = { CallSid: 'CA1234567890ABCDE', Caller: '+14158675309', Digits: '1234', From: '+14158675309', To: '+18005551212' };

describe('computeSignature', () => {
  it('matches an independent HMAC-SHA1 over url + sorted params', () => {
    expect(computeSignature(TOKEN, DOC_URL, DOC_PARAMS)).toBe(reference(TOKEN, DOC_URL, DOC_PARAMS));
  });

  it("matches the value Twilio publishes for this example", () => {
    expect(computeSignature(TOKEN, DOC_URL, DOC_PARAMS)).toBe('RSOYDt4T1cUTdK1PDd93/VVr8B8=');
  });

  it('handles array values (de-duplicated, sorted) and UTF-8', () => {
    const params = { StatusCallbackEvent: ['ringing', 'answered', 'ringing', 'initiated'], Body: 'héllo ☎' };
    expect(computeSignature('tøken', 'https://x.example/cb', params)).toBe(reference('tøken', 'https://x.example/cb', params));
  });

  it('signs a WebSocket upgrade over the wss:// URL with no params', () => {
    const url = 'wss://bridge.example.com/twilio/stream';
    const expected = createHmac('sha1', TOKEN).update(url).digest('base64');
    expect(computeSignature(TOKEN, url)).toBe(expected);
    expect(computeSignature(TOKEN, url, {})).toBe(expected);
    expect(computeSignature(TOKEN, 'https://bridge.example.com/twilio/stream')).not.toBe(expected);
  });
});

describe('isValidSignature', () => {
  const sig = reference(TOKEN, DOC_URL, DOC_PARAMS);
  it('accepts the right signature and rejects tampering', () => {
    expect(isValidSignature(TOKEN, sig, DOC_URL, DOC_PARAMS)).toBe(true);
    expect(isValidSignature('54321', sig, DOC_URL, DOC_PARAMS)).toBe(false);
    expect(isValidSignature(TOKEN, sig, DOC_URL, { ...DOC_PARAMS, Digits: '1235' })).toBe(false);
    expect(isValidSignature(TOKEN, sig, DOC_URL.replace('foo=1', 'foo=2'), DOC_PARAMS)).toBe(false);
    expect(isValidSignature(TOKEN, sig.slice(0, -2), DOC_URL, DOC_PARAMS)).toBe(false);
  });

  it('accepts a signature made with or without the default port (twilio validateRequest variants)', () => {
    const withPort = 'https://mycompany.com:443/myapp.php?foo=1&bar=2';
    expect(isValidSignature(TOKEN, reference(TOKEN, withPort, DOC_PARAMS), DOC_URL, DOC_PARAMS)).toBe(true);
    expect(isValidSignature(TOKEN, sig, withPort, DOC_PARAMS)).toBe(true);
  });

  it('never throws and fails closed on missing header, header arrays, empty token or a junk URL', () => {
    expect(isValidSignature(TOKEN, undefined, DOC_URL, DOC_PARAMS)).toBe(false);
    expect(isValidSignature(TOKEN, '', DOC_URL, DOC_PARAMS)).toBe(false);
    expect(isValidSignature(TOKEN, [sig, sig], DOC_URL, DOC_PARAMS)).toBe(false);
    const emptyKeySig = reference('', DOC_URL, DOC_PARAMS);
    expect(isValidSignature('', emptyKeySig, DOC_URL, DOC_PARAMS)).toBe(false);
    expect(isValidSignature(TOKEN, 'abc', 'not a url', {})).toBe(false);
  });
});

describe('publicUrlOf', () => {
  it('uses Host and the socket protocol without a proxy', () => {
    expect(publicUrlOf({ headers: { host: '127.0.0.1:8080' }, url: '/twilio/voice?x=1', protocol: 'http' })).toBe('http://127.0.0.1:8080/twilio/voice?x=1');
  });

  it('prefers X-Forwarded-Proto / X-Forwarded-Host (first hop) behind a TLS-terminating proxy', () => {
    const req = { headers: { host: '10.0.0.5:8080', 'x-forwarded-proto': 'https, http', 'x-forwarded-host': 'abc.ngrok.app' }, url: '/twilio/voice', protocol: 'http' };
    expect(publicUrlOf(req)).toBe('https://abc.ngrok.app/twilio/voice');
  });

  it('adds X-Forwarded-Port only when it is not the default', () => {
    const h = { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'a.example' };
    expect(publicUrlOf({ headers: { ...h, 'x-forwarded-port': '443' }, url: '/v' })).toBe('https://a.example/v');
    expect(publicUrlOf({ headers: { ...h, 'x-forwarded-port': '8443' }, url: '/v' })).toBe('https://a.example:8443/v');
  });

  it('gives the wss:// form for a WebSocket upgrade (detected or forced)', () => {
    const upgrade = { headers: { host: 'abc.ngrok.app', 'x-forwarded-proto': 'https', upgrade: 'websocket', connection: 'Upgrade' }, url: '/twilio/stream', protocol: 'http' };
    expect(publicUrlOf(upgrade)).toBe('wss://abc.ngrok.app/twilio/stream');
    expect(publicUrlOf({ headers: { host: '127.0.0.1:9' }, url: '/s', protocol: 'http' }, undefined, { websocket: true })).toBe('ws://127.0.0.1:9/s');
    expect(publicUrlOf(upgrade, undefined, { websocket: false })).toBe('https://abc.ngrok.app/twilio/stream');
  });

  it('uses the configured public base URL (with a path prefix) and ignores forwarded headers', () => {
    const req = { headers: { host: 'evil.example', 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'http', upgrade: 'websocket' }, url: '/twilio/stream', protocol: 'http' };
    expect(publicUrlOf(req, 'https://bridge.example.com/')).toBe('wss://bridge.example.com/twilio/stream');
    expect(publicUrlOf({ ...req, headers: {} }, 'https://bridge.example.com:8443/vb')).toBe('https://bridge.example.com:8443/vb/twilio/stream');
  });

  it('keeps only path and query of an absolute-form target; a missing or junk host becomes localhost', () => {
    expect(publicUrlOf({ headers: { host: 'a.example' }, url: 'http://other.example/p?q=1', protocol: 'http' })).toBe('http://a.example/p?q=1');
    expect(publicUrlOf({ headers: {}, url: '/p' })).toBe('http://localhost/p');
    expect(publicUrlOf({ headers: { host: 'a.example/../@x' }, url: '/p' })).toBe('http://localhost/p');
  });

  it('round-trips with the signature: a signed upgrade validates against the rebuilt URL', () => {
    const signed = computeSignature(TOKEN, 'wss://abc.ngrok.app/twilio/stream');
    const req = { headers: { host: 'abc.ngrok.app', 'x-forwarded-proto': 'https', upgrade: 'websocket' }, url: '/twilio/stream', protocol: 'http' };
    expect(isValidSignature(TOKEN, signed, publicUrlOf(req))).toBe(true);
    expect(isValidSignature(TOKEN, signed, toWebSocketUrl('https://abc.ngrok.app/twilio/stream'))).toBe(true);
  });
});
