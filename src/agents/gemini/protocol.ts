/**
 * Gemini Live (BidiGenerateContent) wire format: the client messages we build and a
 * validating parser for server messages (https://ai.google.dev/api/live; field names from js-genai
 * `LiveClientMessage` / `LiveServerMessage`). JSON, camelCase; server messages may
 * arrive as binary WebSocket frames holding UTF-8 JSON (js-genai decodes both) — decodeFrame() takes both.
 *
 * Client messages we send (each has exactly one top-level key, per the Live API reference):
 *   setup          first message only; then we wait for `setupComplete`
 *   realtimeInput  { audio: { mimeType: 'audio/pcm;rate=16000', data } } caller audio
 *                  { text }  DTMF digits only. `LiveClientRealtimeInput` "is always assumed
 *                  to be the user's input": text sent here is the caller speaking, which is
 *                  right for "the caller pressed 5" and wrong for anything else.
 *   clientContent  { turns: [{ role: 'model', parts: [{ text }] }], turnComplete: false }
 *                  the barge-in note (see session.ts): a context note in the model's own
 *                  turn, so it is never read as the caller's words; turnComplete false so
 *                  it starts no generation. Gemini 3.x Live models accept clientContent
 *                  with explicit roles for the whole session; an older model that closes
 *                  with 1007 on it (livekit/agents#5251) makes session.ts stop sending notes.
 *
 * What the parser accepts and how it fails: anything that is not a JSON object, or an
 * object with none of the known top-level keys, is `{ ok: false }` (a counted protocol
 * error). Unknown top-level keys beside known ones, and malformed known fields, are
 * listed in `problems` (counted) while the rest of the message is used. Unknown keys
 * *inside* serverContent are ignored: Google adds fields there (2026:
 * interimInputTranscription, turnCompleteReason, …) and they must not break calls.
 * Audio parts are checked (mimeType audio/pcm at 24 kHz, base64 of whole 16-bit
 * samples) and decoded here; a bad part is reported, never returned as audio.
 */
import { greetingInstruction } from '../shared/greeting.js';
import { geminiSetupTools, type ToolDeclaration } from '../../tools/declarations.js';
import { geminiFunctionResponse, geminiToolResponse, type ToolOutcomeLike } from '../../tools/result-shapes.js';
import { pcm16CopyFromBytes, pcm16ToBase64 } from '../../audio/pcm.js';

export const INPUT_RATE_HZ = 16_000;
export const OUTPUT_RATE_HZ = 24_000;
export const INPUT_MIME = `audio/pcm;rate=${INPUT_RATE_HZ}`;

// --- client messages -----------------------------------------------------------------

export interface SetupOptions {
  /** Without the `models/` prefix. */
  model: string;
  voice: string;
  instructions: string;
  /** The last resumable `sessionResumptionUpdate.newHandle`, to resume a session. */
  handle?: string;
  tools?: readonly ToolDeclaration[];
}

/**
 * The `setup` message. Notes:
 * - `sessionResumption` is always present (an empty object asks for handles,
 *   https://ai.google.dev/gemini-api/docs/live-session);
 *   `transparent` is NOT sent: the Gemini API rejects it (js-genai throws "transparent
 *   parameter is not supported in Gemini API"; Vertex only), so we never get
 *   `lastConsumedClientMessageIndex` — see session.ts on what that means for resumption.
 * - `contextWindowCompression.slidingWindow` (server defaults): without compression an
 *   audio session is capped at 15 minutes (same guide) regardless of resumption, and our
 *   calls may be longer.
 * - realtimeInputConfig is left out: the defaults are automatic activity detection
 *   with START_OF_ACTIVITY_INTERRUPTS, which is what barge-in needs.
 */
export function buildSetup(o: SetupOptions): string {
  return JSON.stringify({
    setup: {
      model: `models/${o.model}`,
      generationConfig: {
        responseModalities: ['AUDIO'],
        speechConfig: { voiceConfig: { prebuiltVoiceConfig: { voiceName: o.voice } } },
      },
      systemInstruction: { parts: [{ text: o.instructions }] },
      inputAudioTranscription: {},
      outputAudioTranscription: {},
      sessionResumption: o.handle !== undefined ? { handle: o.handle } : {},
      contextWindowCompression: { slidingWindow: {} },
      // JSON Schema as written in the profile (parametersJsonSchema), not the OpenAPI subset of `parameters`.
      ...(o.tools && o.tools.length > 0 ? { tools: geminiSetupTools(o.tools, { schemaField: 'parametersJsonSchema' }) } : {}),
    },
  });
}

/** The answer to one function call (`response: {output}` or `{error}`), as one toolResponse message. */
export function buildToolResponse(id: string, name: string, result: ToolOutcomeLike): string {
  return JSON.stringify(geminiToolResponse([geminiFunctionResponse(id, name, result)]));
}

const AUDIO_PREFIX = `{"realtimeInput":{"audio":{"mimeType":"${INPUT_MIME}","data":"`;
const AUDIO_SUFFIX = '"}}}';

