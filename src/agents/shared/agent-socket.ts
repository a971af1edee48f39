/**
 * AgentSocket: one WebSocket to an AI agent service, from upgrade to close — the one
 * socket lifecycle every adapter uses. An adapter brings its URL and headers, its
 * handshake (what it sends first, which message means "ready") and its own error
 * rules; the socket does the rest the same way for every provider.
 *
 * ```text
 *   open():  upgrade (headers) ──► onOpen(): the provider's first message(s)
 *            ──► frames to handshake() until it says done (or fails) ──► resolved
 *            upgrade + handshake bounded by timeoutMs and the caller's AbortSignal;
 *            a refusal is a typed BridgeError (socket-errors.ts)
 *   open:    'message' per frame. Frames (and a close) that arrive in the same read as
 *            the handshake's last one are delivered one macrotask later, once the opener
 *            has taken the socket (ws parses a read in one synchronous loop).
 *            Liveness: a ping every pingIntervalMs; nothing at all (frame or pong) for
 *            silenceLimitMs → the peer is dead.
 *            send(): 'media' is dropped while more than maxBufferedBytes wait unsent
 *            (a peer that stopped reading); 'control' is always queued.
 *   lost:    a close we did not ask for, a dead peer, or fail() ──► 'lost' (BridgeError) once
 *   close(): our close frame; terminate() if the peer has not finished the close in time
 * ```
 */
import { randomFillSync } from 'node:crypto';
import { EventEmitter } from 'node:events';
import WebSocket from 'ws';
import { closeReason } from '../../close-reason.js';
import { BridgeError, ErrorCodes } from '../../errors.js';
import { abortError, closeError, networkError, upgradeError, type SocketErrorRules } from './socket-errors.js';
import { WriteHold, corkableUnder } from '../../net/write-batch.js';

/** What a handshake step says: true = ready, a BridgeError = refused, undefined = keep waiting. */
export type HandshakeStep = true | BridgeError | undefined;

export interface AgentSocketOptions {
  readonly rules: SocketErrorRules;
  readonly url: string | URL;
  /** The URL as messages may show it (never a key). Default: scheme, host and path of `url`. */
  readonly safeUrl?: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly origin?: string;
  /** Bounds the upgrade and the handshake together. */
  readonly timeoutMs: number;
  readonly signal: AbortSignal;
  /** Once the upgrade is done: send what the provider expects first (setup, session.update…). */
  readonly onOpen?: (socket: AgentSocket) => void;
  /** Each frame until the handshake is done. Absent: the upgrade alone opens the socket. */
  readonly handshake?: (data: Buffer, isBinary: boolean, socket: AgentSocket) => HandshakeStep;
  /** What the handshake waits for (for the timeout message), e.g. 'setupComplete'. */
  readonly awaiting?: string;
  readonly pingIntervalMs: number;
  /** Nothing received for this long means the peer is dead. Default: one ping interval. */
  readonly silenceLimitMs?: number;
  /** Largest frame taken; ws closes the socket (1009) above it. Default 8 MiB. */
  readonly maxPayloadBytes?: number;
  /** 'media' sends are dropped while more than this waits unsent. Default 1 MiB. */
  readonly maxBufferedBytes?: number;
  /**
   * The adapter sends binary frames from buffers it reuses: masks are then random and
   * never all-zero, so ws copies the frame (see zeroMask below for the text-only case).
   */
  readonly reusesBinaryBuffers?: boolean;
}

export interface LostInfo {
  /** The close code, or undefined when we dropped the socket (a dead peer, fail()). */
  readonly code: number | undefined;
  readonly reason: string;
  /**
   * Whether a new session could work: the error is retryable, or the peer died or sent
   * one oversized frame (AGENT_PROTOCOL, yet nothing a new session would repeat).
   */
  readonly resumable: boolean;
}

export interface AgentSocketEvents {
  message: [data: Buffer, isBinary: boolean];
  lost: [error: BridgeError, info: LostInfo];
}

export type SendResult = 'sent' | 'dropped' | 'closed';

const DEFAULT_MAX_PAYLOAD = 8 * 1024 * 1024;
const DEFAULT_MAX_BUFFERED = 1024 * 1024;
const CLOSE_WAIT_MS = 1000;
const noop = (): void => undefined;

let nextId = 0;

export class AgentSocket extends EventEmitter<AgentSocketEvents> {
  readonly id = ++nextId;
  readonly #ws: WebSocket;
  readonly #o: AgentSocketOptions;
  readonly #maxBuffered: number;
  readonly #safeUrl: string;
  #state: 'opening' | 'open' | 'closed' = 'opening';
  #pinger: NodeJS.Timeout | undefined;
  #heard = true;
  #quietTicks = 0;
  /** Events held for one macrotask after the handshake (see the file comment). */
  #deferred: (() => void)[] | undefined;
  /** Why we dropped the socket ourselves, reported when its close arrives. */
  #dropCause: BridgeError | undefined;
  #closing: Promise<void> | undefined;

