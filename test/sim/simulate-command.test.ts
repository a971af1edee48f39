import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readWav, writeWav } from '../../src/audio/wav.js';
import { ULAW_DECODE } from '../../src/dsp/ts/g711.js';
import { resample, simulateCommand, toCallerAudio } from '../../src/sim/simulate-command.js';
import type { MediaMessage, StartMessage } from '../../src/twilio/messages.js';
import { startScriptedServer, type ScriptedServer } from './scripted-server.js';

const FIXTURES = new URL('../fixtures/', import.meta.url).pathname;
let dir: string;
let server: ScriptedServer | undefined;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'simulate-cmd-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
afterEach(async () => {
  await server?.close();
  server = undefined;
});

function io() {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { stdout: (t: string) => void out.push(t), stderr: (t: string) => void err.push(t), env: {} } };
}

function sine(hz: number, rate: number, seconds: number, amp = 16000): Int16Array {
  return Int16Array.from({ length: Math.round(rate * seconds) }, (_, i) => Math.round(amp * Math.sin((2 * Math.PI * hz * i) / rate)));
}
function rms(x: ArrayLike<number>, from = 0, to = x.length): number {
  let s = 0;
  for (let i = from; i < to; i++) s += x[i]! * x[i]!;
  return Math.sqrt(s / (to - from));
}

describe('simulate command: arguments', () => {
  const bad: [string, string[], RegExp][] = [
    ['no --wav', [], /--wav is required/],
    ['an unknown flag', ['--wav', 'x.wav', '--nope'], /Unknown option '--nope'/],
    ['a stray positional', ['--wav', 'x.wav', 'extra'], /unexpected argument "extra"/],
    ['a bad --dtmf', ['--wav', 'x.wav', '--dtmf', '1-3'], /--dtmf must look like 1@3.0/],
    ['a bad --param', ['--wav', 'x.wav', '--param', 'novalue'], /--param must look like key=value/],
    ['a negative --tail', ['--wav', 'x.wav', '--tail=-1'], /--tail must be a non-negative number/],
    ['a non-number --barge-in-at', ['--wav', 'x.wav', '--barge-in-at', 'soon'], /--barge-in-at must be/],
    ['an http --url', ['--wav', 'x.wav', '--url', 'http://127.0.0.1:8080/'], /--url must be a ws:\/\/ or wss:\/\/ URL/],
    ['--barge-in-wav alone', ['--wav', 'x.wav', '--barge-in-wav', 'y.wav'], /--barge-in-wav needs --barge-in-at/],
  ];
  for (const [name, argv, message] of bad) {
    it(`exits 2 with a clear message for ${name}`, async () => {
      const t = io();
      expect(await simulateCommand(argv, t.io)).toBe(2);
      expect(t.err.join('')).toMatch(message);
      expect(t.err.join('')).toContain('usage: voice-bridge simulate');
    });
  }

  it('exits 2 naming the file when the WAV is missing or not a WAV', async () => {
    const t = io();
    expect(await simulateCommand(['--wav', join(dir, 'missing.wav')], t.io)).toBe(2);
    expect(t.err.join('')).toMatch(/ENOENT.*missing\.wav/);
    const t2 = io();
    expect(await simulateCommand(['--wav', join(FIXTURES, 'README.md')], t2.io)).toBe(2);
    expect(t2.err.join('')).toMatch(/README\.md: not a WAV file/);
  });

  it('--help prints usage and exits 0', async () => {
    const t = io();
    expect(await simulateCommand(['--help'], t.io)).toBe(0);
    expect(t.out.join('')).toContain('--barge-in-at SEC');
  });
});

