/**
 * The OpenAI Realtime adapter against its fake (test/fakes/openai-realtime.ts):
 * the shared agent contract, then what is specific to OpenAI — the GA session.update,
 * μ-law passthrough and PCM16 24 kHz, barge-in (truncate at the heard position,
 * cancel, late deltas dropped), transcripts, DTMF as text, service errors, reconnects,
 * and rolling over to a fresh session before the cap.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { runAgentContract } from './agent-contract.js';
import { startFakeOpenAi, type FakeOpenAi, type FakeOpenAiOptions } from '../fakes/openai-realtime.js';
import { createOpenAiAgentFactory, type OpenAiRealtimeSession } from '../../src/agents/openai/index.js';
import type { AgentAudio, Transcript } from '../../src/agents/agent.js';
import type { BridgeError } from '../../src/errors.js';
import { on } from './agent-events.js';
import { decodeBase64 } from '../../src/agents/openai/protocol.js';

runAgentContract({
  name: 'openai',
  startFake: () => startFakeOpenAi(),
  createFactory: (env) => createOpenAiAgentFactory(env).factory,
  faultEnv: { OPENAI_PING_INTERVAL_MS: '300' },
});

// --- helpers -------------------------------------------------------------------------

const fakes: FakeOpenAi[] = [];
const sessions: OpenAiRealtimeSession[] = [];
afterEach(async () => {
  await Promise.all(sessions.splice(0).map((s) => s.close('test end')));
  await Promise.all(fakes.splice(0).map((f) => f.close()));
});

async function fakeWith(options: FakeOpenAiOptions = {}): Promise<FakeOpenAi> {
  const f = await startFakeOpenAi(options);
  fakes.push(f);
  return f;
}

interface Log {
  audio: AgentAudio[];
  errors: { err: BridgeError; fatal: boolean }[];
  transcripts: Transcript[];
  events: { type: string; at: number; responseId?: string }[];
}

function create(fake: FakeOpenAi, env: Record<string, string> = {}, parameters: Record<string, string> = {}): { s: OpenAiRealtimeSession; log: Log } {
  const { factory, problems } = createOpenAiAgentFactory({ ...fake.env, ...env });
  expect(problems).toEqual([]);
  const s = factory.create({ callSid: 'CA' + 'a'.repeat(32), parameters }) as OpenAiRealtimeSession;
  sessions.push(s);
  const log: Log = { audio: [], errors: [], transcripts: [], events: [] };
  on(s, 'audio', (a) => {
    log.audio.push({ data: a.data.slice(), sampleRateHz: a.sampleRateHz, responseId: a.responseId });
    log.events.push({ type: 'audio', at: Date.now(), responseId: a.responseId });
  });
  on(s, 'error', ({ error: err, fatal }) => log.errors.push({ err, fatal }));
  on(s, 'transcript', (t) => log.transcripts.push({ role: t.role, text: t.text, final: t.final }));
  for (const type of ['interruption', 'responseDone', 'closed'] as const) {
    on(s, type, (x) => log.events.push({ type, at: Date.now(), responseId: 'responseId' in x ? x.responseId : undefined }));
  }
  return { s, log };
}

async function until(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const count = (log: Log, type: string) => log.events.filter((e) => e.type === type).length;
const bytesOf = (log: Log, responseId: string) => Buffer.concat(log.audio.filter((a) => a.responseId === responseId).map((a) => Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength)));

/** 20 ms μ-law frames numbered by their byte value, so order and loss can be checked. */
const numbered = (n: number) => new Uint8Array(160).fill(n % 256);
/** 20 ms μ-law frames of a loud 440 Hz tone (speech to the fake's energy VAD) or of silence. */
function toneFrame(n: number): Uint8Array {
  const f = new Uint8Array(160);
  for (let i = 0; i < 160; i++) {
    const x = Math.round(8000 * Math.sin((2 * Math.PI * 440 * (n * 160 + i)) / 8000));
    const sign = x < 0 ? 0x7f : 0xff;
    const m = Math.min(32635, Math.abs(x)) + 132;
    let exp = 7;
    for (let mask = 0x4000; (m & mask) === 0 && exp > 0; mask >>= 1) exp--;
    f[i] = sign & ~((exp << 4) | ((m >> (exp + 3)) & 0x0f)) & 0xff;
  }
  return f;
}
const silenceFrame = () => new Uint8Array(160).fill(0xff);