  private constructor(ws: WebSocket, o: AgentSocketOptions, safeUrl: string) {
    super();
    this.#ws = ws;
    this.#o = o;
    this.#safeUrl = safeUrl;
    this.#maxBuffered = o.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED;
    // ws has a TCP socket once connected (`_socket`): sends before then are refused above.
    ws.once('open', () => (this.#writes.socket = corkableUnder(ws)));
  }
  /** Sends of one I/O batch leave together (src/net/write-batch.ts). */
  readonly #writes = new WriteHold();

  /** Opens a socket and runs the handshake; rejects with a BridgeError. */
  static open(o: AgentSocketOptions): Promise<AgentSocket> {
    const safeUrl = o.safeUrl ?? redactUrl(o.url);
    if (o.signal.aborted) return Promise.reject(abortError(o.rules, o.signal));
    let ws: WebSocket;
    try {
      ws = new WebSocket(o.url, {
        headers: { ...o.headers },
        ...(o.origin !== undefined ? { origin: o.origin } : {}),
        maxPayload: o.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD,
        perMessageDeflate: false,
        generateMask: o.reusesBinaryBuffers ? randomNonZeroMask : zeroMask,
      });
    } catch (e) {
      return Promise.reject(new BridgeError(ErrorCodes.AGENT_CONFIG, `${o.rules.provider}: cannot open ${safeUrl}: ${(e as Error).message}`, { cause: e }));
    }
    return new AgentSocket(ws, o, safeUrl).#handshake();
  }

  get isOpen(): boolean {
    return this.#state === 'open' && this.#ws.readyState === WebSocket.OPEN;
  }

  /** Bytes queued in the socket and not yet written. */
  get bufferedAmount(): number {
    return this.#ws.bufferedAmount;
  }

  /** Whether 'media' sends are being dropped (the peer is not reading). */
  get congested(): boolean {
    return this.#ws.bufferedAmount > this.#maxBuffered;
  }

  #handshake(): Promise<AgentSocket> {
    const ws = this.#ws;
    const o = this.#o;
    const { rules } = o;
    return new Promise<AgentSocket>((resolve, reject) => {
      let settled = false;
      const settle = (err?: BridgeError): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        o.signal.removeEventListener('abort', onAbort);
        if (err) {
          this.#state = 'closed';
          ws.removeAllListeners();
          ws.on('error', noop);
          ws.terminate();
          reject(err);
          return;
        }
        this.#state = 'open';
        this.#deferred = [];
        setImmediate(() => {
          const held = this.#deferred ?? [];
          this.#deferred = undefined;
          for (const run of held) run();
        });
        this.#startKeepalive();
        resolve(this);
      };
      const timer = setTimeout(() => settle(new BridgeError(ErrorCodes.AGENT_TIMEOUT, `${rules.provider}: no ${o.awaiting ?? 'WebSocket handshake'} from ${this.#safeUrl} within ${o.timeoutMs} ms`)), o.timeoutMs);
      const onAbort = (): void => settle(abortError(rules, o.signal));
      o.signal.addEventListener('abort', onAbort, { once: true });

      ws.on('unexpected-response', (req, res) => {
        res.resume();
        req.destroy();
        settle(upgradeError(rules, res.statusCode ?? 0));
      });
      ws.on('error', (e) => {
        if (this.#state === 'opening') {
          settle(networkError(rules, e, this.#safeUrl));
        } else if (/max payload size exceeded/i.test(e.message)) {
          // ws closes the socket (1009) on an oversized frame: report it as what it is.
          this.#dropCause ??= new BridgeError(ErrorCodes.AGENT_PROTOCOL, `${rules.provider}: a message over ${o.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD} bytes from the service`);
        }
        // once open, 'close' follows and reports the loss
      });
      ws.on('close', (code, reasonBuf) => {
        const reason = reasonBuf.toString('utf8').slice(0, 200);
        if (this.#state === 'opening') settle(closeError(rules, code, reason, 'handshake'));
        else this.#later(() => this.#onClose(code, reason));
      });
      ws.on('pong', () => {
        this.#heard = true;
      });
      ws.on('open', () => {
        this.#heard = true;
        o.onOpen?.(this);
        if (!o.handshake) settle();
      });
      ws.on('message', (data, isBinary) => {
        this.#heard = true;
        const buf = toBuffer(data);
        if (this.#state === 'opening') {
          if (settled) return;
          const step = o.handshake?.(buf, isBinary, this);
          if (step === true) settle();
          else if (step instanceof BridgeError) settle(step);
          return;
        }
        if (this.#state === 'open') this.#later(() => this.emit('message', buf, isBinary));
      });
    });
  }

  /** Runs now, or after the handshake's held events. */
  #later(run: () => void): void {
    if (this.#deferred) this.#deferred.push(run);
    else run();
  }

  #onClose(code: number, reason: string): void {
    if (this.#state !== 'open') return;
    const cause = this.#dropCause;
    if (cause) this.#lost(cause, { code: undefined, reason, resumable: true });
    else {
      const err = closeError(this.#o.rules, code, reason, 'open');
      this.#lost(err, { code, reason, resumable: err.retryable });
    }
  }

  /**
   * The one liveness rule: a ping every interval; a tick with nothing heard since the
   * previous one is a quiet tick, and quiet ticks covering silenceLimitMs mean the peer
   * is gone (with the default limit: one whole interval unanswered after a ping).
   */
  #startKeepalive(): void {
    const every = this.#o.pingIntervalMs;
    const limit = this.#o.silenceLimitMs ?? every;
    this.#heard = true;
    this.#pinger = setInterval(() => {
      if (this.#state !== 'open') return;
      if (this.#heard) this.#quietTicks = 0;
      else if (++this.#quietTicks * every >= limit) {
        this.fail(new BridgeError(ErrorCodes.AGENT_TIMEOUT, `${this.#o.rules.provider}: the service stopped answering (nothing received for ${limit} ms)`));
        return;
      }
      this.#heard = false;
      try {
        this.#ws.ping();
      } catch {
        /* closing: 'close' reports it */
      }
    }, every);
    this.#pinger.unref();
  }

  #stopKeepalive(): void {
    if (this.#pinger !== undefined) clearInterval(this.#pinger);
    this.#pinger = undefined;
  }

  #lost(err: BridgeError, info: LostInfo): void {
    if (this.#state !== 'open') return;
    this.#state = 'closed';
    this.#stopKeepalive();
    this.emit('lost', err, info);
  }

  /**
   * Sends one frame. 'control' frames are always queued; 'media' (caller audio) is
   * dropped while the socket is congested. 'closed' when the socket is not open.
   */
  send(data: string | Uint8Array, kind: 'control' | 'media' = 'control'): SendResult {
    // Also during the handshake (onOpen, handshake replies): only a closed socket refuses.
    if (this.#state === 'closed' || this.#ws.readyState !== WebSocket.OPEN) return 'closed';
    if (kind === 'media' && this.congested) {
      // What this batch holds back (src/net/write-batch.ts) is not congestion: let it go to the
      // kernel first, and drop only if the peer still has not taken it.
      this.#writes.release();
      if (this.congested) return 'dropped';
    }
    try {
      this.#writes.hold();
      this.#ws.send(data);
      return 'sent';
    } catch {
      return 'closed';
    }
  }

  /** The adapter found the peer unusable: drop the socket and report `err` as the loss (once). */
  fail(err: BridgeError): void {
    if (this.#state !== 'open') return;
    this.#lost(err, { code: undefined, reason: '', resumable: true });
    this.#ws.terminate();
  }

  /** Closes our side (no 'lost'); bounded: terminates if the close handshake takes over `timeoutMs`. */
  close(code = 1000, reason = 'bye', timeoutMs = CLOSE_WAIT_MS): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      this.#state = 'closed';
      this.#stopKeepalive();
      const ws = this.#ws;
      if (ws.readyState === WebSocket.CLOSED) return resolve();
      const t = setTimeout(() => {
        ws.terminate();
        resolve();
      }, timeoutMs);
      ws.once('close', () => {
        clearTimeout(t);
        resolve();
      });
      try {
        if (ws.readyState === WebSocket.OPEN) ws.close(code, closeReason(reason));
        else ws.terminate();
      } catch {
        ws.terminate();
      }
    });
    return this.#closing;
  }

  /** Drops the socket at once: no close handshake, no 'lost'. */
  terminate(): void {
    this.#state = 'closed';
    this.#stopKeepalive();
    this.#ws.terminate();
  }
}

function toBuffer(data: WebSocket.RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

/** Scheme, host and path: what an error message may show of a URL (no query: keys travel there). */
export function redactUrl(url: string | URL): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '(invalid url)';
  }
}

/**
 * The masking key for sockets that only send text (JSON) or fresh buffers.
 *
 * RFC 6455 §5.3 makes a client mask every frame with an unpredictable key. The mask
 * exists to stop a hostile script in a *browser* from steering bytes on the wire and
 * poisoning an intermediary's cache (§10.3); it gives a server-side client talking
 * TLS to a known service nothing. Yet with a random key, ws copies every outgoing
 * string into a new Buffer and XORs it — per 20 ms frame of every call. With an
 * all-zero key ws sends the string as it is (the frame is still marked masked; XOR
 * with 0 leaves it unchanged), which is ws's documented use of `generateMask`.
 */
export function zeroMask(mask: Buffer): void {
  mask[0] = mask[1] = mask[2] = mask[3] = 0;
}

/** Never all-zero: with a zero key ws would queue a reused binary buffer itself rather than a masked copy. */
function randomNonZeroMask(mask: Buffer): void {
  randomFillSync(mask);
  if ((mask[0]! | mask[1]! | mask[2]! | mask[3]!) === 0) mask[0] = 1;
}
