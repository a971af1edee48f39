/**
 * The Pipecat adapter against its fake (test/fakes/pipecat-server.ts): the agent
 * contract, then what is specific to Pipecat's protobuf serializer.
 */
import { describe, expect, it } from 'vitest';
import { runAgentContract } from './agent-contract.js';
import { startFakePipecat } from '../fakes/pipecat-server.js';
import { loadConfig } from '../../src/config.js';
import { createPipecatAgentFactory } from '../../src/agents/pipecat/index.js';
import protobuf from 'protobufjs';
import type { AgentAudio, Transcript } from '../../src/agents/agent.js';
import { BridgeError } from '../../src/errors.js';
import { createAgentRegistry } from '../../src/agents/registry.js';
import { readPipecatConfig } from '../../src/agents/pipecat/config.js';
import { AudioFrameEncoder, encodeFrameForTest, parseFrame } from '../../src/agents/pipecat/protocol.js';
import { MAX_MESSAGE_BYTES, type PipecatAgentSession } from '../../src/agents/pipecat/session.js';
import type { FakePipecatServer, FakePipecatOptions } from '../fakes/pipecat-server.js';
import { on } from './agent-events.js';

function factoryFor(env: Record<string, string>) {
  const config = loadConfig({ BRIDGE_LOG_LEVEL: 'silent', ...env });
  const { factory, problems } = createPipecatAgentFactory(config);
  if (problems.length > 0) throw new Error(problems.join('; '));
  return factory;
}

runAgentContract({
  name: 'pipecat',
  startFake: () => startFakePipecat(),
  faultEnv: { PIPECAT_PING_INTERVAL_MS: '300' },
  createFactory: factoryFor,
  faultTimeoutMs: 4000,
});

// --- adapter-specific ---------------------------------------------------------------------

async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

interface Opened {
  session: PipecatAgentSession;
  audio: AgentAudio[];
  errors: { e: BridgeError; fatal: boolean }[];
  events: string[];
  transcripts: Transcript[];
  done: string[];
}

async function withFake(options: FakePipecatOptions, fn: (fake: FakePipecatServer) => Promise<void>): Promise<void> {
  const fake = await startFakePipecat(options);
  try {
    await fn(fake);
  } finally {
    await fake.close();
  }
}

async function open(fake: FakePipecatServer, env: Record<string, string> = {}, parameters: Record<string, string> = {}): Promise<Opened> {
  const session = factoryFor({ ...fake.env, ...env }).create({ callSid: 'CA' + 'a'.repeat(32), parameters }) as PipecatAgentSession;
  const o: Opened = { session, audio: [], errors: [], events: [], transcripts: [], done: [] };
  on(session, 'audio', (a) => o.audio.push({ data: a.data.slice(), sampleRateHz: a.sampleRateHz, responseId: a.responseId }));
  on(session, 'error', ({ error: e, fatal }) => {
    o.errors.push({ e, fatal });
    o.events.push(`error:${e.code}${fatal ? ':fatal' : ''}`);
  });
  on(session, 'interruption', () => o.events.push('interruption'));
  on(session, 'responseDone', ({ responseId }) => {
    o.events.push('responseDone');
    o.done.push(responseId!);
  });
  on(session, 'transcript', (t) => o.transcripts.push({ role: t.role, text: t.text, final: t.final }));
  on(session, 'end', ({ reason }) => o.events.push(`end:${reason}`));
  on(session, 'closed', () => o.events.push('closed'));
  await session.connect(AbortSignal.timeout(5000));
  await fake.connected();
  return o;
}

const ms = (chunks: AgentAudio[], rateHz: number) => (chunks.reduce((n, c) => n + c.data.length, 0) / rateHz) * 1000;

