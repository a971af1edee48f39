/**
 * One WebSocket to the OpenAI Realtime API (one service-side session), from upgrade
 * to close. The call-level OpenAiRealtimeSession may own several over a call:
 * rollover before the 60-minute cap and reconnects open new ones.
 *
 * ```text
 *   open(): upgrade (Authorization: Bearer) ──► session.update sent at once
 *           ──► session.created ──► session.updated (formats checked) ──► resolved: 'open'
 *           every step bounded by handshakeTimeoutMs and the caller's AbortSignal
 *   open:   frames ──► onMessage(conn, text); ping every pingIntervalMs, and a period
 *           with neither a pong nor a frame means the peer stopped answering
 *   lost:   unsolicited close, socket error, or dead keepalive ──► onLost(conn, BridgeError) once
 *   close(): our close frame; terminate() if the peer does not finish the close in time
 * ```
 *
 * Upgrade refusals map to typed errors (protocols.md §2.2): 401/403 → AGENT_AUTH
 * (permanent), 429 → AGENT_RATE_LIMIT, other 4xx → AGENT_CONFIG (bad model or URL,
 * permanent), 5xx and network failures → AGENT_CONNECT (retryable). A close with code
 * 4000 during the handshake is the removed beta interface (`beta_api_shape_disabled`,
 * §2.1) → AGENT_CONFIG.
 */
import { closeReason } from '../../close-reason.js';
import WebSocket from 'ws';
import { BridgeError, ErrorCodes } from '../../errors.js';
import { REQUEST_INTERRUPT_RESPONSE, buildSessionUpdate, parseServerEvent, wireFormat, type SessionSettings } from './protocol.js';
import { zeroMask } from '../ws-mask.js';

export interface ConnectionOptions {
  readonly url: string;
  readonly apiKey: string;
  readonly settings: SessionSettings;
  readonly handshakeTimeoutMs: number;
  readonly pingIntervalMs: number;
  /** Largest accepted frame; a larger one closes the socket (1009) and counts as lost. */
  readonly maxPayloadBytes?: number;
  readonly signal: AbortSignal;
  /** A frame from the service; `binary` frames (the service sends JSON text only) come as a size note. */
  onMessage(conn: RealtimeConnection, text: string, binary: boolean): void;
  onLost(conn: RealtimeConnection, error: BridgeError): void;
}

let nextId = 0;

export class RealtimeConnection {
  readonly id = ++nextId;
  /**
   * The service cancels a response itself when its VAD hears the caller
   * (turn_detection.interrupt_response): what we asked for, as confirmed by session.updated.
   */
  get serverInterrupts(): boolean {
    return this.#serverInterrupts;
  }
  #serverInterrupts = REQUEST_INTERRUPT_RESPONSE;
  #ws: WebSocket;
  #o: ConnectionOptions;
  #state: 'opening' | 'open' | 'closed' = 'opening';
  #pinger: NodeJS.Timeout | undefined;
  #alive = true;
  #closing: Promise<void> | undefined;

  private constructor(ws: WebSocket, o: ConnectionOptions) {
    this.#ws = ws;
    this.#o = o;
  }

  get isOpen(): boolean {
    return this.#state === 'open' && this.#ws.readyState === WebSocket.OPEN;
  }

  /** Bytes queued in the socket and not yet written (a peer that stopped reading makes this grow). */
  get bufferedAmount(): number {
    return this.#ws.bufferedAmount;
  }

  /** Opens a socket and configures the session; rejects with a BridgeError. */
  static open(o: ConnectionOptions): Promise<RealtimeConnection> {
    if (o.signal.aborted) return Promise.reject(new BridgeError(ErrorCodes.AGENT_CONNECT, 'openai: connect aborted', { cause: o.signal.reason }));
    const u = new URL(o.url);
    if (!u.searchParams.has('model')) u.searchParams.set('model', o.settings.model);
    // GA: no OpenAI-Beta header (its presence selects the removed beta shape, §2.2).
    const ws = new WebSocket(u, { headers: { Authorization: `Bearer ${o.apiKey}` }, maxPayload: o.maxPayloadBytes ?? 16 * 1024 * 1024, handshakeTimeout: o.handshakeTimeoutMs, perMessageDeflate: false, generateMask: zeroMask });
    const conn = new RealtimeConnection(ws, o);
    return conn.#handshake();
  }

