/**
 * A local fake of the ElevenLabs text-to-speech WebSocket (`stream-input`), on
 * 127.0.0.1:0, written from https://elevenlabs.io/docs/api-reference/websocket:
 *
 *   GET /v1/text-to-speech/{voice_id}/stream-input?model_id=…&output_format=…   (WebSocket upgrade)
 *     auth: header `xi-api-key`, or `xi-api-key` / `xi_api_key` in the first message (both
 *     spellings: the SDKs say `xi-api-key`, older docs `xi_api_key`); a wrong header key → HTTP 401 on the upgrade
 *   client: {"text":" ","voice_settings":{…}}  then text messages, then {"text":""} (end of input)
 *   server: {"audio":"<base64>","normalizedAlignment":{chars,charStartTimesMs,charDurationsMs},"alignment":{…}}…
 *           {"audio":null,…}  (quirk: audio may be null)
 *           {"isFinal":true}  then close 1000
 *
 * The speech is a deterministic μ-law tone whose pitch and length depend on the text
 * (`fakeSpeech(text)`: 40 ms + 20 ms per character), so tests compare bytes exactly.
 * Only output_format=ulaw_8000 is modelled (anything else: HTTP 400 on the upgrade).
 * An unknown voice id gets an error message and close 1008 (the error shape is our
 * assumption; it is not documented). No text for `inactivityMs` (default 20 s,
 * the documented inactivity_timeout default) → an error message and close 1008.
 *
 * Faults (`fault`, applies to every new connection until reset):
 *   unauthorized  HTTP 401 on the upgrade
 *   garbage       a frame that is not JSON instead of audio
 *   stall         upgrade, read everything, never answer
 *   error-mid     one audio chunk, then {"message","error"} and close 1011
 *   close-mid     one audio chunk, then close 1011 without a message
 *   no-final      all audio, then close 1000 without isFinal
 *   bad-audio     "audio" that is not base64
 *   wav-header    a μ-law 8 kHz WAV header in front of the first chunk (valid; must be stripped)
 *   wrong-wav     a PCM16 16 kHz WAV header in front of the first chunk (must be refused)
 *   binary        a binary frame instead of JSON text
 * `holdFinal` sends all audio but keeps isFinal back until `releaseFinal()` (tests of streaming).
 */
