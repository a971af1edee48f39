/**
 * The echo agent, driven like the bridge drives it: caller audio frame by frame
 * (time advances by feeding frames), events awaited, emission timers either real
 * (awaited through the agent's own events) or vitest fake timers.
 *
 * "The caller's utterance" is cut by an independent EnergyVad run over the same
 * signal with the same settings: samples [speechStartSample, speechEndSample).
 * Its duration is also checked against the clip's energy (order-status: voiced
 * from 40 ms to 5360 ms, see test/audio/vad.test.ts) via the caller transcript.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { EchoAgentSession, createEchoAgentFactory, echoFormatFromParameters, type EchoAgentOptions } from '../../src/agents/echo/echo-agent.js';
import type { AgentSession } from '../../src/agents/agent.js';
import { EnergyVad } from '../../src/audio/vad.js';
import { loadConfig } from '../../src/config.js';
import { isBridgeError } from '../../src/errors.js';
import { readUlawFixture } from '../helpers/read-fixture.js';
import { next, on } from './agent-events.js';
import type { AgentEventType } from '../../src/agents/agent.js';

const config = loadConfig({});
const orderStatus = readUlawFixture('caller-order-status.8k-ulaw.wav');
const bargeIn = readUlawFixture('caller-barge-in.8k-ulaw.wav');

function concat<T extends Int16Array | Uint8Array>(...parts: T[]): T {
  const first = parts[0]!;
  const out = new (first.constructor as new (n: number) => T)(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
const silence = (ms: number, rate = 8000) => new Int16Array((rate * ms) / 1000);
const ulawSilence = (ms: number) => new Uint8Array(8 * ms).fill(0xff);
const hold = (x: Int16Array, factor: number) => Int16Array.from({ length: x.length * factor }, (_, i) => x[Math.floor(i / factor)]!);
const repeat = (x: Int16Array, times: number) => concat(...Array.from({ length: times }, () => x));

/** The utterances an EnergyVad with the echo agent's settings finds in `pcm` (the whole stream the agent saw). */
function vadUtterances(pcm: Int16Array, rate = 8000): Array<{ start: number; end: number }> {
  const vad = new EnergyVad({ sampleRateHz: rate, thresholdDbfs: config.echo.vadThresholdDbfs, silenceMs: config.echo.silenceMs });
  const found: Array<{ start: number; end: number }> = [];
  for (let at = 0; at + vad.frameSamples <= pcm.length; at += vad.frameSamples) {
    if (vad.process(pcm.subarray(at, at + vad.frameSamples)) === 'speechEnd') found.push({ start: vad.speechStartSample, end: vad.speechEndSample });
  }
  return found;
}
function vadUtterance(pcm: Int16Array, rate = 8000): { start: number; end: number } {
  const first = vadUtterances(pcm, rate)[0];
  if (first === undefined) throw new Error('no utterance');
  return first;
}

/** Feeds audio in chunks of `chunkSamples` (default: one 20 ms frame). */
function feed(session: AgentSession, audio: Int16Array | Uint8Array, chunkSamples = session.inputFormat.sampleRateHz / 50): void {
  for (let at = 0; at < audio.length; at += chunkSamples) session.sendAudio(audio.subarray(at, at + chunkSamples));
}

type Logged =
  | { type: 'audio'; data: Int16Array | Uint8Array; responseId: string | undefined }
  | { type: 'interruption' }
  | { type: 'responseDone'; responseId: string | undefined }
  | { type: 'transcript'; role: string; text: string; final: boolean }
  | { type: 'end'; reason: string }
  | { type: 'error'; code: string; fatal: boolean }
  | { type: 'closed'; reason: string };

function record(session: AgentSession): Logged[] {
  const log: Logged[] = [];
  on(session, 'audio', (a) => log.push({ type: 'audio', data: a.data, responseId: a.responseId }));
  on(session, 'interruption', () => log.push({ type: 'interruption' }));
  on(session, 'responseDone', (d) => log.push({ type: 'responseDone', responseId: d.responseId }));
  on(session, 'transcript', (t) => log.push({ type: 'transcript', role: t.role, text: t.text, final: t.final }));
  on(session, 'end', (e) => log.push({ type: 'end', reason: e.reason }));
  on(session, 'error', ({ error: e, ...info }) => log.push({ type: 'error', code: e.code, fatal: info.fatal }));
  on(session, 'closed', (c) => log.push({ type: 'closed', reason: c.reason }));
  return log;
}