describe('pipecat wire format', () => {
  // The reference encoding, from the .proto text (not from the adapter's JSON schema).
  const Frame = protobuf.parse(
    'syntax = "proto3"; package pipecat; message AudioRawFrame { uint64 id = 1; string name = 2; bytes audio = 3; uint32 sample_rate = 4; uint32 num_channels = 5; optional uint64 pts = 6; } message Frame { oneof frame { AudioRawFrame audio = 2; } }',
    { keepCase: true },
  ).root.lookupType('pipecat.Frame');

  it('hand-encoded caller audio is byte-identical to protobufjs, across varint sizes, and the buffer is reused', () => {
    for (const rate of [8000, 16000, 24000, 48000]) {
      const enc = new AudioFrameEncoder(rate);
      for (const samples of [1, 63, 64, 160, 320, 960, 8193]) {
        const pcm = new Int16Array(samples).map((_, i) => (i * 7919) % 65536 - 32768);
        const ours = Buffer.from(enc.encode(pcm));
        const ref = Buffer.from(Frame.encode(Frame.fromObject({ audio: { audio: new Uint8Array(pcm.buffer), sample_rate: rate, num_channels: 1 } })).finish());
        expect(ours.equals(ref)).toBe(true);
      }
    }
    const enc = new AudioFrameEncoder(16000);
    const a = enc.encode(new Int16Array(320));
    const b = enc.encode(new Int16Array(320));
    expect(a.buffer).toBe(b.buffer);
  });

  it('parseFrame: garbage is a protocol problem, bad audio an audio-format problem, never an exception', () => {
    expect(parseFrame(Buffer.from([0xff, 0x01, 2, 3]))).toMatchObject({ ok: false, problem: 'protocol' });
    expect(parseFrame(Buffer.from([0x4a, 0x02, 0x08, 0x01]))).toMatchObject({ ok: false, problem: 'protocol' });
    expect(parseFrame(new Uint8Array(0))).toMatchObject({ ok: false, problem: 'protocol' });
    expect(parseFrame(encodeFrameForTest({ message: { data: '{nope' } }))).toMatchObject({ ok: false, problem: 'protocol' });
    expect(parseFrame(encodeFrameForTest({ audio: { audio: new Uint8Array(4), sample_rate: 0, num_channels: 1 } }))).toMatchObject({ ok: false, problem: 'audio-format' });
    expect(parseFrame(encodeFrameForTest({ audio: { audio: new Uint8Array(5), sample_rate: 16000, num_channels: 1 } }))).toMatchObject({ ok: false, problem: 'audio-format' });
    expect(parseFrame(encodeFrameForTest({ audio: { audio: new Uint8Array(6), sample_rate: 16000, num_channels: 2 } }))).toMatchObject({ ok: false, problem: 'audio-format' });
    expect(parseFrame(encodeFrameForTest({ audio: { audio: new Uint8Array(8), sample_rate: 16000, num_channels: 2 } }))).toMatchObject({ ok: true, frame: { kind: 'audio', numChannels: 2 } });
    // num_channels absent (proto3 zero) reads as mono.
    expect(parseFrame(encodeFrameForTest({ audio: { audio: new Uint8Array(4), sample_rate: 16000 } }))).toMatchObject({ ok: true, frame: { kind: 'audio', numChannels: 1 } });
    expect(parseFrame(encodeFrameForTest({ interruption: {} }))).toEqual({ ok: true, frame: { kind: 'interruption' } });
  });
});

