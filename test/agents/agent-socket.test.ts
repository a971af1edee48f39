/**
 * The shared socket layer (src/agents/shared/) on its own, against a FakeServer on
 * 127.0.0.1: the one status/close-code table, the handshake, the frames of the
 * handshake's read, the liveness rule, backpressure, bounded close, and the retry
 * policy's backoff and quick-failure rule. The adapters' suites cover the same paths
 * through each provider.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { WebSocket } from 'ws';
import { AgentSocket, type AgentSocketOptions, type LostInfo } from '../../src/agents/shared/agent-socket.js';
import { RetryPolicy } from '../../src/agents/shared/retry-policy.js';
import { closeCodeOf, type SocketErrorRules } from '../../src/agents/shared/socket-errors.js';
import { CallerAudioHold } from '../../src/agents/shared/caller-audio-hold.js';
import { BridgeError } from '../../src/errors.js';
import { FakeServer, closeMidCall, stopAnswering } from '../fakes/fake-server.js';

const RULES: SocketErrorRules = { provider: 'test' };
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A server whose sockets answer 'hello' with 'ready' (the handshake) and are kept for the test. */
async function server(o: { ready?: boolean; autoPong?: boolean } = {}): Promise<{ fake: FakeServer; peers: { ws: WebSocket; socket: import('node:net').Socket }[] }> {
  const peers: { ws: WebSocket; socket: import('node:net').Socket }[] = [];
  const fake = await FakeServer.start({
    wss: { autoPong: o.autoPong ?? true },
    connection: (ws, _req, _url, socket) => {
      peers.push({ ws, socket });
      ws.on('message', (d) => {
        if (d.toString() === 'hello' && o.ready !== false) {
          // The handshake's answer and a first frame in the same write: one read at the client.
          (socket as unknown as { write(b: Buffer): void }).write(Buffer.concat([frame('ready'), frame('first')]));
        }
      });
    },
  });
  cleanups.push(() => fake.close());
  return { fake, peers };
}

/** An unmasked server text frame (short payloads only). */
function frame(text: string): Buffer {
  const p = Buffer.from(text);
  return Buffer.concat([Buffer.from([0x81, p.length]), p]);
}

function options(fake: FakeServer, more: Partial<AgentSocketOptions> = {}): AgentSocketOptions {
  return {
    rules: RULES,
    url: fake.url('/ws'),
    timeoutMs: 2000,
    signal: AbortSignal.timeout(5000),
    onOpen: (s) => s.send('hello'),
    handshake: (data) => (data.toString() === 'ready' ? true : undefined),
    pingIntervalMs: 100,
    ...more,
  };
}

async function refusedWith(status: number): Promise<BridgeError> {
  const { fake } = await server();
  fake.refuseNext(status);
  return (await AgentSocket.open(options(fake)).catch((e: unknown) => e)) as BridgeError;
}

describe('socket-errors: one table for every provider', () => {
  it.each([
    [401, 'BRIDGE_ERR_AGENT_AUTH', false],
    [403, 'BRIDGE_ERR_AGENT_AUTH', false],
    [404, 'BRIDGE_ERR_AGENT_CONFIG', false],
    [400, 'BRIDGE_ERR_AGENT_CONFIG', false],
    [429, 'BRIDGE_ERR_AGENT_RATE_LIMIT', true],
    [500, 'BRIDGE_ERR_AGENT_SERVICE', true],
    [503, 'BRIDGE_ERR_AGENT_SERVICE', true],
  ])('HTTP %i on the upgrade → %s (retryable: %s)', async (status, code, retryable) => {
    const err = await refusedWith(status);
    expect(err).toBeInstanceOf(BridgeError);
    expect([err.code, err.retryable]).toEqual([code, retryable]);
    expect(err.message).toContain(`HTTP ${status}`);
  });

  it('nothing listening is AGENT_CONNECT; a handshake that never completes is AGENT_TIMEOUT within timeoutMs; an aborted signal is AGENT_TIMEOUT', async () => {
    const { fake } = await server({ ready: false });
    const nobody = (await AgentSocket.open({ ...options(fake), url: 'ws://127.0.0.1:1/ws' }).catch((e: unknown) => e)) as BridgeError;
    expect(nobody.code).toBe('BRIDGE_ERR_AGENT_CONNECT');
    const t0 = Date.now();
    const slow = (await AgentSocket.open({ ...options(fake), timeoutMs: 200, awaiting: 'ready' }).catch((e: unknown) => e)) as BridgeError;
    expect(slow.code).toBe('BRIDGE_ERR_AGENT_TIMEOUT');
    expect(slow.message).toMatch(/no ready .* within 200 ms/);
    expect(Date.now() - t0).toBeLessThan(10_000); // not the 30 s of a missing bound; loose for a loaded machine
    const aborted = (await AgentSocket.open({ ...options(fake), signal: AbortSignal.abort(new Error('call ended')) }).catch((e: unknown) => e)) as BridgeError;
    expect(aborted.code).toBe('BRIDGE_ERR_AGENT_TIMEOUT');
  });

  it('a close during the handshake carries its code; a provider rule overrides the table', async () => {
    const fake = await FakeServer.start({ connection: (ws) => ws.on('message', () => ws.close(4000, 'beta_api_shape_disabled')) });
    cleanups.push(() => fake.close());
    const plain = (await AgentSocket.open(options(fake)).catch((e: unknown) => e)) as BridgeError;
    expect([plain.code, closeCodeOf(plain)]).toEqual(['BRIDGE_ERR_AGENT_CONNECT', 4000]);
    const rules: SocketErrorRules = { provider: 'test', close: (code, _r, phase) => (phase === 'handshake' && code === 4000 ? 'BRIDGE_ERR_AGENT_CONFIG' : undefined) };
    const own = (await AgentSocket.open({ ...options(fake), rules }).catch((e: unknown) => e)) as BridgeError;
    expect(own.code).toBe('BRIDGE_ERR_AGENT_CONFIG');
  });
});