/** Waits for an event, bounded (a missing event fails the test instead of hanging it). */
function waitFor<K extends AgentEventType>(session: AgentSession, event: K, timeoutMs = 10_000): Promise<unknown[]> {
  return next(session, event, timeoutMs).then((e) => [e]);
}
async function waitForResponseDone(session: AgentSession, responseId: string): Promise<void> {
  for (;;) {
    const [d] = (await waitFor(session, 'responseDone')) as [{ responseId?: string }];
    if (d.responseId === responseId) return;
  }
}

const audioOf = (log: Logged[], responseId?: string) =>
  log.filter((e): e is Extract<Logged, { type: 'audio' }> => e.type === 'audio' && (responseId === undefined || e.responseId === responseId));
const joined = (log: Logged[], responseId: string) => concat(...audioOf(log, responseId).map((e) => e.data));
const transcripts = (log: Logged[]) => log.filter((e) => e.type === 'transcript').map((e) => (e.type === 'transcript' ? `${e.role}: ${e.text}` : ''));

function create(parameters: Record<string, string> = {}): EchoAgentSession {
  return createEchoAgentFactory(config).create({ callSid: 'CA00000000000000000000000000000000', parameters }) as EchoAgentSession;
}

afterEach(() => {
  vi.useRealTimers();
});

describe('echo agent factory', () => {
  it("is named 'echo', always available, PCM16 8 kHz by default, other formats by parameter", () => {
    const factory = createEchoAgentFactory(config);
    expect(factory.name).toBe('echo');
    expect(factory.available).toBe(true);
    const s = create();
    expect(s).toBeInstanceOf(EchoAgentSession);
    expect(s.inputFormat).toEqual({ encoding: 'pcm16', sampleRateHz: 8000 });
    expect(s.outputFormat).toEqual(s.inputFormat);
    expect(s.hasVad).toBe(true);
    expect(create({ rate: '16000' }).inputFormat).toEqual({ encoding: 'pcm16', sampleRateHz: 16000 });
    expect(create({ rate: '24000' }).outputFormat).toEqual({ encoding: 'pcm16', sampleRateHz: 24000 });
    expect(create({ format: 'ulaw' }).inputFormat).toEqual({ encoding: 'ulaw', sampleRateHz: 8000 });
    expect(echoFormatFromParameters({ format: 'pcm16', rate: '48000' })).toEqual({ encoding: 'pcm16', sampleRateHz: 48000 });
  });

  it('rejects bad format parameters with stable codes', () => {
    const code = (p: Record<string, string>) => {
      try {
        echoFormatFromParameters(p);
        return 'no error';
      } catch (e) {
        return isBridgeError(e) ? e.code : String(e);
      }
    };
    expect(code({ rate: '11025' })).toBe('BRIDGE_ERR_DSP_RATE');
    expect(code({ rate: '96000' })).toBe('BRIDGE_ERR_DSP_RATE');
    expect(code({ rate: '16k' })).toBe('BRIDGE_ERR_DSP_RATE');
    expect(code({ format: 'opus' })).toBe('BRIDGE_ERR_DSP_ARGUMENT');
    expect(code({ format: 'ulaw', rate: '16000' })).toBe('BRIDGE_ERR_DSP_ARGUMENT');
  });
});

