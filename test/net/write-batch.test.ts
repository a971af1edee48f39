/**
 * Writes of one I/O batch leave together at its end (src/net/write-batch.ts), on real TCP
 * sockets on 127.0.0.1: held until the batch ends, then every socket's data arrives, in order,
 * with no timer and no further I/O needed; closing and destroyed sockets lose nothing or fail quietly.
 */
import { once } from 'node:events';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { MAX_HELD, WriteHold, corkableUnder } from '../../src/net/write-batch.js';

let server: Server | undefined;
const accepted: Socket[] = [];
afterEach(async () => {
  for (const s of accepted.splice(0)) s.destroy();
  if (server) await new Promise<void>((r) => server!.close(() => r()));
  server = undefined;
});

/** `n` connected pairs: [client side (we write), what the server side receives]. */
async function pairs(n: number): Promise<{ client: Socket; received: () => string; gotBytes: (k: number) => Promise<void> }[]> {
  const bufs: string[][] = [];
  const waiters: (() => void)[] = [];
  server = createServer((s) => {
    const i = accepted.push(s) - 1;
    bufs[i] = [];
    s.on('data', (d) => {
      bufs[i]!.push(d.toString());
      waiters.splice(0).forEach((w) => w());
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  const out = [];
  for (let i = 0; i < n; i++) {
    const client = connect(port, '127.0.0.1');
    client.setNoDelay(true);
    await once(client, 'connect');
    while (accepted.length <= i) await new Promise((r) => setImmediate(r));
    const received = () => bufs[i]!.join('');
    const gotBytes = async (k: number) => {
      while (received().length < k) await new Promise<void>((r) => waiters.push(r));
    };
    out.push({ client, received, gotBytes });
  }
  return out;
}

describe('WriteHold', () => {
  it("holds every socket's writes of one synchronous stretch and releases them all at the batch's end, in order", async () => {
    const ps = await pairs(3);
    const holds = ps.map((p) => new WriteHold(p.client));
    for (let k = 0; k < 4; k++) {
      ps.forEach((p, i) => {
        holds[i]!.hold();
        p.client.write(`s${i}m${k};`);
      });
    }
    // Nothing has left yet: all of it waits in the sockets' buffers.
    for (const p of ps) expect(p.client.writableLength).toBe(20);
    await new Promise((r) => setImmediate(r));
    for (const p of ps) expect(p.client.writableLength).toBe(0);
    await Promise.all(ps.map((p, i) => p.gotBytes(20).then(() => expect(p.received()).toBe(`s${i}m0;s${i}m1;s${i}m2;s${i}m3;`))));
  });

  it(`a batch is cut at ${MAX_HELD} sockets: their writes leave at once, the rest at the batch's end`, async () => {
    const ps = await pairs(MAX_HELD + 3);
    const holds = ps.map((p) => new WriteHold(p.client));
    ps.forEach((p, i) => {
      holds[i]!.hold();
      p.client.write('x');
    });
    // Still in the same synchronous stretch: the first MAX_HELD have been written, the last 3 wait.
    expect(ps.slice(0, MAX_HELD).every((p) => p.client.writableLength === 0)).toBe(true);
    expect(ps.slice(MAX_HELD).map((p) => p.client.writableLength)).toEqual([1, 1, 1]);
    await Promise.all(ps.map((p) => p.gotBytes(1)));
    expect(ps.every((p) => p.received() === 'x')).toBe(true);
  });

  it('a write from a timer leaves with no further I/O, and a hold after a batch was released is released by its own batch', async () => {
    const [p] = await pairs(1);
    const hold = new WriteHold(p!.client);
    setTimeout(() => {
      hold.hold();
      p!.client.write('a;', () => {
        // Called once the first batch is written: this hold belongs to a later batch.
        hold.hold();
        p!.client.write('b;');
      });
    }, 1);
    await p!.gotBytes(4);
    expect(p!.received()).toBe('a;b;');
  });

  it('a socket ended while held delivers its data; a destroyed one is released without a throw', async () => {
    const [a, b] = await pairs(2);
    const ha = new WriteHold(a!.client);
    const hb = new WriteHold(b!.client);
    ha.hold();
    a!.client.write('last words');
    a!.client.end();
    hb.hold();
    b!.client.write('never sent');
    b!.client.destroy();
    await a!.gotBytes(10);
    expect(a!.received()).toBe('last words');
    await new Promise((r) => setImmediate(r));
    expect(b!.client.destroyed).toBe(true);
  });

  it("a socket whose release throws does not keep another's writes back", async () => {
    const [p] = await pairs(1);
    const broken = new WriteHold({ cork() {}, uncork() { throw new Error('boom'); } });
    const good = new WriteHold(p!.client);
    broken.hold();
    good.hold();
    p!.client.write('still sent');
    await p!.gotBytes(10);
    expect(p!.received()).toBe('still sent');
  });

  it('corkableUnder finds the TCP socket under a connected ws WebSocket, both ends, and nothing under anything else', async () => {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await once(wss, 'listening');
    const serverSide = new Promise<WebSocket>((r) => wss.once('connection', r));
    const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as { port: number }).port}`);
    expect(corkableUnder(client)).toBeUndefined(); // not connected yet
    await once(client, 'open');
    const server = await serverSide;
    try {
      for (const ws of [client, server]) {
        const tcp = corkableUnder(ws);
        expect(tcp).toBe((ws as unknown as { _socket: unknown })._socket);
        expect(typeof tcp!.cork).toBe('function');
      }
      expect(corkableUnder({ send() {}, close() {}, bufferedAmount: 0 })).toBeUndefined();
      expect(corkableUnder(undefined)).toBeUndefined();
    } finally {
      client.terminate();
      await new Promise<void>((r) => wss.close(() => r()));
    }
  });

  it('without a socket (a client not yet connected) hold() does nothing', () => {
    const h = new WriteHold();
    expect(() => {
      h.hold();
      h.release();
    }).not.toThrow();
  });
});