describe('simulate command: conversion of the input', () => {
  it('passes μ-law 8 kHz through untouched', async () => {
    const wav = await readWav(join(FIXTURES, 'caller-order-status.8k-ulaw.wav'));
    expect(toCallerAudio(wav)).toBe(wav.data);
  });

  it('resamples 24 kHz PCM16 to 8 kHz: a 1 kHz tone keeps its level, a 6 kHz tone is filtered out (no alias at 2 kHz)', () => {
    const tone = resample(sine(1000, 24000, 0.5), 24000, 8000);
    expect(tone.length).toBe(4000);
    const expected = sine(1000, 8000, 0.5);
    expect(rms(tone, 200, 3800) / rms(expected, 200, 3800)).toBeCloseTo(1, 1);
    // phase-aligned with the ideal 8 kHz tone (the filter is symmetric: no delay)
    let err = 0;
    for (let i = 200; i < 3800; i++) err = Math.max(err, Math.abs(tone[i]! - expected[i]!));
    expect(err).toBeLessThan(400);
    const alias = resample(sine(6000, 24000, 0.5), 24000, 8000);
    expect(rms(alias, 200, 3800)).toBeLessThan(16000 * 0.707 * 0.01); // > 40 dB down
  });

  it('mixes stereo, decodes A-law, and upsamples low rates', () => {
    const left = sine(500, 16000, 0.1);
    const stereo = new Int16Array(left.length * 2);
    for (let i = 0; i < left.length; i++) {
      stereo[2 * i] = left[i]!;
      stereo[2 * i + 1] = left[i]!;
    }
    const fromStereo = toCallerAudio({ encoding: 'pcm16', sampleRateHz: 16000, channels: 2, data: stereo });
    expect(fromStereo.length).toBe(800);
    const decoded = Int16Array.from(fromStereo, (b) => ULAW_DECODE[b]!);
    expect(rms(decoded, 100, 700) / rms(sine(500, 8000, 0.1), 100, 700)).toBeCloseTo(1, 1);
    // A-law silence (0xD5 = +8) comes out as near-silent μ-law
    const fromAlaw = toCallerAudio({ encoding: 'alaw', sampleRateHz: 8000, channels: 1, data: new Uint8Array(160).fill(0xd5) });
    expect(fromAlaw.length).toBe(160);
    expect(fromAlaw.every((b) => Math.abs(ULAW_DECODE[b]!) <= 16)).toBe(true);
    expect(toCallerAudio({ encoding: 'pcm16', sampleRateHz: 4000, channels: 1, data: sine(300, 4000, 0.1) }).length).toBe(800);
  });
});

describe('simulate command: a call', () => {
  it('runs a call from a 24 kHz PCM16 WAV with barge-in, DTMF and params; prints the summary; writes what was heard', async () => {
    server = await startScriptedServer((peer, m) => {
      if (m.event === 'media' && m.chunk === 10) {
        peer.sendAudio(new Uint8Array(4000).fill(0x21)); // 500 ms of "agent"
        peer.sendMark('greeting');
      }
      if (m.event === 'dtmf') peer.sendClear(); // the "bridge" stops playout on a key press
    });
    const wavPath = join(dir, 'caller-24k.wav');
    await writeWav(wavPath, { encoding: 'pcm16', sampleRateHz: 24000, channels: 1, data: sine(440, 24000, 0.3) });
    const out = join(dir, 'heard.wav');
    const t = io();
    const code = await simulateCommand(
      ['--wav', wavPath, '--url', server.url, '--out', out, '--barge-in-at', '0.4', '--barge-in-wav', join(FIXTURES, 'caller-barge-in.8k-ulaw.wav'), '--dtmf', '5@0.45', '--param', 'agent=echo', '--param', 'lang=en=US', '--tail', '0.1', '--auth-token', 'tok'],
      t.io,
    );
    const text = t.out.join('');
    expect(t.err).toEqual([]);
    expect(code).toBe(0);
    const start = server.peers[0]!.received.find((r) => r.message.event === 'start')!.message as StartMessage;
    // A signed simulated call carries the stream token its webhook would have issued (src/twilio/stream-token.ts).
    expect(start.customParameters).toEqual({ agent: 'echo', lang: 'en=US', vb_token: expect.stringMatching(/^\d{13}\.[A-Za-z0-9_-]{43}$/) });
    expect(server.peers[0]!.req.headers['x-twilio-signature']).toBeTruthy();
    const medias = server.peers[0]!.received.map((r) => r.message).filter((m): m is MediaMessage => m.event === 'media');
    expect(medias.length).toBe(Math.ceil((3200 + 19826 + 800) / 160));
    expect(text).toMatch(/: completed \(close 1000/);
    expect(text).toMatch(/frames\s+149 sent \(caller\), 1 media messages received \(0\.50 s of agent audio\)/);
    expect(text).toMatch(/first agent audio\s+0\.\d\d s/);
    expect(text).toMatch(/marks\s+1 received, 1 echoed \(1 via clear\)/);
    expect(text).toMatch(/barge-in\s+at 0\.40 s, (clear after \d+ ms|no clear from the bridge)/);
    expect(text).toMatch(/dtmf sent\s+5@0\.4\d/); // asked for 0.45 s; real-time pacing on a shared machine
    expect(text).toMatch(/protocol errors\s+none/);
    expect(text).toContain(`heard audio written to ${out}`);
    const heard = await readWav(out);
    expect(heard).toMatchObject({ encoding: 'ulaw', sampleRateHz: 8000, channels: 1 });
    expect(heard.data.length).toBeGreaterThanOrEqual(Math.ceil((3200 + 19826 + 800) / 160) * 160 - 160);
    expect((heard.data as Uint8Array).includes(0x21)).toBe(true);
  });

  it('exits 1 when the bridge is not there', async () => {
    const t = io();
    const code = await simulateCommand(['--wav', join(FIXTURES, 'caller-barge-in.8k-ulaw.wav'), '--url', 'ws://127.0.0.1:1/twilio/stream'], t.io);
    expect(code).toBe(1);
    expect(t.out.join('')).toMatch(/connect-failed — .*ECONNREFUSED/);
  });
});
