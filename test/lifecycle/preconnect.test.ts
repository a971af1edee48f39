/**
 * Pre-connected agents never leak (a real bridge process, a fake OpenAI Realtime
 * service in this process): 500 voice webhooks whose streams never come each open a
 * provider session; every one is closed within the pre-connect TTL, counted as
 * expired, and their admission reservations go with them — and a later call is
 * pre-connected and adopted as before (the table did not stay full).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { runSimulatedCall } from '../../src/sim/simulator.js';
import { startFakeOpenAi, type FakeOpenAi } from '../fakes/openai-realtime.js';
import { ulawClip } from '../bridge/helpers.js';
import { pollUntil, startChildBridge, type ChildBridge } from './child-bridge.js';
import { webhook } from './scale-out-helpers.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function metric(b: ChildBridge, outcome: string): Promise<number> {
  const text = await (await fetch(`${b.url}/metrics`)).text();
  const m = new RegExp(`^voice_bridge_preconnect_total\\{outcome="${outcome}"\\} (\\d+)`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

const openSessions = (fake: FakeOpenAi) => fake.connections.filter((c) => c.closedAt === null).length;

describe('pre-connect expiry', () => {
  it('500 webhooks without streams: every provider session closed within the TTL, reservations released; later calls pre-connected as before', async () => {
    const fake = await startFakeOpenAi();
    cleanups.push(() => fake.close());
    // The fake's 300 ms keepalive and 2 s handshake bound suit one call; here this process
    // (the fake) serves 500 sockets while it sends 500 webhooks, and on a loaded box it can
    // stall longer than that: the bridge would then rightly redial (a second connection for
    // the call, which the counts below would misread). This test is about expiry, so the
    // service gets the production keepalive and handshake bounds.
    const b = await startChildBridge({
      ...fake.env,
      OPENAI_PING_INTERVAL_MS: '5000',
      OPENAI_HANDSHAKE_TIMEOUT_MS: '10000',
      BRIDGE_AGENT: 'openai',
      BRIDGE_PRECONNECT_TTL_MS: '3000',
      BRIDGE_WEBHOOK_RATE_PER_MIN: '0',
      BRIDGE_LOAD_THRESHOLD: 'off',
      BRIDGE_CALL_RECORDS: 'off',
    });
    cleanups.push(() => b.kill());

    const t0 = Date.now();
    for (let i = 0; i < 500; i += 50) await Promise.all(Array.from({ length: 50 }, () => webhook(b.url, 'format=pcmu')));
    await pollUntil(async () => fake.connections.length >= 500, 30_000, 50);
    const ready = (await (await fetch(`${b.url}/readyz`)).json()) as { reservedCalls: number };
    expect(ready.reservedCalls).toBeGreaterThan(0);

    // Within the TTL (plus the time the webhooks took and a margin for a loaded box), all closed.
    await pollUntil(async () => openSessions(fake) === 0 && (await metric(b, 'expired')) === 500, 30_000, 100);
    expect(fake.connections.every((c) => c.closedBy === 'client')).toBe(true);
    const lastClose = Math.max(...fake.connections.map((c) => c.closedAt!));
    expect(lastClose - t0).toBeGreaterThanOrEqual(3000);
    expect(((await (await fetch(`${b.url}/readyz`)).json()) as { reservedCalls: number }).reservedCalls).toBe(0);
    expect(await metric(b, 'refused')).toBe(0);

    // A later call: pre-connected at its webhook, adopted by its stream.
    const clip = await ulawClip('caller-barge-in.8k-ulaw.wav');
    const before = fake.connections.length; // 500, or more if a socket was redialled after all
    const hook = await webhook(b.url, 'format=pcmu');
    await pollUntil(async () => fake.connections.length > before, 10_000, 20);
    const call = await runSimulatedCall({ url: hook.streamUrl, callSid: hook.callSid, customParameters: hook.customParameters, audio: clip, fast: true, tailMs: 500, timeoutMs: 30_000 });
    expect(call.outcome).toBe('completed');
    expect(await metric(b, 'adopted')).toBe(1);
    expect(fake.connections).toHaveLength(before + 1); // no second connect: the pre-connected session was used
    const rec = (await (await fetch(`${b.url}/calls/${hook.callSid}`)).json()) as { agentPreconnected: boolean };
    expect(rec.agentPreconnected).toBe(true);
  });
});