describe('pipecat configuration', () => {
  it('is unavailable without PIPECAT_URL, lists every bad key, and takes the defaults', () => {
    expect(readPipecatConfig({})).toEqual({ config: undefined, problems: [] });
    const bad = readPipecatConfig({ PIPECAT_URL: 'http://x', PIPECAT_SAMPLE_RATE: '11025', PIPECAT_CONNECT_TIMEOUT_MS: 'soon', PIPECAT_RECONNECT: 'maybe' });
    expect(bad.config).toBeUndefined();
    expect(bad.problems.map((p) => p.split('=')[0])).toEqual(['PIPECAT_URL', 'PIPECAT_SAMPLE_RATE', 'PIPECAT_CONNECT_TIMEOUT_MS', 'PIPECAT_RECONNECT']);
    expect(readPipecatConfig({ PIPECAT_URL: 'ws://127.0.0.1:8765' }).config).toEqual({
      url: 'ws://127.0.0.1:8765/',
      authToken: undefined,
      sampleRateHz: 16000,
      outputSampleRateHz: undefined,
      connectTimeoutMs: 5000,
      responseGapMs: 350,
      pingIntervalMs: 5000,
      reconnect: true,
    });
  });

  it('registers as "pipecat": unavailable by default; a bad PIPECAT_* key stops start-up', () => {
    const registry = createAgentRegistry(loadConfig({}));
    expect(registry.has('pipecat')).toBe(true);
    expect(registry.available()).not.toContain('pipecat');
    expect(createAgentRegistry(loadConfig({ PIPECAT_URL: 'ws://127.0.0.1:1' })).available()).toContain('pipecat');
    expect(() => createAgentRegistry(loadConfig({ PIPECAT_URL: 'ws://127.0.0.1:1', PIPECAT_SAMPLE_RATE: '7000' }))).toThrow(/PIPECAT_SAMPLE_RATE/);
  });

  it('the rate parameter overrides PIPECAT_SAMPLE_RATE; a bad one rejects connect with AGENT_CONFIG', async () => {
    await withFake({ sampleRateHz: 8000 }, async (fake) => {
      const { session } = await open(fake, { PIPECAT_SAMPLE_RATE: '24000' }, { rate: '8000', voice: 'ignored' });
      expect(session.inputFormat).toEqual({ encoding: 'pcm16', sampleRateHz: 8000 });
      expect(session.outputFormat).toEqual({ encoding: 'pcm16', sampleRateHz: 8000 });
      for (let i = 0; i < 10; i++) session.sendAudio(new Int16Array(160));
      await waitFor(() => fake.received().audioMs >= 200, 3000, 'caller audio');
      expect(fake.received().audioFormatErrors).toEqual([]);
      await session.close('test');
      const s2 = factoryFor(fake.env).create({ callSid: 'CA' + 'b'.repeat(32), parameters: { rate: '44.1k' } });
      const err = await s2.connect(AbortSignal.timeout(2000)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BridgeError);
      expect((err as BridgeError).code).toBe('BRIDGE_ERR_AGENT_CONFIG');
      await s2.close('test');
    });
  });

  it('PIPECAT_AUTH_TOKEN goes in the Authorization header', async () => {
    await withFake({}, async (fake) => {
      const { session } = await open(fake, { PIPECAT_AUTH_TOKEN: 'tok-123' });
      expect(fake.received().authHeaders).toEqual(['Bearer tok-123']);
      await session.close('test');
    });
  });

  it('PIPECAT_ORIGIN is sent as Origin: a bot with allowed origins refuses the bridge without it (403, AGENT_AUTH naming PIPECAT_ORIGIN) and takes it with it; no error shows the token', async () => {
    const token = 'sekret-token-' + 'z'.repeat(16);
    await withFake({ allowedOrigins: ['https://bridge.example.com'] }, async (fake) => {
      const s = factoryFor({ ...fake.env, PIPECAT_AUTH_TOKEN: token }).create({ callSid: 'CA' + 'd'.repeat(32), parameters: {} });
      const err = (await s.connect(AbortSignal.timeout(3000)).catch((e: unknown) => e)) as BridgeError;
      expect(err.code).toBe('BRIDGE_ERR_AGENT_AUTH');
      expect(err.message).toMatch(/HTTP 403.*PIPECAT_ORIGIN/);
      expect(err.message).not.toContain(token);
      await s.close('test');
      const { session } = await open(fake, { PIPECAT_ORIGIN: 'https://bridge.example.com', PIPECAT_AUTH_TOKEN: token });
      expect(fake.received().origins).toEqual([undefined, 'https://bridge.example.com']);
      expect(fake.received().authHeaders.at(-1)).toBe(`Bearer ${token}`);
      expect(fake.received().refusedUpgrades).toBe(1);
      await session.close('test');
    });
    await withFake({ requireToken: token }, async (fake) => {
      const s = factoryFor({ ...fake.env, PIPECAT_AUTH_TOKEN: token + 'x' }).create({ callSid: 'CA' + 'd'.repeat(32), parameters: {} });
      const err = (await s.connect(AbortSignal.timeout(3000)).catch((e: unknown) => e)) as BridgeError;
      expect(err.code).toBe('BRIDGE_ERR_AGENT_AUTH');
      expect(err.message).toMatch(/HTTP 401.*PIPECAT_AUTH_TOKEN/);
      expect(`${err.message} ${JSON.stringify(err)}`).not.toContain(token);
      await s.close('test');
    });
    // An origin is scheme://host[:port]; the problem never echoes the token.
    expect(readPipecatConfig({ PIPECAT_URL: 'ws://h', PIPECAT_ORIGIN: 'https://bridge.example.com:8443' }).config!.origin).toBe('https://bridge.example.com:8443');
    for (const bad of ['bridge.example.com', 'https://bridge.example.com/path', 'https://u:p@bridge.example.com']) {
      expect(readPipecatConfig({ PIPECAT_URL: 'ws://h', PIPECAT_ORIGIN: bad }).problems).toEqual([expect.stringMatching(/^PIPECAT_ORIGIN=.*must be an origin/)]);
    }
    const tokProblems = readPipecatConfig({ PIPECAT_URL: 'ws://h', PIPECAT_AUTH_TOKEN: 'has space ' + token }).problems;
    expect(tokProblems).toEqual([expect.stringMatching(/^PIPECAT_AUTH_TOKEN: /)]);
    expect(tokProblems.join(' ')).not.toContain(token);
  });
});

