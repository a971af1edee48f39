/**
 * ElevenLabsTtsClient: speaks text as 8 kHz μ-law through the ElevenLabs
 * `stream-input` WebSocket (https://elevenlabs.io/docs/api-reference/websocket), one connection per uncached
 * synthesis, with a bounded LRU cache in front.
 *
 * One synthesis (`#run`):
 *
 * ```text
 *   connecting ──open──► send init {text:" ",voice_settings}, text, end-of-input {text:""}
 *       │                      │
 *       │                      ▼
 *       │                 receiving ──audio──► onChunk (in order; header-less μ-law)
 *       │                      │
 *       │                      └──isFinal──► done: close(1000), resolve(total bytes)
 *       └── 401/403 · refused · error event · close before isFinal · bad message ·
 *           connect/idle/total timeout · caller's abort ──► failed: terminate, reject(BridgeError)
 * ```
 *
 * Every wait is bounded: the handshake by `connectTimeoutMs`, the gap between two server
 * messages by `idleTimeoutMs` (a socket that stops answering), the whole synthesis by
 * `totalTimeoutMs`, and all of it by the caller's AbortSignal. The first outcome wins; the
 * socket is always closed and keeps a no-op error listener, so a late socket error can never
 * become an uncaught exception.
 *
 * Errors (BridgeError codes): 401/403 or an auth close/message → AGENT_AUTH; a bounded wait ran
 * out → AGENT_TIMEOUT; audio that is not base64 or a WAV of another format → AGENT_AUDIO_FORMAT;
 * a message that is not JSON, or more audio than `maxAudioBytes` → AGENT_PROTOCOL; unreachable
 * host → AGENT_CONNECT; 429/quota → AGENT_RATE_LIMIT; unknown voice/model → AGENT_CONFIG;
 * anything else the service reports (error message, close 1011, other HTTP status) →
 * AGENT_SERVICE. Aborting by the caller rejects with an Error named 'AbortError' (cause = the
 * signal's reason), except a TimeoutError reason (AbortSignal.timeout), which is AGENT_TIMEOUT.
 *
 * Identical concurrent `synthesize` calls share one connection (calls that start together all
 * speak the same greeting); the shared synthesis is aborted only when every waiter has gone.
 */
import WebSocket from 'ws';
import { BridgeError, ErrorCodes } from '../../../errors.js';
import { TtsCache, ttsCacheKey, type TtsCacheStats } from './cache.js';
import {
  DEFAULT_VOICE_SETTINGS,
  END_OF_INPUT_MESSAGE,
  buildInitMessage,
  buildStreamUrl,
  buildTextMessage,
  classifyClose,
  normalizeText,
  parseServerMessage,
  resolveVoiceSettings,
  ulawPayload,
  validateModelId,
  validateVoiceId,
  type VoiceSettings,
} from './protocol.js';
import { statusCode } from '../../shared/socket-errors.js';

export interface TtsClientOptions {
  readonly apiKey: string;
  /** Service base URL; default wss://api.elevenlabs.io (tests point it at the fake). */
  readonly baseUrl?: string;
  readonly voiceId: string;
  /** Default eleven_flash_v2_5. */
  readonly modelId?: string;
  /** Defaults: stability 0.5, similarityBoost 0.75, style 0, useSpeakerBoost true. */
  readonly settings?: Partial<VoiceSettings>;
  /** Cache bounds; default 256 entries, 32 MiB. 0 disables. */
  readonly cacheEntries?: number;
  readonly cacheBytes?: number;
  /** WebSocket handshake bound; default 5000 ms. */
  readonly connectTimeoutMs?: number;
  /** Longest silence from the server once the text is sent; default 10 000 ms. */
  readonly idleTimeoutMs?: number;
  /** Bound of one whole synthesis; default 30 000 ms. */
  readonly totalTimeoutMs?: number;
  /** Longest text accepted (characters, after whitespace is collapsed); default 5000. */
  readonly maxTextChars?: number;
  /** Most audio one synthesis may return; default 8000 × 600 (ten minutes of μ-law). */
  readonly maxAudioBytes?: number;
  /** Largest WebSocket message accepted; default 4 MiB. */
  readonly maxMessageBytes?: number;
}

export interface SynthesizeOptions {
  readonly voiceId?: string;
  readonly settings?: Partial<VoiceSettings>;
  readonly signal?: AbortSignal;
}