/** Sends frames at real-time pace (20 ms each) from `frameAt(n)` for `ms`. */
async function stream(s: OpenAiRealtimeSession, ms: number, frameAt: (n: number) => Uint8Array, startN = 0): Promise<number> {
  const frames = Math.round(ms / 20);
  const t0 = performance.now();
  for (let k = 0; k < frames; k++) {
    const due = t0 + k * 20 - performance.now();
    if (due > 0) await new Promise((r) => setTimeout(r, due));
    s.sendAudio(frameAt(startN + k));
  }
  return startN + frames;
}

// --- configuration -------------------------------------------------------------------

describe('openai: configuration', () => {
  it('is unavailable without OPENAI_API_KEY, lists every bad OPENAI_* value, and applies the defaults', () => {
    expect(createOpenAiAgentFactory({}).factory.available).toBe(false);
    const bad = createOpenAiAgentFactory({ OPENAI_API_KEY: 'k', OPENAI_REALTIME_URL: 'http://x', OPENAI_TURN_DETECTION: 'loud', OPENAI_AUDIO_FORMAT: 'mp3', OPENAI_SESSION_MAX_MS: '99999999', OPENAI_VOICE: 'a b' });
    expect(bad.problems).toHaveLength(5);
    expect(bad.problems.join('\n')).toMatch(/OPENAI_REALTIME_URL.*OPENAI_VOICE.*OPENAI_TURN_DETECTION.*OPENAI_AUDIO_FORMAT.*OPENAI_SESSION_MAX_MS/s);
  });

  it('defaults to current models: gpt-realtime-2.1 and gpt-4o-mini-transcribe (gpt-realtime and whisper-1 are deprecated); OPENAI_MODEL still pins one', async () => {
    const fake = await fakeWith();
    const { s } = create(fake);
    await s.connect(AbortSignal.timeout(3000));
    const su = fake.connections[0]!.sessionUpdates[0]!;
    expect(su.model).toBe('gpt-realtime-2.1');
    expect(su.audio.input.transcription).toEqual({ model: 'gpt-4o-mini-transcribe' });
    const { s: pinned } = create(fake, { OPENAI_MODEL: 'gpt-realtime', OPENAI_TRANSCRIPTION_MODEL: 'whisper-1' });
    await pinned.connect(AbortSignal.timeout(3000));
    const su2 = fake.connections[1]!.sessionUpdates[0]!;
    expect(su2.model).toBe('gpt-realtime');
    expect(su2.audio.input.transcription).toEqual({ model: 'whisper-1' });
  });

  it('sends the GA session.update: session.type realtime, μ-law both ways, VAD, voice, instructions, transcription', async () => {
    const fake = await fakeWith();
    const { s } = create(fake, { OPENAI_VOICE: 'marin', OPENAI_INSTRUCTIONS: 'Be brief.', OPENAI_TURN_DETECTION: 'semantic_vad', OPENAI_TRANSCRIPTION_MODEL: 'gpt-4o-mini-transcribe', OPENAI_MODEL: 'gpt-realtime-2' });
    expect(s.inputFormat).toEqual({ encoding: 'ulaw', sampleRateHz: 8000 });
    expect(s.outputFormat).toEqual({ encoding: 'ulaw', sampleRateHz: 8000 });
    await s.connect(AbortSignal.timeout(3000));
    const c = fake.connections[0]!;
    expect(c.sessionUpdates).toHaveLength(1);
    expect(c.sessionUpdates[0]).toEqual({
      type: 'realtime',
      model: 'gpt-realtime-2',
      output_modalities: ['audio'],
      instructions: 'Be brief.',
      audio: {
        input: { format: { type: 'audio/pcmu' }, turn_detection: { type: 'semantic_vad', create_response: true, interrupt_response: true }, transcription: { model: 'gpt-4o-mini-transcribe' } },
        output: { format: { type: 'audio/pcmu' }, voice: 'marin' },
      },
    });
  });

  it('webhook parameters override the env (format=pcm24k, voice, turn_detection, transcription off); a bad one rejects connect()', async () => {
    const fake = await fakeWith();
    const { s } = create(fake, {}, { format: 'pcm24k', voice: 'cedar', turn_detection: 'server_vad', transcription_model: 'none', instructions: 'Hi.' });
    expect(s.inputFormat).toEqual({ encoding: 'pcm16', sampleRateHz: 24000 });
    await s.connect(AbortSignal.timeout(3000));
    const su = fake.connections[0]!.sessionUpdates[0]!;
    expect(su.audio.input.format).toEqual({ type: 'audio/pcm', rate: 24000 });
    expect(su.audio.output).toEqual({ format: { type: 'audio/pcm', rate: 24000 }, voice: 'cedar' });
    expect(su.audio.input.transcription).toBeUndefined();
    expect(su.instructions).toBe('Hi.');

    const { s: bad } = create(fake, {}, { voice: 'no such voice!', format: 'opus' });
    const err = await bad.connect(AbortSignal.timeout(3000)).catch((e: BridgeError) => e);
    expect(err).toMatchObject({ code: 'BRIDGE_ERR_AGENT_CONFIG' });
    expect((err as Error).message).toMatch(/voice=.*format=/);
    expect(fake.connections).toHaveLength(1); // no socket opened for it
  });

  it('a wrong key is refused at the upgrade (HTTP 401): connect() rejects with BRIDGE_ERR_AGENT_AUTH, not retryable', async () => {
    const fake = await fakeWith();
    const { s } = create(fake, { OPENAI_API_KEY: 'sk-wrong' });
    const err = (await s.connect(AbortSignal.timeout(3000)).catch((e: BridgeError) => e)) as BridgeError;
    expect(err.code).toBe('BRIDGE_ERR_AGENT_AUTH');
    expect(err.retryable).toBe(false);
    expect(err.message).not.toContain('sk-wrong');
    expect(fake.refused).toEqual([401]);
  });
});