describe('pipecat connect failures', () => {
  it('HTTP 401 → AGENT_AUTH; nothing listening → AGENT_CONNECT; an aborted signal → AGENT_TIMEOUT', async () => {
    await withFake({}, async (fake) => {
      fake.refuseNextWith(401);
      const s = factoryFor(fake.env).create({ callSid: 'CA' + 'c'.repeat(32), parameters: {} });
      expect(await s.connect(AbortSignal.timeout(3000)).catch((e: BridgeError) => e.code)).toBe('BRIDGE_ERR_AGENT_AUTH');
      const aborted = factoryFor(fake.env).create({ callSid: 'CA' + 'c'.repeat(32), parameters: {} });
      expect(await aborted.connect(AbortSignal.abort(new Error('call ended'))).catch((e: BridgeError) => e.code)).toBe('BRIDGE_ERR_AGENT_TIMEOUT');
    });
    const gone = factoryFor({ PIPECAT_URL: 'ws://127.0.0.1:1/ws' }).create({ callSid: 'CA' + 'c'.repeat(32), parameters: {} });
    const err = (await gone.connect(AbortSignal.timeout(3000)).catch((e: unknown) => e)) as BridgeError;
    expect(err.code).toBe('BRIDGE_ERR_AGENT_CONNECT');
    expect(err.retryable).toBe(true);
  });
});