describe('AgentSocket', () => {
  it("frames in the handshake's read reach a listener attached after open() resolves", async () => {
    const { fake } = await server();
    const sock = await AgentSocket.open(options(fake));
    const got: string[] = [];
    sock.on('message', (d) => got.push(d.toString()));
    await new Promise<void>((resolve) => sock.once('message', () => resolve()));
    expect(got).toEqual(['first']);
    await sock.close();
  });

  it("an unsolicited close is 'lost' once, with the table's error and the close code", async () => {
    const { fake, peers } = await server();
    const sock = await AgentSocket.open(options(fake));
    const lost: [BridgeError, LostInfo][] = [];
    sock.on('lost', (e, i) => lost.push([e, i]));
    closeMidCall(peers[0]!.ws, 1011, 'boom');
    await new Promise<void>((resolve) => sock.once('lost', () => resolve()));
    sock.fail(new BridgeError('BRIDGE_ERR_AGENT_CLOSED', 'again')); // after the loss: nothing more
    await sock.close();
    expect(lost.map(([e, i]) => [e.code, i.code, i.resumable])).toEqual([['BRIDGE_ERR_AGENT_SERVICE', 1011, true]]);
  });

  it('a peer that stops answering (no frames, no pongs) is lost as AGENT_TIMEOUT after silenceLimitMs', async () => {
    const { fake, peers } = await server();
    const sock = await AgentSocket.open(options(fake, { pingIntervalMs: 50, silenceLimitMs: 200 }));
    const t0 = Date.now();
    stopAnswering(peers[0]!.socket);
    const [err, info] = await new Promise<[BridgeError, LostInfo]>((resolve) => sock.once('lost', (e, i) => resolve([e, i])));
    expect([err.code, info.code, info.resumable]).toEqual(['BRIDGE_ERR_AGENT_TIMEOUT', undefined, true]);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(150);
    await sock.close();
  });

  it("media is dropped while the peer does not read (over maxBufferedBytes); control frames are still queued", async () => {
    const { fake, peers } = await server();
    const sock = await AgentSocket.open(options(fake, { maxBufferedBytes: 64 * 1024, pingIntervalMs: 60_000 }));
    stopAnswering(peers[0]!.socket);
    const chunk = 'x'.repeat(16 * 1024);
    const results = new Set<string>();
    for (let i = 0; i < 2000 && !results.has('dropped'); i++) results.add(sock.send(chunk, 'media'));
    expect(results.has('dropped')).toBe(true);
    expect(sock.congested).toBe(true);
    expect(sock.send('control', 'control')).toBe('sent');
    sock.terminate();
    expect(sock.send('after', 'control')).toBe('closed');
  });

  it('media sent faster than maxBufferedBytes in one synchronous stretch to a reading peer is not dropped (the held batch is not congestion)', async () => {
    const { fake, peers } = await server();
    const sock = await AgentSocket.open(options(fake, { maxBufferedBytes: 16 * 1024, pingIntervalMs: 60_000 }));
    let bytes = 0;
    peers[0]!.ws.on('message', (d: Buffer) => (bytes += d.length));
    const chunk = 'x'.repeat(4 * 1024);
    const results: string[] = [];
    for (let i = 0; i < 16; i++) results.push(sock.send(chunk, 'media')); // 64 KiB, 4x the bound, no turn of the loop between
    expect(results.filter((r) => r !== 'sent')).toEqual([]);
    while (bytes < 16 * chunk.length) await new Promise((r) => peers[0]!.ws.once('message', r));
    expect(bytes).toBe(16 * chunk.length);
    await sock.close();
  });

  it("sends of one synchronous stretch are held in the socket and leave together at the batch's end, in order", async () => {
    const { fake, peers } = await server();
    const sock = await AgentSocket.open(options(fake));
    const got: string[] = [];
    peers[0]!.ws.on('message', (d) => got.push(d.toString()));
    expect(sock.send('one', 'media')).toBe('sent');
    expect(sock.send('two', 'media')).toBe('sent');
    expect(sock.bufferedAmount).toBeGreaterThan(0); // still ours: not written yet (src/net/write-batch.ts)
    await new Promise((r) => setImmediate(r));
    expect(sock.bufferedAmount).toBe(0);
    while (got.length < 2) await new Promise((r) => peers[0]!.ws.once('message', r));
    expect(got).toEqual(['one', 'two']);
    await sock.close();
  });

  it('close() is bounded when the peer never finishes the close handshake, and emits no lost', async () => {
    const { fake, peers } = await server();
    const sock = await AgentSocket.open(options(fake));
    let lost = 0;
    sock.on('lost', () => lost++);
    stopAnswering(peers[0]!.socket);
    const t0 = Date.now();
    await sock.close(1000, 'bye', 200);
    expect(Date.now() - t0).toBeLessThan(10_000); // ws alone would wait 30 s; loose for a loaded machine
    expect(lost).toBe(0);
    expect(sock.isOpen).toBe(false);
  });
});