// --- audio --------------------------------------------------------------------------

describe('openai: audio delta decoding', () => {
  it('takes padded base64 and refuses junk, whatever its length', () => {
    const bytes = Buffer.from([0, 1, 2, 250, 251, 252, 253]);
    expect(decodeBase64(bytes.toString('base64'))).toEqual(bytes);
    expect(decodeBase64('')).toEqual(Buffer.alloc(0));
    for (const bad of ['AAEC+vv8/Q', 'AAEC$vv8/Q==', 'AA==AAEC', 'AAEC +vv8/Q=', '***not base64***']) expect(decodeBase64(bad), bad).toBeUndefined();
  });
});

describe('openai: audio', () => {
  it('μ-law passthrough both ways: the bytes the caller sent reach the service, the service bytes reach the bridge unchanged', async () => {
    const fake = await fakeWith();
    const { s, log } = create(fake);
    await s.connect(AbortSignal.timeout(3000));
    for (let n = 0; n < 25; n++) s.sendAudio(numbered(n));
    await until(() => fake.connections[0]!.audioBytes === 25 * 160, 'caller audio');
    expect(Buffer.concat(fake.connections[0]!.audio)).toEqual(Buffer.concat(Array.from({ length: 25 }, (_, n) => numbered(n))));
    await fake.speak(1230);
    await until(() => count(log, 'responseDone') === 1, 'responseDone');
    const id = fake.connections[0]!.responses[0]!.id;
    expect(bytesOf(log, id)).toEqual(fake.audioFor('audio/pcmu', 1230));
    expect(log.audio.every((a) => a.data instanceof Uint8Array && a.responseId === id)).toBe(true);
  });

  it('PCM16 24 kHz: caller Int16Array in, 48 bytes per ms at the service; deltas decoded to Int16Array exactly', async () => {
    const fake = await fakeWith();
    const { s, log } = create(fake, { OPENAI_AUDIO_FORMAT: 'pcm24k' });
    await s.connect(AbortSignal.timeout(3000));
    const frame = new Int16Array(480).map((_, i) => (i * 97) % 2000 - 1000);
    for (let n = 0; n < 10; n++) s.sendAudio(frame);
    await until(() => fake.received().audioMs === 200, '200 ms at the service');
    expect(Buffer.concat(fake.connections[0]!.audio).subarray(0, 960)).toEqual(Buffer.from(frame.buffer));
    await fake.speak(700);
    await until(() => count(log, 'responseDone') === 1, 'responseDone');
    const id = fake.connections[0]!.responses[0]!.id;
    expect(log.audio.every((a) => a.data instanceof Int16Array)).toBe(true);
    expect(bytesOf(log, id)).toEqual(fake.audioFor('audio/pcm', 700));
  });

  it('never throws on the wrong audio type: one non-fatal error, nothing sent', async () => {
    const fake = await fakeWith();
    const { s, log } = create(fake);
    await s.connect(AbortSignal.timeout(3000));
    s.sendAudio(new Int16Array(160));
    s.sendAudio(new Int16Array(160));
    await until(() => log.errors.length === 1, 'error');
    expect(log.errors[0]).toMatchObject({ fatal: false, err: { code: 'BRIDGE_ERR_DSP_ARGUMENT' } });
    expect(fake.connections[0]!.audioBytes).toBe(0);
  });
});