/** realtimeInput.audio with base64 PCM16 LE at 16 kHz (base64 needs no JSON escaping). */
export function buildAudio(pcm: Int16Array): string {
  return AUDIO_PREFIX + pcm16ToBase64(pcm) + AUDIO_SUFFIX;
}

/** realtimeInput.text: the caller's own input (DTMF digits). */
export function buildText(text: string): string {
  return JSON.stringify({ realtimeInput: { text } });
}

/**
 * The agent speaks first: a client turn asking the model to greet (turnComplete, so it
 * answers at once), in its own words (`auto`) or with the greeting's.
 */
export function buildGreeting(greeting: string): string {
  return JSON.stringify({ clientContent: { turns: [{ role: 'user', parts: [{ text: greetingInstruction(greeting) }] }], turnComplete: true } });
}

/** The role of a context note's turn: the model's own turn, never the caller's. */
export const NOTE_ROLE = 'model';

/**
 * A context note appended to the conversation (clientContent) without asking for a reply
 * (turnComplete false). Used for what the caller did not hear of the model's last reply.
 */
export function buildContextNote(text: string): string {
  return JSON.stringify({ clientContent: { turns: [{ role: NOTE_ROLE, parts: [{ text }] }], turnComplete: false } });
}

// --- server messages -----------------------------------------------------------------

export interface Transcription {
  text: string;
  finished: boolean;
}

export interface ServerContent {
  /** Decoded PCM16 24 kHz chunks of modelTurn inlineData parts, in order. */
  audio: Int16Array[];
  /** Why an inlineData part was rejected (wrong mimeType/rate, bad base64): AGENT_AUDIO_FORMAT. */
  badAudio: string[];
  hasModelTurn: boolean;
  interrupted: boolean;
  generationComplete: boolean;
  turnComplete: boolean;
  inputTranscription?: Transcription;
  outputTranscription?: Transcription;
}

export interface ServerMessage {
  setupComplete: boolean;
  serverContent?: ServerContent;
  /** timeLeftMs undefined when the Duration could not be read. */
  goAway?: { timeLeftMs: number | undefined };
  sessionResumptionUpdate?: { newHandle: string | undefined; resumable: boolean };
  /** Function calls: `args` as JSON text (the call core parses it). */
  toolCall?: { calls: { id: string; name: string; args: string }[] };
  /** Calls the service withdrew (the caller interrupted the turn that made them). */
  toolCallCancellation?: { ids: string[] };
  /** Non-fatal problems (unknown top-level keys, malformed known fields): AGENT_PROTOCOL each. */
  problems: string[];
}

export type ParseResult = { ok: true; message: ServerMessage } | { ok: false; detail: string };

