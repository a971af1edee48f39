/**
 * Sticky routing for `start --workers N`: the primary owns the listening socket,
 * reads each connection's request head, and hands the socket to a worker over IPC
 * (the standard sticky-session technique for node:cluster).
 *
 * ```text
 *   client ──TCP──► primary: read the head (≤ 16 KiB, ≤ 10 s) ─┬─ /twilio/stream/<instance>.w<slot>  ─► worker <slot> (if alive and ready)
 *                                                             ├─ X-Voice-Bridge-Route: <same form>  ─► worker <slot>
 *                                                             └─ anything else, or a miss            ─► next ready worker (round robin)
 *   worker: emit('connection', socket) on its HTTP server, replay the head bytes, resume
 * ```
 *
 * The routing key ends the stream URL the voice webhook put in its TwiML, so the
 * stream reaches the worker that pre-connected the call's agent. A key for another
 * instance, a dead worker, or a forged one is a miss: the call is served by the next
 * worker, never refused for its key, never sent outside this process group.
 * After hand-over the primary is out of the data path: the socket's file descriptor
 * belongs to the worker.
 */
import type { Worker } from 'node:cluster';
import type { Server } from 'node:http';
import { createServer, type Server as NetServer, type Socket } from 'node:net';
import { ErrorCodes, PROBLEM_CONTENT_TYPE, problemDetails } from './errors.js';

const NO_WORKER_BODY = JSON.stringify(problemDetails(ErrorCodes.DRAINING, 'no worker is ready'));

/** IPC message types of the routing. */
export const RoutingMessages = {
  /** primary → worker: a connection (the socket travels as the message's handle). */
  CONNECTION: 'voice-bridge:connection',
  /** worker → primary: its HTTP server takes connections. */
  READY: 'voice-bridge:ready',
} as const;

/** The header an instance sets when it forwards a call command to a worker of another instance. */
export const ROUTE_HEADER = 'x-voice-bridge-route';

const MAX_HEAD_BYTES = 16 * 1024;
const HEAD_TIMEOUT_MS = 10_000;
/** How long a connection waits for a ready worker (start-up, all restarting) before a 503. */
const NO_WORKER_WAIT_MS = 10_000;