describe('pipecat bot audio', () => {
  it('bot audio at another rate than the declared one goes to the call at its own rate, whole (the call resamples, not the adapter)', async () => {
    await withFake({ sampleRateHz: 16000, outputRateHz: 24000 }, async (fake) => {
      const o = await open(fake);
      expect(o.session.outputFormat.sampleRateHz).toBe(16000);
      await fake.speak(600);
      await waitFor(() => o.events.includes('responseDone'), 3000, 'responseDone');
      expect(o.errors).toEqual([]);
      expect(o.audio.every((c) => c.sampleRateHz === 24000)).toBe(true);
      expect(ms(o.audio, 24000)).toBe(600);
      // The 300 Hz tone at amplitude 8000 as sent: check its level in the middle.
      const all = Int16Array.from(o.audio.flatMap((c) => Array.from(c.data as Int16Array)));
      const mid = all.subarray(4800, 9600);
      const rms = Math.sqrt(mid.reduce((s, v) => s + v * v, 0) / mid.length);
      expect(rms).toBeGreaterThan(8000 / Math.SQRT2 * 0.9);
      expect(rms).toBeLessThan(8000 / Math.SQRT2 * 1.1);
      await o.session.close('test');
    });
  });

  it('PIPECAT_OUTPUT_SAMPLE_RATE (or outputRate) declares the bot rate apart from the caller rate: no resampling in the adapter', async () => {
    await withFake({ sampleRateHz: 16000, outputRateHz: 24000 }, async (fake) => {
      const o = await open(fake, { PIPECAT_OUTPUT_SAMPLE_RATE: '24000' });
      expect(o.session.inputFormat).toEqual({ encoding: 'pcm16', sampleRateHz: 16000 });
      expect(o.session.outputFormat).toEqual({ encoding: 'pcm16', sampleRateHz: 24000 });
      await fake.speak(200);
      await waitFor(() => o.events.includes('responseDone'), 3000, 'responseDone');
      expect(ms(o.audio, 24000)).toBe(200); // bit-exact frames, no filter tail
      o.session.sendAudio(new Int16Array(320));
      await waitFor(() => fake.received().audioMs === 20, 3000, 'caller audio');
      expect(fake.received().audioFormatErrors).toEqual([]);
      await o.session.close('test');
      const p = await open(fake, {}, { outputRate: '24000' });
      expect(p.session.outputFormat).toEqual({ encoding: 'pcm16', sampleRateHz: 24000 });
      await p.session.close('test');
    });
  });

  it('stereo bot audio is rejected with AGENT_AUDIO_FORMAT and never played', async () => {
    await withFake({ outputChannels: 2 }, async (fake) => {
      const o = await open(fake);
      await fake.speak(100);
      await waitFor(() => o.errors.length > 0, 3000, 'an audio-format error');
      expect(o.errors[0]!.e.code).toBe('BRIDGE_ERR_AGENT_AUDIO_FORMAT');
      expect(o.errors[0]!.fatal).toBe(false);
      expect(o.audio).toEqual([]);
      await o.session.close('test');
    });
  });

  it('without RTVI messages a response ends after PIPECAT_RESPONSE_GAP_MS of no bot audio', async () => {
    await withFake({ rtvi: false }, async (fake) => {
      const o = await open(fake, { PIPECAT_RESPONSE_GAP_MS: '200' });
      let lastAudioAt = 0;
      on(o.session, 'audio', () => (lastAudioAt = Date.now()));
      let doneAt = 0;
      on(o.session, 'responseDone', () => (doneAt = Date.now()));
      await fake.speak(300);
      await waitFor(() => doneAt > 0, 3000, 'responseDone from the gap');
      expect(doneAt - lastAudioAt).toBeGreaterThanOrEqual(190);
      expect(ms(o.audio, 16000)).toBe(300);
      await fake.speak(100);
      await waitFor(() => o.done.length === 2, 3000, 'second responseDone');
      expect(o.done).toEqual(['pipecat-1', 'pipecat-2']);
      await o.session.close('test');
    });
  });

  it('transcripts come from RTVI messages: final user-transcription → caller; a response → one agent transcript (bot-output, not repeated from bot-tts-text or bot-llm-text)', async () => {
    await withFake({}, async (fake) => {
      const o = await open(fake);
      fake.sendRtvi({ type: 'user-transcription', data: { text: 'where is', user_id: 'u', timestamp: '2026-01-01T00:00:00Z', final: false } });
      fake.sendRtvi({ type: 'user-transcription', data: { text: 'where is my order', user_id: 'u', timestamp: '2026-01-01T00:00:00Z', final: true } });
      await fake.speak(100, 'Your order ships today. Anything else?'); // llm tokens, bot-output, tts words, like a real bot
      await waitFor(() => o.events.includes('responseDone'), 3000, 'responseDone');
      await fake.speak(100, 'Goodbye.');
      await waitFor(() => o.done.length === 2, 3000, 'the second response');
      expect(o.transcripts).toEqual([
        { role: 'caller', text: 'where is my order', final: true },
        { role: 'agent', text: 'Your order ships today. Anything else?', final: true },
        { role: 'agent', text: 'Goodbye.', final: true },
      ]);
      await o.session.close('test');
    });
  });

  it('agent transcript sources: spoken bot-output segments (what had started, when interrupted), else bot-tts-text words, else bot-llm-text tokens; legacy TextFrames last', async () => {
    const audio = () => ({ audio: { audio: new Uint8Array(640), sample_rate: 16000, num_channels: 1 } });
    await withFake({ rtvi: false, echoInterruption: false }, async (fake) => {
      const o = await open(fake, { PIPECAT_RESPONSE_GAP_MS: '100' });
      // RTVI 2.x progress: segment 1 done, segment 2 cut mid-way, segment 3 never started; then the bot is interrupted.
      fake.sendFrame(audio());
      fake.sendRtvi({ type: 'bot-output', data: { text: 'First sentence.', segment_id: 1, will_be_spoken: true, spoken_status: 'new' } });
      fake.sendRtvi({ type: 'bot-output', data: { text: 'First sentence.', segment_id: 1, will_be_spoken: true, spoken_status: 'completed' } });
      fake.sendRtvi({ type: 'bot-output', data: { text: 'Second sentence here.', segment_id: 2, will_be_spoken: true, spoken_status: 'in-progress', spoken_progress: { accumulated_text: 'Second sen', remaining_text: 'tence here.' } } });
      fake.sendRtvi({ type: 'bot-output', data: { text: 'Third.', segment_id: 3, will_be_spoken: true, spoken_status: 'new' } });
      fake.sendRtvi({ type: 'bot-output', data: { text: '(a note shown, not said)', segment_id: 4, will_be_spoken: false } });
      fake.sendFrame({ interruption: {} });
      await waitFor(() => o.transcripts.length === 1, 3000, 'the interrupted transcript');
      // Words only from TTS, then only LLM tokens.
      for (const w of ['Words', 'as', 'spoken.']) fake.sendRtvi({ type: 'bot-tts-text', data: { text: w } });
      for (const t of ['Hel', 'lo there', '!']) fake.sendRtvi({ type: 'bot-llm-text', data: { text: t } });
      fake.sendFrame(audio());
      await waitFor(() => o.done.length === 1, 3000, 'a response from TTS words');
      for (const t of ['Hel', 'lo there', '!']) fake.sendRtvi({ type: 'bot-llm-text', data: { text: t } });
      fake.sendFrame(audio());
      await waitFor(() => o.done.length === 2, 3000, 'a response from LLM tokens');
      // A custom serializer's TranscriptionFrame / TextFrame are still read when nothing else comes.
      fake.sendFrame({ transcription: { text: 'legacy caller', user_id: 'u', timestamp: 't' } });
      fake.sendFrame({ text: { text: 'Legacy' } });
      fake.sendFrame({ text: { text: 'text.' } });
      fake.sendFrame(audio());
      await waitFor(() => o.done.length === 3, 3000, 'a legacy response');
      expect(o.transcripts).toEqual([
        { role: 'agent', text: 'First sentence. Second sen [interrupted]', final: true },
        { role: 'agent', text: 'Words as spoken.', final: true },
        { role: 'agent', text: 'Hello there!', final: true },
        { role: 'caller', text: 'legacy caller', final: true },
        { role: 'agent', text: 'Legacy text.', final: true },
      ]);
      await o.session.close('test');
    });
  });
});

