/**
 * The ElevenLabs Agents adapter against its fake (test/fakes/elevenlabs-agents.ts):
 * the agent contract (public agent with μ-law passthrough; private agent through a
 * signed URL with PCM 16 kHz), then what is particular to ElevenLabs — overrides,
 * signed URLs, pings/pongs, stale audio after an interruption, format negotiation,
 * response boundaries, hang-up, DTMF, the heard-position report, and configuration.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { runAgentContract } from './agent-contract.js';
import { startFakeElevenLabs, type FakeElevenLabs, type FakeElevenLabsOptions } from '../fakes/elevenlabs-agents.js';
import { createElevenLabsAgentFactory, agentModule, ElevenLabsAgentSession } from '../../src/agents/elevenlabs/index.js';
import { readElevenLabsAgentConfig, parseCallOptions } from '../../src/agents/elevenlabs/config.js';
import { parseServerMessage } from '../../src/agents/elevenlabs/agent-protocol.js';
import type { AgentAudio, Transcript } from '../../src/agents/agent.js';
import { BridgeError } from '../../src/errors.js';
import { loadConfig } from '../../src/config.js';
import { on } from './agent-events.js';

runAgentContract({
  name: 'elevenlabs',
  startFake: () => startFakeElevenLabs(),
  createFactory: (env) => createElevenLabsAgentFactory(env).factory,
  faultTimeoutMs: 6000,
});

runAgentContract({
  name: 'elevenlabs',
  startFake: () => startFakeElevenLabs({ apiKey: 'xi-test-key-private', inputFormat: 'pcm_16000', outputFormat: 'pcm_16000', agentResponseAt: 'start', pingMs: undefined }),
  createFactory: (env) => createElevenLabsAgentFactory(env).factory,
  faultTimeoutMs: 6000,
});

async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

interface Opened {
  fake: FakeElevenLabs;
  session: ElevenLabsAgentSession;
  audio: AgentAudio[];
  errors: { e: BridgeError; fatal: boolean }[];
  events: string[];
  transcripts: Transcript[];
  ends: string[];
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function open(fakeOptions: FakeElevenLabsOptions = {}, parameters: Record<string, string> = {}, env: Record<string, string> = {}): Promise<Opened> {
  const fake = await startFakeElevenLabs(fakeOptions);
  cleanups.push(() => fake.close());
  const { factory, problems } = createElevenLabsAgentFactory({ ...fake.env, ...env });
  expect(problems).toEqual([]);
  const session = factory.create({ callSid: 'CA' + 'e'.repeat(32), parameters }) as ElevenLabsAgentSession;
  cleanups.unshift(() => session.close('test'));
  const o: Opened = { fake, session, audio: [], errors: [], events: [], transcripts: [], ends: [] };
  on(session, 'audio', (a) => o.audio.push({ data: a.data.slice(), sampleRateHz: a.sampleRateHz, responseId: a.responseId }));
  on(session, 'error', ({ error: e, fatal }) => o.errors.push({ e, fatal }));
  on(session, 'interruption', () => o.events.push('interruption'));
  on(session, 'responseDone', ({ responseId }) => o.events.push(`responseDone:${responseId}`));
  on(session, 'transcript', (t) => o.transcripts.push({ role: t.role, text: t.text, final: t.final }));
  on(session, 'end', ({ reason }) => {
    o.ends.push(reason);
    o.events.push('end');
  });
  on(session, 'closed', () => o.events.push('closed'));
  await session.connect(AbortSignal.timeout(5000));
  return o;
}

const samples = (a: AgentAudio[]) => a.reduce((n, x) => n + x.data.length, 0);

describe('elevenlabs agent: connection', () => {
  it('sends conversation_initiation_client_data first, with the overrides and dynamic variables from the call parameters', async () => {
    const { fake, session } = await open({}, { instructions: 'Be brief.', first_message: 'Hello caller!', language: 'de', voice: '21m00Tcm4TlvDq8ikWAM', var_customer: 'Ada', other: 'ignored' });
    const init = fake.conversations[0]!.initData!;
    expect(init).toEqual({
      type: 'conversation_initiation_client_data',
      conversation_config_override: { agent: { prompt: { prompt: 'Be brief.' }, first_message: 'Hello caller!', language: 'de' }, tts: { voice_id: '21m00Tcm4TlvDq8ikWAM' } },
      dynamic_variables: { customer: 'Ada' },
    });
    expect(session.conversationId).toBe('conv_fake_1');
    expect(session.inputFormat).toEqual({ encoding: 'ulaw', sampleRateHz: 8000 });
  });

  it.each([
    [{ voice: 'not a voice!' }, /voice/],
    [{ language: 'english please' }, /language/],
    [{ language: 'xx' }, /language="xx" is not a language ElevenLabs Agents supports/],
    [{ language: 'tlh-KL' }, /language/],
    [{ instructions: '   ' }, /instructions is empty/],
    [{ 'var_bad-name': 'x' }, /dynamic variable/],
    [{ var_system__caller_id: 'x' }, /system__/],
  ])('a bad call parameter %o rejects connect() with BRIDGE_ERR_AGENT_CONFIG', async (parameters, message) => {
    const fake = await startFakeElevenLabs();
    cleanups.push(() => fake.close());
    const session = createElevenLabsAgentFactory(fake.env).factory.create({ callSid: 'CA1', parameters });
    const err = await session.connect(AbortSignal.timeout(3000)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BridgeError);
    expect((err as BridgeError).code).toBe('BRIDGE_ERR_AGENT_CONFIG');
    expect((err as BridgeError).message).toMatch(message);
    expect(fake.conversations.length).toBe(0);
  });

  it("the language option is sent as the service's enum spells it (pt_BR → pt-br); region tags the enum lacks fall back to the language", async () => {
    const { fake } = await open({}, { language: 'pt_BR' });
    expect(fake.conversations[0]!.initData!['conversation_config_override']).toEqual({ agent: { language: 'pt-br' } });
    const lang = (l: string) => parseCallOptions({ language: l }).overrides.language;
    expect(['pt-BR', 'pt_BR', 'PT-br', ' pt-br ', 'pt-br'].map(lang)).toEqual(['pt-br', 'pt-br', 'pt-br', 'pt-br', 'pt-br']);
    expect(['EN', 'en-US', 'en_GB', 'de', 'zh', 'zh-Hans', 'pt-PT', 'tl'].map(lang)).toEqual(['en', 'en', 'en', 'de', 'zh', 'zh', 'pt', 'tl']);
    for (const bad of ['xx', 'fil', 'pt-', 'e', 'en-US-x-foo', '']) {
      expect(() => parseCallOptions({ language: bad }), bad).toThrow(expect.objectContaining({ code: 'BRIDGE_ERR_AGENT_CONFIG' }));
    }
  });

  it('audio sent right after the metadata (a greeting) reaches a listener attached when connect() resolves', async () => {
    const fake = await startFakeElevenLabs({ greetingMs: 300 });
    cleanups.push(() => fake.close());
    const session = createElevenLabsAgentFactory(fake.env).factory.create({ callSid: 'CA1', parameters: {} });
    cleanups.unshift(() => session.close('test'));
    const audio: AgentAudio[] = [];
    await session.connect(AbortSignal.timeout(3000)).then(() => on(session, 'audio', (a) => audio.push(a)));
    await waitFor(() => samples(audio) === 8 * 300, 2000, 'the whole greeting');
  });

  it('a private agent connects through a signed URL fetched with xi-api-key (one-time token)', async () => {
    const { fake } = await open({ apiKey: 'xi-secret-1' });
    expect(fake.signedUrlRequests).toEqual([{ agentId: fake.agentId, keyOk: true }]);
    expect(fake.conversations[0]!.url).toMatch(/conversation_signature=/);
  });

  it('a wrong API key is BRIDGE_ERR_AGENT_AUTH, and no error message carries the key', async () => {
    const fake = await startFakeElevenLabs({ apiKey: 'xi-right-key' });
    cleanups.push(() => fake.close());
    const session = createElevenLabsAgentFactory({ ...fake.env, ELEVENLABS_API_KEY: 'xi-WRONG-key' }).factory.create({ callSid: 'CA1', parameters: {} });
    const err = (await session.connect(AbortSignal.timeout(3000)).catch((e: unknown) => e)) as BridgeError;
    expect(err.code).toBe('BRIDGE_ERR_AGENT_AUTH');
    expect(err.retryable).toBe(false);
    expect(err.message).not.toContain('xi-WRONG-key');
    expect(fake.conversations.length).toBe(0);
  });

  it('an unknown agent id is BRIDGE_ERR_AGENT_CONFIG (public agent: the upgrade is refused with 404)', async () => {
    const fake = await startFakeElevenLabs();
    cleanups.push(() => fake.close());
    const session = createElevenLabsAgentFactory({ ...fake.env, ELEVENLABS_AGENT_ID: 'agent_nobody' }).factory.create({ callSid: 'CA1', parameters: {} });
    const err = (await session.connect(AbortSignal.timeout(3000)).catch((e: unknown) => e)) as BridgeError;
    expect(err.code).toBe('BRIDGE_ERR_AGENT_CONFIG');
  });

  it('connect() honours its AbortSignal (a service that never answers the upgrade)', async () => {
    const { createServer } = await import('node:net');
    const sockets = new Set<import('node:net').Socket>();
    const silent = createServer((s) => {
      sockets.add(s);
      s.resume(); // read (and discard) the upgrade request, so the client's FIN is seen
      s.on('close', () => sockets.delete(s));
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    cleanups.push(() => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((r) => silent.close(() => r()));
    });
    const port = (silent.address() as { port: number }).port;
    const session = createElevenLabsAgentFactory({ ELEVENLABS_AGENT_ID: 'agent_x', ELEVENLABS_CONVAI_URL: `ws://127.0.0.1:${port}/v1/convai/conversation` }).factory.create({ callSid: 'CA1', parameters: {} });
    // The abort, not the 10 s handshake timeout, ends it: the message names the abort (no wall-clock bound,
    // which a loaded CI machine can blow).
    const err = (await session.connect(AbortSignal.timeout(300)).catch((e: unknown) => e)) as BridgeError;
    expect(err).toBeInstanceOf(BridgeError);
    expect(err.code).toBe('BRIDGE_ERR_AGENT_TIMEOUT');
    expect(err.message).toMatch(/connect aborted/);
    await session.close('test');
    await waitFor(() => sockets.size === 0, 10_000, 'the client to drop its half-open connection');

    // close() while connecting (no abort from the caller) settles connect() at once too.
    const again = createElevenLabsAgentFactory({ ELEVENLABS_AGENT_ID: 'agent_x', ELEVENLABS_API_KEY: 'k', ELEVENLABS_API_URL: `http://127.0.0.1:${port}` }).factory.create({ callSid: 'CA1', parameters: {} });
    const pending = again.connect(AbortSignal.timeout(60_000)).catch((e: unknown) => e);
    await waitFor(() => sockets.size === 1, 10_000, 'the signed-URL request');
    await again.close('caller hung up');
    // Settled by the close, not by the signed-URL request's own 5 s timeout (that would say so).
    const closed = (await pending) as BridgeError;
    expect(closed).toBeInstanceOf(BridgeError);
    expect(closed.message).toMatch(/session closed/);
  });
});

describe('elevenlabs agent: formats', () => {
  it('adopts a raw format the agent announces that differs from ELEVENLABS_AUDIO_FORMAT, with a non-fatal warning', async () => {
    const { fake, session, audio, errors, events } = await open({ inputFormat: 'pcm_16000', outputFormat: 'pcm_24000' }, {}, { ELEVENLABS_AUDIO_FORMAT: 'ulaw_8000' });
    expect(session.inputFormat).toEqual({ encoding: 'pcm16', sampleRateHz: 16000 });
    expect(session.outputFormat).toEqual({ encoding: 'pcm16', sampleRateHz: 24000 });
    expect(errors.map((x) => [x.e.code, x.fatal])).toEqual([['BRIDGE_ERR_AGENT_AUDIO_FORMAT', false]]);
    session.sendAudio(new Int16Array(320)); // 20 ms at 16 kHz
    await waitFor(() => fake.received().audioMs >= 20, 2000, 'caller audio');
    expect(fake.conversations[0]!.badAudioChunks).toBe(0);
    await fake.speak(300);
    await waitFor(() => events.some((e) => e.startsWith('responseDone')), 3000, 'responseDone');
    expect(samples(audio)).toBe(24 * 300);
    expect(audio[0]!.data).toBeInstanceOf(Int16Array);
  });

  it('an output format the bridge cannot stream (mp3) rejects connect() with BRIDGE_ERR_AGENT_AUDIO_FORMAT', async () => {
    const fake = await startFakeElevenLabs({ outputFormat: 'mp3_44100_128' });
    cleanups.push(() => fake.close());
    const session = createElevenLabsAgentFactory(fake.env).factory.create({ callSid: 'CA1', parameters: {} });
    const err = (await session.connect(AbortSignal.timeout(3000)).catch((e: unknown) => e)) as BridgeError;
    expect(err.code).toBe('BRIDGE_ERR_AGENT_AUDIO_FORMAT');
    expect(err.message).toMatch(/mp3_44100_128/);
    await waitFor(() => fake.received().closed, 2000, 'the socket to close');
  });

  it('metadata without formats (older servers): the configured format is assumed', async () => {
    const { session, errors } = await open({ announceFormats: false, inputFormat: 'pcm_16000', outputFormat: 'pcm_16000' }, {}, { ELEVENLABS_AUDIO_FORMAT: 'pcm_16000' });
    expect(session.outputFormat).toEqual({ encoding: 'pcm16', sampleRateHz: 16000 });
    expect(errors).toEqual([]);
  });

  it('caller μ-law passes through byte for byte', async () => {
    const { fake, session } = await open();
    const frame = new Uint8Array(160).map((_, i) => (i * 7) & 0xff);
    for (let i = 0; i < 5; i++) session.sendAudio(frame);
    await waitFor(() => fake.received().audioMs >= 100, 2000, '100 ms of caller audio');
    expect(fake.conversations[0]!.audioBytes).toBe(800);
  });
});

describe('elevenlabs agent: events', () => {
  it('answers every ping with a pong carrying the same event_id', async () => {
    const { fake } = await open({ pingIntervalMs: 100, pingMs: 60 });
    await waitFor(() => fake.pongs.length >= 3, 3000, 'three pongs');
    for (const pong of fake.pongs) expect(fake.pings.some((p) => p.eventId === pong.eventId)).toBe(true);
    expect(new Set(fake.pongs.map((p) => p.eventId)).size).toBe(fake.pongs.length);
  });

  it('answers a ping at once, whatever ping_ms says: the pong goes out before the answer to a message the service sent right after the ping', async () => {
    // ping_ms is the service's round-trip estimate, made from these pongs: waiting it out would inflate it.
    // Order, not time: the tool call right behind the ping is answered synchronously, so a pong held
    // back by any timer would reach the fake after the tool result.
    const { fake, session } = await open({ pingIntervalMs: 0 });
    const id = await fake.ping(5000);
    await fake.callTool('book_table');
    await waitFor(() => fake.pongs.length === 1 && fake.toolResults.length === 1, 3000, 'the pong and the tool result');
    expect(fake.pongs[0]!.eventId).toBe(id);
    expect(fake.clientLog.filter((t) => t === 'pong' || t === 'client_tool_result')).toEqual(['pong', 'client_tool_result']);
    expect(session.stats.pongsSent).toBe(1);
  });

  it('drops the stale audio the service sends after an interruption (event_id ≤ the interruption’s); the next reply plays', async () => {
    const { fake, session, audio, events } = await open();
    await fake.speak(1000); // 10 chunks
    await waitFor(() => audio.length === 10, 2000, '10 chunks');
    await fake.interruptFromService();
    await waitFor(() => events.includes('interruption') && session.stats.staleAudioDropped === 2, 2000, 'interruption and 2 stale chunks dropped');
    expect(audio.length).toBe(10);
    expect(events.filter((e) => e.startsWith('responseDone'))).toEqual([]); // an interrupted reply is not done
    await fake.speak(200);
    await waitFor(() => events.some((e) => e.startsWith('responseDone')), 3000, 'the next reply');
    expect(audio.length).toBe(12);
    expect(new Set(audio.map((a) => a.responseId))).toEqual(new Set(['el-1', 'el-2']));
  });

  it('agent_response text first (live order) or last: one response per reply, transcripts for both sides', async () => {
    for (const agentResponseAt of ['start', 'end'] as const) {
      const { fake, events, transcripts, audio } = await open({ agentResponseAt });
      await fake.speak(300);
      await waitFor(() => events.filter((e) => e.startsWith('responseDone')).length === 1, 3000, 'first responseDone');
      await fake.sendRaw(JSON.stringify({ type: 'user_transcript', user_transcription_event: { user_transcript: ' What time is it? ' } }));
      await fake.speak(300);
      await waitFor(() => events.filter((e) => e.startsWith('responseDone')).length === 2, 3000, 'second responseDone');
      expect(events.filter((e) => e.startsWith('responseDone'))).toEqual(['responseDone:el-1', 'responseDone:el-2']);
      expect(samples(audio)).toBe(8 * 600);
      expect(transcripts).toEqual([
        { role: 'agent', text: fake.replies[0], final: true },
        { role: 'caller', text: 'What time is it?', final: true },
        { role: 'agent', text: fake.replies[1], final: true },
      ]);
    }
  });

  it('a user_transcript ends the reply at once; a correction becomes an agent transcript', async () => {
    const { fake, events, transcripts } = await open({}, {}, { ELEVENLABS_RESPONSE_GAP_MS: '5000' });
    await fake.speak(200);
    await fake.sendRaw(JSON.stringify({ type: 'agent_response_correction', agent_response_correction_event: { original_agent_response: 'Long text', corrected_agent_response: 'Long' } }));
    await fake.sendRaw(JSON.stringify({ type: 'user_transcript', user_transcription_event: { user_transcript: 'stop' } }));
    await waitFor(() => events.some((e) => e.startsWith('responseDone')), 1000, 'responseDone before the 5 s gap');
    expect(transcripts.map((t) => t.text)).toEqual([fake.replies[0], 'Long', 'stop']);
  });

  it('interrupt({ heardMs }) drops the rest of the reply, sends user_activity and reports what the caller heard, words included', async () => {
    const { fake, session, audio } = await open({ alignment: true });
    await fake.speak(2000);
    await waitFor(() => audio.length === 20, 2000, 'the reply');
    session.interrupt({ heardMs: 500 });
    await waitFor(() => fake.received().interruptions.length === 1 && fake.userActivity === 1, 2000, 'the report');
    expect(fake.received().interruptions).toEqual([{ heardMs: 500 }]);
    expect(session.lastHeardMs).toBe(500);
    const text = fake.replies[0]!;
    const heardChars = Math.ceil((500 / 2000) * text.length);
    expect(fake.contextualUpdates[0]).toContain(`They heard only: "${text.slice(0, heardChars).trim()}"`);
    // The service goes on with the same reply (no interruption from it): that audio is dropped here.
    await fake.sendRaw(JSON.stringify({ type: 'audio', audio_event: { audio_base_64: Buffer.alloc(160, 0x7f).toString('base64'), event_id: 9999 } }));
    await waitFor(() => session.stats.staleAudioDropped === 1, 2000, 'late audio dropped');
    expect(audio.length).toBe(20);
  });

  it('ELEVENLABS_REPORT_HEARD=0: only user_activity on barge-in', async () => {
    const { fake, session } = await open({}, {}, { ELEVENLABS_REPORT_HEARD: '0' });
    await fake.speak(200);
    session.interrupt({ heardMs: 100 });
    await waitFor(() => fake.userActivity === 1, 2000, 'user_activity');
    expect(fake.contextualUpdates).toEqual([]);
  });

  it('bad audio is dropped and counted, never played: odd PCM bytes, a WAV header, bad base64', async () => {
    const { fake, session, audio, errors } = await open({ inputFormat: 'pcm_16000', outputFormat: 'pcm_16000' }, {}, { ELEVENLABS_AUDIO_FORMAT: 'pcm_16000' });
    await fake.sendRaw(JSON.stringify({ type: 'audio', audio_event: { audio_base_64: Buffer.alloc(3).toString('base64'), event_id: 500 } }));
    await fake.fault('garbage');
    await waitFor(() => session.stats.badAudioDropped === 2 && session.stats.protocolErrors >= 5, 2000, 'errors counted');
    expect(audio).toEqual([]);
    expect(errors.every((x) => !x.fatal)).toBe(true);
    expect(new Set(errors.map((x) => x.e.code))).toEqual(new Set(['BRIDGE_ERR_AGENT_AUDIO_FORMAT', 'BRIDGE_ERR_AGENT_PROTOCOL']));
  });

  it('DTMF: digits pressed together go as one user_message; contextual_update mode; off', async () => {
    const a = await open();
    for (const d of ['1', '2', '3']) a.session.sendDtmf(d);
    a.session.sendDtmf('x'); // not a digit: ignored
    await waitFor(() => a.fake.userMessages.length === 1, 3000, 'one message');
    expect(a.fake.userMessages[0]).toBe('The caller pressed the keys 1 2 3 on their phone keypad.');
    expect(a.fake.received().dtmf).toEqual(['1', '2', '3']);
    a.session.sendDtmf('#'); // '#' sends at once
    await waitFor(() => a.fake.userMessages.length === 2, 300, '# at once');

    const b = await open({}, {}, { ELEVENLABS_DTMF_MODE: 'contextual_update' });
    b.session.sendDtmf('9');
    await waitFor(() => b.fake.contextualUpdates.length === 1, 3000, 'a contextual update');
    expect(b.fake.userMessages).toEqual([]);
  });
});

describe('elevenlabs agent: end of call', () => {
  it('the end_call client tool: answered with a result, then end after the goodbye finished', async () => {
    const { fake, events, ends } = await open();
    await fake.speak(300);
    await fake.callTool('end_call');
    await waitFor(() => ends.length === 1, 3000, 'end');
    expect(events.filter((e) => e !== 'closed')).toEqual(['responseDone:el-1', 'end']);
    expect(ends[0]).toBe('agent called end_call');
    await waitFor(() => fake.toolResults.length === 1, 2000, 'tool result');
    expect(fake.toolResults[0]).toMatchObject({ type: 'client_tool_result', is_error: false });
  });

  it('an unknown client tool is answered with an error result (the agent does not hang) and counted', async () => {
    const { fake, errors, ends } = await open();
    await fake.callTool('book_table');
    await waitFor(() => fake.toolResults.length === 1, 2000, 'tool result');
    expect(fake.toolResults[0]).toMatchObject({ is_error: true });
    expect(errors.map((x) => [x.e.code, x.fatal])).toEqual([['BRIDGE_ERR_AGENT_PROTOCOL', false]]);
    expect(ends).toEqual([]);
  });

  it('the service closing normally (1000) ends the call (no fatal error), then closed', async () => {
    const { fake, events, errors, ends } = await open();
    await fake.speak(200);
    await fake.endConversation('end_call tool');
    await waitFor(() => events.includes('closed'), 3000, 'closed');
    expect(events).toEqual(['responseDone:el-1', 'end', 'closed']);
    expect(ends[0]).toMatch(/service ended the conversation: end_call tool/);
    expect(errors).toEqual([]);
  });

  it('a service that stops answering is a fatal BRIDGE_ERR_AGENT_TIMEOUT within the idle timeout', async () => {
    const { fake, errors, events } = await open();
    await fake.fault('stop-answering');
    await waitFor(() => events.includes('closed'), 15_000, 'closed');
    expect(errors.map((x) => [x.e.code, x.fatal])).toEqual([['BRIDGE_ERR_AGENT_TIMEOUT', true]]);
    // Detected by the idle rule (the fake's env sets 1500 ms), whatever the machine's load.
    expect(errors[0]!.e.message).toMatch(/nothing received for 1500 ms/);
  });

  it('a dropped connection mid-call is a fatal BRIDGE_ERR_AGENT_CLOSED (no reconnect: the conversation cannot be resumed)', async () => {
    const { fake, errors, events } = await open();
    await fake.fault('close-mid-call');
    await waitFor(() => events.includes('closed'), 3000, 'closed');
    expect(errors.map((x) => [x.e.code, x.fatal])).toEqual([['BRIDGE_ERR_AGENT_CLOSED', true]]);
    expect(fake.conversations.length).toBe(1);
  });
});

describe('elevenlabs agent: service errors and other server events', () => {
  it.each([
    [1002, 'llm_error', 'BRIDGE_ERR_AGENT_SERVICE'],
    [1002, 'llm_timeout', 'BRIDGE_ERR_AGENT_TIMEOUT'],
    [1008, 'missing_dynamic_variable', 'BRIDGE_ERR_AGENT_CONFIG'],
    [1011, 'unknown_websocket_crash', 'BRIDGE_ERR_AGENT_SERVICE'],
  ])('an error event (code %i, %s) mid-call is one fatal %s with the service message, then closed', async (code, errorType, bridgeCode) => {
    const { fake, session, errors, events } = await open();
    await fake.sendError(code, errorType, 'Something went wrong on our side.');
    await waitFor(() => events.includes('closed'), 3000, 'closed');
    expect(errors.map((x) => [x.e.code, x.fatal])).toEqual([[bridgeCode, true]]);
    expect(errors[0]!.e.message).toContain(`${errorType}, code ${code}`);
    expect(errors[0]!.e.message).toContain('Something went wrong on our side.');
    expect(session.stats.serviceErrors).toBe(1);
    expect(session.stats.protocolErrors).toBe(0);
  });

  it('an error event with code 1000 (max_duration_exceeded) is a normal end: the goodbye finishes, then end and closed, no error', async () => {
    const { fake, events, errors, ends } = await open();
    await fake.speak(300);
    await fake.sendError(1000, 'max_duration_exceeded', 'Maximum call duration reached.');
    await waitFor(() => events.includes('closed'), 3000, 'closed');
    expect(events).toEqual(['responseDone:el-1', 'end', 'closed']);
    expect(ends[0]).toMatch(/max_duration_exceeded/);
    expect(errors).toEqual([]);
  });

  it('an error event before the conversation starts rejects connect() with it (override_error → BRIDGE_ERR_AGENT_CONFIG, not a bare close 1008)', async () => {
    const fake = await startFakeElevenLabs({ refuseInitiation: { code: 1008, errorType: 'override_error', message: 'Override for field first_message is not allowed by config.' } });
    cleanups.push(() => fake.close());
    const session = createElevenLabsAgentFactory(fake.env).factory.create({ callSid: 'CA1', parameters: { first_message: 'Hi!' } });
    const err = (await session.connect(AbortSignal.timeout(3000)).catch((e: unknown) => e)) as BridgeError;
    expect(err).toBeInstanceOf(BridgeError);
    expect(err.code).toBe('BRIDGE_ERR_AGENT_CONFIG');
    expect(err.message).toMatch(/before the conversation started \(override_error, code 1008\): Override for field first_message is not allowed/);
  });

  it('an error event without a code (not what the contract says) is reported, not fatal; the call goes on', async () => {
    const { fake, errors, events } = await open();
    await fake.sendError(undefined, undefined, 'odd', { close: false });
    await waitFor(() => errors.length === 1, 2000, 'the error');
    expect(errors.map((x) => [x.e.code, x.fatal])).toEqual([['BRIDGE_ERR_AGENT_SERVICE', false]]);
    await fake.speak(200);
    await waitFor(() => events.some((e) => e.startsWith('responseDone')), 3000, 'the next reply');
    expect(events).not.toContain('closed');
  });

  it('context_usage is accepted silently: no error, not counted as unknown, the call goes on', async () => {
    const { fake, session, errors, events } = await open();
    await fake.sendContextUsage();
    await fake.speak(200);
    await waitFor(() => events.some((e) => e.startsWith('responseDone')), 3000, 'a reply after it');
    expect(errors).toEqual([]);
    expect(session.stats.protocolErrors).toBe(0);
  });
});

describe('elevenlabs agent: configuration', () => {
  it('unavailable without ELEVENLABS_AGENT_ID; every bad key is listed', () => {
    expect(readElevenLabsAgentConfig({})).toEqual({ config: undefined, problems: [] });
    const { factory, problems } = agentModule.create(loadConfig({}));
    expect(factory.name).toBe('elevenlabs');
    expect(factory.available).toBe(false);
    expect(problems).toEqual([]);
    const bad = readElevenLabsAgentConfig({
      ELEVENLABS_AGENT_ID: 'agent x',
      ELEVENLABS_CONVAI_URL: 'https://x',
      ELEVENLABS_API_URL: 'ftp://x',
      ELEVENLABS_AUDIO_FORMAT: 'mp3_44100',
      ELEVENLABS_IDLE_TIMEOUT_MS: '5',
      ELEVENLABS_DTMF_MODE: 'shout',
      ELEVENLABS_REPORT_HEARD: 'maybe',
    });
    expect(bad.problems.length).toBe(7);
    expect(createElevenLabsAgentFactory({ ELEVENLABS_AGENT_ID: 'agent_1', ELEVENLABS_AUDIO_FORMAT: 'opus' }).factory.available).toBe(false);
  });

  it('defaults', () => {
    const { config } = readElevenLabsAgentConfig({ ELEVENLABS_AGENT_ID: 'agent_1' });
    expect(config).toEqual({
      agentId: 'agent_1',
      apiKey: undefined,
      convaiUrl: 'wss://api.elevenlabs.io/v1/convai/conversation',
      apiUrl: 'https://api.elevenlabs.io',
      audioFormat: 'ulaw_8000',
      idleTimeoutMs: 15_000,
      responseGapMs: 400,
      dtmfMode: 'user_message',
      reportHeard: true,
      endCallTools: ['end_call'],
    });
    expect(parseCallOptions({ first_message: '' }).overrides).toEqual({ firstMessage: '' });
  });

  it('the parser turns malformed events into reasons, never throws', () => {
    for (const text of ['', 'null', '[]', '{"type":1}', '{"type":"audio"}', '{"type":"audio","audio_event":{"event_id":-1,"audio_base_64":""}}', '{"type":"ping","ping_event":{}}', 'x'.repeat(1_000_001)]) {
      expect(parseServerMessage(text).ok).toBe(false);
    }
    expect(parseServerMessage('{"type":"vad_score","vad_score_event":{"vad_score":0.9}}')).toEqual({ ok: true, event: { kind: 'ignored', type: 'vad_score' } });
    expect(parseServerMessage('{"type":"audio","audio_event":{"event_id":"12","audio_base_64":"f39/"}}')).toMatchObject({ ok: true, event: { kind: 'audio', eventId: 12 } });
    expect(parseServerMessage('{"type":"error","error_event":{"code":1002,"error_type":"llm_error","message":"LLM failed","reason":"r"}}')).toEqual({
      ok: true,
      event: { kind: 'error', code: 1002, errorType: 'llm_error', message: 'LLM failed' },
    });
    expect(parseServerMessage('{"type":"error"}')).toEqual({ ok: true, event: { kind: 'error', code: undefined, errorType: undefined, message: '(no message)' } });
    expect(parseServerMessage('{"type":"context_usage","context_usage_event":{}}')).toEqual({ ok: true, event: { kind: 'ignored', type: 'context_usage' } });
  });
});
