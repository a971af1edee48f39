/**
 * A scripted server on the bridge's side of a Twilio Media Stream, for testing
 * the simulator: it parses what the simulator sends with the bridge's own parser
 * (src/twilio/messages.ts), records each message with its arrival time, and lets
 * a test react to messages with the bridge's builders (buildMedia/buildMark/buildClear).
 */
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { buildClear, buildMark, buildMedia, parseTwilioMessage, type TwilioMessage } from '../../src/twilio/messages.js';

export interface Received {
  /** performance.now() at arrival. */
  at: number;
  raw: string;
  message: TwilioMessage;
}

export interface ScriptedPeer {
  ws: WebSocket;
  req: IncomingMessage;
  received: Received[];
  streamSid?: string;
  /** ms since `start` arrived. */
  sinceStart(): number;
  startAt?: number;
  sendAudio(bytes: Uint8Array): void;
  sendMark(name: string): void;
  sendClear(): void;
}

export interface ScriptedServer {
  url: string;
  port: number;
  peers: ScriptedPeer[];
  /** Messages that failed the bridge's parser (should stay empty). */
  parseFailures: string[];
  close(): Promise<void>;
}

export async function startScriptedServer(
  onMessage: (peer: ScriptedPeer, message: TwilioMessage) => void,
  options: { verify?: (req: IncomingMessage) => boolean; path?: string } = {},
): Promise<ScriptedServer> {
  const path = options.path ?? '/twilio/stream';
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    path,
    perMessageDeflate: false,
    verifyClient: options.verify ? (info, cb) => (options.verify!(info.req) ? cb(true) : cb(false, 403, 'Forbidden')) : undefined,
  });
  await new Promise<void>((resolve, reject) => {
    wss.once('listening', resolve);
    wss.once('error', reject);
  });
  const port = (wss.address() as AddressInfo).port;
  const server: ScriptedServer = {
    url: `ws://127.0.0.1:${port}${path}`,
    port,
    peers: [],
    parseFailures: [],
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => resolve());
      }),
  };
  wss.on('connection', (ws, req) => {
    const peer: ScriptedPeer = {
      ws,
      req,
      received: [],
      sinceStart: () => (peer.startAt === undefined ? 0 : performance.now() - peer.startAt),
      sendAudio: (bytes) => ws.send(buildMedia(peer.streamSid!, Buffer.from(bytes).toString('base64'))),
      sendMark: (name) => ws.send(buildMark(peer.streamSid!, name)),
      sendClear: () => ws.send(buildClear(peer.streamSid!)),
    };
    server.peers.push(peer);
    ws.on('message', (data, isBinary) => {
      const at = performance.now();
      const raw = isBinary ? '<binary>' : String(data);
      const parsed = parseTwilioMessage(raw);
      if (!parsed.ok) {
        server.parseFailures.push(`${parsed.code}: ${parsed.detail}: ${raw.slice(0, 120)}`);
        return;
      }
      const message = parsed.message;
      if (message.event === 'start') {
        peer.streamSid = message.streamSid;
        peer.startAt = at;
      }
      peer.received.push({ at, raw, message });
      onMessage(peer, message);
    });
  });
  return server;
}

/** μ-law bytes of one value (a recognisable "tone" for timeline checks; 0xFF is silence). */
export function pattern(value: number, bytes: number): Uint8Array {
  return new Uint8Array(bytes).fill(value);
}
