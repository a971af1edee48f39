/**
 * The Gemini Live adapter against its fake (test/fakes/gemini.ts): the agent contract,
 * then what is particular to Gemini — setup contents, binary frames, late audio after
 * `interrupted`, transcripts, close codes, resumption and the goAway rollover of a
 * long call.
 */
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { runAgentContract } from './agent-contract.js';
import { startFakeGemini } from '../fakes/gemini.js';
import { createGeminiAgentFactory } from '../../src/agents/gemini/index.js';

runAgentContract({
  name: 'gemini',
  startFake: () => startFakeGemini(),
  createFactory: (env) => createGeminiAgentFactory(env).factory,
});

// ---------------------------------------------------------------------------------------
// Gemini specifics
// ---------------------------------------------------------------------------------------

import type { AgentAudio, Transcript } from '../../src/agents/agent.js';
import type { BridgeError } from '../../src/errors.js';
import type { GeminiLiveSession } from '../../src/agents/gemini/session.js';
import { readGeminiConfig, DEFAULT_GEMINI_MODEL } from '../../src/agents/gemini/config.js';
import { decodeInlineAudio, parseDurationMs, parseServerMessage } from '../../src/agents/gemini/protocol.js';
import { createAgentRegistry } from '../../src/agents/registry.js';
import { loadConfig } from '../../src/config.js';
import type { FakeGemini, FakeGeminiOptions } from '../fakes/gemini.js';
import { on } from './agent-events.js';

async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

interface Opened {
  session: GeminiLiveSession;
  audio: AgentAudio[];
  errors: { e: BridgeError; fatal: boolean }[];
  events: string[];
  transcripts: Transcript[];
}

function track(session: GeminiLiveSession): Opened {
  const o: Opened = { session, audio: [], errors: [], events: [], transcripts: [] };
  on(session, 'audio', (a) => o.audio.push({ data: a.data.slice(), sampleRateHz: a.sampleRateHz, responseId: a.responseId }));
  on(session, 'error', ({ error: e, fatal }) => o.errors.push({ e, fatal }));
  on(session, 'interruption', () => o.events.push('interruption'));
  on(session, 'responseDone', ({ responseId }) => o.events.push(`responseDone:${responseId}`));
  on(session, 'closed', () => o.events.push('closed'));
  on(session, 'transcript', (t) => o.transcripts.push({ role: t.role, text: t.text, final: t.final }));
  return o;
}

async function withFake(options: FakeGeminiOptions, fn: (fake: FakeGemini) => Promise<void>): Promise<void> {
  const fake = await startFakeGemini(options);
  try {
    await fn(fake);
  } finally {
    await fake.close();
  }
}

function sessionFor(fake: FakeGemini, parameters: Record<string, string> = {}, env: Record<string, string> = {}): GeminiLiveSession {
  return createGeminiAgentFactory({ ...fake.env, ...env }).factory.create({ callSid: 'CA' + '9'.repeat(32), parameters }) as GeminiLiveSession;
}

async function open(fake: FakeGemini, parameters: Record<string, string> = {}, env: Record<string, string> = {}): Promise<Opened> {
  const session = sessionFor(fake, parameters, env);
  const o = track(session);
  await session.connect(AbortSignal.timeout(5000));
  return o;
}

const ms = (chunks: AgentAudio[]) => (chunks.reduce((n, c) => n + c.data.length, 0) * 1000) / 24_000;
const chunk = (samples: number) => ({ serverContent: { modelTurn: { parts: [{ inlineData: { mimeType: 'audio/pcm;rate=24000', data: Buffer.from(new Int16Array(samples).fill(1000).buffer).toString('base64') } }] } } });