// --- barge-in -----------------------------------------------------------------------

describe('openai: barge-in', () => {
  it('during generation (interrupt_response): interruption, truncate at heardMs, the queued late deltas dropped, and no response.cancel of our own', async () => {
    // 100 ms chunks every 100 ms: the service generates in real time, so the response is mid-way.
    const fake = await fakeWith({ chunkIntervalMs: 100, lateDeltasAfterCancel: 3 });
    const { s, log } = create(fake);
    await s.connect(AbortSignal.timeout(3000));
    const speaking = fake.speak(3000);
    await until(() => log.audio.length >= 4, '400 ms of agent audio');
    const c = fake.connections[0]!;
    const r = c.responses[0]!;
    await fake.interruptFromService();
    await until(() => count(log, 'interruption') === 1, 'interruption');
    const audioAtInterruption = log.audio.length;
    s.interrupt({ heardMs: 250 }); // what the bridge does on 'interruption'
    await speaking; // the fake's response ends (cancelled) after its late deltas
    await until(() => c.truncates.length === 1, 'truncate');
    expect(c.truncates[0]).toEqual({ itemId: r.itemId, audioEndMs: 250, ok: true });
    expect(r.status).toBe('cancelled');
    expect(r.deltasAfterCancel).toBe(3);
    // nothing of the cancelled response after the interruption, and no responseDone for it
    expect(log.audio.length).toBe(audioAtInterruption);
    expect(count(log, 'responseDone')).toBe(0);
    await until(() => s.stats.droppedDeltas >= 3, 'late deltas dropped');
    // The service cancelled the response itself on speech_started (interrupt_response: true): a
    // response.cancel from us would only earn error response_cancel_not_active. None is sent.
    expect(r.cancelReason).toBe('turn_detected');
    expect(c.cancels).toEqual([]);
    expect(c.errorsSent).toEqual([]);
    expect(s.stats.cancels).toBe(0);
    expect(log.errors).toEqual([]);
  });

  it('a session whose turn detection does not interrupt (session.updated says interrupt_response: false): the adapter cancels on speech_started itself', async () => {
    const fake = await fakeWith({ chunkIntervalMs: 100, lateDeltasAfterCancel: 2, applyInterruptResponse: false });
    const { s, log } = create(fake);
    await s.connect(AbortSignal.timeout(3000));
    const speaking = fake.speak(2000);
    await until(() => log.audio.length >= 3, 'agent audio');
    const c = fake.connections[0]!;
    await fake.interruptFromService();
    await until(() => count(log, 'interruption') === 1, 'interruption');
    const n = log.audio.length;
    s.interrupt({ heardMs: 150 });
    await speaking;
    expect(c.cancels).toEqual([{ responseId: c.responses[0]!.id, active: true }]);
    expect(c.responses[0]!.cancelReason).toBe('client_cancelled');
    expect(c.truncates).toEqual([{ itemId: c.responses[0]!.itemId, audioEndMs: 150, ok: true }]);
    expect(log.audio.length).toBe(n);
    expect(c.errorsSent).toEqual([]);
    expect(log.errors).toEqual([]);
  });

  it('bridge barge-in without service VAD (interrupt() alone) cancels the response in progress', async () => {
    const fake = await fakeWith({ chunkIntervalMs: 100, lateDeltasAfterCancel: 2 });
    const { s, log } = create(fake);
    await s.connect(AbortSignal.timeout(3000));
    const speaking = fake.speak(2000);
    await until(() => log.audio.length >= 3, 'agent audio');
    const n = log.audio.length;
    s.interrupt({ heardMs: 120 });
    await speaking;
    const c = fake.connections[0]!;
    expect(c.cancels).toEqual([{ responseId: c.responses[0]!.id, active: true }]);
    expect(c.truncates).toEqual([{ itemId: c.responses[0]!.itemId, audioEndMs: 120, ok: true }]);
    expect(c.responses[0]!.cancelReason).toBe('client_cancelled');
    expect(log.audio.length).toBe(n);
    expect(c.errorsSent).toEqual([]);
  });

  it("the Twilio sample's bug is not repeated: after an uninterrupted response, a barge-in truncates the NEW item at its own heard position, clamped to its audio", async () => {
    const fake = await fakeWith();
    const { s, log } = create(fake);
    await s.connect(AbortSignal.timeout(3000));
    await fake.speak(1500); // played to the end, never interrupted
    await fake.speak(800);
    await until(() => count(log, 'responseDone') === 2, 'two responses');
    const c = fake.connections[0]!;
    await fake.interruptFromService();
    await until(() => count(log, 'interruption') === 1, 'interruption');
    s.interrupt({ heardMs: 5000 }); // more than the item has (e.g. padding at the caller): clamped to 800
    await until(() => c.truncates.length === 1, 'truncate');
    expect(c.truncates[0]).toEqual({ itemId: c.responses[1]!.itemId, audioEndMs: 800, ok: true });
    expect(c.cancels).toEqual([]); // nothing in progress: no cancel
    // a second interrupt for the same response does not truncate again
    s.interrupt({ heardMs: 100 });
    await fake.speak(100);
    expect(c.truncates).toHaveLength(1);
    expect(c.errorsSent).toEqual([]);
  });
});