describe('pipecat barge-in', () => {
  it('interrupt(): heardMs and the InterruptionFrame reach the server; its echo is not a second barge-in; the next reply is a new response', async () => {
    await withFake({ realtime: true }, async (fake) => {
      const o = await open(fake);
      const speaking = fake.speak(2000);
      await waitFor(() => ms(o.audio, 16000) >= 200, 3000, 'some bot audio');
      o.session.interrupt({ heardMs: 180 });
      await speaking;
      await waitFor(() => fake.received().interruptions.length === 1, 3000, 'the interruption at the server');
      expect(fake.received().interruptions).toEqual([{ heardMs: 180 }]);
      expect(o.session.lastHeardMs).toBe(180);
      await fake.speak(200);
      await waitFor(() => o.events.includes('responseDone'), 3000, 'the next response');
      expect(o.events.filter((e) => e === 'interruption')).toEqual([]);
      expect(o.done).toEqual(['pipecat-2']); // the interrupted one never completes
      expect(new Set(o.audio.map((a) => a.responseId))).toEqual(new Set(['pipecat-1', 'pipecat-2']));
      expect(ms(o.audio.filter((a) => a.responseId === 'pipecat-1'), 16000)).toBeLessThan(1000);
      await o.session.close('test');
    });
  });

  it('late audio of the interrupted response is discarded until it stops arriving', async () => {
    await withFake({ rtvi: false, echoInterruption: false }, async (fake) => {
      const o = await open(fake, { PIPECAT_RESPONSE_GAP_MS: '200' });
      fake.sendFrame({ audio: { audio: new Uint8Array(640), sample_rate: 16000, num_channels: 1 } });
      await waitFor(() => o.audio.length === 1, 3000, 'first frame');
      o.session.interrupt({ heardMs: 0 });
      for (let i = 0; i < 5; i++) fake.sendFrame({ audio: { audio: new Uint8Array(640).fill(1), sample_rate: 16000, num_channels: 1 } });
      await waitFor(() => o.session.stats.agentFramesDiscarded === 5, 3000, 'late frames discarded');
      expect(o.audio.length).toBe(1);
      // After the gap, new audio is a new response.
      await waitFor(() => fake.received().interruptions.length === 1, 3000, 'the interruption');
      await waitFor(() => !o.session.discarding, 3000, 'the discard to end after a 200 ms gap');
      await fake.speak(100);
      await waitFor(() => o.done.length === 1, 3000, 'new response done');
      expect(o.done).toEqual(['pipecat-2']);
      await o.session.close('test');
    });
  });

  it('a server InterruptionFrame ends the response without responseDone and is reported as interruption', async () => {
    await withFake({ realtime: true }, async (fake) => {
      const o = await open(fake);
      const speaking = fake.speak(2000);
      await waitFor(() => o.audio.length > 3, 3000, 'bot audio');
      await fake.interruptFromService();
      await speaking;
      await waitFor(() => o.events.includes('interruption'), 3000, 'interruption');
      expect(o.events).not.toContain('responseDone');
      expect(o.transcripts.at(-1)).toMatchObject({ role: 'agent', text: expect.stringMatching(/\[interrupted\]$/) });
      await o.session.close('test');
    });
  });
});

