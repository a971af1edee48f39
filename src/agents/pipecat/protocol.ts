/**
 * Pipecat's protobuf frame serializer on the wire (https://github.com/pipecat-ai/pipecat, v1.7.0
 * `src/pipecat/frames/frames.proto`, `serializers/protobuf.py`): every WebSocket
 * message is one BINARY message holding one `pipecat.Frame`, a oneof of
 *
 * ```text
 *   1 text          TextFrame          { id, name, text }                     in the schema; the serializer never sends it
 *   2 audio         AudioRawFrame      { id, name, audio, sample_rate,        PCM16 little-endian, interleaved
 *                                        num_channels, optional pts }
 *   3 transcription TranscriptionFrame { id, name, text, user_id, timestamp } in the schema; never sent either
 *   4 message       MessageFrame       { data }                               a transport message: JSON text (RTVI)
 *   5 interruption  InterruptionFrame  { id, name }                           added 2026-05-23 (v1.3.0)
 * ```
 *
 * The schema is defined here in code (no .proto file, no codegen). Decoding uses
 * protobufjs; the one hot message — caller audio, 50 a second — is encoded by hand
 * into a reused buffer (the bytes are exactly what protobufjs writes; a test checks).
 *
 * Transport messages (MessageFrame.data) carry RTVI messages when the server's
 * pipeline has an RTVIProcessor (`serializers/protobuf.py` does not filter RTVI; a PipelineTask adds one by
 * default): `{"label":"rtvi-ai", "type":…, "id"?, "data":…}`. Transcripts come only from
 * these (the serializer sends no TextFrame or TranscriptionFrame): `user-transcription`
 * {text, final, user_id, timestamp}; `bot-output` {text, aggregated_by, spoken (1.x) |
 * will_be_spoken, spoken_status, spoken_progress, segment_id (2.x)}; `bot-tts-text`,
 * `bot-llm-text`, `bot-transcription` {text}. Client messages we send: `client-ready`
 * {version, about}, `dtmf` {buttons: ["5"]} (RTVI 2.1.0+; keys 0-9 * # only) and the
 * custom `client-message` {t, d}. Shapes as in RTVI 2.2.0 (pipecat's RTVI models and
 * @pipecat-ai/client-js); not part of the frame serializer itself.
 */
import { pcm16CopyFromBytes, pcm16ToBytes } from '../../audio/pcm.js';
import protobuf from 'protobufjs';

/** frames.proto (pipecat `src/pipecat/frames/frames.proto`) as protobufjs JSON. Field names as in the .proto (snake_case). */
const SCHEMA = {
  nested: {
    pipecat: {
      nested: {
        TextFrame: { fields: { id: { type: 'uint64', id: 1 }, name: { type: 'string', id: 2 }, text: { type: 'string', id: 3 } } },
        AudioRawFrame: {
          fields: {
            id: { type: 'uint64', id: 1 },
            name: { type: 'string', id: 2 },
            audio: { type: 'bytes', id: 3 },
            sample_rate: { type: 'uint32', id: 4 },
            num_channels: { type: 'uint32', id: 5 },
            pts: { type: 'uint64', id: 6, options: { proto3_optional: true } },
          },
        },
        TranscriptionFrame: {
          fields: {
            id: { type: 'uint64', id: 1 },
            name: { type: 'string', id: 2 },
            text: { type: 'string', id: 3 },
            user_id: { type: 'string', id: 4 },
            timestamp: { type: 'string', id: 5 },
          },
        },
        MessageFrame: { fields: { data: { type: 'string', id: 1 } } },
        InterruptionFrame: { fields: { id: { type: 'uint64', id: 1 }, name: { type: 'string', id: 2 } } },
        Frame: {
          oneofs: { frame: { oneof: ['text', 'audio', 'transcription', 'message', 'interruption'] } },
          fields: {
            text: { type: 'TextFrame', id: 1 },
            audio: { type: 'AudioRawFrame', id: 2 },
            transcription: { type: 'TranscriptionFrame', id: 3 },
            message: { type: 'MessageFrame', id: 4 },
            interruption: { type: 'InterruptionFrame', id: 5 },
          },
        },
      },
    },
  },
};

const FrameType = protobuf.Root.fromJSON(SCHEMA).lookupType('pipecat.Frame');

/** Highest sample rate we accept in an AudioRawFrame (the DSP's limit is 192 kHz). */
export const MAX_AUDIO_RATE_HZ = 192_000;

