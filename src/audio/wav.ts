/**
 * WAV (RIFF/WAVE) read and write for the formats a phone bridge meets:
 * PCM16 little-endian (mono or stereo, any rate) and G.711 μ-law (format 7) /
 * A-law (format 6), mono.
 *
 * File layout (Microsoft RIFF; every chunk is `id(4) size(u32 LE) body`, and a
 * body of odd size is followed by one pad byte that `size` does not count):
 *
 *   "RIFF" <riffSize> "WAVE"
 *     "fmt " <16|18|40> formatTag channels sampleRate byteRate blockAlign bitsPerSample [cbSize …]
 *     "fact" 4 <sampleFrames>          (non-PCM formats; written by us, ignored when read)
 *     "LIST" … / anything else          (skipped when read)
 *     "data" <dataSize> samples…
 *
 * The reader walks the chunks instead of assuming a 44-byte header (espeak-ng,
 * sox and ffmpeg write `fact`, `LIST` and 18-byte `fmt ` chunks). It tolerates
 * what real files get wrong — a missing final pad byte, a `data` size of
 * 0xFFFFFFFF or larger than the file (a streaming writer that never patched it),
 * a trailing partial sample — and rejects everything else with a WavFormatError
 * that says what is wrong and where.
 *
 * The writer (`WavWriter`) streams to a file: it writes a header with
 * placeholder sizes, appends chunks as they come, and patches the sizes on
 * close, so a long recording never sits in memory.
 */
import { open, readFile, type FileHandle } from 'node:fs/promises';
import { endianness } from 'node:os';
import { ErrorCodes } from '../errors.js';

export type WavEncoding = 'pcm16' | 'ulaw' | 'alaw';

export interface WavFormat {
  sampleRateHz: number;
  /** 1 or 2 for pcm16 (interleaved), 1 for ulaw/alaw. */
  channels: number;
  encoding: WavEncoding;
}

export type WavAudio =
  | { sampleRateHz: number; channels: number; encoding: 'pcm16'; data: Int16Array }
  | { sampleRateHz: number; channels: number; encoding: 'ulaw' | 'alaw'; data: Uint8Array };

export class WavFormatError extends Error {
  readonly code = ErrorCodes.WAV_FORMAT;
  constructor(message: string) {
    super(message);
    this.name = 'WavFormatError';
  }
}

const FORMAT_PCM = 1;
const FORMAT_ALAW = 6;
const FORMAT_ULAW = 7;
const FORMAT_EXTENSIBLE = 0xfffe;
const MAX_RATE_HZ = 768_000;
const LITTLE_ENDIAN_HOST = endianness() === 'LE';

function fourcc(b: Uint8Array, at: number): string {
  return String.fromCharCode(b[at]!, b[at + 1]!, b[at + 2]!, b[at + 3]!);
}

function printable(id: string): string {
  return /^[\x20-\x7e]{4}$/.test(id) ? `"${id}"` : JSON.stringify(id);
}

function checkFormat(f: WavFormat): void {
  if (!Number.isInteger(f.sampleRateHz) || f.sampleRateHz < 1 || f.sampleRateHz > MAX_RATE_HZ) {
    throw new WavFormatError(`sample rate ${f.sampleRateHz} Hz is outside 1–${MAX_RATE_HZ}`);
  }
  if (f.encoding === 'pcm16') {
    if (f.channels !== 1 && f.channels !== 2) throw new WavFormatError(`pcm16 supports 1 or 2 channels, not ${f.channels}`);
  } else if (f.encoding === 'ulaw' || f.encoding === 'alaw') {
    if (f.channels !== 1) throw new WavFormatError(`${f.encoding} is supported mono only, not ${f.channels} channels`);
  } else {
    throw new WavFormatError(`unknown encoding ${JSON.stringify(String(f.encoding))}`);
  }
}

