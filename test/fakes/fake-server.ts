/**
 * The base every provider fake stands on: an HTTP server on 127.0.0.1:0 that upgrades
 * WebSockets, and the fault injection the agent contract asks of each fake
 * (agent-contract.ts `fault`) done one way:
 *
 * - refuse-next: the next upgrade(s) are answered with an HTTP status instead of 101
 *   (`refuseNext(status, count)`, or every one with `refuseAll(status)`); every refusal,
 *   injected or the fake's own (a wrong key, an unknown agent), is listed in `refused`.
 * - slow handshake: `delayNextUpgrade(ms)` answers the next upgrade only after `ms`.
 * - hang: `hangUpgrades(true)` takes the TCP connection and never answers the upgrade.
 * - stop-answering: `stopAnswering(ws)` stops reading the socket — no frames, no pongs,
 *   nothing in return — as a peer that hangs does.
 * - close-mid-call: `closeMidCall(ws, code, reason)`, a close frame from the service.
 * - garbage is each protocol's own (what is malformed depends on the wire format).
 *
 * A fake says what it accepts with `upgrade` (undefined: accept, else the refusal) and
 * serves accepted sockets with `connection`; `http` serves plain requests (default 404).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocketServer, type ServerOptions, type WebSocket } from 'ws';

export interface Refusal {
  readonly status: number;
  readonly text?: string;
  readonly body?: string;
  readonly contentType?: string;
}

export interface FakeServerOptions {
  /** Decides an upgrade the injected faults let through: undefined accepts it. */
  upgrade?(req: IncomingMessage, url: URL, socket: Socket): Refusal | undefined | 'handled';
  /** An accepted socket. */
  connection(ws: WebSocket, req: IncomingMessage, url: URL, socket: Socket): void;
  /** Plain HTTP requests (REST endpoints); default 404. */
  http?(req: IncomingMessage, res: ServerResponse): void;
  /** ws server options (autoPong, maxPayload…); noServer is always set. */
  wss?: Omit<ServerOptions, 'noServer' | 'server' | 'port'>;
}

const REASONS: Record<number, string> = { 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 429: 'Too Many Requests', 500: 'Internal Server Error', 503: 'Service Unavailable' };

export class FakeServer {
  readonly port: number;
  /** HTTP statuses of every refused upgrade, in order. */
  readonly refused: number[] = [];
  readonly #http: Server;
  readonly #wss: WebSocketServer;
  readonly #queue: Refusal[] = [];
  #all: Refusal | undefined;
  #hang = false;
  #delayMs = 0;
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #hung = new Set<Socket>();

  private constructor(http: Server, wss: WebSocketServer, o: FakeServerOptions) {
    this.#http = http;
    this.#wss = wss;
    this.port = (http.address() as AddressInfo).port;
    const onUpgrade = (req: IncomingMessage, socket: Socket, head: Buffer): void => {
      if (this.#delayMs > 0) {
        const t = setTimeout(() => {
          this.#timers.delete(t);
          if (!socket.destroyed) onUpgrade(req, socket, head);
        }, this.#delayMs);
        this.#timers.add(t);
        this.#delayMs = 0;
        return;
      }
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      if (this.#hang) {
        this.#hung.add(socket);
        return;
      }
      const r = this.#queue.shift() ?? this.#all ?? o.upgrade?.(req, url, socket);
      if (r === 'handled') return;
      if (r !== undefined) {
        this.refuse(socket, r);
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws) => o.connection(ws, req, url, socket));
    };
    http.on('upgrade', onUpgrade);
  }

  static async start(o: FakeServerOptions): Promise<FakeServer> {
    const http = createServer((req, res) => (o.http ? o.http(req, res) : res.writeHead(404).end()));
    const wss = new WebSocketServer({ ...o.wss, noServer: true });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    return new FakeServer(http, wss, o);
  }

  /** ws://127.0.0.1:port + path */
  url(path: string): string {
    return `ws://127.0.0.1:${this.port}${path}`;
  }

  get httpUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Fault: the next `count` upgrades are refused with `status`. */
  refuseNext(status: number | Refusal, count = 1): void {
    for (let i = 0; i < count; i++) this.#queue.push(typeof status === 'number' ? { status } : status);
  }

  /** Fault: every upgrade is refused with `status` (undefined: none). */
  refuseAll(status: number | Refusal | undefined): void {
    this.#all = typeof status === 'number' ? { status } : status;
  }

  /** Fault: the next upgrade is answered only after `ms` (a slow handshake). */
  delayNextUpgrade(ms: number): void {
    this.#delayMs = ms;
  }

  /** Fault: upgrades are taken at the TCP level and never answered (false: normal again). */
  hangUpgrades(on: boolean): void {
    this.#hang = on;
  }

  /** Answers an upgrade request with an HTTP error instead of 101 (counted in `refused`). */
  refuse(socket: Socket, r: Refusal): void {
    this.refused.push(r.status);
    const body = r.body ?? '';
    const type = body ? `Content-Type: ${r.contentType ?? 'application/json'}\r\n` : '';
    socket.end(`HTTP/1.1 ${r.status} ${r.text ?? REASONS[r.status] ?? 'Refused'}\r\n${type}Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  }

  get clients(): ReadonlySet<WebSocket> {
    return this.#wss.clients;
  }

  /** Terminates every socket and closes the server. */
  async close(): Promise<void> {
    for (const t of this.#timers) clearTimeout(t);
    for (const c of this.#wss.clients) c.terminate();
    for (const s of this.#hung) s.destroy();
    await new Promise<void>((resolve) => this.#wss.close(() => resolve()));
    this.#http.closeAllConnections();
    await new Promise<void>((resolve) => this.#http.close(() => resolve()));
  }
}

/** Fault: the peer hangs — its socket is not read any more (no frames, no pongs, nothing sent back). */
export function stopAnswering(socket: Socket): void {
  socket.pause();
}

/**
 * Fault: the service's process stops reading its socket (`reading` false) — its receive buffer
 * fills, then the client's send buffer, then the client's own bound — or reads again.
 */
export function setReading(ws: WebSocket, reading: boolean): void {
  const tcp = (ws as unknown as { _socket?: Socket })._socket;
  if (!tcp) return;
  if (reading) tcp.resume();
  else tcp.pause();
}

/** Fault: the service closes the session mid-call. */
export function closeMidCall(ws: WebSocket, code = 1011, reason = 'Internal error'): void {
  if (ws.readyState === ws.OPEN) ws.close(code, reason);
}
