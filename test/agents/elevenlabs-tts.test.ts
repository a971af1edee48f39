/**
 * ElevenLabs TTS client, cache, service and `tts` command against the local fake
 * of the stream-input WebSocket (test/fakes/elevenlabs-tts.ts).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { readWav } from '../../src/audio/wav.js';
import { loadConfig, ConfigError } from '../../src/config.js';
import { ErrorCodes, isBridgeError, type ErrorCode } from '../../src/errors.js';
import { TtsCache, ttsCacheKey } from '../../src/agents/elevenlabs/tts/cache.js';
import { ElevenLabsTtsClient, type TtsClientOptions } from '../../src/agents/elevenlabs/tts/client.js';
import { readElevenLabsTtsConfig } from '../../src/agents/elevenlabs/tts/config.js';
import { DEFAULT_VOICE_SETTINGS, parseServerMessage } from '../../src/agents/elevenlabs/tts/protocol.js';
import { createTtsService } from '../../src/agents/elevenlabs/tts/service.js';
import { ttsCommand } from '../../src/tts-command.js';
import { fakeSpeech, startFakeElevenLabsTts, type FakeElevenLabsTts, type FakeTtsFault } from '../fakes/elevenlabs-tts.js';
import { firstDifference } from '../helpers/signal.js';
import { on } from './agent-events.js';

let fake: FakeElevenLabsTts;
const clients: ElevenLabsTtsClient[] = [];

beforeEach(async () => {
  fake = await startFakeElevenLabsTts();
});
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await fake.close();
});

function client(opts: Partial<TtsClientOptions> = {}): ElevenLabsTtsClient {
  const c = new ElevenLabsTtsClient({ apiKey: fake.apiKey, voiceId: fake.voiceId, baseUrl: fake.url, ...opts });
  clients.push(c);
  return c;
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
}

async function expectCode(p: Promise<unknown>, code: ErrorCode): Promise<void> {
  const e = await rejection(p);
  expect(isBridgeError(e) ? e.code : e).toBe(code);
}

describe('ElevenLabs TTS: wire', () => {
  it('connects with the key in the header, the voice in the path, ulaw_8000, the default model and voice settings', async () => {
    const tts = client();
    const audio = await tts.synthesize('  Hello\n  there.  ');
    expect(fake.requests).toHaveLength(1);
    const r = fake.requests[0]!;
    expect(r.apiKeyVia).toBe('header');
    expect(r.voiceId).toBe(fake.voiceId);
    expect(r.outputFormat).toBe('ulaw_8000');
    expect(r.modelId).toBe('eleven_flash_v2_5');
    expect(r.init?.['text']).toBe(' ');
    expect(r.init).not.toHaveProperty('xi-api-key');
    expect(r.voiceSettings).toEqual({ stability: 0.5, similarity_boost: 0.75, style: 0, use_speaker_boost: true });
    expect(r.texts).toEqual(['Hello there. ']);
    expect(r.endOfInput).toBe(true);
    expect(audio.length).toBe(fakeSpeech('Hello there.').length);
  });

  it('per-request voice and settings override the defaults (and speed is sent only when given)', async () => {
    fake.voices.add('OtherVoice0000000000');
    const tts = client({ modelId: 'eleven_turbo_v2_5', settings: { stability: 0.3 } });
    await tts.synthesize('Hi', { voiceId: 'OtherVoice0000000000', settings: { style: 0.2, speed: 1.1 } });
    const r = fake.requests[0]!;
    expect(r.voiceId).toBe('OtherVoice0000000000');
    expect(r.modelId).toBe('eleven_turbo_v2_5');
    expect(r.voiceSettings).toEqual({ stability: 0.3, similarity_boost: 0.75, style: 0.2, use_speaker_boost: true, speed: 1.1 });
  });

  it('assembles the audio byte-exact from many chunks, skipping audio:null messages and alignment', async () => {
    fake.chunkBytes = 97; // odd sizes: nothing may assume 20 ms frames
    const text = 'The quick brown fox jumps over the lazy dog.';
    const audio = await client().synthesize(text);
    const r = fake.requests[0]!;
    expect(r.audioMessages).toBeGreaterThan(10);
    expect(firstDifference(audio, r.sentAudio)).toBe(-1);
    expect(firstDifference(audio, fakeSpeech(text))).toBe(-1);
  });

  it('strips a μ-law 8 kHz WAV header in front of the audio (container quirk) and keeps the samples exact', async () => {
    fake.fault = 'wav-header';
    const audio = await client().synthesize('Header test');
    expect(firstDifference(audio, fakeSpeech('Header test'))).toBe(-1);
  });

  it('streams chunks in order before isFinal, so playback can start early', async () => {
    fake.chunkBytes = 160;
    fake.holdFinal = true;
    const tts = client();
    const expected = fakeSpeech('Streaming order test');
    const chunks: Uint8Array[] = [];
    let received = 0;
    let resolveAll!: () => void;
    const allAudio = new Promise<void>((r) => (resolveAll = r));
    let done = false;
    const p = tts
      .stream('Streaming order test', (c) => {
        chunks.push(c);
        received += c.length;
        if (received === expected.length) resolveAll();
      })
      .then((n) => {
        done = true;
        return n;
      });
    // Every chunk reaches the callee while isFinal is still held: playback is not gated on the end.
    await allAudio;
    expect(done).toBe(false);
    fake.releaseFinal();
    const total = await p;
    expect(total).toBe(expected.length);
    expect(chunks.length).toBe(fake.requests[0]!.audioMessages);
    let at = 0;
    for (const c of chunks) {
      expect(firstDifference(c, expected.subarray(at, at + c.length))).toBe(-1);
      at += c.length;
    }
    expect(at).toBe(expected.length);
    // The streamed utterance is cached: streaming it again is one chunk and no connection.
    const again: Uint8Array[] = [];
    expect(await tts.stream('Streaming order test', (c) => void again.push(c))).toBe(expected.length);
    expect(again).toHaveLength(1);
    expect(firstDifference(again[0]!, expected)).toBe(-1);
    expect(fake.connections).toBe(1);
  });

  it('an exception from onChunk aborts the synthesis and is what the promise rejects with', async () => {
    const boom = new Error('player gone');
    const e = await rejection(
      client().stream('Abort from callback', () => {
        throw boom;
      }),
    );
    expect(e).toBe(boom);
    await fake.requests[0]!.closed;
  });
});

describe('ElevenLabs TTS: cache', () => {
  it('serves a repeated request from the cache: two identical requests, one connection', async () => {
    const tts = client();
    const a = await tts.synthesize('Welcome to voice bridge.');
    const b = await tts.synthesize('Welcome   to voice bridge.'); // same text once normalised
    expect(fake.connections).toBe(1);
    expect(firstDifference(a, b)).toBe(-1);
    expect(tts.stats().cache).toMatchObject({ hits: 1, misses: 1, entries: 1 });
    // Each caller gets its own copy: mutating one does not change what the next call hears.
    a.fill(0);
    const c = await tts.synthesize('Welcome to voice bridge.');
    expect(firstDifference(c, b)).toBe(-1);
  });

  it('keys on text, voice, model and every setting', async () => {
    fake.voices.add('OtherVoice0000000000');
    const tts = client();
    await tts.synthesize('Same words');
    await tts.synthesize('Same words', { settings: { stability: 0.51 } });
    await tts.synthesize('Same words', { voiceId: 'OtherVoice0000000000' });
    await tts.synthesize('Same words', { settings: { speed: 1 } });
    expect(fake.connections).toBe(4);
    await tts.synthesize('Same words', { settings: { ...DEFAULT_VOICE_SETTINGS } });
    expect(fake.connections).toBe(4);
    const other = client({ modelId: 'eleven_multilingual_v2' });
    await other.synthesize('Same words');
    expect(fake.connections).toBe(5);
  });

  it('joins concurrent identical requests to one connection; one waiter leaving does not cancel the other', async () => {
    fake.holdFinal = true;
    const tts = client();
    const leave = new AbortController();
    const p1 = tts.synthesize('Greeting for everyone', { signal: leave.signal });
    const p2 = tts.synthesize('Greeting for everyone');
    const r = await fake.nextRequest();
    leave.abort();
    const e = await rejection(p1);
    expect((e as Error).name).toBe('AbortError');
    fake.releaseFinal();
    const audio = await p2;
    expect(firstDifference(audio, fakeSpeech('Greeting for everyone'))).toBe(-1);
    expect(fake.connections).toBe(1);
    expect(r.clientClosedFirst).toBe(false);
  });

  it('evicts the least recently used entry when the entry bound is reached', async () => {
    const tts = client({ cacheEntries: 2 });
    await tts.synthesize('alpha');
    await tts.synthesize('bravo');
    await tts.synthesize('alpha'); // hit: alpha is now the most recent
    expect(fake.connections).toBe(2);
    await tts.synthesize('charlie'); // evicts bravo
    expect(tts.stats().cache).toMatchObject({ entries: 2, evictions: 1 });
    await tts.synthesize('alpha');
    expect(fake.connections).toBe(3);
    await tts.synthesize('bravo'); // was evicted: a new connection (and evicts charlie)
    expect(fake.connections).toBe(4);
    await tts.synthesize('charlie');
    expect(fake.connections).toBe(5);
  });

  it('evicts by total bytes, and never stores an entry larger than the byte bound', async () => {
    const probe = client();
    await probe.synthesize('word one');
    const size = probe.stats().cache.bytes; // audio + key: equal for every 8-character text
    expect(size).toBe(fakeSpeech('word one').length + ttsCacheKey('word one ', fake.voiceId, 'eleven_flash_v2_5', DEFAULT_VOICE_SETTINGS).length * 2);
    const base = fake.connections;

    const tts = client({ cacheEntries: 100, cacheBytes: 3 * size - 1 }); // two fit, three do not
    await tts.synthesize('word one');
    await tts.synthesize('word two');
    expect(tts.stats().cache).toMatchObject({ entries: 2, bytes: 2 * size, evictions: 0 });
    await tts.synthesize('word tre');
    expect(tts.stats().cache).toMatchObject({ entries: 2, bytes: 2 * size, evictions: 1 });
    expect(tts.stats().cache.bytes).toBeLessThanOrEqual(tts.stats().cache.entries * size);
    await tts.synthesize('word two'); // still cached
    expect(fake.connections).toBe(base + 3);
    await tts.synthesize('word one'); // evicted by bytes
    expect(fake.connections).toBe(base + 4);

    const tiny = client({ cacheBytes: size - 1 });
    await tiny.synthesize('word one');
    await tiny.synthesize('word one');
    expect(fake.connections).toBe(base + 6);
    expect(tiny.stats().cache.entries).toBe(0);
  });

  it('TtsCache on its own: LRU order, both bounds, replacement, 0 disables', () => {
    const c = new TtsCache({ maxEntries: 3, maxBytes: 1000 });
    const a = (n: number) => new Uint8Array(n);
    c.set('a', a(100)); // 102
    c.set('b', a(100));
    c.set('c', a(100));
    expect(c.get('a')).toBeDefined(); // order b, c, a
    c.set('d', a(100)); // entries bound → b goes
    expect(c.keys()).toEqual(['c', 'a', 'd']);
    c.set('e', a(700)); // bytes: 306 + 702 > 1000 → c goes (306 - 102 + 702 = 906)
    expect(c.keys()).toEqual(['a', 'd', 'e']);
    expect(c.stats().bytes).toBe(906);
    c.set('a', a(10)); // replacement shrinks
    expect(c.stats()).toMatchObject({ entries: 3, bytes: 906 - 102 + 12 });
    expect(c.set('huge', a(2000))).toBe(false);
    expect(c.has('huge')).toBe(false);
    const off = new TtsCache({ maxEntries: 0, maxBytes: 1000 });
    expect(off.set('a', a(1))).toBe(false);
    expect(off.get('a')).toBeUndefined();
  });

  it('failed syntheses are not cached', async () => {
    const tts = client();
    fake.fault = 'close-mid';
    await expectCode(tts.synthesize('Try again'), ErrorCodes.AGENT_SERVICE);
    fake.fault = undefined;
    const audio = await tts.synthesize('Try again');
    expect(firstDifference(audio, fakeSpeech('Try again'))).toBe(-1);
    expect(fake.connections).toBe(2);
    expect(tts.stats()).toMatchObject({ synthesized: 1, failures: 1 });
  });
});

describe('ElevenLabs TTS: faults are typed, bounded and close the socket', () => {
  const cases: [FakeTtsFault, ErrorCode][] = [
    ['unauthorized', ErrorCodes.AGENT_AUTH],
    ['garbage', ErrorCodes.AGENT_PROTOCOL],
    ['binary', ErrorCodes.AGENT_PROTOCOL],
    ['stall', ErrorCodes.AGENT_TIMEOUT],
    ['error-mid', ErrorCodes.AGENT_SERVICE],
    ['close-mid', ErrorCodes.AGENT_SERVICE],
    ['no-final', ErrorCodes.AGENT_SERVICE],
    ['bad-audio', ErrorCodes.AGENT_AUDIO_FORMAT],
    ['wrong-wav', ErrorCodes.AGENT_AUDIO_FORMAT],
  ];
  for (const [fault, code] of cases) {
    it(`${fault} → ${code}`, async () => {
      fake.fault = fault;
      const tts = client({ idleTimeoutMs: 200 });
      const chunks: Uint8Array[] = [];
      await expectCode(tts.stream(`fault ${fault}`, (c) => void chunks.push(c)), code);
      // Whatever was delivered before the failure is real audio the fake sent, never garbage.
      const sent = fake.requests[0]?.sentAudio ?? new Uint8Array(0);
      let at = 0;
      for (const c of chunks) {
        expect(firstDifference(c, sent.subarray(at, at + c.length))).toBe(-1);
        at += c.length;
      }
      if (fault === 'wrong-wav') expect(chunks).toHaveLength(0);
      await fake.requests[0]?.closed;
      expect(tts.stats().cache.entries).toBe(0);
    });
  }

  it('a wrong API key → 401 → AGENT_AUTH', async () => {
    await expectCode(client({ apiKey: 'wrong' }).synthesize('hello'), ErrorCodes.AGENT_AUTH);
  });

  it('an unknown voice → the service error → AGENT_CONFIG', async () => {
    await expectCode(client({ voiceId: 'NoSuchVoice000000000' }).synthesize('hello'), ErrorCodes.AGENT_CONFIG);
  });

  it('a service error message mid-stream is typed from its text (quota → AGENT_RATE_LIMIT) by the parser', () => {
    const m = parseServerMessage(JSON.stringify({ message: 'This request exceeds your quota.', error: 'quota_exceeded', code: 1008 }));
    expect(m.kind === 'error' && m.error.code).toBe(ErrorCodes.AGENT_RATE_LIMIT);
    expect(parseServerMessage('{"isFinal":true}')).toEqual({ kind: 'final' });
    expect(parseServerMessage('{"audio":null,"isFinal":true}')).toEqual({ kind: 'final' });
    expect(parseServerMessage('{"something":"new"}')).toEqual({ kind: 'unknown' });
  });

  it('nothing listening → AGENT_CONNECT', async () => {
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const { port } = srv.address() as AddressInfo;
    await new Promise<void>((r) => srv.close(() => r()));
    await expectCode(client({ baseUrl: `ws://127.0.0.1:${port}` }).synthesize('hello'), ErrorCodes.AGENT_CONNECT);
  });

  it('a server that never answers the upgrade → AGENT_TIMEOUT within connectTimeoutMs', async () => {
    const silent: Server = createServer((s) => s.on('error', () => undefined));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    try {
      const { port } = silent.address() as AddressInfo;
      const started = Date.now();
      await expectCode(client({ baseUrl: `ws://127.0.0.1:${port}`, connectTimeoutMs: 150 }).synthesize('hello'), ErrorCodes.AGENT_TIMEOUT);
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      silent.close();
    }
  });

  it('the whole synthesis is bounded by totalTimeoutMs even while messages keep the idle timer alive', async () => {
    fake.holdFinal = true;
    await expectCode(client({ totalTimeoutMs: 300, idleTimeoutMs: 10_000 }).synthesize('held'), ErrorCodes.AGENT_TIMEOUT);
    await fake.requests[0]!.closed;
    expect(fake.requests[0]!.clientClosedFirst).toBe(true);
  });

  it('more audio than maxAudioBytes → AGENT_PROTOCOL', async () => {
    await expectCode(client({ maxAudioBytes: 500 }).synthesize('a long enough sentence'), ErrorCodes.AGENT_PROTOCOL);
  });

  it("the caller's abort ends the synthesis (AbortError) and closes the socket; a TimeoutError reason → AGENT_TIMEOUT", async () => {
    fake.fault = 'stall';
    const tts = client();
    const ac = new AbortController();
    const p = tts.synthesize('never answered', { signal: ac.signal });
    const r = await fake.nextRequest();
    ac.abort();
    expect((await rejection(p)) as Error).toMatchObject({ name: 'AbortError' });
    await r.closed;
    expect(r.clientClosedFirst).toBe(true);
    await expectCode(tts.synthesize('never answered either', { signal: AbortSignal.timeout(100) }), ErrorCodes.AGENT_TIMEOUT);
    const pre = new AbortController();
    pre.abort();
    expect(await rejection(tts.stream('x', () => undefined, { signal: pre.signal }))).toMatchObject({ name: 'AbortError' });
  });

  it('bad input from our side is AGENT_CONFIG and opens no connection', async () => {
    const tts = client({ maxTextChars: 20 });
    await expectCode(tts.synthesize('   '), ErrorCodes.AGENT_CONFIG);
    await expectCode(tts.synthesize('x'.repeat(21)), ErrorCodes.AGENT_CONFIG);
    await expectCode(tts.synthesize('hi', { voiceId: '../etc' }), ErrorCodes.AGENT_CONFIG);
    await expectCode(tts.synthesize('hi', { settings: { stability: 2 } }), ErrorCodes.AGENT_CONFIG);
    await expectCode(tts.synthesize('hi', { settings: { speed: 3 } }), ErrorCodes.AGENT_CONFIG);
    expect(fake.connections).toBe(0);
    expect(() => client({ voiceId: 'bad voice' })).toThrow(/voice id/);
  });

  it('close() ends running syntheses with AGENT_CLOSED and refuses new ones', async () => {
    fake.fault = 'stall';
    const tts = client();
    const p1 = tts.synthesize('one');
    const p2 = tts.stream('two', () => undefined);
    await fake.nextRequest();
    tts.close();
    tts.close();
    await expectCode(p1, ErrorCodes.AGENT_CLOSED);
    await expectCode(p2, ErrorCodes.AGENT_CLOSED);
    await expectCode(tts.synthesize('three'), ErrorCodes.AGENT_CLOSED);
  });
});

describe('ElevenLabs TTS: configuration and service', () => {
  it('reads defaults, and is unconfigured without the key or the voice', () => {
    const ok = readElevenLabsTtsConfig({ ELEVENLABS_API_KEY: 'k', ELEVENLABS_VOICE_ID: 'v1' });
    expect(ok.problems).toEqual([]);
    expect(ok.config).toEqual({
      apiKey: 'k',
      voiceId: 'v1',
      baseUrl: 'wss://api.elevenlabs.io',
      modelId: 'eleven_flash_v2_5',
      cacheEntries: 256,
      cacheBytes: 32 * 1024 * 1024,
      timeoutMs: 30_000,
    });
    expect(readElevenLabsTtsConfig({})).toEqual({ config: undefined, problems: [] });
    // The Agents adapter needs only the key: that alone is not a problem.
    expect(readElevenLabsTtsConfig({ ELEVENLABS_API_KEY: 'k' })).toEqual({ config: undefined, problems: [] });
  });

  it('lists every bad value at once', () => {
    const { problems } = readElevenLabsTtsConfig({
      ELEVENLABS_API_KEY: 'k',
      ELEVENLABS_TTS_URL: 'https://api.elevenlabs.io',
      ELEVENLABS_TTS_MODEL: 'bad model',
      ELEVENLABS_TTS_CACHE_ENTRIES: '-1',
      ELEVENLABS_TTS_CACHE_MB: 'lots',
      ELEVENLABS_TTS_TIMEOUT_MS: '5',
      ELEVENLABS_GREETING: 'Hello!',
    });
    expect(problems).toHaveLength(6);
    expect(problems.join('\n')).toMatch(/ELEVENLABS_TTS_URL.*ELEVENLABS_TTS_MODEL.*ELEVENLABS_TTS_CACHE_ENTRIES.*ELEVENLABS_TTS_CACHE_MB.*ELEVENLABS_TTS_TIMEOUT_MS.*ELEVENLABS_GREETING needs ELEVENLABS_VOICE_ID/s);
  });

  it('createTtsService: undefined when unconfigured, ConfigError on bad values, speak() cached against the fake', async () => {
    expect(createTtsService(loadConfig({}))).toBeUndefined();
    expect(() => createTtsService(loadConfig({ ELEVENLABS_API_KEY: 'k', ELEVENLABS_TTS_CACHE_MB: 'x' }))).toThrow(ConfigError);
    const tts = createTtsService(loadConfig({ ...fake.env, ELEVENLABS_GREETING: '  Hello, you are talking to a bot. ' }))!;
    try {
      expect(tts.voiceId).toBe(fake.voiceId);
      expect(tts.modelId).toBe('eleven_flash_v2_5');
      expect(tts.greeting).toBe('Hello, you are talking to a bot.');
      const a = await tts.speak(tts.greeting!, AbortSignal.timeout(5000));
      const b = await tts.speak(tts.greeting!, AbortSignal.timeout(5000));
      expect(firstDifference(a, fakeSpeech(tts.greeting!))).toBe(-1);
      expect(firstDifference(b, a)).toBe(-1);
      expect(fake.connections).toBe(1);
      const chunks: Uint8Array[] = [];
      expect(await tts.stream('Streamed', (c) => void chunks.push(c), AbortSignal.timeout(5000))).toBe(fakeSpeech('Streamed').length);
      expect(tts.stats()).toMatchObject({ connections: 2, synthesized: 2 });
    } finally {
      tts.close();
    }
    await expectCode(tts.speak('after close', AbortSignal.timeout(1000)), ErrorCodes.AGENT_CLOSED);
  });
});

describe('voice-bridge tts command', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tts-cmd-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  function io(env: Record<string, string | undefined>) {
    const out: string[] = [];
    const err: string[] = [];
    return { out, err, io: { stdout: (t: string) => void out.push(t), stderr: (t: string) => void err.push(t), env } };
  }

  it('writes a μ-law 8 kHz mono WAV of exactly the synthesized audio', async () => {
    const out = join(dir, 'hello.wav');
    const t = io(fake.env);
    expect(await ttsCommand(['Hello from the bridge.', '--out', out], t.io)).toBe(0);
    const wav = await readWav(out);
    expect(wav).toMatchObject({ encoding: 'ulaw', sampleRateHz: 8000, channels: 1 });
    expect(firstDifference(wav.data, fakeSpeech('Hello from the bridge.'))).toBe(-1);
    expect(t.out.join('')).toMatch(/wrote 0\.\d\d s of μ-law 8 kHz speech/);
  });

  it('--voice picks the voice (no ELEVENLABS_VOICE_ID needed)', async () => {
    fake.voices.add('CliVoice000000000000');
    const out = join(dir, 'voice.wav');
    const t = io({ ...fake.env, ELEVENLABS_VOICE_ID: undefined });
    expect(await ttsCommand(['Hi', '--out', out, '--voice', 'CliVoice000000000000'], t.io)).toBe(0);
    expect(fake.requests[0]!.voiceId).toBe('CliVoice000000000000');
  });

  it('exit 2 on bad arguments', async () => {
    for (const argv of [[], ['text'], ['a', 'b', '--out', 'x.wav'], ['  ', '--out', 'x.wav'], ['hi', '--out', 'x.wav', '--nope'], ['hi', '--out', 'x.wav', '--voice', 'a/b']]) {
      const t = io(fake.env);
      expect(await ttsCommand(argv, t.io)).toBe(2);
      expect(t.err.join('')).toMatch(/usage: voice-bridge tts/);
    }
    expect(fake.connections).toBe(0);
  });

  it('exit 78 without ELEVENLABS_API_KEY or without a voice', async () => {
    const out = join(dir, 'none.wav');
    const noKey = io({ ...fake.env, ELEVENLABS_API_KEY: undefined });
    expect(await ttsCommand(['Hi', '--out', out], noKey.io)).toBe(78);
    expect(noKey.err.join('')).toMatch(/ELEVENLABS_API_KEY is not set/);
    const noVoice = io({ ...fake.env, ELEVENLABS_VOICE_ID: undefined });
    expect(await ttsCommand(['Hi', '--out', out], noVoice.io)).toBe(78);
    expect(noVoice.err.join('')).toMatch(/ELEVENLABS_VOICE_ID or pass --voice/);
    expect(fake.connections).toBe(0);
  });

  it('exit 1 when synthesis fails (typed code in the message) or the file cannot be written', async () => {
    fake.fault = 'unauthorized';
    const t = io(fake.env);
    expect(await ttsCommand(['Hi', '--out', join(dir, 'x.wav')], t.io)).toBe(1);
    expect(t.err.join('')).toMatch(/BRIDGE_ERR_AGENT_AUTH/);
    expect(t.err.join('')).not.toContain(fake.apiKey);
    fake.fault = undefined;
    const w = io(fake.env);
    expect(await ttsCommand(['Hi', '--out', join(dir, 'no-such-dir', 'x.wav')], w.io)).toBe(1);
    expect(w.err.join('')).toMatch(/could not write/);
  });
});