// --- conversation -------------------------------------------------------------------

describe('openai: turns, transcripts, DTMF', () => {
  it('a caller turn (service VAD) is answered; both transcripts arrive as final transcript events', async () => {
    const fake = await fakeWith({ vad: true, autoAnswer: true, replyMs: 600 });
    const { s, log } = create(fake);
    await s.connect(AbortSignal.timeout(3000));
    for (let n = 0; n < 50; n++) s.sendAudio(toneFrame(n)); // 1 s "speech"
    for (let n = 0; n < 40; n++) s.sendAudio(silenceFrame()); // 800 ms: the turn ends after 500
    await until(() => count(log, 'responseDone') === 1, 'the answer');
    expect(count(log, 'interruption')).toBe(1); // speech_started is reported (the bridge ignores it when nothing plays)
    expect(log.transcripts).toEqual([
      { role: 'caller', text: expect.stringMatching(/^\[caller turn 1: \d+ ms\]$/), final: true },
      { role: 'agent', text: expect.stringMatching(/^\[agent reply \d+: 600 ms\]$/), final: true },
    ]);
  });

  it('DTMF: digits pressed together become one user text message, then a response is requested', async () => {
    const fake = await fakeWith({ replyMs: 300 });
    const { s, log } = create(fake);
    await s.connect(AbortSignal.timeout(3000));
    for (const d of ['1', '2', 'x', '3', '#']) s.sendDtmf(d);
    await until(() => count(log, 'responseDone') === 1, 'a response to the digits');
    const c = fake.connections[0]!;
    expect(c.items).toEqual([{ type: 'message', role: 'user', content: [{ type: 'input_text', text: 'The caller pressed 1, 2, 3, # on the phone keypad.' }] }]);
    expect(fake.received().dtmf).toEqual(['1', '2', '3', '#']);
  });
});