describe('gemini: setup and formats', () => {
  it('sends one setup: models/ prefix, voice, system instruction, both transcriptions, resumption without transparent, compression', async () => {
    await withFake({}, async (fake) => {
      const { session } = await open(fake);
      expect(session.inputFormat).toEqual({ encoding: 'pcm16', sampleRateHz: 16000 });
      expect(session.outputFormat).toEqual({ encoding: 'pcm16', sampleRateHz: 24000 });
      const [conn] = fake.connections();
      expect(conn!.setup).toEqual({
        model: `models/${DEFAULT_GEMINI_MODEL}`,
        generationConfig: { responseModalities: ['AUDIO'], speechConfig: { voiceConfig: { prebuiltVoiceConfig: { voiceName: 'Puck' } } } },
        systemInstruction: { parts: [{ text: expect.stringContaining('phone call') }] },
        inputAudioTranscription: {},
        outputAudioTranscription: {},
        sessionResumption: {},
        contextWindowCompression: { slidingWindow: {} },
      });
      await session.close('test');
    });
  });

  it('webhook parameters override voice, instructions and model; a bad one rejects connect() with AGENT_CONFIG and opens nothing', async () => {
    await withFake({}, async (fake) => {
      const { session } = await open(fake, { voice: 'Kore', instructions: 'Answer in French.', model: 'gemini-3.1-flash-live-preview' });
      const setup = fake.connections()[0]!.setup as any;
      expect(setup.model).toBe('models/gemini-3.1-flash-live-preview');
      expect(setup.generationConfig.speechConfig.voiceConfig.prebuiltVoiceConfig.voiceName).toBe('Kore');
      expect(setup.systemInstruction.parts[0].text).toBe('Answer in French.');
      await session.close('test');

      const bads: Record<string, string>[] = [{ voice: 'Puck"; drop' }, { model: 'Models/../x' }, { instructions: '   ' }];
      for (const bad of bads) {
        const s = sessionFor(fake, bad);
        const err = await s.connect(AbortSignal.timeout(2000)).catch((e: unknown) => e);
        expect(err).toMatchObject({ code: 'BRIDGE_ERR_AGENT_CONFIG' });
        await s.close('test');
      }
      expect(fake.connections().length).toBe(1);
    });
  });

  it.each(['binary', 'text', 'mixed'] as const)('server messages as %s frames all work', async (frames) => {
    await withFake({ frames }, async (fake) => {
      const o = await open(fake);
      await fake.speak(300);
      await waitFor(() => o.events.some((e) => e.startsWith('responseDone')), 3000, 'responseDone');
      expect(ms(o.audio)).toBeCloseTo(300, 0);
      expect(o.errors).toEqual([]);
      await o.session.close('test');
    });
  });

  it('the API key goes only in the x-goog-api-key header; the fake refuses a key in the URL (HTTP 400) and a missing key (close 1008); no error names the key', async () => {
    const key = 'AIzaSy-secret-key-' + 'k'.repeat(20);
    await withFake({ apiKey: key }, async (fake) => {
      const { session } = await open(fake);
      expect(fake.upgrades()).toEqual([{ query: '', keyHeader: true }]);
      await session.close('test');

      // The fake as the service: a key in the URL, or none.
      const inUrl = new WebSocket(`${fake.url}?key=${key}`);
      const status = await new Promise<number>((resolve) => {
        inUrl.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        inUrl.on('open', () => resolve(101));
        inUrl.on('error', () => undefined);
      });
      inUrl.terminate();
      expect(status).toBe(400);
      const noKey = new WebSocket(fake.url);
      noKey.on('error', () => undefined);
      const code = await new Promise<number>((resolve) => noKey.on('close', (c) => resolve(c)));
      expect(code).toBe(1008);

      // Errors on every path: a wrong key, a refused upgrade, a refused resume, nothing listening.
      const errs: unknown[] = [];
      const wrong = sessionFor(fake, {}, { GEMINI_API_KEY: key + 'x' });
      errs.push(await wrong.connect(AbortSignal.timeout(3000)).catch((e: unknown) => e));
      await wrong.close('test');
      fake.refuseUpgrades(403);
      const refused = sessionFor(fake);
      errs.push(await refused.connect(AbortSignal.timeout(3000)).catch((e: unknown) => e));
      await refused.close('test');
      fake.refuseUpgrades(undefined);
      const nobody = sessionFor(fake, {}, { GEMINI_LIVE_URL: 'ws://127.0.0.1:1/ws' });
      errs.push(await nobody.connect(AbortSignal.timeout(3000)).catch((e: unknown) => e));
      await nobody.close('test');
      expect(errs.map((e) => (e as BridgeError).code)).toEqual(['BRIDGE_ERR_AGENT_AUTH', 'BRIDGE_ERR_AGENT_AUTH', 'BRIDGE_ERR_AGENT_CONNECT']);
      for (const e of errs) {
        const err = e as BridgeError & { cause?: unknown };
        expect(`${err.message} ${String(err.cause)} ${JSON.stringify(err)}`).not.toContain(key);
      }
    });
  });

  it('a wrong key (close 1007 "API key not valid") rejects connect() with AGENT_AUTH; a missing setupComplete with AGENT_TIMEOUT', async () => {
    await withFake({}, async (fake) => {
      const s = sessionFor(fake, {}, { GEMINI_API_KEY: 'wrong' });
      expect(await s.connect(AbortSignal.timeout(3000)).catch((e: unknown) => e)).toMatchObject({ code: 'BRIDGE_ERR_AGENT_AUTH' });
      await s.close('test');

      fake.holdSetupNext();
      const s2 = sessionFor(fake, {}, { GEMINI_CONNECT_TIMEOUT_MS: '300' });
      // The 300 ms connect timeout ends it, not the caller's 3 s signal: the message names it.
      const late = (await s2.connect(AbortSignal.timeout(3000)).catch((e: unknown) => e)) as BridgeError;
      expect(late).toMatchObject({ code: 'BRIDGE_ERR_AGENT_TIMEOUT' });
      expect(late.message).toMatch(/within 300 ms/);
      await s2.close('test');
    });
  });
});