  #handshake(): Promise<RealtimeConnection> {
    const ws = this.#ws;
    const o = this.#o;
    return new Promise<RealtimeConnection>((resolve, reject) => {
      let created = false;
      let settled = false;
      const finish = (err?: BridgeError) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        o.signal.removeEventListener('abort', onAbort);
        ws.off('message', onHandshakeMessage);
        if (err) {
          this.#state = 'closed';
          ws.removeAllListeners();
          ws.on('error', () => undefined);
          ws.terminate();
          reject(err);
          return;
        }
        this.#state = 'open';
        this.#startKeepalive();
        ws.on('message', (data, isBinary) => this.#onFrame(data, isBinary));
        resolve(this);
      };
      const timer = setTimeout(() => finish(new BridgeError(ErrorCodes.AGENT_TIMEOUT, `openai: no ${created ? 'session.updated' : 'session.created'} within ${o.handshakeTimeoutMs} ms`)), o.handshakeTimeoutMs);
      const onAbort = () => finish(new BridgeError(ErrorCodes.AGENT_CONNECT, 'openai: connect aborted', { cause: o.signal.reason }));
      o.signal.addEventListener('abort', onAbort, { once: true });

      ws.on('unexpected-response', (_req, res) => {
        const status = res.statusCode ?? 0;
        res.resume();
        const code =
          status === 401 || status === 403
            ? ErrorCodes.AGENT_AUTH
            : status === 429
              ? ErrorCodes.AGENT_RATE_LIMIT
              : status >= 400 && status < 500
                ? ErrorCodes.AGENT_CONFIG
                : ErrorCodes.AGENT_CONNECT;
        finish(new BridgeError(code, `openai: upgrade refused with HTTP ${status}`));
      });
      ws.on('error', (e) => {
        if (this.#state === 'opening') finish(new BridgeError(ErrorCodes.AGENT_CONNECT, `openai: ${e.message}`, { cause: e }));
        // once open, 'close' follows and reports the loss
      });
      ws.on('close', (code, reasonBuf) => {
        const reason = reasonBuf.toString().slice(0, 200);
        if (this.#state === 'opening') {
          const ec = code === 4000 || /beta_api_shape_disabled/.test(reason) ? ErrorCodes.AGENT_CONFIG : code === 1008 ? ErrorCodes.AGENT_AUTH : ErrorCodes.AGENT_CONNECT;
          finish(new BridgeError(ec, `openai: closed during the handshake (${code}${reason ? ` ${reason}` : ''})`));
          return;
        }
        this.#onClose(code, reason);
      });
      ws.on('pong', () => {
        this.#alive = true;
      });
      ws.on('open', () => {
        // Sent at once rather than after session.created: the server reads events in order.
        ws.send(buildSessionUpdate(o.settings));
      });
      const onHandshakeMessage = (data: WebSocket.RawData, isBinary: boolean) => {
        if (isBinary) return; // counted after the handshake; here it is simply not what we wait for
        const r = parseServerEvent(data.toString());
        if (!r.ok) return;
        const ev = r.event;
        if (ev.type === 'session.created') {
          created = true;
        } else if (ev.type === 'session.updated') {
          const want = wireFormat(o.settings.audioFormat).type;
          for (const [dir, got] of [
            ['output', ev.outputFormatType],
            ['input', ev.inputFormatType],
          ] as const) {
            if (got !== undefined && got !== want) {
              finish(new BridgeError(ErrorCodes.AGENT_AUDIO_FORMAT, `openai: session.updated has ${dir} format ${got}, we asked for ${want}`));
              return;
            }
          }
          if (ev.interruptResponse !== undefined) this.#serverInterrupts = ev.interruptResponse;
          finish();
        } else if (ev.type === 'error') {
          const e = ev.error;
          const auth = e.type === 'authentication_error' || e.code === 'invalid_api_key';
          finish(
            new BridgeError(auth ? ErrorCodes.AGENT_AUTH : e.type === 'invalid_request_error' ? ErrorCodes.AGENT_CONFIG : ErrorCodes.AGENT_SERVICE, `openai: session.update refused: ${e.code ?? e.type ?? 'error'}: ${e.message}`),
          );
        }
      };
      ws.on('message', onHandshakeMessage);
    });
  }

  #onFrame(data: WebSocket.RawData, isBinary: boolean): void {
    this.#alive = true;
    if (this.#state !== 'open') return;
    if (isBinary) this.#o.onMessage(this, `binary frame of ${(data as Buffer).length} bytes`, true);
    else this.#o.onMessage(this, data.toString(), false);
  }

  #startKeepalive(): void {
    this.#alive = true;
    this.#pinger = setInterval(() => {
      if (this.#state !== 'open') return;
      if (!this.#alive) {
        this.#lost(new BridgeError(ErrorCodes.AGENT_TIMEOUT, `openai: the service stopped answering (no pong or frame for ${this.#o.pingIntervalMs} ms)`));
        this.#ws.terminate();
        return;
      }
      this.#alive = false;
      try {
        this.#ws.ping();
      } catch {
        /* the close event reports it */
      }
    }, this.#o.pingIntervalMs);
  }

  #onClose(code: number, reason: string): void {
    if (this.#state !== 'open') return;
    const ec = code === 1008 ? ErrorCodes.AGENT_AUTH : code === 1011 ? ErrorCodes.AGENT_SERVICE : ErrorCodes.AGENT_CLOSED;
    this.#lost(new BridgeError(ec, `openai: the service closed the session (${code}${reason ? ` ${reason}` : ''})`));
  }

  #lost(err: BridgeError): void {
    if (this.#state !== 'open') return;
    this.#state = 'closed';
    this.#stopKeepalive();
    this.#o.onLost(this, err);
  }

  #stopKeepalive(): void {
    if (this.#pinger !== undefined) clearInterval(this.#pinger);
    this.#pinger = undefined;
  }

  /** Sends one client event; false when the socket is not open. */
  send(text: string): boolean {
    if (!this.isOpen) return false;
    try {
      this.#ws.send(text);
      return true;
    } catch {
      return false;
    }
  }

  /** Closes our side (no onLost); bounded: terminates if the close handshake takes over `timeoutMs`. */
  close(code = 1000, reason = 'bye', timeoutMs = 1000): Promise<void> {
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
        if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
        else ws.close(code, closeReason(reason));
      } catch {
        ws.terminate();
      }
    });
    return this.#closing;
  }

  /** Drops the socket at once (a dead peer): no close handshake, no onLost. */
  terminate(): void {
    this.#state = 'closed';
    this.#stopKeepalive();
    this.#ws.terminate();
  }
}