describe('pipecat bad input from the server', () => {
  it('a text message is a non-fatal AGENT_PROTOCOL error naming the protobuf serializer; a stream of them is fatal', async () => {
    await withFake({}, async (fake) => {
      const o = await open(fake);
      fake.sendRaw(JSON.stringify({ event: 'media', streamSid: 'MZ1', media: { payload: 'AAAA' } }));
      await waitFor(() => o.errors.length === 1, 3000, 'an error');
      expect(o.errors[0]!.fatal).toBe(false);
      expect(o.errors[0]!.e.code).toBe('BRIDGE_ERR_AGENT_PROTOCOL');
      expect(o.errors[0]!.e.message).toMatch(/ProtobufFrameSerializer/);
      expect(o.errors[0]!.e.message).toMatch(/TwilioFrameSerializer/);
      for (let i = 0; i < 25; i++) fake.sendRaw('{"type":"audio"}');
      await waitFor(() => o.events.includes('closed'), 3000, 'closed');
      expect(o.errors.filter((x) => x.fatal).map((x) => x.e.code)).toEqual(['BRIDGE_ERR_AGENT_PROTOCOL']);
      await waitFor(() => fake.received().closed, 3000, 'the socket closed');
    });
  });

  it('an oversized message is dropped with a non-fatal AGENT_PROTOCOL error', async () => {
    await withFake({}, async (fake) => {
      const o = await open(fake);
      fake.sendFrame({ audio: { audio: new Uint8Array(MAX_MESSAGE_BYTES + 2), sample_rate: 16000, num_channels: 1 } });
      await waitFor(() => o.errors.length === 1, 3000, 'an error');
      expect(o.errors[0]).toMatchObject({ fatal: false, e: { code: 'BRIDGE_ERR_AGENT_PROTOCOL' } });
      expect(o.audio).toEqual([]);
      await o.session.close('test');
    });
  });

  it('an RTVI error message becomes AGENT_SERVICE, fatal only when the pipeline says so', async () => {
    await withFake({}, async (fake) => {
      const o = await open(fake);
      fake.sendRtvi({ type: 'error', data: { error: 'tts hiccup', fatal: false } });
      await waitFor(() => o.errors.length === 1, 3000, 'an error');
      expect(o.errors[0]).toMatchObject({ fatal: false, e: { code: 'BRIDGE_ERR_AGENT_SERVICE' } });
      fake.sendRtvi({ type: 'error', data: { error: 'llm down', fatal: true } });
      await waitFor(() => o.events.includes('closed'), 3000, 'closed');
      expect(o.errors[1]).toMatchObject({ fatal: true, e: { code: 'BRIDGE_ERR_AGENT_SERVICE' } });
    });
  });

  it("DTMF is RTVI's native dtmf message {buttons: [key]}; keys RTVI has no button for, and caller audio of the wrong type, are non-fatal errors", async () => {
    await withFake({}, async (fake) => {
      const o = await open(fake);
      o.session.sendAudio(new Uint8Array(160));
      o.session.sendDtmf('x');
      o.session.sendDtmf('A');
      o.session.sendDtmf('#');
      await waitFor(() => fake.received().dtmf.length === 1, 3000, 'the key');
      expect(fake.received().dtmf).toEqual(['#']);
      expect(fake.received().messages.filter((m: any) => m.type === 'dtmf')).toEqual([{ label: 'rtvi-ai', type: 'dtmf', id: expect.stringMatching(/^vb-dtmf-\d+$/), data: { buttons: ['#'] } }]);
      expect(o.errors.map((x) => x.e.code)).toEqual(['BRIDGE_ERR_DSP_ARGUMENT', 'BRIDGE_ERR_DSP_ARGUMENT', 'BRIDGE_ERR_DSP_ARGUMENT']);
      expect(fake.received().audioMs).toBe(0);
      await o.session.close('test');
    });
  });

  it('each connection opens with RTVI client-ready (protocol 2.2.0), which the bot answers with bot-ready', async () => {
    await withFake({}, async (fake) => {
      const o = await open(fake);
      await waitFor(() => fake.received().messages.length >= 1, 3000, 'client-ready');
      expect(fake.received().messages[0]).toEqual({ label: 'rtvi-ai', type: 'client-ready', id: expect.any(String), data: { version: '2.2.0', about: { library: 'voice-bridge' } } });
      await fake.fault('close-mid-call');
      await waitFor(() => fake.received().connections === 2 && fake.received().messages.filter((m: any) => m.type === 'client-ready').length === 2, 3000, 'client-ready on the new connection');
      expect(o.errors.filter((x) => x.e.code === 'BRIDGE_ERR_AGENT_PROTOCOL')).toEqual([]); // bot-ready is not a problem
      await o.session.close('test');
    });
  });
});

