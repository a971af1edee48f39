/**
 * The Hume EVI adapter against its fake (test/fakes/hume.ts): the agent contract,
 * then what is particular to EVI — WAV chunks at 24/48 kHz and odd layouts, bad
 * WAVs never played, resume by chat_group_id, heard position as context, config.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { runAgentContract } from './agent-contract.js';
import { startFakeHume, type FakeHume, type FakeHumeOptions } from '../fakes/hume.js';
import { createHumeAgentFactory, HumeSession, readHumeConfig } from '../../src/agents/hume/index.js';
import { readWavChunk, parseServerMessage } from '../../src/agents/hume/protocol.js';
import { buildWav } from '../fakes/hume.js';
import { ConfigError, loadConfig } from '../../src/config.js';
import { createAgentRegistry } from '../../src/agents/registry.js';
import type { AgentAudio } from '../../src/agents/agent.js';
import type { BridgeError } from '../../src/errors.js';
import { on } from './agent-events.js';

const factoryFor = (env: Record<string, string>) => createHumeAgentFactory(loadConfig({ BRIDGE_DSP: process.env.BRIDGE_DSP ?? 'auto', ...env })).factory;

runAgentContract({
  name: 'hume',
  startFake: () => startFakeHume(),
  createFactory: factoryFor,
});

async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('hume adapter', () => {
  let fake: FakeHume | undefined;
  afterEach(async () => {
    await fake?.close();
    fake = undefined;
  });

  async function open(o: FakeHumeOptions = {}, parameters: Record<string, string> = {}) {
    fake = await startFakeHume(o);
    const session = factoryFor(fake.env).create({ callSid: 'CA' + 'a'.repeat(32), parameters }) as HumeSession;
    const audio: AgentAudio[] = [];
    const errors: { error: BridgeError; fatal: boolean }[] = [];
    const events: string[] = [];
    const transcripts: { role: string; text: string; final: boolean }[] = [];
    on(session, 'audio', (x) => audio.push({ data: x.data.slice(), sampleRateHz: x.sampleRateHz, responseId: x.responseId }));
    on(session, 'error', ({ error: error, fatal }) => errors.push({ error, fatal }));
    on(session, 'interruption', () => events.push('interruption'));
    on(session, 'responseDone', ({ responseId }) => events.push(`responseDone:${responseId}`));
    on(session, 'closed', () => events.push('closed'));
    on(session, 'transcript', (t) => transcripts.push({ role: t.role, text: t.text, final: t.final }));
    await session.connect(AbortSignal.timeout(5000));
    return { fake: fake!, session, audio, errors, events, transcripts };
  }
  const ms = (audio: AgentAudio[]) => audio.reduce((s, a) => s + (a.data.length * 1000) / a.sampleRateHz, 0);
  const done = (events: string[]) => events.filter((e) => e.startsWith('responseDone')).length;

  it('declares linear16 at HUME_INPUT_RATE in session_settings, authenticates, and streams base64 PCM16', async () => {
    const { fake, session } = await open({ env: { HUME_INPUT_RATE: '8000', HUME_CONFIG_ID: 'cfg-123' } });
    expect(session.inputFormat).toEqual({ encoding: 'pcm16', sampleRateHz: 8000 });
    expect(session.outputFormat).toEqual({ encoding: 'pcm16', sampleRateHz: 24_000 });
    const c = fake.current!;
    await waitFor(() => c.sessionSettings.length === 1, 3000, 'session_settings');
    expect(c.sessionSettings[0]!.audio).toEqual({ encoding: 'linear16', sample_rate: 8000, channels: 1 });
    expect(c.query.get('config_id')).toBe('cfg-123');
    expect(c.authVia).toBe('header');
    expect(session.chatGroupId).toBe(c.chatGroupId);
    const frame = new Int16Array(160).fill(1000);
    for (let i = 0; i < 25; i++) session.sendAudio(frame);
    await waitFor(() => fake.received().audioMs >= 500, 3000, '500 ms at the fake');
    expect(c.errorsSent).toEqual([]);
    await session.close('test');
  });

  it('a wrong API key is BRIDGE_ERR_AGENT_AUTH (not retried)', async () => {
    fake = await startFakeHume();
    const session = factoryFor({ ...fake.env, HUME_API_KEY: 'wrong' }).create({ callSid: 'CA1', parameters: {} });
    const err = await session.connect(AbortSignal.timeout(5000)).catch((e: BridgeError) => e);
    expect((err as BridgeError).code).toBe('BRIDGE_ERR_AGENT_AUTH');
    expect((err as BridgeError).retryable).toBe(false);
    expect(fake.refused).toEqual([401]);
    await session.close('test');
  });

  it.each([
    [48_000, 'plain'],
    [24_000, 'plain'],
    [48_000, 'list'],
    [24_000, 'odd'],
    [16_000, 'odd'],
  ] as const)('WAV chunks at %i Hz (%s layout) arrive whole as PCM16 at their own rate (the call resamples, not the adapter)', async (rate, layout) => {
    const { fake, session, audio, events, errors } = await open({ wavRateHz: rate, wavLayout: layout });
    await fake.speak(1000);
    await waitFor(() => done(events) === 1, 3000, 'responseDone');
    expect(errors).toEqual([]);
    expect(audio.every((a) => a.sampleRateHz === rate)).toBe(true);
    expect(ms(audio)).toBe(1000);
    expect(session.stats.audioChunksOffRate).toBe(rate === 24_000 ? 0 : 10);
    // The samples as sent: a 300 Hz tone at `rate` (zero crossings in the middle 0.8 s).
    const all = new Int16Array(audio.reduce((s, a) => s + a.data.length, 0));
    let at = 0;
    for (const a of audio) (all.set(a.data as Int16Array, at), (at += a.data.length));
    let crossings = 0;
    for (let i = rate / 10; i < (rate * 9) / 10; i++) if ((all[i - 1]! < 0) !== (all[i]! < 0)) crossings++;
    expect(crossings / 0.8 / 2).toBeGreaterThan(290);
    expect(crossings / 0.8 / 2).toBeLessThan(310);
    await session.close('test');
  });

  it('HUME_OUTPUT_RATE=48000 hands 48 kHz WAVs through untouched', async () => {
    const { fake, session, audio, events } = await open({ wavRateHz: 48_000, env: { HUME_OUTPUT_RATE: '48000' } });
    expect(session.outputFormat.sampleRateHz).toBe(48_000);
    await fake.speak(500);
    await waitFor(() => done(events) === 1, 3000, 'responseDone');
    expect(ms(audio)).toBe(500);
    expect(session.stats.audioChunksOffRate).toBe(0);
    await session.close('test');
  });

  it('every kind of bad WAV or frame is a counted non-fatal error and never audio', async () => {
    const { fake, session, audio, errors, events } = await open();
    await fake.fault('garbage');
    const expected = 14;
    await waitFor(() => errors.length >= expected, 3000, 'all garbage reported');
    expect(errors.every((e) => !e.fatal)).toBe(true);
    const codes = errors.map((e) => e.error.code);
    expect(codes.filter((c) => c === 'BRIDGE_ERR_AGENT_AUDIO_FORMAT').length).toBe(7);
    expect(codes.filter((c) => c === 'BRIDGE_ERR_AGENT_PROTOCOL').length).toBe(7);
    expect(audio).toEqual([]);
    expect(session.stats).toMatchObject({ audioFormatErrors: 7, protocolErrors: 7 });
    await fake.speak(200);
    await waitFor(() => done(events) === 1, 3000, 'a good turn after the garbage');
    expect(ms(audio)).toBeCloseTo(200, 0);
    await session.close('test');
  });

  it('user_interruption: interruption event, late chunks of the turn dropped, heard position sent as context; the next turn plays', async () => {
    const { fake, session, audio, events, transcripts } = await open();
    await fake.speak(1000, { end: false, messageId: 'm1', text: 'one two three four five six seven eight nine ten' });
    await waitFor(() => ms(audio) >= 990, 3000, 'the first second (less the resampler delay)');
    await fake.interruptFromService();
    await waitFor(() => events.includes('interruption'), 3000, 'interruption');
    session.interrupt({ heardMs: 500 });
    await waitFor(() => fake.received().interruptions.length === 1, 3000, 'the context at the fake');
    expect(fake.received().interruptions[0]).toEqual({ heardMs: 500 });
    const ctx = fake.current!.sessionSettings.at(-1)!;
    expect(ctx.context.type).toBe('temporary');
    expect(ctx.context.text).toContain('"one two three four five"');
    expect(ctx.audio).toEqual({ encoding: 'linear16', sample_rate: 16_000, channels: 1 }); // settings re-sent whole
    const before = audio.length;
    await fake.sendAudio(300, { messageId: 'm1' }); // late chunks of the interrupted message
    await fake.sendRaw({ type: 'assistant_end' });
    await fake.speak(200, { userText: 'wait, actually…' });
    await waitFor(() => done(events) === 1, 3000, 'the next turn');
    expect(ms(audio.slice(before))).toBeCloseTo(200, 0);
    expect(new Set(audio.slice(before).map((a) => a.responseId)).size).toBe(1);
    expect(audio[before]!.responseId).not.toBe(audio[0]!.responseId);
    expect(session.stats.audioChunksDropped).toBe(3);
    expect(session.lastHeardMs).toBe(500);
    expect(transcripts.filter((t) => t.role === 'caller').map((t) => t.text)).toEqual(['Hello?', 'wait, actually…']);
    await session.close('test');
  });

  it('a barge-in the service did not announce: the rest of the turn is dropped until the next user turn', async () => {
    const { fake, session, audio, events } = await open();
    await fake.speak(400, { end: false, messageId: 'a1' });
    await waitFor(() => ms(audio) >= 390, 3000, 'audio');
    session.interrupt({ heardMs: 120 });
    await waitFor(() => fake.received().interruptions.length === 1, 3000, 'context');
    const before = audio.length;
    await fake.sendAudio(200, { messageId: 'a1' });
    await fake.sendRaw({ type: 'assistant_message', id: 'a2', message: { role: 'assistant', content: 'more' } });
    await fake.sendAudio(200, { messageId: 'a2' }); // a new sentence of the same (interrupted) turn
    await fake.userSays('hm', true); // interim: still the same turn
    await fake.sendAudio(100, { messageId: 'a2' });
    await fake.speak(300);
    await waitFor(() => done(events) === 1, 3000, 'the next turn');
    expect(ms(audio.slice(before))).toBeCloseTo(300, 0);
    expect(events.includes('interruption')).toBe(false);
    await session.close('test');
  });

  it('DTMF becomes user_input text; a function tool call gets a tool_error', async () => {
    const { fake, session } = await open();
    session.sendDtmf('5');
    session.sendDtmf('#');
    session.sendDtmf('x'); // not a DTMF key: ignored
    await waitFor(() => fake.current!.userInputs.length === 2, 3000, 'user_input');
    expect(fake.current!.userInputs).toEqual(['The caller pressed 5', 'The caller pressed #']);
    await fake.sendRaw({ type: 'tool_call', name: 'lookup', parameters: '{}', tool_call_id: 't1', tool_type: 'function', response_required: true });
    await waitFor(() => fake.current!.toolErrors.length === 1, 3000, 'tool_error');
    expect(fake.current!.toolErrors[0]).toMatchObject({ type: 'tool_error', tool_call_id: 't1' });
    await session.close('test');
  });

  it('an unexpected close resumes the chat by chat_group_id, keeping caller audio from the gap', async () => {
    const { fake, session, audio, errors, events } = await open();
    const group = session.chatGroupId!;
    const frame = new Int16Array(320).fill(500);
    for (let i = 0; i < 10; i++) session.sendAudio(frame);
    await waitFor(() => fake.received().audioMs >= 200, 3000, 'audio before the drop');
    await fake.fault('close-mid-call');
    await waitFor(() => errors.length === 1, 3000, 'the drop reported');
    expect(errors[0]!).toMatchObject({ fatal: false });
    // The fake closes with 1011: AGENT_SERVICE, as for every provider (src/agents/shared/socket-errors.ts).
    expect(errors[0]!.error.code).toBe('BRIDGE_ERR_AGENT_SERVICE');
    for (let i = 0; i < 10; i++) session.sendAudio(frame); // during the gap
    await waitFor(() => fake.connections.length === 2 && session.state === 'open', 5000, 'the resumed connection');
    const c2 = fake.current!;
    expect(c2.resumedChatGroupId).toBe(group);
    await waitFor(() => c2.sessionSettings.length === 1, 3000, 'session_settings');
    expect(c2.sessionSettings[0]!.audio.sample_rate).toBe(16_000);
    await waitFor(() => fake.received().audioMs >= 400, 3000, 'the gap audio after the resume');
    expect(fake.received().audioMs).toBeCloseTo(400, 5);
    await fake.speak(200);
    await waitFor(() => done(events) === 1, 3000, 'audio after the resume');
    expect(ms(audio)).toBeCloseTo(200, 0);
    expect(session.stats.resumes).toBe(1);
    expect(events.includes('closed')).toBe(false);
    await session.close('test');
  });

  it('an oversized message is a non-fatal protocol error; the chat is resumed', async () => {
    const { fake, session, errors, audio } = await open();
    await fake.sendRaw({ type: 'audio_output', id: 'big', index: 0, data: 'A'.repeat(9 * 1024 * 1024) });
    await waitFor(() => errors.length === 1, 5000, 'the oversized message reported');
    expect(errors[0]!.error.code).toBe('BRIDGE_ERR_AGENT_PROTOCOL');
    expect(errors[0]!.fatal).toBe(false);
    await waitFor(() => session.state === 'open' && fake.connections.length === 2, 5000, 'resumed');
    expect(audio).toEqual([]);
    await session.close('test');
  });

  it('a socket that stops answering is noticed by the keepalive and resumed', async () => {
    const { fake, session, errors } = await open();
    await fake.fault('stop-answering');
    await waitFor(() => errors.length === 1, 5000, 'the silence noticed');
    expect(errors[0]!.error.code).toBe('BRIDGE_ERR_AGENT_TIMEOUT');
    await waitFor(() => session.state === 'open' && fake.connections.length === 2, 5000, 'resumed');
    expect(fake.current!.resumedChatGroupId).toBe(fake.connections[0]!.chatGroupId);
    await session.close('test');
  });

  it('when the resume is refused every time: one fatal AGENT_CLOSED, then closed', async () => {
    const { fake, session, errors, events } = await open({ env: { HUME_RESUME_ATTEMPTS: '2' } });
    // Every later upgrade is refused.
    fake.server.refuseAll(503);
    await fake.fault('close-mid-call');
    await waitFor(() => events.includes('closed'), 8000, 'closed');
    expect(errors.map((e) => [e.error.code, e.fatal])).toEqual([
      ['BRIDGE_ERR_AGENT_SERVICE', false], // the drop: close 1011
      ['BRIDGE_ERR_AGENT_CLOSED', true],
    ]);
    expect(session.state).toBe('closed');
    await session.close('again');
    expect(events.filter((e) => e === 'closed').length).toBe(1);
  });

  it('a service that drops the chat again right after every resume is given up on (bounded)', async () => {
    const { fake, session, errors, events } = await open({ env: { HUME_RESUME_ATTEMPTS: '2' } });
    for (let n = 1; n <= 3; n++) {
      await fake.fault('close-mid-call');
      if (n < 3) await waitFor(() => fake.connections.length === n + 1 && session.state === 'open', 5000, `resume ${n}`);
    }
    await waitFor(() => events.includes('closed'), 5000, 'closed');
    expect(errors.map((e) => e.fatal)).toEqual([false, false, true]);
    expect(errors[2]!.error.message).toMatch(/right after resuming/);
  });

  it('an EVI error message mid-call is a typed non-fatal error; during the handshake it rejects connect()', async () => {
    const { fake, session, errors } = await open();
    await fake.sendRaw({ type: 'error', code: 'E0710', slug: 'rate_limit_exceeded', message: 'too many requests' });
    await waitFor(() => errors.length === 1, 3000, 'error');
    expect(errors[0]!.error.code).toBe('BRIDGE_ERR_AGENT_RATE_LIMIT');
    expect(errors[0]!.fatal).toBe(false);
    await session.close('test');
    expect(parseServerMessage('{"type":"error","code":"E0100","slug":"unauthorized","message":"invalid api key"}')).toMatchObject({ type: 'error' });
  });

  it('bad agent options reject connect() with BRIDGE_ERR_AGENT_CONFIG; good ones reach session_settings', async () => {
    fake = await startFakeHume();
    const bad = factoryFor(fake.env).create({ callSid: 'CA2', parameters: { voice: 'no spaces allowed' } });
    await expect(bad.connect(AbortSignal.timeout(2000))).rejects.toMatchObject({ code: 'BRIDGE_ERR_AGENT_CONFIG' });
    const good = factoryFor(fake.env).create({ callSid: 'CA3', parameters: { voice: 'ITO', instructions: 'Be brief.', config_id: 'abc-1', format: 'ignored' } });
    await good.connect(AbortSignal.timeout(5000));
    await waitFor(() => fake!.current!.sessionSettings.length === 1, 3000, 'session_settings');
    expect(fake.current!.sessionSettings[0]).toMatchObject({ voice_id: 'ITO', system_prompt: 'Be brief.' });
    expect(fake.current!.query.get('config_id')).toBe('abc-1');
    await Promise.all([bad.close('t'), good.close('t')]);
  });

  it('connect() is bounded by its signal when the service never answers the handshake', async () => {
    fake = await startFakeHume();
    fake.server.hangUpgrades(true); // accept TCP, never answer the upgrade
    const session = factoryFor(fake.env).create({ callSid: 'CA4', parameters: {} });
    // The caller's signal ends it, not the adapter's own handshake timeout: the message names the abort.
    const err = (await session.connect(AbortSignal.timeout(300)).catch((e: unknown) => e)) as BridgeError;
    expect(err).toMatchObject({ code: 'BRIDGE_ERR_AGENT_TIMEOUT' });
    expect(err.message).toMatch(/connect aborted/);
    await session.close('test');
  });
});

describe('hume config and WAV reader', () => {
  it('reads HUME_* with defaults and lists every bad key', () => {
    expect(readHumeConfig({}).config).toBeUndefined();
    expect(readHumeConfig({ HUME_API_KEY: 'k' }).config).toEqual({
      apiKey: 'k',
      url: 'wss://api.hume.ai/v0/evi/chat',
      configId: undefined,
      inputRateHz: 16_000,
      outputRateHz: 24_000,
      keepaliveMs: 5000,
      resumeAttempts: 3,
    });
    const r = readHumeConfig({ HUME_API_KEY: 'k', HUME_EVI_URL: 'https://x', HUME_INPUT_RATE: '96000', HUME_CONFIG_ID: 'a b', HUME_RESUME_ATTEMPTS: '-1' });
    expect(r.problems.length).toBe(4);
    const f = createHumeAgentFactory(loadConfig({})).factory;
    expect(f).toMatchObject({ name: 'hume', available: false });
  });

  it('is registered: available with a key, a start-up problem with a bad HUME_* value', () => {
    expect(createAgentRegistry(loadConfig({})).available()).not.toContain('hume');
    const r = createAgentRegistry(loadConfig({ HUME_API_KEY: 'k', BRIDGE_AGENT: 'hume' }));
    expect(r.available()).toContain('hume');
    let err: unknown;
    try {
      createAgentRegistry(loadConfig({ HUME_API_KEY: 'k', HUME_INPUT_RATE: '7999' }));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems).toEqual(['HUME_INPUT_RATE="7999": must be an integer from 8000 to 48000']);
  });

  it('parses valid odd layouts and rejects malformed headers', () => {
    const pcm = new Int16Array(480);
    const wav = buildWav(pcm, 24_000, { extra: [{ id: 'LIST', body: new Uint8Array(5) }, { id: 'fact', body: new Uint8Array(4) }] });
    expect(readWavChunk(wav)).toMatchObject({ sampleRateHz: 24_000, samples: 480 });
    expect(readWavChunk(buildWav(pcm, 48_000))).toEqual({ sampleRateHz: 48_000, dataOffset: 44, samples: 480 });
    expect(() => readWavChunk(buildWav(pcm, 24_000).subarray(0, 100))).toThrow(/truncated/);
    expect(() => readWavChunk(buildWav(pcm, 24_000, { channels: 2 }))).toThrow(/mono/);
    expect(() => readWavChunk(new Uint8Array(8))).toThrow(/RIFF header/);
  });
});