export const RTVI_LABEL = 'rtvi-ai';
/** The RTVI protocol version we declare in client-ready (the message shapes above). */
export const RTVI_PROTOCOL_VERSION = '2.2.0';
/** Keys RTVI's `dtmf` message carries (DTMFButton). */
export const RTVI_DTMF_KEYS = /^[0-9*#]$/;

/** A frame from the server, validated. */
export type PipecatFrame =
  | { readonly kind: 'audio'; readonly audio: Uint8Array; readonly sampleRateHz: number; readonly numChannels: number }
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'transcription'; readonly text: string; readonly userId: string }
  | { readonly kind: 'message'; readonly data: unknown }
  | { readonly kind: 'interruption' };

export type ParseResult =
  | { readonly ok: true; readonly frame: PipecatFrame }
  /** `protocol`: not a Frame we understand; `audio-format`: an audio frame we must not play. */
  | { readonly ok: false; readonly problem: 'protocol' | 'audio-format'; readonly detail: string };

interface DecodedFrame {
  frame?: string;
  text?: { text?: string };
  audio?: { audio?: Uint8Array; sample_rate?: number; num_channels?: number };
  transcription?: { text?: string; user_id?: string };
  message?: { data?: string };
  interruption?: object;
}

const fail = (problem: 'protocol' | 'audio-format', detail: string): ParseResult => ({ ok: false, problem, detail });

/**
 * Decodes one binary WebSocket message. Never throws. The audio of an `audio` frame
 * is a view into `bytes` (copy it to keep it).
 */
export function parseFrame(bytes: Uint8Array): ParseResult {
  let m: DecodedFrame;
  try {
    m = FrameType.decode(bytes) as unknown as DecodedFrame;
  } catch (e) {
    return fail('protocol', `not a pipecat.Frame (${(e as Error).message})`);
  }
  switch (m.frame) {
    case 'audio': {
      const a = m.audio!;
      const audio = a.audio ?? new Uint8Array(0);
      const rate = a.sample_rate ?? 0;
      // proto3 cannot tell 0 from absent, and the serializer copies only truthy fields:
      // a missing num_channels is read as mono (Pipecat's output is mono). Our assumption.
      const channels = a.num_channels || 1;
      if (rate === 0 || rate > MAX_AUDIO_RATE_HZ) return fail('audio-format', `AudioRawFrame with sample_rate ${rate}`);
      if (audio.length % (2 * channels) !== 0) return fail('audio-format', `AudioRawFrame of ${audio.length} bytes is not whole 16-bit samples for ${channels} channel(s)`);
      return { ok: true, frame: { kind: 'audio', audio, sampleRateHz: rate, numChannels: channels } };
    }
    case 'text':
      return { ok: true, frame: { kind: 'text', text: m.text!.text ?? '' } };
    case 'transcription':
      return { ok: true, frame: { kind: 'transcription', text: m.transcription!.text ?? '', userId: m.transcription!.user_id ?? '' } };
    case 'message': {
      const raw = m.message!.data ?? '';
      try {
        return { ok: true, frame: { kind: 'message', data: JSON.parse(raw) as unknown } };
      } catch {
        return fail('protocol', `MessageFrame data is not JSON (${raw.length} chars)`);
      }
    }
    case 'interruption':
      return { ok: true, frame: { kind: 'interruption' } };
    default:
      // Unknown fields are skipped by protobuf: a Frame whose oneof is empty holds a
      // frame type this schema does not know (a newer serializer) or nothing at all.
      return fail('protocol', 'a Frame with no known frame type (unknown oneof field or empty message)');
  }
}

/** An RTVI message's type, if `data` is one (`{label:'rtvi-ai', type}`). */
export function rtviType(data: unknown): string | undefined {
  if (typeof data !== 'object' || data === null) return undefined;
  const d = data as { label?: unknown; type?: unknown };
  return d.label === RTVI_LABEL && typeof d.type === 'string' ? d.type : undefined;
}

/** An RTVI message's `data` object, or an empty one. */
export function rtviData(data: unknown): Record<string, unknown> {
  const d = (data as { data?: unknown }).data;
  return typeof d === 'object' && d !== null && !Array.isArray(d) ? (d as Record<string, unknown>) : {};
}

/** An RTVI `error` message's fields (`{data:{error, fatal}}`). */
export function rtviError(data: unknown): { error: string; fatal: boolean } {
  const d = (data as { data?: { error?: unknown; fatal?: unknown } }).data;
  return { error: typeof d?.error === 'string' ? d.error.slice(0, 300) : 'unspecified error', fatal: d?.fatal === true };
}