/** The routing key of a request head: the stream path's last segment, or the route header. */
export function routeKeyOf(head: string): string | undefined {
  const lineEnd = head.indexOf('\r\n');
  const requestLine = lineEnd === -1 ? head : head.slice(0, lineEnd);
  const m = /^[A-Z]+ (?:[a-z]+:\/\/[^/\s]*)?\/twilio\/stream\/([A-Za-z0-9_.-]{1,80})(?:[?#\s]|$)/.exec(requestLine);
  if (m) return m[1];
  const h = /\r\nx-voice-bridge-route:[ \t]*([A-Za-z0-9_.-]{1,80})[ \t]*\r\n/i.exec(head);
  return h?.[1];
}

/** `<instance>.w<slot>` → slot, when the instance is ours. */
export function slotOfKey(key: string | undefined, instanceId: string): number | undefined {
  if (key === undefined) return undefined;
  const dot = key.lastIndexOf('.w');
  if (dot <= 0 || key.slice(0, dot) !== instanceId) return undefined;
  const slot = Number(key.slice(dot + 2));
  return Number.isInteger(slot) && slot >= 0 ? slot : undefined;
}

export interface RouterStats {
  routedByKey: number;
  /** Keys that named a worker of ours that is not there (dead, restarting) or another instance. */
  keyMisses: number;
  roundRobin: number;
  refused: number;
}

/**
 * Stop the socket's handle from reading. `pause()` alone only stops 'data' events: the
 * handle goes on reading into the stream's buffer (up to its high-water mark), and
 * bytes read into this process after the head — a POST body that came in a later
 * segment — would be lost when the descriptor moves to a worker (node sets the sent
 * handle's `onread` to a no-op). With the handle stopped they stay in the kernel's
 * socket buffer, where the worker's reads find them. `_handle` is node's internal
 * libuv wrapper (stable since node 0.x; child_process itself relies on it).
 */
function stopReading(socket: Socket): void {
  const h = (socket as unknown as { _handle?: { reading?: boolean; readStop?: () => number } | null })._handle;
  if (h?.readStop) {
    h.reading = false;
    h.readStop();
  }
}

/** The primary's side: listens, and hands each connection to a worker. */
export class ConnectionRouter {
  readonly server: NetServer;
  readonly stats: RouterStats = { routedByKey: 0, keyMisses: 0, roundRobin: 0, refused: 0 };
  readonly #instanceId: string;
  /** slot → ready worker. */
  readonly #ready = new Map<number, Worker>();
  #rr = 0;
  readonly #waiting = new Set<() => void>();

  constructor(instanceId: string) {
    this.#instanceId = instanceId;
    this.server = createServer({ pauseOnConnect: true }, (socket) => this.#onConnection(socket));
  }

  listen(port: number, host: string): Promise<{ address: string; port: number }> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        const a = this.server.address() as { address: string; port: number; family: string };
        const h = a.family === 'IPv6' ? `[${a.address}]` : a.address;
        resolve({ address: `http://${h}:${a.port}`, port: a.port });
      });
    });
  }

  /** A worker said it is ready (or was restarted into this slot). */
  setReady(slot: number, w: Worker): void {
    this.#ready.set(slot, w);
    for (const wake of [...this.#waiting]) wake();
  }

  /** A worker is gone: no more connections to it. */
  remove(w: Worker): void {
    for (const [slot, x] of this.#ready) if (x === w) this.#ready.delete(slot);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  #onConnection(socket: Socket): void {
    const chunks: Buffer[] = [];
    let size = 0;
    const timer = setTimeout(() => socket.destroy(), HEAD_TIMEOUT_MS);
    const onData = (d: Buffer) => {
      chunks.push(d);
      size += d.length;
      const buf = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1 && size < MAX_HEAD_BYTES) return;
      // The whole head (or as much as a head may be): stop reading; what was read goes with the socket.
      socket.off('data', onData);
      socket.pause();
      clearTimeout(timer);
      let more: Buffer | null;
      const all = [buf];
      while ((more = socket.read() as Buffer | null) !== null) all.push(more);
      // After the drain: a read() that finds the buffer empty starts the handle again.
      stopReading(socket);
      void this.#handOver(socket, all.length === 1 ? buf : Buffer.concat(all));
    };
    socket.on('data', onData);
    socket.on('error', () => socket.destroy());
    socket.once('close', () => clearTimeout(timer)); // gone before its head was complete
    socket.resume();
  }

  async #handOver(socket: Socket, head: Buffer): Promise<void> {
    const key = routeKeyOf(head.toString('latin1', 0, Math.min(head.length, MAX_HEAD_BYTES)));
    const slot = slotOfKey(key, this.#instanceId);
    const deadline = Date.now() + NO_WORKER_WAIT_MS;
    for (;;) {
      if (socket.destroyed) return;
      let w = slot === undefined ? undefined : this.#ready.get(slot);
      if (w?.isConnected()) this.stats.routedByKey++;
      else {
        if (key !== undefined) this.stats.keyMisses++;
        w = this.#next();
        if (w) this.stats.roundRobin++;
      }
      if (w) {
        try {
          w.send({ type: RoutingMessages.CONNECTION, head: head.toString('base64') }, socket, { keepOpen: false });
          return;
        } catch {
          this.remove(w); // gone between the check and the send: try another
          continue;
        }
      }
      if (Date.now() >= deadline) break;
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, Math.max(1, deadline - Date.now()));
        function done() {
          clearTimeout(t);
          waiting.delete(done);
          resolve();
        }
        const waiting = this.#waiting;
        waiting.add(done);
      });
    }
    this.stats.refused++;
    // The same problem+json body the workers' fastify sends (src/errors.ts).
    socket.end(`HTTP/1.1 503 Service Unavailable\r\nContent-Type: ${PROBLEM_CONTENT_TYPE}\r\nConnection: close\r\n\r\n${NO_WORKER_BODY}`);
  }

  #next(): Worker | undefined {
    const ws = [...this.#ready.values()].filter((w) => w.isConnected());
    if (ws.length === 0) return undefined;
    return ws[this.#rr++ % ws.length];
  }
}

/**
 * The worker's side: connections handed over by the primary go into `server` as if
 * it had accepted them. Returns a function that removes the listener.
 */
export function acceptHandedConnections(server: Server): () => void {
  const onMessage = (m: { type?: string; head?: string } | null, handle: unknown) => {
    if (m?.type !== RoutingMessages.CONNECTION || !handle) return;
    const socket = handle as Socket;
    server.emit('connection', socket);
    // The head the primary read: the HTTP parser sees it first, then the socket's own bytes.
    if (m.head) socket.emit('data', Buffer.from(m.head, 'base64'));
    socket.resume();
  };
  process.on('message', onMessage);
  return () => process.off('message', onMessage);
}