const KNOWN_TOP = new Set([
  'setupComplete',
  'serverContent',
  'toolCall',
  'toolCallCancellation',
  'usageMetadata',
  'goAway',
  'sessionResumptionUpdate',
  'voiceActivity',
  'voiceActivityDetectionSignal',
]);

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A WebSocket frame as text: text frames as they are, binary frames decoded as UTF-8 (the server sends JSON in both). */
export function decodeFrame(data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean): string | undefined {
  const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
  if (!isBinary) return buf.toString('utf8');
  try {
    return utf8.decode(buf);
  } catch {
    return undefined;
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function parseServerMessage(text: string): ParseResult {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return { ok: false, detail: `not JSON: ${JSON.stringify(text.slice(0, 60))}` };
  }
  if (!isObject(v)) return { ok: false, detail: 'not a JSON object' };
  const keys = Object.keys(v);
  const known = keys.filter((k) => KNOWN_TOP.has(k));
  if (known.length === 0) return { ok: false, detail: `no known key (got ${keys.slice(0, 5).join(', ') || 'an empty object'})` };
  const m: ServerMessage = { setupComplete: false, problems: [] };
  for (const k of keys) if (!KNOWN_TOP.has(k)) m.problems.push(`unknown key ${JSON.stringify(k.slice(0, 40))}`);

  if ('setupComplete' in v) {
    if (isObject(v['setupComplete'])) m.setupComplete = true;
    else m.problems.push('setupComplete is not an object');
  }
  if ('serverContent' in v) {
    const sc = v['serverContent'];
    if (isObject(sc)) m.serverContent = parseServerContent(sc, m.problems);
    else m.problems.push('serverContent is not an object');
  }
  if ('goAway' in v) {
    const g = v['goAway'];
    if (isObject(g)) {
      const timeLeftMs = parseDurationMs(g['timeLeft']);
      if (timeLeftMs === undefined && g['timeLeft'] !== undefined) m.problems.push(`goAway.timeLeft ${JSON.stringify(g['timeLeft'])} is not a Duration`);
      m.goAway = { timeLeftMs };
    } else m.problems.push('goAway is not an object');
  }
  if ('sessionResumptionUpdate' in v) {
    const u = v['sessionResumptionUpdate'];
    if (isObject(u)) {
      const h = u['newHandle'];
      if (h !== undefined && (typeof h !== 'string' || h.length > 4096)) m.problems.push('sessionResumptionUpdate.newHandle is not a string (≤ 4096 chars)');
      m.sessionResumptionUpdate = { newHandle: typeof h === 'string' && h !== '' && h.length <= 4096 ? h : undefined, resumable: u['resumable'] === true };
    } else m.problems.push('sessionResumptionUpdate is not an object');
  }
  if ('toolCall' in v) {
    const t = v['toolCall'];
    const raw = isObject(t) && Array.isArray(t['functionCalls']) ? t['functionCalls'] : undefined;
    if (raw === undefined) m.problems.push('toolCall.functionCalls is not a list');
    const calls: { id: string; name: string; args: string }[] = [];
    for (const c of raw ?? []) {
      if (!isObject(c) || typeof c['id'] !== 'string' || typeof c['name'] !== 'string') m.problems.push('toolCall.functionCalls[] without a string id and name');
      else calls.push({ id: c['id'], name: c['name'], args: c['args'] === undefined ? '{}' : JSON.stringify(c['args']) });
    }
    m.toolCall = { calls };
  }
  if ('toolCallCancellation' in v) {
    const t = v['toolCallCancellation'];
    const ids = isObject(t) && Array.isArray(t['ids']) ? t['ids'].filter((x): x is string => typeof x === 'string') : [];
    m.toolCallCancellation = { ids };
  }
  return { ok: true, message: m };
}

function parseServerContent(sc: Record<string, unknown>, problems: string[]): ServerContent {
  const c: ServerContent = {
    audio: [],
    badAudio: [],
    hasModelTurn: false,
    interrupted: sc['interrupted'] === true,
    generationComplete: sc['generationComplete'] === true,
    turnComplete: sc['turnComplete'] === true,
  };
  const mt = sc['modelTurn'];
  if (mt !== undefined) {
    const parts = isObject(mt) ? mt['parts'] : undefined;
    if (!Array.isArray(parts)) problems.push('serverContent.modelTurn.parts is not an array');
    else {
      c.hasModelTurn = true;
      for (const p of parts) {
        if (!isObject(p)) {
          problems.push('modelTurn part is not an object');
          continue;
        }
        const inline = p['inlineData'];
        if (inline === undefined) continue; // text / thought / executableCode parts: not audio
        const r = decodeInlineAudio(inline);
        if (typeof r === 'string') c.badAudio.push(r);
        else c.audio.push(r);
      }
    }
  }
  c.inputTranscription = parseTranscription(sc['inputTranscription'], 'inputTranscription', problems);
  c.outputTranscription = parseTranscription(sc['outputTranscription'], 'outputTranscription', problems);
  return c;
}

function parseTranscription(t: unknown, what: string, problems: string[]): Transcription | undefined {
  if (t === undefined) return undefined;
  if (!isObject(t) || (t['text'] !== undefined && typeof t['text'] !== 'string')) {
    problems.push(`${what} is malformed`);
    return undefined;
  }
  return { text: typeof t['text'] === 'string' ? t['text'] : '', finished: t['finished'] === true };
}

const B64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * One inlineData part → PCM16 samples, or why not. mimeType must be audio/pcm (or
 * audio/L16) with rate=24000; a missing rate parameter is taken as the documented
 * 24 kHz output (Live API docs — real messages carry `audio/pcm;rate=24000`).
 * Samples are little-endian on the wire; every platform we build for is LE too.
 */
export function decodeInlineAudio(inline: unknown): Int16Array | string {
  if (!isObject(inline)) return 'inlineData is not an object';
  const mime = inline['mimeType'];
  const data = inline['data'];
  if (typeof mime !== 'string') return 'inlineData without mimeType';
  const [type, ...params] = mime.split(';').map((s) => s.trim().toLowerCase());
  if (type !== 'audio/pcm' && type !== 'audio/l16') return `inlineData mimeType ${JSON.stringify(mime.slice(0, 60))} is not PCM audio`;
  const rate = params.find((p) => p.startsWith('rate='))?.slice(5);
  if (rate !== undefined && rate !== String(OUTPUT_RATE_HZ)) return `inlineData at rate ${JSON.stringify(rate)}, expected ${OUTPUT_RATE_HZ}`;
  if (typeof data !== 'string' || data.length % 4 !== 0 || !B64_RE.test(data)) return 'inlineData.data is not base64';
  const bytes = Buffer.from(data, 'base64');
  if (bytes.length % 2 !== 0) return `inlineData of ${bytes.length} bytes: not whole 16-bit samples`;
  // Our own samples (the listener may keep them; a view would pin Buffer's shared pool), one copy.
  return pcm16CopyFromBytes(bytes);
}

/** protobuf Duration in JSON: "10s", "1.5s", "0.250s" (format inferred, not documented); also {seconds, nanos}. */
export function parseDurationMs(v: unknown): number | undefined {
  if (typeof v === 'string') {
    const m = /^(\d+(?:\.\d+)?)s$/.exec(v.trim());
    return m ? Math.round(Number(m[1]) * 1000) : undefined;
  }
  if (isObject(v)) {
    const s = Number(v['seconds'] ?? 0);
    const n = Number(v['nanos'] ?? 0);
    if (Number.isFinite(s) && Number.isFinite(n) && s >= 0 && n >= 0) return Math.round(s * 1000 + n / 1e6);
  }
  return undefined;
}