// --- errors and recovery -------------------------------------------------------------

describe('openai: service errors and reconnects', () => {
  it('error events become typed, non-fatal errors; an auth error is fatal and closes', async () => {
    const fake = await fakeWith();
    const { s, log } = create(fake);
    await s.connect(AbortSignal.timeout(3000));
    fake.sendRaw(JSON.stringify({ type: 'error', event_id: 'e1', error: { type: 'invalid_request_error', code: 'invalid_value', message: 'bad', param: null } }));
    fake.sendRaw(JSON.stringify({ type: 'error', event_id: 'e2', error: { type: 'rate_limit_error', code: 'rate_limit_exceeded', message: 'slow down' } }));
    fake.sendRaw(JSON.stringify({ type: 'mystery.event' }));
    fake.sendRaw(JSON.stringify({ type: 'mystery.event' })); // reported once per type
    await until(() => log.errors.length === 3, 'three errors');
    expect(log.errors.map((e) => [e.err.code, e.fatal])).toEqual([
      ['BRIDGE_ERR_AGENT_SERVICE', false],
      ['BRIDGE_ERR_AGENT_RATE_LIMIT', false],
      ['BRIDGE_ERR_AGENT_PROTOCOL', false],
    ]);
    expect(s.stats.protocolErrors).toBe(2);
    fake.sendRaw(JSON.stringify({ type: 'error', error: { type: 'authentication_error', code: 'invalid_api_key', message: 'revoked' } }));
    await until(() => count(log, 'closed') === 1, 'closed');
    expect(log.errors.at(-1)).toMatchObject({ fatal: true, err: { code: 'BRIDGE_ERR_AGENT_AUTH' } });
    await until(() => fake.received().closed, 'socket closed by the adapter');
  });

  it.each([1011, 1000])('service closes mid-call (%i): a new session with the conversation carried over, caller audio held and delivered', async (code) => {
    const fake = await fakeWith({ replyMs: 300 });
    const { s, log } = create(fake);
    await s.connect(AbortSignal.timeout(3000));
    s.sendDtmf('7');
    await until(() => count(log, 'responseDone') === 1, 'first response');
    await fake.fault('close-mid-call', { code });
    await until(() => log.errors.length === 1, 'the adapter to notice');
    for (let n = 0; n < 10; n++) s.sendAudio(numbered(n)); // while there is no session
    await until(() => fake.connections.length === 2 && fake.connections[1]!.audioBytes === 1600, 'the held audio at the new session');
    const c2 = fake.connections[1]!;
    expect(Buffer.concat(c2.audio)).toEqual(Buffer.concat(Array.from({ length: 10 }, (_, n) => numbered(n))));
    expect(c2.sessionUpdates).toEqual(fake.connections[0]!.sessionUpdates);
    expect(c2.items.map((i) => [i.role, i.content[0].type, i.content[0].text])).toEqual([
      ['user', 'input_text', 'The caller pressed 7 on the phone keypad.'],
      ['assistant', 'output_text', expect.stringMatching(/^\[agent reply \d+: 300 ms\]$/)],
    ]);
    expect(log.errors.map((e) => [e.err.code, e.fatal])).toEqual([[code === 1011 ? 'BRIDGE_ERR_AGENT_SERVICE' : 'BRIDGE_ERR_AGENT_CLOSED', false]]);
    expect(s.stats.reconnects).toBe(1);
    await fake.speak(200);
    await until(() => count(log, 'responseDone') === 2, 'speaking again');
  });

  it('a service that stops answering is detected by the keepalive (BRIDGE_ERR_AGENT_TIMEOUT) and replaced', async () => {
    const fake = await fakeWith();
    const { s, log } = create(fake, { OPENAI_PING_INTERVAL_MS: '200' });
    await s.connect(AbortSignal.timeout(3000));
    await fake.fault('stop-answering');
    await until(() => fake.connections.length === 2 && fake.connections[1]!.sessionUpdates.length === 1, 'a new session', 15_000);
    expect(log.errors.map((e) => [e.err.code, e.fatal])).toEqual([['BRIDGE_ERR_AGENT_TIMEOUT', false]]);
    // Detected by the keepalive's rule (one 200 ms interval unanswered), whatever the machine's load.
    expect(log.errors[0]!.err.message).toMatch(/nothing received for 200 ms/);
    await until(() => fake.connections[0]!.closedBy === 'client', 'the dead socket dropped');
  });

  it('reconnects are bounded: refused every time → non-fatal errors with backoff, then one fatal error and closed', async () => {
    const fake = await fakeWith();
    const { s, log } = create(fake, { OPENAI_RECONNECT_ATTEMPTS: '2' });
    await s.connect(AbortSignal.timeout(3000));
    fake.refuseNext(503, 10);
    await fake.fault('close-mid-call');
    await until(() => count(log, 'closed') === 1, 'closed', 8000);
    expect(fake.refused).toEqual([503, 503, 503]);
    // HTTP 5xx is AGENT_SERVICE (retried) for every provider (src/agents/shared/socket-errors.ts).
    expect(log.errors.map((e) => [e.err.code, e.fatal])).toEqual([
      ['BRIDGE_ERR_AGENT_SERVICE', false],
      ['BRIDGE_ERR_AGENT_SERVICE', false],
      ['BRIDGE_ERR_AGENT_SERVICE', false],
      ['BRIDGE_ERR_AGENT_CLOSED', true],
    ]);
  });

  it('a reconnect refused with 401 is fatal at once (permanent)', async () => {
    const fake = await fakeWith();
    const { s, log } = create(fake);
    await s.connect(AbortSignal.timeout(3000));
    fake.refuseNext(401);
    await fake.fault('close-mid-call');
    await until(() => count(log, 'closed') === 1, 'closed');
    expect(log.errors.at(-1)).toMatchObject({ fatal: true, err: { code: 'BRIDGE_ERR_AGENT_AUTH' } });
    expect(fake.refused).toEqual([401]);
  });
});