// --- building --------------------------------------------------------------------

/** `Frame{interruption: InterruptionFrame{}}` — constant (id and name are left unset). */
export const INTERRUPTION_FRAME: Uint8Array = FrameType.encode({ interruption: {} }).finish();

export function buildTextFrame(text: string): Uint8Array {
  return FrameType.encode({ text: { text } }).finish();
}

/** A MessageFrame: the server's deserializer turns it into an InputTransportMessageFrame (JSON-parsed). */
export function buildMessageFrame(message: unknown): Uint8Array {
  return FrameType.encode({ message: { data: JSON.stringify(message) } }).finish();
}

/**
 * An RTVI client message (`{label:'rtvi-ai', type:'client-message', id, data:{t, d}}`):
 * a pipeline with an RTVIProcessor raises `on_client_message` with type `t` and data `d`;
 * without one it arrives as a plain InputTransportMessageFrame.
 */
export function buildClientMessage(id: string, t: string, d: unknown): Uint8Array {
  return buildMessageFrame({ label: RTVI_LABEL, type: 'client-message', id, data: { t, d } });
}

/** RTVI's native key-press message (2.1.0+): the pipeline gets the keys as DTMF input. */
export function buildDtmf(id: string, buttons: string[]): Uint8Array {
  return buildMessageFrame({ label: RTVI_LABEL, type: 'dtmf', id, data: { buttons } });
}

/** RTVI `client-ready`: the bot answers `bot-ready` (and bots that gate caller audio on it start listening). */
export function buildClientReady(id: string, libraryVersion?: string): Uint8Array {
  const about: Record<string, string> = { library: 'voice-bridge' };
  if (libraryVersion !== undefined) about['library_version'] = libraryVersion;
  return buildMessageFrame({ label: RTVI_LABEL, type: 'client-ready', id, data: { version: RTVI_PROTOCOL_VERSION, about } });
}

/** For tests: any frame through protobufjs (the reference encoding). */
export function encodeFrameForTest(frame: Record<string, unknown>): Uint8Array {
  return FrameType.encode(frame).finish();
}

function varintLength(v: number): number {
  let n = 1;
  while (v >= 0x80) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

function writeVarint(buf: Uint8Array, off: number, v: number): number {
  while (v >= 0x80) {
    buf[off++] = (v & 0x7f) | 0x80;
    v = Math.floor(v / 128);
  }
  buf[off++] = v;
  return off;
}

/**
 * Encodes caller audio as `Frame{audio: AudioRawFrame{audio, sample_rate, num_channels: 1}}`
 * into one buffer reused across calls: the returned view is valid until the next
 * encode(). (ws copies it while masking, and we disable permessage-deflate, so the
 * bytes are never read after send() returns.)
 */
export class AudioFrameEncoder {
  readonly sampleRateHz: number;
  #buf = new Uint8Array(0);

  constructor(sampleRateHz: number) {
    this.sampleRateHz = sampleRateHz;
  }

  encode(pcm: Int16Array): Uint8Array {
    const audioBytes = pcm.length * 2;
    // AudioRawFrame: field 3 (bytes), field 4 (varint), field 5 (varint) — in field order, as protobufjs writes.
    const inner = 1 + varintLength(audioBytes) + audioBytes + 1 + varintLength(this.sampleRateHz) + 2;
    const total = 1 + varintLength(inner) + inner;
    if (this.#buf.length < total) this.#buf = new Uint8Array(Math.max(total, this.#buf.length * 2, 1024));
    const b = this.#buf;
    let o = 0;
    b[o++] = 0x12; // Frame.audio: field 2, wire type 2
    o = writeVarint(b, o, inner);
    b[o++] = 0x1a; // AudioRawFrame.audio: field 3, wire type 2
    o = writeVarint(b, o, audioBytes);
    b.set(pcm16ToBytes(pcm), o); // a view on little-endian hosts: one copy, into the frame
    o += audioBytes;
    b[o++] = 0x20; // sample_rate: field 4, varint
    o = writeVarint(b, o, this.sampleRateHz);
    b[o++] = 0x28; // num_channels: field 5, varint
    b[o++] = 1;
    return b.subarray(0, o);
  }
}

/** PCM16 little-endian bytes (a view into a message) → a fresh Int16Array the listener may keep. */
export function pcmFromBytes(bytes: Uint8Array): Int16Array {
  return pcm16CopyFromBytes(bytes);
}
