/**
 * Slow HTTP clients are bounded (real bridge processes, raw TCP clients):
 * - a client that trickles its request is cut after BRIDGE_HTTP_TIMEOUT_MS (before:
 *   fastify's requestTimeout 0 left it to Node's 60 s header timeout, checked every 30 s);
 * - after SIGTERM, one trickling client and one idle keep-alive connection do not hold
 *   the process: it exits within the drain timeout plus a small bound (before: it waited
 *   for the trickling client, through a second SIGTERM too).
 */
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startChildBridge, type ChildBridge } from './child-bridge.js';

const children: ChildBridge[] = [];
const sockets: Socket[] = [];
afterEach(() => {
  for (const s of sockets.splice(0)) s.destroy();
  for (const c of children.splice(0)) c.kill();
});

/** Opens a connection and sends a request head one byte every `everyMs`, forever; resolves the socket once connected. */
async function trickle(port: number, everyMs = 300): Promise<{ socket: Socket; closed: Promise<number> }> {
  const socket = connect(port, '127.0.0.1');
  sockets.push(socket);
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const started = Date.now();
  const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now() - started)));
  socket.on('error', () => undefined);
  const head = 'POST /twilio/voice HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nX-Slow: ' + 'a'.repeat(10_000);
  let i = 0;
  const t = setInterval(() => {
    if (socket.destroyed) return clearInterval(t);
    socket.write(head[i++ % head.length]!);
  }, everyMs);
  socket.once('close', () => clearInterval(t));
  return { socket, closed };
}

const within = <T>(p: Promise<T>, ms: number, what: string) => Promise.race([p, new Promise<never>((_, rej) => setTimeout(() => rej(new Error(`${what}: not within ${ms} ms`)), ms))]);

describe('slow HTTP clients are bounded', () => {
  it('a client trickling its request head is cut after BRIDGE_HTTP_TIMEOUT_MS', async () => {
    const b = await startChildBridge({ BRIDGE_HTTP_TIMEOUT_MS: '2000' });
    children.push(b);
    const { closed } = await trickle(b.port);
    const ms = await within(closed, 20_000, 'the bridge closing the trickling connection');
    expect(ms).toBeGreaterThanOrEqual(1900);
    // The bridge itself is fine.
    expect((await fetch(`${b.url}/healthz`)).status).toBe(200);
  });

  it('SIGTERM with a trickling client and an idle keep-alive connection: exit 0 within the drain timeout plus a small bound', async () => {
    // A long HTTP timeout: only the shutdown can explain the exit.
    const b = await startChildBridge({ BRIDGE_HTTP_TIMEOUT_MS: '300000', BRIDGE_DRAIN_TIMEOUT_MS: '1000' });
    children.push(b);
    await trickle(b.port);
    const idle = connect(b.port, '127.0.0.1');
    sockets.push(idle);
    idle.on('error', () => undefined);
    await new Promise<void>((resolve) => idle.once('connect', resolve));
    idle.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n');
    await new Promise<void>((resolve) => idle.once('data', () => resolve()));
    const t0 = Date.now();
    b.proc.kill('SIGTERM');
    const exit = await within(b.exited, 15_000, 'exit after SIGTERM');
    expect(exit).toEqual({ code: 0, signal: null });
    expect(Date.now() - t0).toBeLessThan(1000 + 8000);
  });
});