// --- session cap ---------------------------------------------------------------------

describe('openai: rolling over before the session cap', () => {
  it('with a 1.5 s cap, a 5 s call moves through fresh sessions unnoticed: same config, conversation carried, no audio lost or reordered, the fake cap never hit', async () => {
    const fake = await fakeWith({ sessionMaxMs: 2500, replyMs: 200 }); // the service's own cap, enforced
    const { s, log } = create(fake, { OPENAI_SESSION_MAX_MS: '1500' });
    await s.connect(AbortSignal.timeout(3000));
    s.sendDtmf('4');
    const sent = stream(s, 5000, numbered);
    await until(() => count(log, 'responseDone') === 1, 'the answer to the digit');
    const total = await sent;
    await until(() => fake.received().audioMs === total * 20, 'all caller audio at the service');
    // 5 s with a 1.5 s cap: at least 3 sessions; the fake's 2.5 s cap never had to end one
    expect(fake.connections.length).toBeGreaterThanOrEqual(3);
    expect(fake.connections.some((c) => c.expired)).toBe(false);
    expect(s.stats.rollovers).toBe(fake.connections.length - 1);
    for (const c of fake.connections) expect(c.sessionUpdates).toEqual(fake.connections[0]!.sessionUpdates);
    for (const c of fake.connections.slice(0, -1)) expect(c.closedBy).toBe('client');
    // every later session got the conversation so far as text items
    for (const c of fake.connections.slice(1)) {
      expect(c.items.map((i) => i.content[0].text)).toEqual(['The caller pressed 4 on the phone keypad.', expect.stringMatching(/^\[agent reply \d+: 200 ms\]$/)]);
    }
    // the caller's audio, across all sessions, is exactly what was sent, in order
    const got = Buffer.concat(fake.connections.flatMap((c) => c.audio));
    expect(got.length).toBe(total * 160);
    expect(got).toEqual(Buffer.concat(Array.from({ length: total }, (_, n) => numbered(n))));
    expect(log.errors).toEqual([]);
    expect(count(log, 'closed')).toBe(0);
  });

  it('waits for a quiet moment: a response in progress at the cap finishes (all its audio) before the switch', async () => {
    const fake = await fakeWith({ chunkIntervalMs: 100 }); // real-time generation
    const { s, log } = create(fake, { OPENAI_SESSION_MAX_MS: '1000' });
    await s.connect(AbortSignal.timeout(3000));
    await new Promise((r) => setTimeout(r, 700));
    await fake.speak(1200); // from ~0.7 s to ~1.9 s, across the 1 s cap
    await until(() => count(log, 'responseDone') === 1, 'responseDone');
    const done = log.events.find((e) => e.type === 'responseDone')!;
    const id = fake.connections[0]!.responses[0]!.id;
    expect(bytesOf(log, id)).toEqual(fake.audioFor('audio/pcmu', 1200));
    await until(() => fake.connections.length === 2 && fake.connections[0]!.closedAt !== null, 'the switch');
    // the old session was left only after the response ended (and its audio had time to play)
    expect(fake.connections[0]!.closedAt!).toBeGreaterThanOrEqual(done.at);
    expect(log.errors).toEqual([]);
  });

  it("when the service's cap comes first (session_expired), the call goes on in a new session with the conversation", async () => {
    const fake = await fakeWith({ sessionMaxMs: 800, replyMs: 200 });
    const { s, log } = create(fake); // our cap: the 55 min default
    await s.connect(AbortSignal.timeout(3000));
    await fake.speak(300);
    await until(() => fake.connections.length === 2 && fake.connections[1]!.items.length === 1, 'the new session with the history', 4000);
    expect(fake.connections[0]!.expired).toBe(true);
    expect(log.errors.map((e) => [e.err.code, e.fatal])).toEqual([['BRIDGE_ERR_AGENT_SERVICE', false]]);
    expect(log.errors[0]!.err.message).toMatch(/session_expired/);
    expect(fake.connections[1]!.items[0]).toEqual({ type: 'message', role: 'assistant', content: [{ type: 'output_text', text: expect.stringMatching(/300 ms/) }] });
    s.sendAudio(numbered(1));
    await until(() => fake.connections[1]!.audioBytes === 160, 'audio to the new session');
  });
});

describe('openai: close', () => {
  it('close() during a rollover (new session open, waiting for quiet) closes both sockets and leaves no timers', async () => {
    const timeouts = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const fake = await fakeWith({ chunkIntervalMs: 100 });
    const baseline = timeouts();
    const { s, log } = create(fake, { OPENAI_SESSION_MAX_MS: '1000' });
    await s.connect(AbortSignal.timeout(3000));
    const speaking = fake.speak(3000); // in progress across the cap: the rollover waits
    await until(() => fake.connections.length === 2 && fake.connections[1]!.sessionUpdates.length === 1, 'the next session open');
    expect(fake.connections[0]!.closedAt).toBeNull(); // still waiting for the quiet moment
    await s.close('caller hung up');
    await until(() => fake.connections.every((c) => c.closedBy === 'client'), 'both sockets closed by the adapter');
    await speaking;
    expect(log.events.filter((e) => e.type === 'closed')).toHaveLength(1);
    await until(() => timeouts() <= baseline, 'timers released');
  });
});
