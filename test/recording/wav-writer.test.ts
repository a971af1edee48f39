/** What the recorder needs from WavWriter: stereo PCM16, exclusive open, skip() holes that read back as silence. */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readWav, WavFormatError, WavWriter } from '../../src/audio/wav.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vb-wav-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const stereo = { sampleRateHz: 8000, channels: 2, encoding: 'pcm16' } as const;

describe('WavWriter for recordings', () => {
  it('stereo PCM16 interleaved; skip() in the middle and at the end leaves zeros; header sizes cover them', async () => {
    const path = join(dir, 'a.wav');
    const w = await WavWriter.open(path, stereo);
    void w.write(Int16Array.from([1, -1, 2, -2]));
    w.skip(8); // two silent stereo frames
    void w.write(Int16Array.from([3, -3]));
    w.skip(12); // three at the end: the file must still be that long
    await w.close();
    const bytes = await readFile(path);
    expect(bytes.length).toBe(44 + 32);
    expect(bytes.readUInt32LE(40)).toBe(32);
    expect(bytes.readUInt32LE(4)).toBe(36 + 32);
    const wav = await readWav(path);
    expect(wav).toMatchObject({ channels: 2, sampleRateHz: 8000, encoding: 'pcm16' });
    expect(Array.from(wav.data)).toEqual([1, -1, 2, -2, 0, 0, 0, 0, 3, -3, 0, 0, 0, 0, 0, 0]);
  });

  it('exclusive open refuses to replace an existing file; skip() is PCM16-only and checks its argument', async () => {
    const path = join(dir, 'b.wav');
    await (await WavWriter.open(path, stereo)).close();
    await expect(WavWriter.open(path, stereo, { exclusive: true })).rejects.toMatchObject({ code: 'EEXIST' });
    const u = await WavWriter.open(join(dir, 'c.wav'), { sampleRateHz: 8000, channels: 1, encoding: 'ulaw' });
    expect(() => u.skip(160)).toThrow(WavFormatError);
    await u.close();
    const w = await WavWriter.open(join(dir, 'd.wav'), stereo);
    expect(() => w.skip(-1)).toThrow(RangeError);
    expect(() => w.skip(1.5)).toThrow(RangeError);
    await w.close();
    expect(() => w.skip(4)).toThrow(/after close/);
  });
});
