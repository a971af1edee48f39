import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WavFormatError, WavWriter, encodeWav, parseWav, readWav, writeWav, type WavAudio } from '../../src/audio/wav.js';

const FIXTURES = new URL('../fixtures/', import.meta.url).pathname;
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'wav-test-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function chunk(id: string, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + body.length + (body.length & 1));
  for (let i = 0; i < 4; i++) out[i] = id.charCodeAt(i);
  new DataView(out.buffer).setUint32(4, body.length, true);
  out.set(body, 8);
  return out;
}
function fmtBody(tag: number, channels: number, rate: number, bits: number, extra: number[] = []): Uint8Array {
  const b = new Uint8Array(16 + extra.length);
  const v = new DataView(b.buffer);
  v.setUint16(0, tag, true);
  v.setUint16(2, channels, true);
  v.setUint32(4, rate, true);
  v.setUint32(8, (rate * channels * bits) / 8, true);
  v.setUint16(12, (channels * bits) / 8, true);
  v.setUint16(14, bits, true);
  b.set(extra, 16);
  return b;
}
function riff(...chunks: Uint8Array[]): Uint8Array {
  const len = chunks.reduce((n, c) => n + c.length, 0);
  const out = new Uint8Array(12 + len);
  out.set([0x52, 0x49, 0x46, 0x46], 0);
  new DataView(out.buffer).setUint32(4, 4 + len, true);
  out.set([0x57, 0x41, 0x56, 0x45], 8);
  let at = 12;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
const le16 = (...xs: number[]) => new Uint8Array(new Int16Array(xs).buffer);

describe('WAV round trips', () => {
  const cases: WavAudio[] = [
    { encoding: 'pcm16', sampleRateHz: 24000, channels: 1, data: Int16Array.from({ length: 2401 }, (_, i) => Math.round(Math.sin(i / 7) * 20000)) },
    { encoding: 'pcm16', sampleRateHz: 44100, channels: 2, data: Int16Array.from({ length: 882 }, (_, i) => (i % 2 ? -1 : 1) * i * 37) },
    { encoding: 'pcm16', sampleRateHz: 7, channels: 1, data: Int16Array.from([-32768, 32767, 0, -1]) },
    { encoding: 'ulaw', sampleRateHz: 8000, channels: 1, data: Uint8Array.from({ length: 161 }, (_, i) => (i * 13) & 0xff) },
    { encoding: 'alaw', sampleRateHz: 8000, channels: 1, data: Uint8Array.from({ length: 160 }, (_, i) => (i * 29) & 0xff) },
  ];
  for (const audio of cases) {
    it(`${audio.encoding} ${audio.channels}ch ${audio.sampleRateHz} Hz in memory and through a file`, async () => {
      const bytes = encodeWav(audio);
      expect(bytes.length % 2).toBe(0); // odd data gets its pad byte
      expect(parseWav(bytes)).toEqual(audio);
      const path = join(dir, `rt-${audio.encoding}-${audio.channels}-${audio.sampleRateHz}.wav`);
      await writeWav(path, audio);
      expect(new Uint8Array(await readFile(path))).toEqual(bytes);
      expect(await readWav(path)).toEqual(audio);
    });
  }

  it('G.711 files carry an 18-byte fmt chunk and a fact chunk with the sample count', () => {
    const bytes = encodeWav({ encoding: 'ulaw', sampleRateHz: 8000, channels: 1, data: new Uint8Array(321) });
    const v = new DataView(bytes.buffer);
    expect(String.fromCharCode(...bytes.slice(12, 16))).toBe('fmt ');
    expect(v.getUint32(16, true)).toBe(18);
    expect(v.getUint16(20, true)).toBe(7);
    expect(String.fromCharCode(...bytes.slice(38, 42))).toBe('fact');
    expect(v.getUint32(46, true)).toBe(321);
    expect(v.getUint32(54, true)).toBe(321); // data size excludes the pad byte
    expect(v.getUint32(4, true)).toBe(bytes.length - 8); // RIFF size includes it
  });
});

describe('WavWriter (streaming)', () => {
  it('writes chunks in order, patches the sizes on close, pads odd data', async () => {
    const path = join(dir, 'stream.wav');
    const w = await WavWriter.open(path, { encoding: 'ulaw', sampleRateHz: 8000, channels: 1 });
    const frame = new Uint8Array(160);
    const expected: number[] = [];
    for (let i = 0; i < 50; i++) {
      frame.fill(i); // the writer must copy: this buffer is reused
      void w.write(frame); // fire-and-forget is allowed; close() waits and reports
      expected.push(...frame);
    }
    await w.write(Uint8Array.of(7));
    expected.push(7);
    expect(w.dataBytes).toBe(8001);
    await w.close();
    await w.close(); // idempotent
    const st = await stat(path);
    expect(st.size).toBe(58 + 8001 + 1);
    const audio = await readWav(path);
    expect(audio.encoding).toBe('ulaw');
    expect(Array.from(audio.data)).toEqual(expected);
    await expect(w.write(frame)).rejects.toThrow(/after close/);
  });

  it('streams PCM16 stereo and rejects the wrong array type', async () => {
    const path = join(dir, 'stream-stereo.wav');
    const w = await WavWriter.open(path, { encoding: 'pcm16', sampleRateHz: 48000, channels: 2 });
    await w.write(Int16Array.of(1, -1, 2));
    await w.write(Int16Array.of(-2));
    await expect(w.write(new Uint8Array(4))).rejects.toThrow(TypeError);
    await w.close();
    expect(await readWav(path)).toEqual({ encoding: 'pcm16', sampleRateHz: 48000, channels: 2, data: Int16Array.of(1, -1, 2, -2) });
  });

  it('keeps a valid file and reports a trailing partial stereo frame', async () => {
    const path = join(dir, 'partial.wav');
    const w = await WavWriter.open(path, { encoding: 'pcm16', sampleRateHz: 8000, channels: 2 });
    await w.write(Int16Array.of(1, 2, 3));
    await expect(w.close()).rejects.toThrow(WavFormatError);
    expect((await readWav(path)).data).toEqual(Int16Array.of(1, 2));
  });

  it('refuses formats it cannot write', async () => {
    await expect(WavWriter.open(join(dir, 'x.wav'), { encoding: 'ulaw', sampleRateHz: 8000, channels: 2 })).rejects.toThrow(/mono only/);
    await expect(WavWriter.open(join(dir, 'x.wav'), { encoding: 'pcm16', sampleRateHz: 0, channels: 1 })).rejects.toThrow(/sample rate/);
  });
});

describe('WAV parsing of real-world layouts', () => {
  it('reads the espeak-ng fixtures (18-byte fmt, fact chunk, odd data without pad)', async () => {
    const order = await readWav(join(FIXTURES, 'caller-order-status.8k-ulaw.wav'));
    expect(order).toMatchObject({ encoding: 'ulaw', sampleRateHz: 8000, channels: 1 });
    expect(order.data.length).toBe(46010);
    const barge = await readWav(join(FIXTURES, 'caller-barge-in.8k-ulaw.wav'));
    expect(barge).toMatchObject({ encoding: 'ulaw', sampleRateHz: 8000, channels: 1 });
    expect(barge.data.length).toBe(19826);
    const reply = await readWav(join(FIXTURES, 'agent-reply.24k-pcm16.wav'));
    expect(reply).toMatchObject({ encoding: 'pcm16', sampleRateHz: 24000, channels: 1 });
    expect(reply.data.length).toBe(0x5cb36 / 2);
    expect(reply.data).toBeInstanceOf(Int16Array);
    // it is speech, not silence
    let peak = 0;
    for (const s of reply.data as Int16Array) peak = Math.max(peak, Math.abs(s));
    expect(peak).toBeGreaterThan(3000);
  });

  it('skips unknown chunks (odd-sized LIST with its pad byte) before and after fmt, and after data', () => {
    const list = chunk('LIST', new TextEncoder().encode('INFOISFT\x05\x00\x00\x00abcde')); // 17 bytes → padded
    const bytes = riff(list, chunk('fmt ', fmtBody(1, 1, 16000, 16)), chunk('junk', new Uint8Array(3)), chunk('data', le16(1, 2, 3)), chunk('LIST', new Uint8Array(4)));
    expect(parseWav(bytes)).toEqual({ encoding: 'pcm16', sampleRateHz: 16000, channels: 1, data: Int16Array.of(1, 2, 3) });
  });

  it('accepts data before fmt', () => {
    const bytes = riff(chunk('data', Uint8Array.of(1, 2, 3, 4)), chunk('fmt ', fmtBody(7, 1, 8000, 8, [0, 0])));
    expect(parseWav(bytes)).toEqual({ encoding: 'ulaw', sampleRateHz: 8000, channels: 1, data: Uint8Array.of(1, 2, 3, 4) });
  });

  it('reads WAVE_FORMAT_EXTENSIBLE PCM16', () => {
    const ext = new Uint8Array(24);
    const v = new DataView(ext.buffer);
    v.setUint16(0, 22, true); // cbSize
    v.setUint16(2, 16, true); // valid bits
    v.setUint32(4, 4, true); // channel mask
    v.setUint16(8, 1, true); // SubFormat GUID starts with the PCM tag
    const bytes = riff(chunk('fmt ', fmtBody(0xfffe, 1, 48000, 16, Array.from(ext))), chunk('data', le16(-5, 5)));
    expect(parseWav(bytes)).toEqual({ encoding: 'pcm16', sampleRateHz: 48000, channels: 1, data: Int16Array.of(-5, 5) });
  });

  it('reads a streamed file whose data size was never patched (0xFFFFFFFF), dropping a partial sample', () => {
    const bytes = riff(chunk('fmt ', fmtBody(1, 2, 8000, 16)), chunk('data', le16(1, 2, 3, 4, 5)));
    new DataView(bytes.buffer).setUint32(bytes.length - 10 - 8 + 4, 0xffffffff, true);
    // data: 10 bytes declared as 4 GiB; stereo frames are 4 bytes → two whole frames
    expect(parseWav(bytes).data).toEqual(Int16Array.of(1, 2, 3, 4));
  });

  const garbage: [string, Uint8Array, RegExp][] = [
    ['an empty file', new Uint8Array(0), /shorter than a RIFF header/],
    ['random bytes', Uint8Array.from({ length: 64 }, (_, i) => (i * 97 + 13) & 0xff), /not a WAV file/],
    ['an AVI', riff().map((b, i) => (i >= 8 && i < 12 ? 'AVI '.charCodeAt(i - 8) : b)), /RIFF form is "AVI "/],
    ['RF64', Uint8Array.from([...'RF64'].map((c) => c.charCodeAt(0)).concat(new Array(60).fill(0))), /RF64 files are not supported/],
    ['no fmt', riff(chunk('data', new Uint8Array(4))), /no "fmt " chunk/],
    ['no data', riff(chunk('fmt ', fmtBody(1, 1, 8000, 16))), /no "data" chunk/],
    ['a truncated chunk', riff(chunk('fmt ', fmtBody(1, 1, 8000, 16))).slice(0, 30), /declares 16 bytes but only/],
    ['a short fmt', riff(chunk('fmt ', new Uint8Array(8)), chunk('data', new Uint8Array(2))), /needs at least 16/],
    ['float', riff(chunk('fmt ', fmtBody(3, 1, 8000, 32)), chunk('data', new Uint8Array(8))), /format tag 3 \(IEEE float\)/],
    ['8-bit PCM', riff(chunk('fmt ', fmtBody(1, 1, 8000, 8)), chunk('data', new Uint8Array(8))), /8 bits per sample is not supported/],
    ['stereo μ-law', riff(chunk('fmt ', fmtBody(7, 2, 8000, 8)), chunk('data', new Uint8Array(8))), /mono only/],
    ['6 channels', riff(chunk('fmt ', fmtBody(1, 6, 8000, 16)), chunk('data', new Uint8Array(24))), /1 or 2 channels/],
    ['a zero rate', riff(chunk('fmt ', fmtBody(1, 1, 0, 16)), chunk('data', new Uint8Array(2))), /sample rate 0/],
  ];
  for (const [name, bytes, message] of garbage) {
    it(`rejects ${name} with a clear WavFormatError`, () => {
      expect(() => parseWav(bytes)).toThrow(WavFormatError);
      expect(() => parseWav(bytes)).toThrow(message);
    });
  }

  it('names the file in readWav errors', async () => {
    const path = join(dir, 'not-a-wav.wav');
    await writeFile(path, 'hello, this is text');
    await expect(readWav(path)).rejects.toThrow(`${path}: not a WAV file`);
  });
});