describe('echo agent session', () => {
  it('connect() resolves at once, and rejects with an AbortError if the signal is already aborted', async () => {
    const s = create();
    await expect(s.connect(new AbortController().signal)).resolves.toBeUndefined();
    await expect(s.connect(AbortSignal.abort())).rejects.toMatchObject({ name: 'AbortError' });
    await s.close('test');
  });

  it('replays the caller utterance sample-exact, in 100 ms chunks faster than real time, with transcripts and responseDone', async () => {
    const s = create();
    await s.connect(new AbortController().signal);
    const log = record(s);
    const times: number[] = [];
    on(s, 'audio', () => times.push(performance.now()));
    const pcm = concat(orderStatus.pcm, silence(1000));
    feed(s, pcm);
    await waitForResponseDone(s, 'echo-1');

    const { start, end } = vadUtterance(pcm);
    expect([start / 8, end / 8]).toEqual([40, 5360]); // the clip's energy boundaries (vad.test.ts)
    const replay = joined(log, 'echo-1');
    expect(replay).toBeInstanceOf(Int16Array);
    expect(replay).toEqual(pcm.subarray(start, end));

    const chunks = audioOf(log);
    expect(chunks.every((c) => c.responseId === 'echo-1')).toBe(true);
    expect(chunks.slice(0, -1).every((c) => c.data.length === 800)).toBe(true);
    expect(chunks).toHaveLength(Math.ceil((end - start) / 800));
    // 5.32 s of audio went out in well under half of that
    expect(times.at(-1)! - times[0]!).toBeLessThan(5320 / 2);

    expect(transcripts(log)).toEqual(['caller: [utterance 1: 5.32 s]', 'agent: [echo 1: 5.32 s]']);
    expect(log.filter((e) => e.type === 'transcript').every((e) => e.type === 'transcript' && e.final)).toBe(true);
    const types = log.map((e) => e.type);
    expect(types.indexOf('transcript')).toBeLessThan(types.indexOf('audio'));
    expect(types.at(-1)).toBe('responseDone');
    expect(log.filter((e) => e.type === 'responseDone')).toEqual([{ type: 'responseDone', responseId: 'echo-1' }]);
    expect(log.some((e) => e.type === 'interruption' || e.type === 'error')).toBe(false);
    await s.close('test');
  });

  it('ulaw: passes the caller μ-law bytes back bit-exact (the no-DSP path)', async () => {
    const s = create({ format: 'ulaw' });
    const log = record(s);
    const ulaw = concat(orderStatus.ulaw, ulawSilence(1000));
    feed(s, ulaw);
    await waitForResponseDone(s, 'echo-1');
    const { start, end } = vadUtterance(concat(orderStatus.pcm, silence(1000)));
    const replay = joined(log, 'echo-1');
    expect(replay).toBeInstanceOf(Uint8Array);
    expect(replay).toEqual(ulaw.subarray(start, end));
    await s.close('test');
  });

  it.each([16000, 24000])('PCM16 at %i Hz: the reply is the utterance at that rate', async (rate) => {
    vi.useFakeTimers();
    const s = create({ rate: String(rate) });
    const log = record(s);
    const pcm = hold(concat(orderStatus.pcm, silence(1000)), rate / 8000);
    feed(s, pcm);
    await vi.advanceTimersByTimeAsync(2000);
    const { start, end } = vadUtterance(pcm, rate);
    expect(end - start).toBe((5320 * rate) / 1000);
    expect(joined(log, 'echo-1')).toEqual(pcm.subarray(start, end));
    expect(audioOf(log)[0]!.data.length).toBe(rate / 10);
    expect(log.at(-1)).toEqual({ type: 'responseDone', responseId: 'echo-1' });
    await s.close('test');
  });

  it('takes caller audio in any chunking (37 ms pieces, or all at once) with the same result', async () => {
    vi.useFakeTimers();
    const pcm = concat(orderStatus.pcm, silence(1000));
    const { start, end } = vadUtterance(pcm);
    for (const chunkSamples of [296, 1000, pcm.length]) {
      const s = create();
      const log = record(s);
      feed(s, pcm, chunkSamples);
      await vi.advanceTimersByTimeAsync(2000);
      expect(joined(log, 'echo-1')).toEqual(pcm.subarray(start, end));
      await s.close('test');
    }
  });

  it('barge-in: caller speech while the reply is being emitted → interruption, and the reply stops', async () => {
    const s = create();
    const log = record(s);
    feed(s, concat(orderStatus.pcm, silence(1000)));
    await waitFor(s, 'audio');
    expect(s.responding).toBe(true);

    // the caller talks over the reply: 100 ms is enough for the 60 ms onset
    feed(s, bargeIn.pcm.subarray(0, 800));
    expect(s.responding).toBe(false); // emission stopped at once
    await waitFor(s, 'interruption');
    s.interrupt({ heardMs: 120 }); // what the bridge does on 'interruption'
    expect(s.lastHeardMs).toBe(120);

    // the rest of the barge-in utterance, then silence: it is answered as echo-2
    feed(s, concat(bargeIn.pcm.subarray(800), silence(1000)));
    await waitForResponseDone(s, 'echo-2');

    const iInterruption = log.findIndex((e) => e.type === 'interruption');
    expect(log.filter((e) => e.type === 'interruption')).toHaveLength(1);
    expect(log.slice(iInterruption).some((e) => e.type === 'audio' && e.responseId === 'echo-1')).toBe(false);
    expect(log.some((e) => e.type === 'responseDone' && e.responseId === 'echo-1')).toBe(false);
    const echo1 = joined(log, 'echo-1');
    expect(echo1.length).toBeGreaterThan(0);
    expect(echo1.length).toBeLessThan(5320 * 8);

    // echo-2 is the caller's barge-in utterance, cut where a VAD over the whole stream the agent heard cuts it
    // (the clip starts mid-frame: the order-status clip is not a whole number of 20 ms frames)
    const stream = concat(orderStatus.pcm, silence(1000), bargeIn.pcm, silence(1000));
    const utterances = vadUtterances(stream);
    expect(utterances).toHaveLength(2);
    const { start, end } = utterances[1]!;
    const bargeInAt = orderStatus.pcm.length + 8000;
    expect(Math.abs(start - bargeInAt)).toBeLessThan(160);
    expect(joined(log, 'echo-2')).toEqual(stream.subarray(start, end));
    expect(transcripts(log)).toEqual(['caller: [utterance 1: 5.32 s]', 'agent: [echo 1: 5.32 s]', `caller: [utterance 2: ${((end - start) / 8000).toFixed(2)} s]`, `agent: [echo 2: ${((end - start) / 8000).toFixed(2)} s]`]);
    await s.close('test');
  });

  it('barge-in also while an emitted reply may still be playing (caller-sample clock), not after it has played', async () => {
    vi.useFakeTimers();
    const s = create();
    const log = record(s);
    feed(s, concat(orderStatus.pcm, silence(1000)));
    await vi.advanceTimersByTimeAsync(2000);
    expect(log.at(-1)).toEqual({ type: 'responseDone', responseId: 'echo-1' });
    // all 5.32 s went out in ~1.1 s; the caller has heard almost none of it yet
    feed(s, concat(bargeIn.pcm, silence(1000)));
    await vi.advanceTimersByTimeAsync(1000);
    expect(log.filter((e) => e.type === 'interruption')).toHaveLength(1);
    expect(log.at(-1)).toEqual({ type: 'responseDone', responseId: 'echo-2' });

    // echo-2 (~2.1 s) plays out while the caller is silent for 3 s (> length + 0.5 s slack): speaking then is no barge-in
    const before = log.length;
    feed(s, silence(3000));
    feed(s, concat(bargeIn.pcm, silence(1000)));
    await vi.advanceTimersByTimeAsync(1000);
    const after = log.slice(before);
    expect(after.some((e) => e.type === 'interruption')).toBe(false);
    expect(after.at(-1)).toEqual({ type: 'responseDone', responseId: 'echo-3' });
    await s.close('test');
  });

  it('interrupt({ heardMs }) from the bridge stops the reply mid-way and is recorded', async () => {
    vi.useFakeTimers();
    const s = create();
    const log = record(s);
    feed(s, concat(orderStatus.pcm, silence(1000)));
    await vi.advanceTimersByTimeAsync(60);
    expect(audioOf(log)).toHaveLength(3);
    s.interrupt({ heardMs: 240 });
    expect(s.lastHeardMs).toBe(240);
    expect(s.responding).toBe(false);
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(5000);
    expect(audioOf(log)).toHaveLength(3);
    expect(log.some((e) => e.type === 'responseDone' || e.type === 'interruption')).toBe(false);
    await s.close('test');
  });

  it("DTMF: '#' asks to end the call (once), other digits are recorded", async () => {
    const s = create();
    const log = record(s);
    for (const d of ['1', '2', '*', 'x', '', 'a']) s.sendDtmf(d);
    expect(s.digits).toBe('12*A');
    s.sendDtmf('#');
    expect(log.some((e) => e.type === 'end')).toBe(false); // not re-entrant: emitted on a microtask
    await waitFor(s, 'end');
    s.sendDtmf('#');
    await Promise.resolve();
    expect(log.filter((e) => e.type === 'end')).toEqual([{ type: 'end', reason: 'caller pressed #' }]);
    expect(s.digits).toBe('12*A');
    await s.close('test');
  });

  it('ends the turn when caller audio stops arriving mid-utterance (an agent must not wait forever for a caller who went silent)', async () => {
    vi.useFakeTimers();
    const s = create();
    const log = record(s);
    const partial = orderStatus.pcm.subarray(0, 16000); // 2 s, the caller still speaking
    feed(s, partial);
    await vi.advanceTimersByTimeAsync(config.echo.silenceMs - 20);
    expect(log).toEqual([]);
    await vi.advanceTimersByTimeAsync(1500);
    const types = log.map((e) => e.type);
    expect(types[0]).toBe('transcript');
    expect(types.at(-1)).toBe('responseDone');
    const replay = joined(log, 'echo-1');
    expect(replay).toEqual(partial.subarray(320, 320 + replay.length)); // from the 40 ms onset
    expect(320 + replay.length).toBeLessThanOrEqual(16000);
    expect(320 + replay.length).toBeGreaterThan(16000 - 8 * config.echo.silenceMs);
    await s.close('test');
  });

  it('bounded: a 60 s monologue keeps only its last maxUtteranceMs', async () => {
    vi.useFakeTimers();
    const s = create();
    const log = record(s);
    const pcm = concat(repeat(orderStatus.pcm, 11), silence(1000)); // 63 s; every pause < silenceMs
    feed(s, pcm);
    const { start, end } = vadUtterance(pcm);
    expect((end - start) / 8000).toBeGreaterThan(60);
    await vi.advanceTimersByTimeAsync(4000);
    const maxSamples = config.echo.maxUtteranceMs * 8;
    const replay = joined(log, 'echo-1');
    expect(replay.length).toBe(maxSamples);
    expect(replay).toEqual(pcm.subarray(end - maxSamples, end));
    expect(transcripts(log)[0]).toBe(`caller: [utterance 1: ${((end - start) / 8000).toFixed(2)} s, last ${(maxSamples / 8000).toFixed(2)} s kept]`);
    await s.close('test');
  });

  it('close() is idempotent, emits closed once, stops timers, and nothing is emitted after it', async () => {
    vi.useFakeTimers();
    const s = create();
    const log = record(s);
    feed(s, concat(orderStatus.pcm, silence(1000)));
    feed(s, bargeIn.pcm.subarray(0, 4000)); // mid-utterance: the inactivity timer is armed
    s.sendDtmf('#'); // queued 'end' must not come out after close
    expect(vi.getTimerCount()).toBeGreaterThan(0);
    const closing = [s.close('caller hung up'), s.close('again')];
    await Promise.all(closing);
    expect(vi.getTimerCount()).toBe(0);
    expect(s.closed).toBe(true);
    const n = log.length;
    expect(log.filter((e) => e.type === 'closed')).toEqual([{ type: 'closed', reason: 'caller hung up' }]);

    feed(s, concat(orderStatus.pcm, silence(1000)));
    s.sendDtmf('#');
    s.interrupt({ heardMs: 5 });
    await vi.advanceTimersByTimeAsync(5000);
    expect(log.length).toBe(n);
    expect(log.some((e) => e.type === 'end' || e.type === 'audio')).toBe(false);
    expect(s.lastHeardMs).toBeUndefined();
    expect(vi.getTimerCount()).toBe(0);
    await expect(s.connect(new AbortController().signal)).rejects.toThrow(/closed/);
  });

  it('leaves no real timers behind after close (process.getActiveResourcesInfo)', async () => {
    const timeouts = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const baseline = timeouts();
    const s = create();
    feed(s, concat(orderStatus.pcm, silence(1000))); // emission interval running
    feed(s, bargeIn.pcm.subarray(0, 4000)); // barge-in: emission stopped, inactivity timer armed
    expect(timeouts()).toBeGreaterThan(baseline);
    await s.close('done');
    expect(timeouts()).toBe(baseline);

    const t = create();
    feed(t, concat(orderStatus.pcm, silence(1000)));
    await waitFor(t, 'audio');
    await t.close('done'); // mid-emission
    expect(timeouts()).toBe(baseline);
  });

  it('never throws on audio of the wrong type: a non-fatal error event instead', async () => {
    const s = create();
    expect(() => s.sendAudio(new Uint8Array(160))).not.toThrow(); // nobody listening: nothing throws
    await Promise.resolve();
    const log = record(s);
    s.sendAudio(new Uint8Array(160));
    await Promise.resolve();
    expect(log).toEqual([{ type: 'error', code: 'BRIDGE_ERR_DSP_ARGUMENT', fatal: false }]);
    await s.close('test');
  });

  it.runIf(typeof (globalThis as { gc?: unknown }).gc === 'function')('sendAudio allocates nothing per frame (pcm16 and μ-law, speech and silence)', async () => {
    const measure = (send: (n: number) => void) => {
      send(50_000); // warm-up
      (globalThis as unknown as { gc: () => void }).gc();
      const before = process.memoryUsage().heapUsed;
      send(100_000);
      return (process.memoryUsage().heapUsed - before) / 100_000;
    };
    // the order-status clip looped: one endless utterance (its pauses are shorter than silenceMs)
    const speech = Array.from({ length: 280 }, (_, f) => orderStatus.pcm.slice(f * 160, f * 160 + 160));
    const speechUlaw = Array.from({ length: 280 }, (_, f) => orderStatus.ulaw.slice(f * 160, f * 160 + 160));
    const zero = new Int16Array(160);
    const speaking = create();
    const quiet = create();
    const ulaw = create({ format: 'ulaw' });
    const r = [
      measure((n) => { for (let i = 0; i < n; i++) speaking.sendAudio(speech[i % 280]!); }),
      measure((n) => { for (let i = 0; i < n; i++) quiet.sendAudio(zero); }),
      measure((n) => { for (let i = 0; i < n; i++) ulaw.sendAudio(speechUlaw[i % 280]!); }),
    ];
    // a boxed double (≥ 12 B) or a closure context (≥ 20 B) per frame would show; allocator noise stays under ~3 B
    expect(r[0]).toBeLessThan(8);
    expect(r[1]).toBeLessThan(8);
    expect(r[2]).toBeLessThan(8);
    expect([speaking.utterances, ulaw.utterances]).toEqual([0, 0]); // still inside the one endless utterance
    await Promise.all([speaking.close('test'), quiet.close('test'), ulaw.close('test')]);
  });

  it('accepts options directly (tuning for tests and the CLI)', async () => {
    vi.useFakeTimers();
    const options: EchoAgentOptions = { chunkMs: 500, chunkIntervalMs: 5, silenceMs: 300 };
    const s = new EchoAgentSession(options);
    const log = record(s);
    const pcm = concat(orderStatus.pcm, silence(1000));
    // silenceMs 300 splits the turn at its 0.38 s pause (3200–3580 ms): the first part ends at 3500 ms
    feed(s, pcm.subarray(0, 3500 * 8));
    await vi.advanceTimersByTimeAsync(200);
    expect(log.at(-1)).toEqual({ type: 'responseDone', responseId: 'echo-1' });
    expect(audioOf(log, 'echo-1')[0]!.data.length).toBe(4000);
    expect(audioOf(log, 'echo-1')).toHaveLength(Math.ceil((3200 - 40) / 500));
    // the second part starts 80 ms later, while echo-1 may still be playing: a barge-in
    feed(s, pcm.subarray(3500 * 8));
    await vi.advanceTimersByTimeAsync(200);
    expect(log.filter((e) => e.type === 'interruption')).toHaveLength(1);
    expect(log.at(-1)).toEqual({ type: 'responseDone', responseId: 'echo-2' });
    expect(joined(log, 'echo-2')).toEqual(pcm.subarray(3580 * 8, 5360 * 8));
    await s.close('test');
  });
});
