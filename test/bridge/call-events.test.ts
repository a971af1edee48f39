/**
 * Call events to the user's app (docs/events.md), through a real bridge: a profile with
 * `events.url` and a local receiver.
 *
 * - call.started, tool.called and call.ended arrive signed, each with its own id, the
 *   ended one carrying the call record (numbers, agent, end reason, transcript); an app
 *   embedding the bridge gets the same events from RunningBridge.onEvent.
 * - A receiver that answers 500 twice gets the event on the third try, and a bridge
 *   restarted in between (same data dir) still delivers: exactly one 2xx per id.
 */
import { createServer, type Server } from 'node:http';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { runSimulatedCall } from '../../src/sim/simulator.js';
import { startBridge } from '../../src/main.js';
import { verifySignature, SIGNATURE_HEADER } from '../../src/tools/signature.js';
import { startFakeOpenAi } from '../fakes/openai-realtime.js';
import { profilesFile } from '../profiles/profiles-helpers.js';
import { callSid as newCallSid } from '../lifecycle/child-bridge.js';
import { withBridge } from './helpers.js';
import { until } from '../agents/agent-events.js';

const SECRET = 'events-secret-abcdef';
const FROM = '+15551230000';
const TO = '+15557650000';

interface Received {
  body: string;
  event: { id: string; type: string; callSid: string; profile: string; createdAt: string; data: Record<string, any> };
  signatureOk: boolean;
  status: number;
}

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
});

/** The user's app: records every POST; answers 500 to the first `failFirst` tries of each event id, then 200; /lookup is a tool. */
async function receiver(failFirst = 0): Promise<{ url: string; got: Received[] }> {
  const got: Received[] = [];
  const tries = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      if (req.url === '/lookup') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"output":{"status":"shipped"}}');
      const event = JSON.parse(body) as Received['event'];
      const n = (tries.get(event.id) ?? 0) + 1;
      tries.set(event.id, n);
      const status = n <= failFirst ? 500 : 200;
      got.push({ body, event, signatureOk: verifySignature(SECRET, body, req.headers[SIGNATURE_HEADER.toLowerCase()] as string).ok, status });
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, got };
}

const profile = (agent: string, url: string, extra = '') => `
profiles:
  - name: support
    match: { to: ["${TO}"] }
    agent: ${agent}
    options: { format: ${agent === 'openai' ? 'pcmu' : 'ulaw'} }
${extra}
    events: { url: ${url}/events }
    secret: "${SECRET}"
`;

const call = (streamUrl: string, sid: string, tailMs: number) =>
  runSimulatedCall({ url: streamUrl, callSid: sid, customParameters: { profile: 'support', vb_from: FROM, vb_to: TO }, audio: new Uint8Array(8000).fill(0xff), fast: true, tailMs, timeoutMs: 30_000 });

describe('call events', () => {
  it('call.started, tool.called and call.ended reach the receiver, signed, one id each, call.ended with the record', async () => {
    const app = await receiver();
    const fake = await startFakeOpenAi({ replyMs: 200 });
    closers.push(() => fake.close());
    const tools = `    tools:
      - name: lookup_order
        description: Look up an order
        url: ${app.url}/lookup`;
    const inProcess: { type: string; id: string }[] = [];
    await withBridge({ ...fake.env, BRIDGE_PROFILES: profilesFile(profile('openai', app.url, tools)) }, async (bridge) => {
      // An app embedding the bridge hears the same events in process.
      bridge.onEvent((e) => inProcess.push({ type: e.type, id: e.id }));
      const sid = newCallSid();
      const c = call(bridge.streamUrl, sid, 2500);
      await until(() => fake.current?.sessionUpdates.length === 1, 'the agent session');
      await fake.callTool('lookup_order', { order_id: '1' });
      expect((await c).outcome).toBe('completed');
      await until(() => app.got.some((g) => g.event.type === 'call.ended'), 'call.ended');
    });
    const types = app.got.map((g) => g.event.type);
    expect(types).toEqual(['call.started', 'tool.called', 'call.ended']);
    for (const g of app.got) {
      expect(g.signatureOk).toBe(true);
      expect(g.event).toMatchObject({ profile: 'support', callSid: expect.stringMatching(/^CA/) });
    }
    expect(new Set(app.got.map((g) => g.event.id)).size).toBe(3);
    expect(app.got[0]!.event.data).toMatchObject({ from: FROM, to: TO, agent: 'openai' });
    expect(app.got[1]!.event.data).toMatchObject({ name: 'lookup_order', outcome: 'ok' });
    expect(app.got[2]!.event.data).toMatchObject({ from: FROM, to: TO, agent: 'openai', endReason: expect.any(String), durationMs: expect.any(Number) });
    expect(app.got[2]!.event.data.transcript.length).toBeGreaterThan(0);
    expect(inProcess).toEqual(app.got.map((g) => ({ type: g.event.type, id: g.event.id })));
  });

  it('a receiver that answers 500 twice gets each event on the third try — across a bridge restart on the same data — exactly one 2xx per id', async () => {
    const app = await receiver(2);
    const dataDir = mkdtempSync(join(tmpdir(), 'vb-events-'));
    const env = { BRIDGE_LOG_LEVEL: 'silent', BRIDGE_DATA_DIR: dataDir, BRIDGE_LOAD_THRESHOLD: 'off', BRIDGE_PROFILES: profilesFile(profile('echo', app.url)) };
    const first = await startBridge(env, { port: 0, host: '127.0.0.1' });
    try {
      expect((await call(first.streamUrl, newCallSid(), 300)).outcome).toBe('completed');
      await until(() => app.got.length >= 2, 'two failed attempts');
    } finally {
      await first.close();
    }
    // A's shutdown waits 3 s at most: a second try may fit in it, a third cannot (retries back off 2.5 s, then 5 s).
    expect(app.got.every((g) => g.status === 500)).toBe(true);
    const second = await startBridge(env, { port: 0, host: '127.0.0.1' });
    closers.push(() => second.close());
    await until(() => new Set(app.got.filter((g) => g.status === 200).map((g) => g.event.type)).size === 2, 'both events delivered', 40_000);
    const ok = app.got.filter((g) => g.status === 200);
    expect(ok.map((g) => g.event.type).sort()).toEqual(['call.ended', 'call.started']);
    // Each id: refused twice, taken on the third try, never again (receivers dedupe by id; we never make them).
    for (const g of ok) expect(app.got.filter((x) => x.event.id === g.event.id).map((x) => x.status)).toEqual([500, 500, 200]);
  }, 60_000);
});