describe('RetryPolicy and CallerAudioHold', () => {
  it('backoff: the first attempt at once, then base·2^(n-2) up to the cap; only retryable errors are retried', async () => {
    const p = new RetryPolicy({ attempts: 5, baseMs: 10, maxMs: 25 });
    expect([1, 2, 3, 4, 5].map((n) => p.delayMs(n))).toEqual([0, 10, 20, 25, 25]);
    const seen: number[] = [];
    const r = await p.run(async (n) => {
      seen.push(n);
      throw new BridgeError(n < 2 ? 'BRIDGE_ERR_AGENT_SERVICE' : 'BRIDGE_ERR_AGENT_AUTH', `attempt ${n}`);
    }, new AbortController().signal);
    expect(seen).toEqual([1, 2]);
    expect(r).toMatchObject({ ok: false, attempts: 2, aborted: false, error: { code: 'BRIDGE_ERR_AGENT_AUTH' } });
  });

  it('quick failures: losses right after each recovery count against one budget; a stable session resets it', () => {
    const p = new RetryPolicy({ attempts: 2, stableMs: 60_000 });
    expect(p.lost()).toBe(true); // first loss: never recovered before
    p.recovered();
    expect(p.lost()).toBe(true); // quick 1
    p.recovered();
    expect(p.lost()).toBe(false); // quick 2: give up
    const stable = new RetryPolicy({ attempts: 1, stableMs: 0 });
    stable.recovered();
    expect(stable.lost()).toBe(true);
    expect(new RetryPolicy({ attempts: 0 }).lost()).toBe(false);
  });

  it('the hold keeps order, drops the oldest audio over its bound (never the newest), and bounds other input by count', () => {
    const h = new CallerAudioHold<string>({ maxMs: 60, maxOther: 1 });
    expect(h.audio('a1', 20)).toBe(0);
    expect(h.other('dtmf 5')).toBe(true);
    expect(h.other('dtmf 6')).toBe(false);
    h.audio('a2', 20);
    h.audio('a3', 20);
    expect(h.audio('a4', 20)).toBe(20);
    expect(h.take().map((e) => e.item)).toEqual(['dtmf 5', 'a2', 'a3', 'a4']);
    expect(h.droppedMs).toBe(20);
    expect(h.audio('big', 500)).toBe(0); // alone, the newest is kept whatever its length
    expect(h.heldMs).toBe(500);
  });
});
