/**
 * Admission through a real bridge (startBridge on 127.0.0.1, the simulator in
 * Twilio's role): BRIDGE_MAX_CALLS, the event-loop load gate tripped by a busy loop
 * in this same process, the per-source webhook rate limit, and admin-only call data.
 * Plus the two small state machines with an injected clock.
 */
import { describe, expect, it } from 'vitest';
import { runSimulatedCall } from '../../src/sim/simulator.js';
import { Admission, RESERVATION_TTL_MS } from '../../src/lifecycle/admission.js';
import { RateLimiter } from '../../src/lifecycle/rate-limiter.js';
import { loadLifecycleConfig } from '../../src/lifecycle/lifecycle-config.js';
import { getJson, ulawClip, withBridge } from '../bridge/helpers.js';
import { callSid, pollUntil, postVoice } from './child-bridge.js';

const refusedPolitely = (xml: string) => xml.includes('<Say>') && xml.includes('<Hangup/>') && !xml.includes('<Stream');

describe('BRIDGE_MAX_CALLS', () => {
  it('max 1: a second call is refused with <Say>+<Hangup> and its upgrade gets 503; /readyz says why', async () => {
    const clip = await ulawClip('caller-barge-in.8k-ulaw.wav');
    await withBridge({ BRIDGE_MAX_CALLS: '1' }, async (bridge) => {
      // The webhook reserves the place: a second webhook is refused before the first stream even arrives.
      const first = callSid();
      expect(refusedPolitely((await postVoice(bridge.url, first)).text)).toBe(false);
      const second = await postVoice(bridge.url);
      expect(second.status).toBe(200);
      expect(refusedPolitely(second.text)).toBe(true);
      expect(second.text).toContain('lines are busy');

      const call = runSimulatedCall({ url: bridge.streamUrl, audio: clip, callSid: first, customParameters: { format: 'ulaw' }, tailMs: 3000, timeoutMs: 30_000 });
      await pollUntil(async () => (await getJson(`${bridge.url}/readyz`)).body.activeCalls === 1);
      const ready = await getJson(`${bridge.url}/readyz`);
      expect(ready.status).toBe(503);
      expect(ready.body).toMatchObject({ ready: false, reason: 'max-calls', activeCalls: 1, maxCalls: 1 });
      expect(refusedPolitely((await postVoice(bridge.url)).text)).toBe(true);
      const refused = await runSimulatedCall({ url: bridge.streamUrl, audio: clip.subarray(0, 1600), timeoutMs: 5000 });
      expect(refused.outcome).toBe('connect-failed');
      expect(refused.httpStatus).toBe(503);

      // The first call is unaffected; once it ends, calls are taken again.
      const done = await call;
      expect(done.outcome).toBe('completed');
      expect(done.gaps).toEqual([]);
      await pollUntil(async () => (await getJson(`${bridge.url}/readyz`)).status === 200);
      expect(refusedPolitely((await postVoice(bridge.url)).text)).toBe(false);
    });
  });
});

describe('load gate', () => {
  it('a busy event loop trips it: /readyz 503 "overloaded" with the figures, calls refused politely; it recovers', async () => {
    await withBridge({ BRIDGE_LOAD_THRESHOLD: '0.5', BRIDGE_LOAD_WINDOW_MS: '1000' }, async (bridge) => {
      expect((await getJson(`${bridge.url}/readyz`)).body.load).toMatchObject({ threshold: 0.5, windowMs: 1000 });
      // ~85 % busy: spin 85 ms, then let the loop run (timers, sockets) for ~15 ms.
      let busy = true;
      const spinner = (async () => {
        while (busy) {
          const end = performance.now() + 85;
          while (performance.now() < end) {
            /* spin */
          }
          await new Promise((r) => setTimeout(r, 15));
        }
      })();
      try {
        await pollUntil(async () => bridge.admission.status().reason === 'overloaded', 10_000, 20);
        const ready = await getJson(`${bridge.url}/readyz`);
        expect(ready.status).toBe(503);
        expect(ready.body.reason).toBe('overloaded');
        expect(ready.body.load.load).toBeGreaterThanOrEqual(0.5 * 0.85);
        expect(ready.body.load.overloaded).toBe(true);
        expect(ready.body.load.lagP99Ms).toBeGreaterThan(20); // timers ran up to 85 ms late
        const v = await postVoice(bridge.url);
        expect(refusedPolitely(v.text)).toBe(true);
      } finally {
        busy = false;
        await spinner;
      }
      await pollUntil(async () => (await getJson(`${bridge.url}/readyz`)).status === 200, 10_000);
      expect(refusedPolitely((await postVoice(bridge.url)).text)).toBe(false);
    });
  });

  it('is off with BRIDGE_LOAD_THRESHOLD=off (figures still reported)', async () => {
    await withBridge({ BRIDGE_LOAD_THRESHOLD: 'off' }, async (bridge) => {
      const r = await getJson(`${bridge.url}/readyz`);
      expect(r.status).toBe(200);
      expect(r.body.load).toMatchObject({ threshold: null, overloaded: false });
    });
  });
});

