/**
 * Sticky routing of `start --workers N` (src/cluster-routing.ts): the routing key of a
 * request head, and on a real cluster, streams whose key names a worker that does not
 * exist, a forged key, another instance's key, or a worker that just died: each is
 * served by a worker of this process group (a miss), never refused for its key.
 */
import { connect, createServer, type AddressInfo } from 'node:net';
import { describe, expect, it, afterEach } from 'vitest';
import { routeKeyOf, slotOfKey } from '../../src/cluster-routing.js';
import { runSimulatedCall } from '../../src/sim/simulator.js';
import { ulawClip } from '../bridge/helpers.js';
import { callSid, form, pollUntil, startChildBridge, type ChildBridge } from './child-bridge.js';
import { webhook } from './scale-out-helpers.js';

describe('routing key of a request head', () => {
  it('the stream path segment, else the route header; anything else has none', () => {
    expect(routeKeyOf('GET /twilio/stream/node-1.w3 HTTP/1.1\r\nHost: x\r\n\r\n')).toBe('node-1.w3');
    expect(routeKeyOf('GET /twilio/stream/node-1.w3?x=1 HTTP/1.1\r\n\r\n')).toBe('node-1.w3');
    expect(routeKeyOf('GET http://lb:80/twilio/stream/pod-7 HTTP/1.1\r\n\r\n')).toBe('pod-7');
    expect(routeKeyOf('POST /calls/CA1/say HTTP/1.1\r\nX-Voice-Bridge-Route: node-1.w0\r\nContent-Length: 2\r\n\r\n')).toBe('node-1.w0');
    expect(routeKeyOf('GET /twilio/stream HTTP/1.1\r\n\r\n')).toBeUndefined();
    expect(routeKeyOf('GET /twilio/stream/../../etc HTTP/1.1\r\n\r\n')).toBeUndefined();
    expect(routeKeyOf('GET /twilio/streamer/x HTTP/1.1\r\n\r\n')).toBeUndefined();
    expect(routeKeyOf('\u0000\u0001garbage')).toBeUndefined();
  });

  it('a key names one of our workers only with our instance id and a slot number', () => {
    expect(slotOfKey('node-1.w3', 'node-1')).toBe(3);
    expect(slotOfKey('node-1.w0', 'node-1')).toBe(0);
    expect(slotOfKey('node-2.w3', 'node-1')).toBeUndefined();
    expect(slotOfKey('node-1', 'node-1')).toBeUndefined();
    expect(slotOfKey('node-1.wx', 'node-1')).toBeUndefined();
    expect(slotOfKey('node-1.w-1', 'node-1')).toBeUndefined();
    expect(slotOfKey('..', 'node-1')).toBeUndefined();
    expect(slotOfKey(undefined, 'node-1')).toBeUndefined();
  });
});

const children: ChildBridge[] = [];
afterEach(() => {
  for (const c of children.splice(0)) c.kill();
});

describe('--workers 2: keys that do not lead to a live worker of ours are served all the same', () => {
  it('a worker that does not exist, a forged key, another instance\'s key, a worker that just died', async () => {
    const b = await startChildBridge({ BRIDGE_INSTANCE_ID: 'node-1', BRIDGE_CALL_RECORDS: 'off', BRIDGE_WEBHOOK_RATE_PER_MIN: '0', BRIDGE_LOAD_THRESHOLD: 'off' }, ['--workers', '2']);
    children.push(b);
    const clip = await ulawClip('caller-barge-in.8k-ulaw.wav');
    const call = (path: string) => runSimulatedCall({ url: `${b.streamUrl}${path}`, audio: clip, fast: true, tailMs: 800, timeoutMs: 30_000, customParameters: { format: 'ulaw' } });
    for (const path of ['/node-1.w7', '/evil.w0', '/node-2.w1', '/node-1', '/node-1.w']) {
      const r = await call(path);
      expect([path, r.outcome]).toEqual([path, 'completed']);
    }
    // A stream whose key names a worker that was just killed finds another worker.
    const readyz = async () => (await (await fetch(`${b.url}/readyz`, { headers: { connection: 'close' } })).json()) as { pid: number; worker: number; routeKey: string };
    const w0 = await pollUntil(async () => {
      const r = await readyz();
      return r.worker === 0 ? r : undefined;
    }, 10_000, 20);
    expect(w0.routeKey).toBe('node-1.w0');
    process.kill(w0.pid, 'SIGKILL');
    await b.waitFor(new RegExp(`worker ${w0.pid} died`));
    const r = await call('/node-1.w0');
    expect(r.outcome).toBe('completed');
  });
});

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as AddressInfo;
  await new Promise((r) => srv.close(r));
  return port;
}

describe('--workers 2: the primary hands a connection over with every byte it was sent', () => {
  it('a webhook whose body comes after its head, while no worker is ready yet, is answered (its body not lost in the primary)', async () => {
    const port = await freePort();
    const starting = startChildBridge({ PORT: String(port), BRIDGE_CALL_RECORDS: 'off', BRIDGE_WEBHOOK_RATE_PER_MIN: '0', BRIDGE_LOAD_THRESHOLD: 'off', BRIDGE_HTTP_TIMEOUT_MS: '3000' }, ['--workers', '2']);
    starting.then((b) => children.push(b), () => undefined);
    // Connect as soon as the primary listens: its workers are still starting, so the primary
    // holds the connection (up to 10 s) while the body arrives.
    const socket = await pollUntil(
      () =>
        new Promise<ReturnType<typeof connect> | undefined>((resolve) => {
          const s = connect(port, '127.0.0.1');
          s.once('connect', () => resolve(s));
          s.once('error', () => resolve(undefined));
        }),
      30_000,
      10,
    );
    const body = form({ CallSid: callSid(), From: '+15551230000', To: '+15557650000' });
    let answer = '';
    socket.on('data', (d: Buffer) => (answer += d.toString('latin1')));
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    const bound = setTimeout(() => socket.destroy(), 20_000); // unanswered: fail with what came, not hang
    closed.then(() => clearTimeout(bound), () => undefined);
    socket.write(`POST /twilio/voice?format=ulaw HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`);
    await new Promise((r) => setTimeout(r, 100)); // a later TCP segment, as a slow or distant client sends it
    socket.write(body);
    await closed;
    const b = await starting;
    expect(answer.split('\r\n')[0], `${answer}\n${b.output()}`).toBe('HTTP/1.1 200 OK');
    expect(answer).toContain('<Stream url="');
  });
});