/** Parses a whole WAV file held in memory. Throws WavFormatError on anything it cannot read exactly. */
export function parseWav(bytes: Uint8Array): WavAudio {
  if (bytes.length < 12) throw new WavFormatError(`not a WAV file: ${bytes.length} bytes is shorter than a RIFF header`);
  const magic = fourcc(bytes, 0);
  if (magic === 'RF64' || magic === 'RIFX') throw new WavFormatError(`${magic} files are not supported (only little-endian RIFF)`);
  if (magic !== 'RIFF') throw new WavFormatError(`not a WAV file: starts with ${printable(magic)}, expected "RIFF"`);
  if (fourcc(bytes, 8) !== 'WAVE') throw new WavFormatError(`not a WAV file: RIFF form is ${printable(fourcc(bytes, 8))}, expected "WAVE"`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // The RIFF size is often wrong in streamed files; the chunk walk is bounded by the real length instead.

  let fmt: { tag: number; channels: number; rate: number; blockAlign: number; bits: number } | undefined;
  let data: { at: number; size: number } | undefined;
  let at = 12;
  while (at + 8 <= bytes.length) {
    const id = fourcc(bytes, at);
    const declared = view.getUint32(at + 4, true);
    const bodyAt = at + 8;
    const remaining = bytes.length - bodyAt;
    if (id === 'data') {
      // A streaming writer that never patched its header leaves 0xFFFFFFFF (or a size past the end): take what is there.
      data = { at: bodyAt, size: Math.min(declared, remaining) };
      if (fmt) break; // everything needed is known; trailing chunks (LIST after data) do not matter
    } else {
      if (declared > remaining) {
        throw new WavFormatError(`chunk ${printable(id)} at byte ${at} declares ${declared} bytes but only ${remaining} remain (truncated or not a WAV file)`);
      }
      if (id === 'fmt ') {
        if (declared < 16) throw new WavFormatError(`"fmt " chunk is ${declared} bytes, needs at least 16`);
        let tag = view.getUint16(bodyAt, true);
        if (tag === FORMAT_EXTENSIBLE) {
          // WAVEFORMATEXTENSIBLE: cbSize ≥ 22, then validBits(2) channelMask(4) and the SubFormat GUID,
          // whose first two bytes are the real format tag.
          if (declared < 40) throw new WavFormatError(`WAVE_FORMAT_EXTENSIBLE "fmt " chunk is ${declared} bytes, needs 40`);
          tag = view.getUint16(bodyAt + 24, true);
        }
        fmt = {
          tag,
          channels: view.getUint16(bodyAt + 2, true),
          rate: view.getUint32(bodyAt + 4, true),
          blockAlign: view.getUint16(bodyAt + 12, true),
          bits: view.getUint16(bodyAt + 14, true),
        };
      }
    }
    const next = bodyAt + declared + (declared & 1);
    if (id === 'data' && next > bytes.length) break; // data ran to the end (a missing final pad byte is common)
    at = next;
  }
  if (!fmt) throw new WavFormatError('no "fmt " chunk before the end of the file');
  if (!data) throw new WavFormatError('no "data" chunk');

  let encoding: WavEncoding;
  let bytesPerSample: number;
  if (fmt.tag === FORMAT_PCM) {
    if (fmt.bits !== 16) throw new WavFormatError(`PCM with ${fmt.bits} bits per sample is not supported (only 16)`);
    encoding = 'pcm16';
    bytesPerSample = 2;
  } else if (fmt.tag === FORMAT_ULAW || fmt.tag === FORMAT_ALAW) {
    if (fmt.bits !== 8) throw new WavFormatError(`G.711 with ${fmt.bits} bits per sample (expected 8)`);
    encoding = fmt.tag === FORMAT_ULAW ? 'ulaw' : 'alaw';
    bytesPerSample = 1;
  } else {
    const names: Record<number, string> = { 3: 'IEEE float', 2: 'MS ADPCM', 0x11: 'IMA ADPCM', 0x55: 'MP3' };
    throw new WavFormatError(`unsupported WAV format tag ${fmt.tag}${names[fmt.tag] ? ` (${names[fmt.tag]})` : ''}: only PCM16, μ-law (7) and A-law (6)`);
  }
  const format: WavFormat = { sampleRateHz: fmt.rate, channels: fmt.channels, encoding };
  checkFormat(format);
  if (fmt.blockAlign !== fmt.channels * bytesPerSample) {
    throw new WavFormatError(`"fmt " blockAlign is ${fmt.blockAlign}, expected ${fmt.channels * bytesPerSample} for ${fmt.channels} channel(s) of ${encoding}`);
  }
  // Drop a trailing partial sample frame (truncated file) rather than misalign every channel.
  const size = data.size - (data.size % fmt.blockAlign);
  if (encoding === 'pcm16') {
    const out = new Int16Array(size / 2);
    for (let i = 0, p = data.at; i < out.length; i++, p += 2) out[i] = view.getInt16(p, true);
    return { sampleRateHz: format.sampleRateHz, channels: format.channels, encoding, data: out };
  }
  return { sampleRateHz: format.sampleRateHz, channels: format.channels, encoding, data: bytes.slice(data.at, data.at + size) };
}

/** Reads and parses a WAV file. Errors name the file. */
export async function readWav(path: string): Promise<WavAudio> {
  const bytes = await readFile(path);
  try {
    return parseWav(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  } catch (e) {
    if (e instanceof WavFormatError) throw new WavFormatError(`${path}: ${e.message}`);
    throw e;
  }
}

/** Header bytes for a format; sizes are patched by `patchSizes`. PCM: 44 bytes; G.711: 58 (18-byte fmt + fact). */
function buildHeader(f: WavFormat): Uint8Array {
  const pcm = f.encoding === 'pcm16';
  const bytesPerSample = pcm ? 2 : 1;
  const fmtSize = pcm ? 16 : 18; // non-PCM formats carry cbSize (0) and need a fact chunk (RIFF spec)
  const headerSize = 12 + 8 + fmtSize + (pcm ? 0 : 12) + 8;
  const b = new Uint8Array(headerSize);
  const v = new DataView(b.buffer);
  const put = (at: number, s: string) => {
    for (let i = 0; i < 4; i++) b[at + i] = s.charCodeAt(i);
  };
  put(0, 'RIFF');
  put(8, 'WAVE');
  put(12, 'fmt ');
  v.setUint32(16, fmtSize, true);
  v.setUint16(20, pcm ? FORMAT_PCM : f.encoding === 'ulaw' ? FORMAT_ULAW : FORMAT_ALAW, true);
  v.setUint16(22, f.channels, true);
  v.setUint32(24, f.sampleRateHz, true);
  v.setUint32(28, f.sampleRateHz * f.channels * bytesPerSample, true);
  v.setUint16(32, f.channels * bytesPerSample, true);
  v.setUint16(34, bytesPerSample * 8, true);
  let at = 36;
  if (!pcm) {
    v.setUint16(36, 0, true); // cbSize
    put(38, 'fact');
    v.setUint32(42, 4, true);
    at = 50;
  }
  put(at, 'data');
  return b;
}

/** Writes the size fields into `header` for `dataBytes` of data (the pad byte counts in the RIFF size only). */
function patchSizes(header: Uint8Array, f: WavFormat, dataBytes: number): void {
  const v = new DataView(header.buffer, header.byteOffset, header.byteLength);
  const pad = dataBytes & 1;
  v.setUint32(4, header.length - 8 + dataBytes + pad, true);
  v.setUint32(header.length - 4, dataBytes, true);
  if (f.encoding !== 'pcm16') v.setUint32(46, dataBytes / f.channels, true); // fact: sample frames
}

function sampleBytes(chunk: Int16Array | Uint8Array, encoding: WavEncoding): Uint8Array {
  if (encoding === 'pcm16') {
    if (!(chunk instanceof Int16Array)) throw new TypeError('pcm16 WAV data must be an Int16Array');
    if (LITTLE_ENDIAN_HOST) return new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const out = new Uint8Array(chunk.length * 2);
    const v = new DataView(out.buffer);
    for (let i = 0; i < chunk.length; i++) v.setInt16(i * 2, chunk[i]!, true);
    return out;
  }
  if (!(chunk instanceof Uint8Array)) throw new TypeError(`${encoding} WAV data must be a Uint8Array`);
  return chunk;
}

/** A whole WAV file in memory (small files and tests; use WavWriter for long recordings). */
export function encodeWav(audio: WavAudio): Uint8Array {
  checkFormat(audio);
  const body = sampleBytes(audio.data, audio.encoding);
  if (body.length % (audio.channels * (audio.encoding === 'pcm16' ? 2 : 1)) !== 0) {
    throw new WavFormatError(`data length ${audio.data.length} is not a whole number of ${audio.channels}-channel sample frames`);
  }
  const header = buildHeader(audio);
  patchSizes(header, audio, body.length);
  const out = new Uint8Array(header.length + body.length + (body.length & 1));
  out.set(header, 0);
  out.set(body, header.length);
  return out;
}

/**
 * Streaming WAV writer: `await WavWriter.open(path, format)`, `await write(chunk)`
 * any number of times, `await close()`. Writes are queued in order, so callers may
 * also fire several writes without awaiting each; the first failure is reported by
 * that write and again by close(). close() patches the header sizes, adds the pad
 * byte for odd data, and is idempotent.
 */
export class WavWriter {
  readonly format: Readonly<WavFormat>;
  #fh: FileHandle;
  #header: Uint8Array;
  #dataBytes = 0;
  #queue: Promise<void> = Promise.resolve();
  #failure: unknown;
  #closed: Promise<void> | undefined;
  /** skip() was used: the data may end in a hole, so close() sets the file's length explicitly. */
  #skipped = false;

  private constructor(fh: FileHandle, format: WavFormat, header: Uint8Array) {
    this.#fh = fh;
    this.format = Object.freeze({ ...format });
    this.#header = header;
  }

  /** `exclusive`: fail with EEXIST instead of replacing an existing file (two recordings of one call). */
  static async open(path: string, format: WavFormat, options: { exclusive?: boolean } = {}): Promise<WavWriter> {
    checkFormat(format);
    const header = buildHeader(format);
    const fh = await open(path, options.exclusive ? 'wx' : 'w');
    try {
      await fh.write(header, 0, header.length, 0);
    } catch (e) {
      await fh.close().catch(() => undefined);
      throw e;
    }
    return new WavWriter(fh, format, header);
  }

  /** Bytes of sample data accepted so far. */
  get dataBytes(): number {
    return this.#dataBytes;
  }

  write(chunk: Int16Array | Uint8Array): Promise<void> {
    if (this.#closed) return Promise.reject(new Error('WavWriter: write after close'));
    let bytes: Uint8Array;
    try {
      bytes = sampleBytes(chunk, this.format.encoding);
    } catch (e) {
      return Promise.reject(e);
    }
    // Copy: the caller may reuse its buffer before the queued write runs.
    const copy = bytes.slice();
    const position = this.#header.length + this.#dataBytes;
    this.#dataBytes += copy.length;
    // `run` gets a handler below (the queue's catch), so a caller that never awaits it cannot
    // cause an unhandled rejection; close() reports the first failure again.
    const run = this.#queue.then(async () => {
      if (this.#failure !== undefined) throw this.#failure;
      let done = 0;
      while (done < copy.length) {
        const { bytesWritten } = await this.#fh.write(copy, done, copy.length - done, position + done);
        done += bytesWritten;
      }
    });
    this.#queue = run.catch((e: unknown) => {
      this.#failure ??= e;
    });
    return run;
  }

  /**
   * Advances the data position by `bytes` without writing them: the gap reads back as
   * zeros (a hole in the file, filled in by close() if it is at the end). PCM16 only,
   * where zero is silence; a recorder uses it for audio it had to drop, so what comes
   * after stays at its time.
   */
  skip(bytes: number): void {
    if (this.#closed) throw new Error('WavWriter: skip after close');
    if (this.format.encoding !== 'pcm16') throw new WavFormatError(`skip() leaves zeros, which are silence only in pcm16 (not ${this.format.encoding})`);
    if (!Number.isSafeInteger(bytes) || bytes < 0) throw new RangeError(`skip(${bytes}): expected a non-negative integer byte count`);
    this.#dataBytes += bytes;
    this.#skipped = true;
  }

  close(): Promise<void> {
    this.#closed ??= this.#queue.then(async () => {
      try {
        if (this.#failure !== undefined) throw this.#failure;
        if (this.#dataBytes > 0xffffffff - this.#header.length - 1) throw new WavFormatError('WAV data over 4 GiB (RIFF limit)');
        // A trailing partial stereo frame: keep the file valid (sizes cover whole frames), then report it.
        const blockAlign = this.format.channels * (this.format.encoding === 'pcm16' ? 2 : 1);
        const whole = this.#dataBytes - (this.#dataBytes % blockAlign);
        patchSizes(this.#header, this.format, whole);
        if (whole & 1) await this.#fh.write(new Uint8Array(1), 0, 1, this.#header.length + whole);
        await this.#fh.write(this.#header, 0, this.#header.length, 0);
        if (whole !== this.#dataBytes || this.#skipped) await this.#fh.truncate(this.#header.length + whole + (whole & 1));
        if (whole !== this.#dataBytes) throw new WavFormatError(`data length ${this.#dataBytes} is not a whole number of ${this.format.channels}-channel sample frames; the partial frame was dropped`);
      } finally {
        await this.#fh.close();
      }
    });
    return this.#closed;
  }
}

/** Writes a whole WAV file through WavWriter. */
export async function writeWav(path: string, audio: WavAudio): Promise<void> {
  const w = await WavWriter.open(path, audio);
  try {
    await w.write(audio.data);
  } finally {
    await w.close();
  }
}