describe('voice webhook rate limit per source', () => {
  it('429 with a stable code and Retry-After past the burst; X-Forwarded-For honoured only from trusted proxies', async () => {
    await withBridge({ BRIDGE_WEBHOOK_RATE_PER_MIN: '60' }, async (bridge) => {
      // burst = max(10, 60/6) = 10
      for (let i = 0; i < 10; i++) expect((await postVoice(bridge.url)).status).toBe(200);
      const limited = await postVoice(bridge.url);
      expect(limited.status).toBe(429);
      expect(JSON.parse(limited.text)).toMatchObject({ code: 'BRIDGE_ERR_RATE_LIMITED', status: 429 });
      expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      // 127.0.0.1 is a trusted proxy by default: the forwarded client has its own bucket.
      expect((await postVoice(bridge.url, callSid(), { 'x-forwarded-for': '203.0.113.7' })).status).toBe(200);
    });
    await withBridge({ BRIDGE_WEBHOOK_RATE_PER_MIN: '60', BRIDGE_TRUST_PROXY: '0' }, async (bridge) => {
      for (let i = 0; i < 10; i++) expect((await postVoice(bridge.url, callSid(), { 'x-forwarded-for': `203.0.113.${i}` })).status).toBe(200);
      // Not trusted: the header does not pick a new bucket.
      expect((await postVoice(bridge.url, callSid(), { 'x-forwarded-for': '198.51.100.1' })).status).toBe(429);
    });
  });

  it('the token bucket refills at the configured rate and forgets the least recently seen sources', () => {
    let now = 0;
    const rl = new RateLimiter({ ratePerMin: 60, burst: 2, maxSources: 2, now: () => now });
    expect([rl.take('a'), rl.take('a')]).toEqual([0, 0]);
    expect(rl.take('a')).toBe(1); // one token a second
    now += 1000;
    expect(rl.take('a')).toBe(0);
    expect(rl.take('b')).toBe(0);
    expect(rl.take('c')).toBe(0); // 'a' (least recently seen) dropped
    expect(rl.take('a')).toBe(0); // comes back full
    expect(rl.limitedCount).toBe(1);
  });
});

describe('admission bookkeeping', () => {
  it('a webhook reservation holds a place until its stream starts, or for RESERVATION_TTL_MS', () => {
    let now = 0;
    let active = 0;
    const a = new Admission({ activeCalls: () => active, maxCalls: 2, now: () => now });
    expect(a.admitWebhook('CA1')).toBeUndefined();
    expect(a.admitWebhook('CA2')).toBeUndefined();
    expect(a.admitWebhook('CA3')).toMatchObject({ reason: 'max-calls', code: 'BRIDGE_ERR_AT_CAPACITY' });
    expect(a.admitUpgrade()).toBeUndefined(); // the sessions alone are below the limit
    active = 1;
    a.release('CA1');
    expect(a.inFlight).toBe(2);
    now += RESERVATION_TTL_MS; // CA2's stream never came
    expect(a.inFlight).toBe(1);
    expect(a.admitWebhook('CA4')).toBeUndefined();
    a.startDraining();
    expect(a.admitWebhook('CA5')).toMatchObject({ reason: 'draining', code: 'BRIDGE_ERR_DRAINING' });
    expect(a.admitUpgrade()).toMatchObject({ reason: 'draining' });
    expect(a.status()).toMatchObject({ ready: false, reason: 'draining' });
  });

  it('bad lifecycle settings are all reported at once', () => {
    expect(() => loadLifecycleConfig({ BRIDGE_MAX_CALLS: '0', BRIDGE_LOAD_THRESHOLD: '1.5', BRIDGE_TRUST_PROXY: 'somewhere', BRIDGE_DRAIN_TIMEOUT_MS: '-1' })).toThrow(
      /BRIDGE_MAX_CALLS[\s\S]*BRIDGE_LOAD_THRESHOLD[\s\S]*BRIDGE_TRUST_PROXY[\s\S]*BRIDGE_DRAIN_TIMEOUT_MS|BRIDGE_DRAIN_TIMEOUT_MS[\s\S]*BRIDGE_MAX_CALLS/,
    );
    expect(loadLifecycleConfig({})).toMatchObject({ drainTimeoutMs: 30_000, maxCalls: undefined, loadThreshold: 0.7, webhookRatePerMin: 600 });
  });
});

describe('call data is admin-only once BRIDGE_ADMIN_TOKEN is set', () => {
  it('GET /calls and /calls/:callSid need the token when one is configured, and stay open without one', async () => {
    await withBridge({ BRIDGE_ADMIN_TOKEN: 'sekret' }, async (bridge) => {
      expect((await fetch(`${bridge.url}/calls`)).status).toBe(401);
      expect((await fetch(`${bridge.url}/calls/CA0`)).status).toBe(401);
      expect((await fetch(`${bridge.url}/calls`, { headers: { authorization: 'Bearer wrong!' } })).status).toBe(401);
      const ok = await fetch(`${bridge.url}/calls`, { headers: { authorization: 'Bearer sekret' } });
      expect(ok.status).toBe(200);
      expect(await ok.json()).toEqual({ calls: [] });
      expect((await fetch(`${bridge.url}/calls/CA0`, { headers: { authorization: 'Bearer sekret' } })).status).toBe(404);
    });
    await withBridge({}, async (bridge) => {
      expect((await fetch(`${bridge.url}/calls`)).status).toBe(200);
    });
  });
});