export interface TtsClientStats {
  /** WebSocket connections opened (cache hits and joined requests open none). */
  readonly connections: number;
  readonly synthesized: number;
  readonly failures: number;
  /** Server messages we did not recognise (ignored). */
  readonly unknownMessages: number;
  readonly cache: TtsCacheStats;
}

export const DEFAULT_TTS_URL = 'wss://api.elevenlabs.io';
/**
 * The stream-input reference names no default model. Flash v2.5 is ElevenLabs' lowest-latency multilingual model
 * (their latency guide: "Use Flash models" for real-time); phone callers notice latency first.
 */
export const DEFAULT_TTS_MODEL = 'eleven_flash_v2_5';

/** A validated request: the text as sent, the voice and settings used, and its cache key. */
interface Prepared {
  readonly wireText: string;
  readonly voiceId: string;
  readonly settings: VoiceSettings;
  readonly key: string;
}

interface Inflight {
  readonly promise: Promise<Uint8Array>;
  readonly controller: AbortController;
  waiters: number;
}

const noop = () => undefined;

function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error && reason.name === 'TimeoutError') {
    return new BridgeError(ErrorCodes.AGENT_TIMEOUT, 'elevenlabs tts: the caller\'s deadline passed', { cause: reason });
  }
  const e = new Error('elevenlabs tts: aborted', { cause: reason });
  e.name = 'AbortError';
  return e;
}

export class ElevenLabsTtsClient {
  readonly voiceId: string;
  readonly modelId: string;
  readonly settings: VoiceSettings;
  readonly #apiKey: string;
  readonly #baseUrl: string;
  readonly #cache: TtsCache;
  readonly #connectTimeoutMs: number;
  readonly #idleTimeoutMs: number;
  readonly #totalTimeoutMs: number;
  readonly #maxTextChars: number;
  readonly #maxAudioBytes: number;
  readonly #maxMessageBytes: number;
  readonly #inflight = new Map<string, Inflight>();
  /** Running syntheses, each with its one exit, so close() can end them. */
  readonly #running = new Set<(err: BridgeError) => void>();
  #closed = false;
  #connections = 0;
  #synthesized = 0;
  #failures = 0;
  #unknownMessages = 0;

  constructor(opts: TtsClientOptions) {
    if (!opts.apiKey) throw new BridgeError(ErrorCodes.AGENT_CONFIG, 'elevenlabs tts: an API key is required');
    this.#apiKey = opts.apiKey;
    this.#baseUrl = opts.baseUrl ?? DEFAULT_TTS_URL;
    this.voiceId = validateVoiceId(opts.voiceId);
    this.modelId = validateModelId(opts.modelId ?? DEFAULT_TTS_MODEL);
    this.settings = resolveVoiceSettings(DEFAULT_VOICE_SETTINGS, opts.settings);
    this.#cache = new TtsCache({ maxEntries: opts.cacheEntries ?? 256, maxBytes: opts.cacheBytes ?? 32 * 1024 * 1024 });
    this.#connectTimeoutMs = opts.connectTimeoutMs ?? 5000;
    this.#idleTimeoutMs = opts.idleTimeoutMs ?? 10_000;
    this.#totalTimeoutMs = opts.totalTimeoutMs ?? 30_000;
    this.#maxTextChars = opts.maxTextChars ?? 5000;
    this.#maxAudioBytes = opts.maxAudioBytes ?? 8000 * 600;
    this.#maxMessageBytes = opts.maxMessageBytes ?? 4 * 1024 * 1024;
  }

  stats(): TtsClientStats {
    return {
      connections: this.#connections,
      synthesized: this.#synthesized,
      failures: this.#failures,
      unknownMessages: this.#unknownMessages,
      cache: this.#cache.stats(),
    };
  }

  /** Whether this text (with these options) would be served from the cache. */
  isCached(text: string, opts?: Omit<SynthesizeOptions, 'signal'>): boolean {
    return this.#cache.has(this.#prepare(text, opts).key);
  }

