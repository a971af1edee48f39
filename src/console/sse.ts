/**
 * One Server-Sent Events response (https://html.spec.whatwg.org/multipage/server-sent-events.html):
 * `event: <name>\ndata: <json>\n\n`, a comment line every 15 s so proxies keep the stream
 * open, and a bound on what may wait unsent — a watcher that does not read is cut off
 * rather than grow the bridge's memory.
 */
import type { FastifyReply } from 'fastify';

const KEEPALIVE_MS = 15_000;
/** Unsent bytes beyond which a slow reader is dropped. */
const MAX_BUFFERED = 1 << 20;

export interface SseStream {
  send(event: string, data: unknown): void;
  end(): void;
  /** Resolves when the client went away or the stream was ended. */
  readonly closed: Promise<void>;
  readonly isClosed: boolean;
}

/** Takes over the reply (fastify no longer answers it) and opens the event stream. */
export function openSse(reply: FastifyReply): SseStream {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    connection: 'keep-alive',
    // nginx: pass events on as they come (https://nginx.org/en/docs/http/ngx_http_proxy_module.html#proxy_buffering).
    'x-accel-buffering': 'no',
  });
  res.write(': voice-bridge console\n\n');
  let closed = false;
  let resolveClosed!: () => void;
  const closedP = new Promise<void>((r) => (resolveClosed = r));
  const keepalive = setInterval(() => write(': ping\n\n'), KEEPALIVE_MS);
  keepalive.unref();
  const finish = () => {
    if (closed) return;
    closed = true;
    clearInterval(keepalive);
    resolveClosed();
  };
  res.on('close', finish);
  function write(text: string): void {
    if (closed) return;
    if (res.writableLength > MAX_BUFFERED) {
      res.destroy();
      finish();
      return;
    }
    res.write(text);
  }
  return {
    send(event, data) {
      write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    },
    end() {
      if (closed) return;
      res.end();
      finish();
    },
    closed: closedP,
    get isClosed() {
      return closed;
    },
  };
}
