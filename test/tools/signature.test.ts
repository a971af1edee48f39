import { describe, expect, it } from 'vitest';
import { SIGNATURE_HEADER, signBody, verifySignature } from '../../src/tools/signature.js';
import { createHmac } from 'node:crypto';

describe('X-Voice-Bridge-Signature', () => {
  const secret = 'whsec_test';
  const body = '{"id":"e1","type":"call.started"}';

  it('is t=<seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>', () => {
    const h = signBody(secret, body, 1_700_000_000);
    const expected = createHmac('sha256', secret).update(`1700000000.${body}`).digest('hex');
    expect(h).toBe(`t=1700000000,v1=${expected}`);
    expect(SIGNATURE_HEADER).toBe('X-Voice-Bridge-Signature');
  });

  it('round-trips, and a tampered body, a wrong secret or a stale time fail', () => {
    const t = 1_700_000_000;
    const h = signBody(secret, body, t);
    expect(verifySignature(secret, body, h, { now: t + 10 })).toEqual({ ok: true, t });
    expect(verifySignature(secret, Buffer.from(body), h, { now: t })).toEqual({ ok: true, t });
    expect(verifySignature(secret, body.replace('started', 'ended'), h, { now: t })).toEqual({ ok: false, reason: 'mismatch' });
    expect(verifySignature('other', body, h, { now: t })).toEqual({ ok: false, reason: 'mismatch' });
    expect(verifySignature(secret, body, h, { now: t + 301 })).toEqual({ ok: false, reason: 'stale' });
    expect(verifySignature(secret, body, h, { now: t + 301, toleranceS: 600 })).toEqual({ ok: true, t });
  });

  it('refuses a missing or malformed header without throwing', () => {
    expect(verifySignature(secret, body, undefined)).toEqual({ ok: false, reason: 'missing' });
    expect(verifySignature(secret, body, '')).toEqual({ ok: false, reason: 'missing' });
    expect(verifySignature(secret, body, 'garbage')).toEqual({ ok: false, reason: 'malformed' });
    expect(verifySignature(secret, body, 't=1,v1=abc')).toEqual({ ok: false, reason: 'malformed' });
  });

  it('accepts any one of several v1 entries (secret rotation)', () => {
    const t = Math.floor(Date.now() / 1000);
    const old = signBody('old', body, t).split(',')[1];
    const h = `${signBody(secret, body, t)},${old}`;
    expect(verifySignature(secret, body, h).ok).toBe(true);
    expect(verifySignature('old', body, h).ok).toBe(true);
  });
});