import { EventEmitter, once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { FakeServer, type Refusal } from './fake-server.js';
import { encodeUlawSample } from '../../src/dsp/ts/g711.js';

export type FakeTtsFault = 'unauthorized' | 'garbage' | 'stall' | 'error-mid' | 'close-mid' | 'no-final' | 'bad-audio' | 'wav-header' | 'wrong-wav' | 'binary';

export interface FakeTtsRequest {
  readonly voiceId: string;
  readonly modelId: string | null;
  readonly outputFormat: string | null;
  /** How the key arrived. */
  apiKeyVia: 'header' | 'message' | 'none';
  /** The first message as received. */
  init?: Record<string, unknown>;
  /** init.voice_settings as received (snake_case). */
  voiceSettings?: Record<string, unknown>;
  /** Every text message after the init, as received. */
  readonly texts: string[];
  endOfInput: boolean;
  /** The μ-law the fake sent (after any fault header), concatenated. */
  sentAudio: Uint8Array;
  /** Audio messages with non-null audio. */
  audioMessages: number;
  /** The client closed the socket before the fake did. */
  clientClosedFirst: boolean;
  /** Resolves when the socket has closed (either side). */
  readonly closed: Promise<void>;
}

export interface FakeElevenLabsTts {
  /** ws://127.0.0.1:port (ELEVENLABS_TTS_URL). */
  readonly url: string;
  readonly apiKey: string;
  /** A voice the fake knows. */
  readonly voiceId: string;
  /** Voices the fake knows (add to it). */
  readonly voices: Set<string>;
  /** ELEVENLABS_API_KEY, ELEVENLABS_TTS_URL, ELEVENLABS_VOICE_ID for this fake. */
  readonly env: Record<string, string>;
  /** Upgrade requests seen (accepted or refused). */
  readonly connections: number;
  readonly requests: FakeTtsRequest[];
  fault: FakeTtsFault | undefined;
  /** Bytes of μ-law per audio message; default 800 (100 ms). */
  chunkBytes: number;
  holdFinal: boolean;
  inactivityMs: number;
  /** Sends the held isFinal messages. */
  releaseFinal(): void;
  /** Resolves with the next request whose socket opens. */
  nextRequest(): Promise<FakeTtsRequest>;
  close(): Promise<void>;
}

/** The fake's speech for a text: 40 ms + 20 ms per character of a tone whose pitch depends on the text. */
export function fakeSpeech(text: string): Uint8Array {
  const t = text.trim();
  let h = 2166136261;
  for (let i = 0; i < t.length; i++) h = Math.imul(h ^ t.charCodeAt(i), 16777619) >>> 0;
  const freqHz = 300 + (h % 600);
  const n = 320 + 160 * t.length;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = encodeUlawSample(Math.round(9000 * Math.sin((2 * Math.PI * freqHz * i) / 8000)));
  return out;
}

/** A WAV header (RIFF … "data" with size 0xFFFFFFFF, as a streaming writer leaves it). */
export function wavHeader(formatTag: 1 | 7, rateHz: number, bits: 8 | 16): Uint8Array {
  const b = new Uint8Array(44);
  const v = new DataView(b.buffer);
  const put = (at: number, s: string) => {
    for (let i = 0; i < 4; i++) b[at + i] = s.charCodeAt(i);
  };
  put(0, 'RIFF');
  v.setUint32(4, 0xffffffff, true);
  put(8, 'WAVE');
  put(12, 'fmt ');
  v.setUint32(16, 16, true);
  v.setUint16(20, formatTag, true);
  v.setUint16(22, 1, true);
  v.setUint32(24, rateHz, true);
  v.setUint32(28, (rateHz * bits) / 8, true);
  v.setUint16(32, bits / 8, true);
  v.setUint16(34, bits, true);
  put(36, 'data');
  v.setUint32(40, 0xffffffff, true);
  return b;
}

const PATH_RE = /^\/v1\/text-to-speech\/([^/]+)\/stream-input$/;

export async function startFakeElevenLabsTts(opts: { apiKey?: string; voiceId?: string } = {}): Promise<FakeElevenLabsTts> {
  const apiKey = opts.apiKey ?? 'xi-test-key-123';
  const voiceId = opts.voiceId ?? 'FakeVoice0000000000a';
  const voices = new Set([voiceId]);
  const events = new EventEmitter();
  const requests: FakeTtsRequest[] = [];
  const held: (() => void)[] = [];
  let connections = 0;

  const fake: FakeElevenLabsTts = {
    url: '',
    apiKey,
    voiceId,
    voices,
    env: {},
    get connections() {
      return connections;
    },
    requests,
    fault: undefined,
    chunkBytes: 800,
    holdFinal: false,
    inactivityMs: 20_000,
    releaseFinal() {
      fake.holdFinal = false;
      for (const f of held.splice(0)) f();
    },
    nextRequest() {
      return once(events, 'request').then(([r]) => r as FakeTtsRequest);
    },
    async close() {
      await server.close();
    },
  };

  const upgrade = (req: IncomingMessage, u: URL, socket: Socket): Refusal | undefined => {
    connections++;
    socket.on('error', () => undefined);
    if (!PATH_RE.test(u.pathname)) return { status: 404, body: JSON.stringify({ detail: { status: 'not_found' } }) };
    const headerKey = req.headers['xi-api-key'];
    if (fake.fault === 'unauthorized' || (headerKey !== undefined && headerKey !== apiKey)) {
      return { status: 401, body: JSON.stringify({ detail: { status: 'invalid_api_key', message: 'Invalid API key' } }) };
    }
    if (u.searchParams.get('output_format') !== 'ulaw_8000') return { status: 400, body: JSON.stringify({ detail: { status: 'invalid_output_format' } }) };
    return undefined;
  };

  const server = await FakeServer.start({
    http: (_req, res) => res.writeHead(426).end(),
    upgrade,
    connection: (ws, req, u) => {
      const m = PATH_RE.exec(u.pathname)!;
      const headerKey = req.headers['xi-api-key'];
      const fault = fake.fault;
      let closeResolve!: () => void;
      const r: FakeTtsRequest = {
        voiceId: decodeURIComponent(m[1]!),
        modelId: u.searchParams.get('model_id'),
        outputFormat: u.searchParams.get('output_format'),
        apiKeyVia: headerKey !== undefined ? 'header' : 'none',
        texts: [],
        endOfInput: false,
        sentAudio: new Uint8Array(0),
        audioMessages: 0,
        clientClosedFirst: false,
        closed: new Promise<void>((resolve) => (closeResolve = resolve)),
      };
      requests.push(r);
      let serverClosing = false;
      const inactivity = setTimeout(() => {
        sendJson({ message: `Have not received a new text input within the timeout of ${fake.inactivityMs / 1000} seconds. Streaming input will be discontinued.`, error: 'input_timeout_exceeded', code: 1008 });
        closeWith(1008, 'Input timeout exceeded');
      }, fake.inactivityMs);
      ws.on('close', () => {
        clearTimeout(inactivity);
        if (!serverClosing) r.clientClosedFirst = true;
        closeResolve();
      });
      ws.on('error', () => undefined);
      const sendJson = (o: unknown) => {
        if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(o));
      };
      const closeWith = (code: number, reason: string) => {
        serverClosing = true;
        if (ws.readyState === ws.OPEN) ws.close(code, reason);
      };
      const sendAudio = (wire: Uint8Array, bytes: Uint8Array, text: string) => {
        const prev = r.sentAudio;
        const all = new Uint8Array(prev.length + bytes.length);
        all.set(prev);
        all.set(bytes, prev.length);
        r.sentAudio = all;
        r.audioMessages++;
        // Alignment: camelCase on the wire, times relative to the chunk (as documented); a rough one is enough.
        const chars = [...text.slice(0, 8)];
        const alignment = { chars, charStartTimesMs: chars.map((_, i) => i * 20), charDurationsMs: chars.map(() => 20) };
        sendJson({ audio: Buffer.from(wire).toString('base64'), normalizedAlignment: alignment, alignment });
      };

      const speak = () => {
        if (fault === 'stall') return;
        const text = r.texts.join('').trim();
        const speech = fakeSpeech(text);
        if (fault === 'garbage') {
          ws.send('<html>502 Bad Gateway</html>');
          return;
        }
        if (fault === 'binary') {
          ws.send(Buffer.from(speech.subarray(0, 160)));
          return;
        }
        if (fault === 'bad-audio') {
          sendJson({ audio: '%%% not base64 %%%', normalizedAlignment: null, alignment: null });
          return;
        }
        for (let at = 0; at < speech.length; at += fake.chunkBytes) {
          const chunk = speech.subarray(at, Math.min(speech.length, at + fake.chunkBytes));
          let wire = chunk;
          if (at === 0 && (fault === 'wav-header' || fault === 'wrong-wav')) {
            const h = fault === 'wav-header' ? wavHeader(7, 8000, 8) : wavHeader(1, 16000, 16);
            wire = new Uint8Array(h.length + chunk.length);
            wire.set(h);
            wire.set(chunk, h.length);
          }
          // sentAudio records the μ-law a correct client ends up with (the header is not audio).
          sendAudio(wire, chunk, text);
          if (fault === 'error-mid') {
            sendJson({ message: 'An internal server error occurred.', error: 'internal_error' });
            closeWith(1011, 'internal error');
            return;
          }
          if (fault === 'close-mid') {
            closeWith(1011, '');
            return;
          }
        }
        sendJson({ audio: null, isFinal: null, normalizedAlignment: null, alignment: null });
        if (fault === 'no-final') {
          closeWith(1000, '');
          return;
        }
        const finish = () => {
          sendJson({ isFinal: true });
          closeWith(1000, '');
        };
        if (fake.holdFinal) held.push(finish);
        else finish();
      };

      ws.on('message', (data, isBinary) => {
        if (isBinary) return;
        let msg: Record<string, unknown>;
        try {
          msg = JSON.parse(data.toString()) as Record<string, unknown>;
        } catch {
          return;
        }
        if (r.init === undefined) {
          r.init = msg;
          const vs = msg['voice_settings'];
          if (vs && typeof vs === 'object') r.voiceSettings = vs as Record<string, unknown>;
          const msgKey = msg['xi-api-key'] ?? msg['xi_api_key'];
          if (r.apiKeyVia === 'none') {
            if (msgKey === apiKey) r.apiKeyVia = 'message';
            else {
              sendJson({ message: 'Invalid API key', error: 'invalid_api_key', code: 1008 });
              closeWith(1008, 'Invalid API key');
              return;
            }
          }
          if (!voices.has(r.voiceId)) {
            sendJson({ message: `A voice with the voice_id ${r.voiceId} was not found.`, error: 'voice_not_found', code: 1008 });
            closeWith(1008, 'voice_not_found');
          }
          return;
        }
        const text = msg['text'];
        if (typeof text !== 'string') return;
        if (text === '') {
          r.endOfInput = true;
          clearTimeout(inactivity);
          speak();
        } else {
          r.texts.push(text);
          inactivity.refresh();
        }
      });
      events.emit('request', r);
    },
  });
  const url = server.url('');
  Object.assign(fake, { url, env: { ELEVENLABS_API_KEY: apiKey, ELEVENLABS_TTS_URL: url, ELEVENLABS_VOICE_ID: voiceId } });
  return fake;
}