  /**
   * The whole utterance as 8 kHz μ-law (no header). Served from the cache when the same
   * text, voice, model and settings were synthesized before; the result is the caller's own
   * copy. Rejects with a BridgeError (see the file comment) or an AbortError.
   */
  async synthesize(text: string, opts: SynthesizeOptions = {}): Promise<Uint8Array> {
    const p = this.#prepare(text, opts);
    const signal = opts.signal;
    if (signal?.aborted) throw abortError(signal);
    this.#assertOpen();
    const hit = this.#cache.get(p.key);
    if (hit !== undefined) return hit;

    let entry = this.#inflight.get(p.key);
    if (entry === undefined) {
      const controller = new AbortController();
      const promise = this.#collect(p, controller.signal).finally(() => this.#inflight.delete(p.key));
      promise.catch(noop); // every waiter may have left; the rejection is still handled
      entry = { promise, controller, waiters: 0 };
      this.#inflight.set(p.key, entry);
    }
    const shared = entry;
    shared.waiters++;
    if (signal === undefined) return (await shared.promise).slice();
    return new Promise<Uint8Array>((resolve, reject) => {
      const onAbort = () => {
        shared.waiters--;
        if (shared.waiters === 0) shared.controller.abort(signal.reason);
        reject(abortError(signal));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      shared.promise.then(
        (audio) => {
          signal.removeEventListener('abort', onAbort);
          resolve(audio.slice());
        },
        (e: unknown) => {
          signal.removeEventListener('abort', onAbort);
          reject(e);
        },
      );
    });
  }

  /**
   * Streams the utterance: `onChunk` gets header-less μ-law chunks in order as they arrive
   * (playback can start before synthesis ends); resolves with the total bytes delivered once
   * the service says `isFinal`. A cache hit delivers the whole utterance as one chunk without a
   * connection. Each chunk is a fresh view the callee may keep (it is not reused by us).
   * If the synthesis fails after some chunks were delivered, the promise rejects: the callee
   * has played a prefix and should stop there. An exception thrown by `onChunk` aborts the
   * synthesis and rejects with that exception.
   */
  async stream(text: string, onChunk: (chunk: Uint8Array) => void, opts: SynthesizeOptions = {}): Promise<number> {
    const p = this.#prepare(text, opts);
    if (opts.signal?.aborted) throw abortError(opts.signal);
    this.#assertOpen();
    const hit = this.#cache.get(p.key);
    if (hit !== undefined) {
      if (hit.length > 0) onChunk(hit);
      return hit.length;
    }
    const parts: Uint8Array[] = [];
    const total = await this.#run(p, opts.signal, (chunk) => {
      parts.push(chunk);
      onChunk(chunk);
    });
    this.#cache.set(p.key, concat(parts, total));
    return total;
  }

  /** Ends every running synthesis (they reject with AGENT_CLOSED) and refuses new ones. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const err = new BridgeError(ErrorCodes.AGENT_CLOSED, 'elevenlabs tts: client closed');
    for (const finish of [...this.#running]) finish(err);
    this.#cache.clear();
  }

  #assertOpen(): void {
    if (this.#closed) throw new BridgeError(ErrorCodes.AGENT_CLOSED, 'elevenlabs tts: client closed');
  }

  #prepare(text: string, opts?: Omit<SynthesizeOptions, 'signal'>): Prepared {
    const voiceId = opts?.voiceId === undefined ? this.voiceId : validateVoiceId(opts.voiceId);
    const settings = opts?.settings === undefined ? this.settings : resolveVoiceSettings(this.settings, opts.settings);
    const wireText = normalizeText(text, this.#maxTextChars);
    return { wireText, voiceId, settings, key: ttsCacheKey(wireText, voiceId, this.modelId, settings) };
  }

  async #collect(p: Prepared, signal: AbortSignal): Promise<Uint8Array> {
    const parts: Uint8Array[] = [];
    const total = await this.#run(p, signal, (chunk) => void parts.push(chunk));
    const audio = concat(parts, total);
    this.#cache.set(p.key, audio);
    return audio;
  }

  /** One synthesis over one connection; resolves with the bytes passed to onChunk. */
  #run(p: Prepared, signal: AbortSignal | undefined, onChunk: (chunk: Uint8Array) => void): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason instanceof BridgeError ? signal.reason : abortError(signal));
        return;
      }
      this.#connections++;
      const url = buildStreamUrl(this.#baseUrl, p.voiceId, this.modelId);
      const ws = new WebSocket(url, {
        headers: { 'xi-api-key': this.#apiKey },
        maxPayload: this.#maxMessageBytes,
        perMessageDeflate: false,
      });
      let settled = false;
      let final = false;
      let total = 0;
      let phase: 'connecting' | 'receiving' = 'connecting';

      const finish = (err?: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(connectTimer);
        clearTimeout(totalTimer);
        clearTimeout(idleTimer);
        signal?.removeEventListener('abort', onAbort);
        this.#running.delete(finish);
        ws.removeAllListeners();
        ws.on('error', noop); // a late error (e.g. from terminate() mid-handshake) must not go uncaught
        if (err === undefined) {
          this.#synthesized++;
          if (ws.readyState === WebSocket.OPEN) ws.close(1000);
          resolve(total);
        } else {
          this.#failures++;
          if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.terminate();
          reject(err);
        }
      };
      this.#running.add(finish);
      const fail = (code: (typeof ErrorCodes)[keyof typeof ErrorCodes], message: string, cause?: unknown) =>
        finish(new BridgeError(code, `elevenlabs tts: ${message}`, cause === undefined ? undefined : { cause }));

      const onAbort = () => {
        const r: unknown = signal?.reason;
        finish(r instanceof BridgeError ? r : abortError(signal!));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const connectTimer = setTimeout(() => fail(ErrorCodes.AGENT_TIMEOUT, `no WebSocket handshake within ${this.#connectTimeoutMs} ms`), this.#connectTimeoutMs);
      const totalTimer = setTimeout(() => fail(ErrorCodes.AGENT_TIMEOUT, `synthesis not finished within ${this.#totalTimeoutMs} ms`), this.#totalTimeoutMs);
      let idleTimer: NodeJS.Timeout | undefined;

      ws.on('unexpected-response', (_req, res) => {
        const status = res.statusCode ?? 0;
        res.resume(); // drain the body; nothing in it is needed
        // The agents' one status table (src/agents/shared/socket-errors.ts).
        fail(statusCode(status), `the service refused the connection: HTTP ${status}`);
      });
      ws.on('error', (e: Error & { code?: string }) => {
        if (phase === 'connecting') {
          const timedOut = e.code === 'ETIMEDOUT';
          fail(timedOut ? ErrorCodes.AGENT_TIMEOUT : ErrorCodes.AGENT_CONNECT, `could not connect (${e.code ?? e.message})`, e);
        } else if (e.message.includes('Max payload size exceeded')) {
          fail(ErrorCodes.AGENT_PROTOCOL, `a message over ${this.#maxMessageBytes} bytes`, e);
        } else {
          fail(ErrorCodes.AGENT_SERVICE, `socket error (${e.code ?? e.message})`, e);
        }
      });
      ws.on('open', () => {
        phase = 'receiving';
        clearTimeout(connectTimer);
        idleTimer = setTimeout(() => fail(ErrorCodes.AGENT_TIMEOUT, `the service sent nothing for ${this.#idleTimeoutMs} ms`), this.#idleTimeoutMs);
        const sent = (e?: Error | null) => {
          if (e) fail(ErrorCodes.AGENT_SERVICE, `send failed (${e.message})`, e);
        };
        ws.send(buildInitMessage(p.settings), sent);
        ws.send(buildTextMessage(p.wireText), sent);
        ws.send(END_OF_INPUT_MESSAGE, sent);
      });
      ws.on('message', (data, isBinary) => {
        if (settled) return;
        idleTimer?.refresh();
        if (isBinary) {
          fail(ErrorCodes.AGENT_PROTOCOL, 'a binary message (the protocol is JSON text)');
          return;
        }
        let msg;
        try {
          msg = parseServerMessage(data.toString());
          if (msg.kind === 'audio' && msg.audio !== null) {
            const audio = ulawPayload(msg.audio);
            if (audio.length === 0) return;
            if (total + audio.length > this.#maxAudioBytes) {
              fail(ErrorCodes.AGENT_PROTOCOL, `more than ${this.#maxAudioBytes} bytes of audio for one text`);
              return;
            }
            total += audio.length;
            onChunk(audio);
            return;
          }
        } catch (e) {
          // A parse failure (typed) or an exception from onChunk (the caller's, passed through).
          finish(e);
          return;
        }
        if (msg.kind === 'final') {
          final = true;
          finish();
        } else if (msg.kind === 'error') {
          finish(msg.error);
        } else if (msg.kind === 'unknown') {
          this.#unknownMessages++;
        }
      });
      ws.on('close', (code, reasonBuf) => {
        if (final) return;
        const reason = reasonBuf.toString();
        // Closing before isFinal, even with 1000, means audio may be missing: never a success.
        fail(classifyClose(code, reason), `connection closed before isFinal (code ${code}${reason ? `, ${JSON.stringify(reason.slice(0, 120))}` : ''})`);
      });
    });
  }
}

function concat(parts: readonly Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

