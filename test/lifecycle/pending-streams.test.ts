/**
 * Capacity is for real calls (a real bridge process): sockets that never send `start`
 * are not calls — they do not count against BRIDGE_MAX_CALLS, they are bounded on their
 * own (per source and in total) and closed at the start timeout. Before: 20 idle,
 * unauthenticated upgrades made the real webhook hear "all our lines are busy".
 */
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { runSimulatedCall } from '../../src/sim/simulator.js';
import { ulawClip } from '../bridge/helpers.js';
import { startChildBridge, type ChildBridge } from './child-bridge.js';
import { webhook } from './scale-out-helpers.js';

const children: ChildBridge[] = [];
const sockets: WebSocket[] = [];
afterEach(() => {
  for (const s of sockets.splice(0)) s.terminate();
  for (const c of children.splice(0)) c.kill();
});

/** An upgrade from another loopback address (a different source) that then sends nothing. */
function idleSocket(url: string, localAddress: string): Promise<{ ws: WebSocket; status: number; closed: Promise<void> }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { localAddress });
    sockets.push(ws);
    const closed = new Promise<void>((r) => ws.once('close', () => r()));
    ws.once('open', () => resolve({ ws, status: 101, closed }));
    ws.once('unexpected-response', (_req, res) => {
      resolve({ ws, status: res.statusCode ?? 0, closed });
      res.resume();
    });
    ws.once('error', () => undefined);
  });
}

describe('sockets before start are not calls', () => {
  it('20 idle upgrades from one source: 10 held (the per-source bound), 10 refused with 429; the real webhook and call go through; the idle ones close at the start timeout', async () => {
    const b = await startChildBridge({ BRIDGE_MAX_CALLS: '2', BRIDGE_MAX_PENDING_PER_SOURCE: '10', BRIDGE_START_TIMEOUT_MS: '3000', BRIDGE_LOAD_THRESHOLD: 'off' });
    children.push(b);
    const idle = [];
    for (let i = 0; i < 20; i++) idle.push(await idleSocket(b.streamUrl, '127.0.0.2'));
    expect(idle.filter((s) => s.status === 101)).toHaveLength(10);
    expect(idle.filter((s) => s.status === 429)).toHaveLength(10);

    // Twilio's webhook, from another source: admitted, not "busy".
    const ready = (await (await fetch(`${b.url}/readyz`)).json()) as { ready: boolean; activeCalls: number };
    expect(ready).toMatchObject({ ready: true, activeCalls: 0 });
    const hook = await webhook(b.url);
    expect(hook.twiml).toContain('<Connect><Stream');
    const clip = await ulawClip('caller-barge-in.8k-ulaw.wav');
    const call = await runSimulatedCall({ url: hook.streamUrl, callSid: hook.callSid, customParameters: hook.customParameters, audio: clip, fast: true, tailMs: 500, timeoutMs: 30_000 });
    expect(call.outcome).toBe('completed');

    // The idle sockets are closed by the bridge at the start timeout.
    await Promise.all(idle.filter((s) => s.status === 101).map((s) => s.closed));
  });
});