describe('gemini: barge-in and transcripts', () => {
  it('after `interrupted` the rest of that turn is dropped; no responseDone for it; the next turn has a new responseId', async () => {
    await withFake({}, async (fake) => {
      const o = await open(fake);
      fake.sendRaw(chunk(2400), true); // 100 ms
      fake.sendRaw({ serverContent: { interrupted: true } });
      fake.sendRaw(chunk(2400)); // late audio of the interrupted turn
      fake.sendRaw({ serverContent: { turnComplete: true } }, true);
      await waitFor(() => o.events.includes('interruption') && o.session.stats.agentMsDropped > 0, 3000, 'interruption and dropped audio');
      expect(ms(o.audio)).toBe(100);
      expect(o.events.filter((e) => e.startsWith('responseDone'))).toEqual([]);
      await fake.speak(200);
      await waitFor(() => o.events.some((e) => e.startsWith('responseDone')), 3000, 'next responseDone');
      expect(new Set(o.audio.map((a) => a.responseId))).toEqual(new Set(['gemini-1', 'gemini-2']));
      expect(o.events.at(-1)).toBe('responseDone:gemini-2');
      await o.session.close('test');
    });
  });

  it('interrupt({ heardMs }) from the bridge drops the rest of the turn, tells the model what was heard, and marks the transcript', async () => {
    await withFake({}, async (fake) => {
      const o = await open(fake);
      await fake.speak(1500);
      await waitFor(() => o.audio.length > 0, 3000, 'first audio');
      o.session.interrupt({ heardMs: 150 });
      await waitFor(() => fake.received().interruptions.length === 1, 3000, 'the note at the service');
      expect(fake.received().interruptions[0]).toEqual({ heardMs: 150 });
      const emitted = ms(o.audio);
      await fake.interruptFromService(); // the service ends the turn (interrupted → turnComplete)
      await waitFor(() => o.transcripts.some((t) => t.role === 'agent'), 3000, 'agent transcript');
      expect(ms(o.audio)).toBe(emitted);
      expect(emitted).toBeLessThan(1500);
      expect(o.events.filter((e) => e.startsWith('responseDone'))).toEqual([]);
      expect(o.transcripts.find((t) => t.role === 'agent')!.text).toMatch(/\[interrupted: the caller heard about 150 ms\]$/);
      expect(o.session.stats.lastHeardMs).toBe(150);
      await o.session.close('test');
    });
  });

  it("the barge-in note is a clientContent context note in the model's own turn (turnComplete false), never realtimeInput text the model takes for the caller's words", async () => {
    await withFake({}, async (fake) => {
      const o = await open(fake);
      await fake.speak(1500);
      await waitFor(() => o.audio.length > 0, 3000, 'first audio');
      o.session.interrupt({ heardMs: 240 });
      o.session.sendDtmf('4'); // the caller's own input still goes as realtimeInput
      await waitFor(() => fake.notes().length === 2, 3000, 'the note and the digit');
      expect(fake.notes()).toEqual([
        { channel: 'clientContent', role: 'model', text: expect.stringMatching(/^\[Note from the phone system, not spoken: .*first 240 ms/), turnComplete: false },
        { channel: 'realtimeInput', role: undefined, text: '[The caller pressed 4 on the phone keypad.]', turnComplete: undefined },
      ]);
      expect(fake.texts()).toEqual([]); // nothing taken as the caller's words
      expect(fake.received().interruptions).toEqual([{ heardMs: 240 }]);
      expect(o.session.stats.notesSent).toBe(1);
      await o.session.close('test');
    });
  });

  it('a model that refuses clientContent mid-session (close 1007 after a note): notes stop for the call, the session resumes and goes on (non-fatal)', async () => {
    await withFake({ rejectClientContentAfterTurn: true }, async (fake) => {
      const o = await open(fake);
      await fake.speak(200);
      await waitFor(() => o.events.some((e) => e.startsWith('responseDone')) && o.session.resumable, 3000, 'a finished turn and a handle');
      o.session.interrupt({ heardMs: 100 });
      await waitFor(() => o.session.state === 'open' && o.session.stats.connections === 2, 5000, 'resumed after the 1007');
      expect(fake.connections()[0]!.closeCode).toBe(1007);
      expect(fake.connections()[1]!.resumedWith).toMatch(/^fake-handle-/);
      expect(o.errors.map((x) => [x.e.code, x.fatal])).toEqual([['BRIDGE_ERR_AGENT_PROTOCOL', false]]);
      expect(o.errors[0]!.e.message).toMatch(/notes are off/);
      o.session.interrupt({ heardMs: 50 }); // no second note
      o.session.sendDtmf('9');
      await waitFor(() => fake.received().dtmf.includes('9'), 3000, 'a later message');
      expect(o.session.stats.notesSent).toBe(1);
      expect(fake.notes().filter((n) => n.channel === 'clientContent')).toEqual([]);
      await fake.speak(100);
      await waitFor(() => o.events.filter((e) => e.startsWith('responseDone')).length === 2, 3000, 'the call goes on');
      await o.session.close('test');
    });
  });

  it('GEMINI_INTERRUPT_NOTE=0: interrupt() sends nothing to the service', async () => {
    await withFake({}, async (fake) => {
      const o = await open(fake, {}, { GEMINI_INTERRUPT_NOTE: '0' });
      o.session.interrupt({ heardMs: 200 });
      o.session.sendDtmf('7'); // a later message proves the note would have arrived by now
      await waitFor(() => fake.received().dtmf.includes('7'), 3000, 'the digit');
      expect(fake.received().interruptions).toEqual([]);
      await o.session.close('test');
    });
  });

  it('transcription fragments become one final transcript per turn, caller and agent; DTMF digits are validated', async () => {
    await withFake({}, async (fake) => {
      const o = await open(fake);
      fake.sendRaw({ serverContent: { inputTranscription: { text: 'Where is ' } } }, true);
      fake.sendRaw({ serverContent: { inputTranscription: { text: 'my order?', finished: true } } });
      await fake.speak(200);
      await waitFor(() => o.transcripts.length === 2, 3000, 'two transcripts');
      expect(o.transcripts).toEqual([
        { role: 'caller', text: 'Where is my order?', final: true },
        { role: 'agent', text: '(200 ms of tone)', final: true },
      ]);
      for (const d of ['x', '12', '', '#', '*', 'a']) o.session.sendDtmf(d);
      await waitFor(() => fake.received().dtmf.length === 3, 3000, 'digits');
      expect(fake.received().dtmf).toEqual(['#', '*', 'A']);
      await o.session.close('test');
    });
  });

  it('garbage is counted and never played: wrong rate and mimeType are AGENT_AUDIO_FORMAT, the rest AGENT_PROTOCOL', async () => {
    await withFake({}, async (fake) => {
      const o = await open(fake);
      await fake.fault('garbage');
      fake.sendRaw({ setupComplete: {}, surprise: true });
      await waitFor(() => o.session.stats.protocolErrors >= 5 && o.session.stats.audioFormatErrors >= 2, 3000, 'counted errors');
      expect(o.audio).toEqual([]);
      expect(o.errors.every((x) => !x.fatal)).toBe(true);
      expect(new Set(o.errors.map((x) => x.e.code))).toEqual(new Set(['BRIDGE_ERR_AGENT_PROTOCOL', 'BRIDGE_ERR_AGENT_AUDIO_FORMAT']));
      expect(o.session.state).toBe('open');
      await o.session.close('test');
    });
  });
});

describe('gemini: close codes and resumption', () => {
  it.each([
    [1008, 'Requested entity was not found.', 'BRIDGE_ERR_AGENT_AUTH'],
    [1007, 'Request contains an invalid argument.', 'BRIDGE_ERR_AGENT_PROTOCOL'],
    [1007, 'API key expired. Please renew the API key.', 'BRIDGE_ERR_AGENT_AUTH'],
  ])('close %i (%s) mid-call is fatal %s, without reconnecting', async (code, reason, expected) => {
    await withFake({}, async (fake) => {
      const o = await open(fake);
      await waitFor(() => o.session.resumable, 3000, 'a handle');
      fake.closeCurrent(code, reason);
      await waitFor(() => o.events.includes('closed'), 3000, 'closed');
      expect(o.errors).toHaveLength(1);
      expect(o.errors[0]!.fatal).toBe(true);
      expect(o.errors[0]!.e.code).toBe(expected);
      expect(o.errors[0]!.e.message).toContain(reason);
      expect(fake.connections()).toHaveLength(1);
    });
  });

  it('close 1011 mid-call resumes the session with the last handle; caller audio sent meanwhile arrives after setupComplete', async () => {
    await withFake({}, async (fake) => {
      const o = await open(fake);
      await waitFor(() => o.session.resumable, 3000, 'a handle');
      fake.holdSetupNext(300); // the resumed connection answers setup 300 ms late
      fake.closeCurrent(1011, 'Internal error occurred.');
      await waitFor(() => o.session.state === 'resuming', 3000, 'resuming');
      for (let i = 0; i < 10; i++) o.session.sendAudio(new Int16Array(320).fill(i));
      await waitFor(() => o.session.state === 'open', 3000, 'open again');
      await waitFor(() => fake.received().audioMs === 200, 3000, 'buffered audio at the service');
      expect(o.errors.map((x) => [x.e.code, x.fatal])).toEqual([['BRIDGE_ERR_AGENT_SERVICE', false]]);
      const conns = fake.connections();
      expect(conns).toHaveLength(2);
      expect(conns[1]!.resumedWith).toMatch(/^fake-handle-/);
      expect(conns[1]!.audioMs).toBe(200);
      await fake.speak(200);
      await waitFor(() => o.events.some((e) => e.startsWith('responseDone')), 3000, 'audio after resuming');
      await o.session.close('test');
    });
  });

  it('a refused handle (close 1008 on the resumed setup) falls back to a new session, reported as non-fatal', async () => {
    await withFake({}, async (fake) => {
      const o = await open(fake);
      await waitFor(() => o.session.resumable, 3000, 'a handle');
      fake.forgetHandles();
      fake.closeCurrent(1011, 'The service is currently unavailable.');
      await waitFor(() => o.session.state === 'open' && o.session.stats.connections === 2, 5000, 'a new session');
      const conns = fake.connections();
      expect(conns.map((c) => [c.resumedWith !== undefined, c.closeCode])).toEqual([
        [false, 1011],
        [true, 1008],
        [false, undefined],
      ]);
      expect(o.session.stats.freshRestarts).toBe(1);
      expect(o.errors.every((x) => !x.fatal)).toBe(true);
      expect(o.errors.map((x) => x.e.code)).toContain('BRIDGE_ERR_AGENT_AUTH');
      await o.session.close('test');
    });
  });

  it('a socket that stops answering (no messages, no pongs) is detected and the session resumes on a new one', async () => {
    await withFake({}, async (fake) => {
      const o = await open(fake);
      await waitFor(() => o.session.resumable, 3000, 'a handle');
      await fake.fault('stop-answering');
      await waitFor(() => o.errors.some((x) => x.e.code === 'BRIDGE_ERR_AGENT_TIMEOUT'), 4000, 'the timeout');
      await waitFor(() => o.session.state === 'open' && o.session.stats.resumed === 1, 4000, 'resumed');
      await fake.speak(100);
      await waitFor(() => o.events.some((e) => e.startsWith('responseDone')), 3000, 'audio again');
      expect(o.errors.every((x) => !x.fatal)).toBe(true);
      await o.session.close('test');
    });
  });

  it('an HTTP 403 on a resume is not mistaken for a refused handle: it is fatal AGENT_AUTH', async () => {
    await withFake({}, async (fake) => {
      const o = await open(fake);
      await waitFor(() => o.session.resumable, 3000, 'a handle');
      fake.refuseUpgrades(403);
      fake.closeCurrent(1011, 'Internal error occurred.');
      await waitFor(() => o.events.includes('closed'), 5000, 'closed');
      expect(fake.upgradesRefused()).toBe(1);
      expect(o.errors.at(-1)).toMatchObject({ fatal: true, e: { code: 'BRIDGE_ERR_AGENT_AUTH' } });
    });
  });

  it('reconnect attempts are bounded: when the service keeps refusing, the session fails for good', async () => {
    await withFake({}, async (fake) => {
      const o = await open(fake, {}, { GEMINI_MAX_RECONNECTS: '3' });
      await waitFor(() => o.session.resumable, 3000, 'a handle');
      fake.refuseUpgrades(503);
      fake.closeCurrent(1011, 'Internal error occurred.');
      await waitFor(() => o.events.includes('closed'), 5000, 'closed');
      expect(fake.upgradesRefused()).toBe(3);
      expect(o.errors.map((x) => [x.e.code, x.fatal])).toEqual([
        ['BRIDGE_ERR_AGENT_SERVICE', false], // the 1011
        ['BRIDGE_ERR_AGENT_SERVICE', false], // attempt 1: HTTP 503
        ['BRIDGE_ERR_AGENT_SERVICE', false], // attempt 2
        ['BRIDGE_ERR_AGENT_SERVICE', true], // attempt 3: gave up
      ]);
      expect(o.errors.at(-1)!.e.message).toMatch(/after 3 attempt/);
    });
  });

  it("goAway while the caller is speaking: the switch waits until their turn is answered and a handle covers it, so none of their words are lost", async () => {
    // The service's handles come only with setup and after turns (no periodic ones), goAway
    // arrives 400 ms into the caller's utterance, and resuming drops input after the handle.
    await withFake({ handleIntervalMs: 60_000, goAwayMidUtterance: { afterMs: 400, timeLeftMs: 20_000 }, autoReply: { replyMs: 200, silenceMs: 300 } }, async (fake) => {
      const o = await open(fake);
      await waitFor(() => o.session.resumable, 3000, 'the first handle');
      // The caller's words: 1.2 s of a tone that is never zero, in 20 ms frames; then 1 s of silence.
      const words: Int16Array[] = [];
      for (let n = 0; n < 60; n++) {
        const f = new Int16Array(320);
        for (let i = 0; i < 320; i++) f[i] = 4000 + Math.round(3000 * Math.sin((2 * Math.PI * 220 * (n * 320 + i)) / 16_000));
        words.push(f);
      }
      for (const f of words.slice(0, 30)) o.session.sendAudio(f);
      await waitFor(() => o.session.stats.goAways === 1, 3000, 'goAway mid-utterance');
      const rolledWhileSpeaking = o.session.stats.rollovers;
      for (const f of words.slice(30)) o.session.sendAudio(f);
      for (let n = 0; n < 50; n++) o.session.sendAudio(new Int16Array(320));
      await waitFor(() => o.session.stats.rollovers === 1 && o.session.state === 'open' && o.session.stats.connections === 2, 5000, 'the switch');
      // What the resumed session heard holds every sample the caller said, in order.
      const heard = fake.sessionAudio().filter((v) => v !== 0);
      const said = new Int16Array(words.length * 320);
      words.forEach((f, n) => said.set(f, n * 320));
      expect(heard.length).toBe(said.length);
      expect(Buffer.from(heard.buffer).equals(Buffer.from(said.buffer))).toBe(true);
      // It switched after the answer to the caller, not while they spoke nor at the deadline.
      expect(rolledWhileSpeaking).toBe(0);
      expect(o.events.filter((e) => e.startsWith('responseDone'))).toHaveLength(1);
      expect(o.session.stats.rolloversAtDeadline).toBe(0);
      expect(fake.connections()[1]!.resumedWith).toMatch(/^fake-handle-/);
      expect(o.errors.filter((x) => x.fatal)).toEqual([]);
      await o.session.close('test');
    });
  });

  it("goAway while the caller never pauses: the switch happens anyway shortly before timeLeft runs out", async () => {
    await withFake({ handleIntervalMs: 60_000, goAwayMidUtterance: { afterMs: 200, timeLeftMs: 3000 } }, async (fake) => {
      const o = await open(fake);
      await waitFor(() => o.session.resumable, 3000, 'the first handle');
      const tone = new Int16Array(320).map((_, i) => Math.round(6000 * Math.sin((2 * Math.PI * 300 * i) / 16_000)));
      let stop = false;
      const talking = (async () => {
        while (!stop) {
          o.session.sendAudio(tone);
          await new Promise((r) => setTimeout(r, 20));
        }
      })();
      try {
        await waitFor(() => o.session.stats.goAways === 1, 3000, 'goAway');
        await waitFor(() => o.session.stats.rollovers === 1 && o.session.state === 'open', 5000, 'the switch at the deadline');
        expect(o.session.stats.rolloversAtDeadline).toBe(1);
        expect(fake.connections()[0]!.closedBy).toBe('client'); // before the service closed it
      } finally {
        stop = true;
        await talking;
      }
      await o.session.close('test');
    });
  });

  it(
    'a 6.5 s call over connections that live 1.5 s: goAway rollovers resume the session; every caller sample arrives once, in order; agent audio keeps flowing',
    async () => {
      await withFake({ connectionLifetimeMs: 1500, goAwayTimeLeftMs: 1000, handleIntervalMs: 200 }, async (fake) => {
        const o = await open(fake);
        const connOfAudio = new Set<number>();
        on(o.session, 'audio', () => connOfAudio.add(o.session.stats.connections));
        const frames = 325; // 6.5 s of 20 ms frames at 16 kHz
        const t0 = performance.now();
        let speaking = Promise.resolve();
        for (let n = 0; n < frames; n++) {
          const f = new Int16Array(320);
          for (let i = 0; i < 320; i++) f[i] = ((n * 320 + i) % 60000) - 30000;
          o.session.sendAudio(f);
          if (n % 35 === 0) speaking = speaking.then(() => fake.speak(300));
          const wait = t0 + (n + 1) * 20 - performance.now();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        }
        await waitFor(() => o.session.state === 'open', 3000, 'open at the end');
        await waitFor(() => fake.received().audioMs >= frames * 20, 3000, 'all caller audio');
        const got = fake.callerSamples();
        expect(got.length).toBe(frames * 320);
        let firstBad = -1;
        for (let k = 0; k < got.length; k++) {
          if (got[k] !== (k % 60000) - 30000) {
            firstBad = k;
            break;
          }
        }
        expect(firstBad).toBe(-1);
        const conns = fake.connections();
        expect(conns.length).toBeGreaterThanOrEqual(4);
        expect(conns.slice(1).every((c) => c.resumedWith !== undefined)).toBe(true);
        expect(o.session.stats.rollovers).toBeGreaterThanOrEqual(3);
        expect(o.session.stats.callerMsDropped).toBe(0);
        expect(o.errors.filter((x) => x.fatal)).toEqual([]);
        expect(connOfAudio.size).toBeGreaterThanOrEqual(3);
        expect(o.events.filter((e) => e.startsWith('responseDone')).length).toBeGreaterThanOrEqual(5);
        await o.session.close('test');
      });
    },
    20_000,
  );
});

describe('gemini: config and protocol', () => {
  it('without GEMINI_API_KEY the agent is registered but unavailable; bad values are all listed', () => {
    expect(readGeminiConfig({})).toEqual({ config: undefined, problems: [] });
    const registry = createAgentRegistry(loadConfig({}));
    expect(registry.has('gemini')).toBe(true);
    expect(registry.get('gemini').available).toBe(false);
    expect(createAgentRegistry(loadConfig({ GEMINI_API_KEY: 'k' })).available()).toContain('gemini');
    const { problems } = readGeminiConfig({
      GEMINI_API_KEY: 'k',
      GEMINI_LIVE_URL: 'https://example.com/x',
      GEMINI_MODEL: 'No Such Model',
      GEMINI_VOICE: '1',
      GEMINI_CONNECT_TIMEOUT_MS: '5s',
      GEMINI_INTERRUPT_NOTE: 'maybe',
    });
    expect(problems).toHaveLength(5);
    expect(readGeminiConfig({ GEMINI_API_KEY: 'k', GEMINI_LIVE_URL: 'wss://h/p?key=abc' }).problems[0]).toMatch(/must not carry the key/);
    expect(readGeminiConfig({ GEMINI_API_KEY: 'k', GEMINI_MODEL: 'models/gemini-x' }).config!.model).toBe('gemini-x');
    expect(readGeminiConfig({ GEMINI_API_KEY: 'k' }).config!.model).toBe('gemini-3.8-live');
    expect(readGeminiConfig({ GEMINI_API_KEY: 'k', GEMINI_MODEL: 'gemini-2.5-flash-native-audio-preview-12-2025' }).config!.model).toBe('gemini-2.5-flash-native-audio-preview-12-2025');
    expect(() => createAgentRegistry(loadConfig({ GEMINI_API_KEY: 'k', GEMINI_VOICE: '!' }))).toThrow(/GEMINI_VOICE/);
  });

  it('parses Durations, checks audio parts, and lists unknown keys beside known ones', () => {
    expect(parseDurationMs('10s')).toBe(10_000);
    expect(parseDurationMs('1.5s')).toBe(1500);
    expect(parseDurationMs({ seconds: '2', nanos: 500_000_000 })).toBe(2500);
    expect(parseDurationMs('soon')).toBeUndefined();
    expect(decodeInlineAudio({ mimeType: 'audio/pcm;rate=24000', data: 'AAEC' })).toBe('inlineData of 3 bytes: not whole 16-bit samples');
    expect(decodeInlineAudio({ mimeType: 'audio/pcm', data: 'AQACAA==' })).toEqual(new Int16Array([1, 2]));
    expect(decodeInlineAudio({ mimeType: 'audio/pcm;rate=16000', data: 'AQACAA==' })).toMatch(/rate "16000"/);
    expect(decodeInlineAudio({ mimeType: 'audio/pcm;rate=24000', data: 'AQ@CAA==' })).toMatch(/not base64/);
    const r = parseServerMessage('{"serverContent":{"turnComplete":true,"newField2027":1},"extra":1}');
    expect(r.ok && r.message.problems).toEqual(['unknown key "extra"']);
    expect(r.ok && r.message.serverContent!.turnComplete).toBe(true);
    expect(parseServerMessage('[1]')).toEqual({ ok: false, detail: 'not a JSON object' });
    expect(parseServerMessage('{"bogus":1}').ok).toBe(false);
  });
});