describe('pipecat session end and reconnect', () => {
  it('a normal close (1000) from the server is the bot ending the call: end, then closed, no error', async () => {
    await withFake({}, async (fake) => {
      const o = await open(fake);
      await fake.speak(100);
      fake.endSession(1000, 'EndFrame');
      await waitFor(() => o.events.includes('closed'), 3000, 'closed');
      expect(o.events).toEqual(['responseDone', 'end:pipecat server ended the session: EndFrame', 'closed']);
    });
  });

  it('the bot ending the call with close 1001 (WebSocket server transport) is a hang-up after its goodbye, not a drop: end, then closed, no reconnect, no error', async () => {
    await withFake({}, async (fake) => {
      const o = await open(fake);
      await fake.botEndsCall(300); // goodbye, then close 1001
      await waitFor(() => o.events.includes('closed'), 3000, 'closed');
      expect(o.events).toEqual(['responseDone', 'end:pipecat server ended the session', 'closed']);
      expect(o.transcripts).toEqual([{ role: 'agent', text: 'Thank you for calling, goodbye!', final: true }]);
      expect(ms(o.audio, 16000)).toBe(300); // the whole goodbye
      expect(o.errors).toEqual([]);
      expect(fake.received().connections).toBe(1);
    });
  });

  it('an abnormal close is survived by one reconnect to a new session (non-fatal AGENT_CLOSED); the second is fatal', async () => {
    await withFake({}, async (fake) => {
      const o = await open(fake);
      await fake.fault('close-mid-call');
      await waitFor(() => o.errors.length === 1, 3000, 'the reconnect report');
      expect(o.errors[0]).toMatchObject({ fatal: false, e: { code: 'BRIDGE_ERR_AGENT_CLOSED' } });
      expect(o.errors[0]!.e.message).toMatch(/context .* lost/);
      expect(fake.received().connections).toBe(2);
      o.session.sendAudio(new Int16Array(320));
      await waitFor(() => fake.received().audioMs >= 20, 3000, 'audio on the new socket');
      await fake.speak(100);
      await waitFor(() => o.events.includes('responseDone'), 3000, 'a response on the new session');
      await fake.fault('close-mid-call');
      await waitFor(() => o.events.includes('closed'), 3000, 'closed');
      expect(o.errors[1]).toMatchObject({ fatal: true, e: { code: 'BRIDGE_ERR_AGENT_CLOSED' } });
      expect(fake.received().connections).toBe(2);
    });
  });

  it('a failed reconnect, or PIPECAT_RECONNECT=0, is a fatal AGENT_CLOSED at once', async () => {
    await withFake({}, async (fake) => {
      const o = await open(fake);
      await fake.fault('refuse-next');
      await fake.fault('close-mid-call');
      await waitFor(() => o.events.includes('closed'), 3000, 'closed');
      expect(o.errors).toHaveLength(1);
      expect(o.errors[0]).toMatchObject({ fatal: true, e: { code: 'BRIDGE_ERR_AGENT_CLOSED' } });
      expect(o.errors[0]!.e.message).toMatch(/HTTP 503/);
    });
    await withFake({}, async (fake) => {
      const o = await open(fake, { PIPECAT_RECONNECT: '0' });
      await fake.fault('close-mid-call');
      await waitFor(() => o.events.includes('closed'), 3000, 'closed');
      expect(o.errors.map((x) => [x.e.code, x.fatal])).toEqual([['BRIDGE_ERR_AGENT_CLOSED', true]]);
      expect(fake.received().connections).toBe(1);
    });
  });

  it('a server that stops answering is detected by ping within two intervals (AGENT_TIMEOUT without reconnect)', async () => {
    await withFake({}, async (fake) => {
      const o = await open(fake, { PIPECAT_RECONNECT: 'off', PIPECAT_PING_INTERVAL_MS: '200' });
      await fake.fault('stop-answering');
      await waitFor(() => o.events.includes('closed'), 10_000, 'closed');
      expect(o.errors.map((x) => [x.e.code, x.fatal])).toEqual([['BRIDGE_ERR_AGENT_TIMEOUT', true]]);
      // Detected by the keepalive's rule (one 200 ms interval unanswered), whatever the machine's load.
      expect(o.errors[0]!.e.message).toMatch(/nothing received for 200 ms/);
    });
  });
});
