/**
 * The agent contract: one suite every adapter runs against its fake service
 * (a fake speaking its documented wire protocol). An adapter's test file calls
 *
 *   runAgentContract({ name: 'openai', startFake: () => startFakeOpenAi(), createFactory: (env) => createOpenAiAgentFactory(env) })
 *
 * and the suite checks what the call core relies on, through real sockets on
 * 127.0.0.1: connect, caller audio in the declared format reaching the service,
 * the service's audio reaching us in the declared format and tagged by response,
 * interruption both ways (with the heard position), DTMF, close, and the faults
 * (refused connect, garbage frames, a socket that stops answering, mid-call close).
 */
import { describe, expect, it } from 'vitest';
import type { AgentAudio, AgentFactory, AgentSession, AudioFormat } from '../../src/agents/agent.js';
import { BridgeError } from '../../src/errors.js';
import { on } from './agent-events.js';

/** The fake side of a provider, as the contract drives it. */
export interface FakeService {
  /** Env vars that point the adapter at this fake (API key, URL override …). */
  readonly env: Record<string, string>;
  /** Make the service speak: it sends `ms` of agent audio for a new response in its wire format, then ends the response. */
  speak(ms: number): Promise<void>;
  /** Make the service report that the caller started talking (its VAD / interruption event). */
  interruptFromService(): Promise<void>;
  /** What the service received so far. */
  received(): {
    /** Ms of caller audio received (decoded per the negotiated input format). */
    audioMs: number;
    /** Barge-ins the adapter reported to the service (truncate / cancel / interrupt messages); heardMs where the protocol carries it. */
    interruptions: { heardMs?: number }[];
    /** DTMF digits as the service saw them (as text, an event, or a tool result: whatever the adapter maps DTMF to). */
    dtmf: string[];
    /** Whether the adapter closed its socket. */
    closed: boolean;
  };
  /** Fault injection for the NEXT connection (refuse) or the current one. */
  fault(kind: 'refuse-next' | 'garbage' | 'stop-answering' | 'close-mid-call' | 'stop-reading' | 'resume-reading'): Promise<void>;
  close(): Promise<void>;
}

export interface AgentUnderTest {
  name: string;
  startFake(): Promise<FakeService>;
  /** The adapter's factory configured from env (the fake's env merged in). */
  createFactory(env: Record<string, string>): AgentFactory;
  /** Agent options for the session (webhook query parameters), if any. */
  parameters?: Record<string, string>;
  /** Whether the service can report caller speech itself (all real ones do). */
  hasVad?: boolean;
  /** Longest a test may wait for a fault to surface (a socket that stops answering). Default 8000. */
  faultTimeoutMs?: number;
  /** Env for the dead-peer faults only (a keepalive short enough to notice within faultTimeoutMs). */
  faultEnv?: Record<string, string>;
}

function samplesPerMs(f: AudioFormat): number {
  return f.sampleRateHz / 1000;
}

/** 20 ms of a 440 Hz tone in the session's input format. */
function callerFrame(f: AudioFormat, n: number): Int16Array | Uint8Array {
  const len = Math.round(20 * samplesPerMs(f));
  if (f.encoding === 'ulaw') return new Uint8Array(len).fill(n % 2 ? 0x9f : 0x1f);
  const a = new Int16Array(len);
  for (let i = 0; i < len; i++) a[i] = Math.round(6000 * Math.sin((2 * Math.PI * 440 * (n * len + i)) / f.sampleRateHz));
  return a;
}

/** Each chunk at the rate it says (μ-law: one byte per sample at 8 kHz). */
function audioMs(chunks: AgentAudio[]): number {
  let ms = 0;
  for (const c of chunks) ms += (c.data.length * 1000) / c.sampleRateHz;
  return ms;
}

async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * A connected session whose service stops reading: caller audio fills the kernel's buffers and
 * the socket's bound, then exactly the frames past it are dropped and counted
 * (callerAudioDroppedMs), none queued; once the service reads, the backlog and new audio arrive.
 */
export async function expectDroppedWhileNotReading(session: AgentSession, fake: Pick<FakeService, 'fault' | 'received'>): Promise<void> {
  await fake.fault('stop-reading');
  const ms = 20;
  let n = 0;
  while (session.callerAudioDroppedMs === 0 && n < 100_000) {
    session.sendAudio(callerFrame(session.inputFormat, n++));
    if (n % 200 === 0) await new Promise((r) => setImmediate(r)); // each batch's writes go
  }
  expect(session.callerAudioDroppedMs).toBeCloseTo(ms, 6); // the first frame over the bound, nothing before
  for (let k = 0; k < 10; k++) session.sendAudio(callerFrame(session.inputFormat, n + k));
  expect(session.callerAudioDroppedMs).toBeCloseTo(11 * ms, 6); // still not reading: all dropped, none queued
  const taken = (n - 1) * ms;
  await fake.fault('resume-reading');
  await waitFor(() => fake.received().audioMs >= taken - 1, 20_000, 'the backlog at the service');
  expect(fake.received().audioMs).toBeCloseTo(taken, 0);
  for (let k = 0; k < 5; k++) session.sendAudio(callerFrame(session.inputFormat, k));
  await waitFor(() => fake.received().audioMs >= taken + 5 * ms - 1, 10_000, 'audio after the service reads again');
}

export function runAgentContract(a: AgentUnderTest): void {
  describe(`agent contract: ${a.name}`, () => {
    async function open(fake: FakeService, env: Record<string, string> = {}): Promise<{ session: AgentSession; audio: AgentAudio[]; errors: BridgeError[]; events: string[] }> {
      const factory = a.createFactory({ ...fake.env, ...env });
      expect(factory.name).toBe(a.name);
      expect(factory.available).toBe(true);
      const session = factory.create({ callSid: 'CA' + '0'.repeat(32), parameters: a.parameters ?? {} });
      const audio: AgentAudio[] = [];
      const errors: BridgeError[] = [];
      const events: string[] = [];
      on(session, 'audio', (x) => audio.push({ data: x.data.slice(), sampleRateHz: x.sampleRateHz, responseId: x.responseId }));
      on(session, 'error', ({ error: e }) => errors.push(e));
      on(session, 'interruption', () => events.push('interruption'));
      on(session, 'responseDone', () => events.push('responseDone'));
      on(session, 'closed', () => events.push('closed'));
      await session.connect(AbortSignal.timeout(5000));
      return { session, audio, errors, events };
    }

    it('connects, and caller audio in its declared input format reaches the service', async () => {
      const fake = await a.startFake();
      try {
        const { session } = await open(fake);
        expect(session.hasVad).toBe(a.hasVad ?? true);
        for (let n = 0; n < 50; n++) session.sendAudio(callerFrame(session.inputFormat, n));
        await waitFor(() => fake.received().audioMs >= 1000, 3000, '1 s of caller audio at the service');
        expect(fake.received().audioMs).toBeLessThanOrEqual(1000 + 1);
        await session.close('test');
      } finally {
        await fake.close();
      }
    });

    it("the service's audio arrives in the declared output format, tagged by response, then responseDone", async () => {
      const fake = await a.startFake();
      try {
        const { session, audio, events } = await open(fake);
        await fake.speak(600);
        await waitFor(() => events.includes('responseDone'), 3000, 'responseDone');
        const ms = audioMs(audio);
        // pcm16 at any rate (the call resamples); μ-law only at 8 kHz.
        for (const x of audio) if (session.outputFormat.encoding === 'ulaw') expect(x.sampleRateHz).toBe(8000);
        expect(ms).toBeGreaterThanOrEqual(600 - 20);
        expect(ms).toBeLessThanOrEqual(600 + 20);
        const ids = new Set(audio.map((x) => x.responseId));
        expect(ids.size).toBe(1);
        for (const x of audio) expect(x.data).toBeInstanceOf(session.outputFormat.encoding === 'pcm16' ? Int16Array : Uint8Array);
        await fake.speak(200);
        await waitFor(() => events.filter((e) => e === 'responseDone').length === 2, 3000, 'second responseDone');
        expect(new Set(audio.map((x) => x.responseId)).size).toBe(2);
        await session.close('test');
      } finally {
        await fake.close();
      }
    });

    it('barge-in both ways: the service reports caller speech; interrupt({ heardMs }) reaches the service', async () => {
      const fake = await a.startFake();
      try {
        const { session, events } = await open(fake);
        await fake.speak(2000);
        await fake.interruptFromService();
        await waitFor(() => events.includes('interruption'), 3000, 'interruption event');
        session.interrupt({ heardMs: 320 });
        await waitFor(() => fake.received().interruptions.length > 0, 3000, 'the interruption at the service');
        const heard = fake.received().interruptions[0]!.heardMs;
        if (heard !== undefined) expect(heard).toBe(320);
        await session.close('test');
      } finally {
        await fake.close();
      }
    });

    it('DTMF reaches the service', async () => {
      const fake = await a.startFake();
      try {
        const { session } = await open(fake);
        session.sendDtmf('5');
        await waitFor(() => fake.received().dtmf.includes('5'), 3000, 'the digit at the service');
        await session.close('test');
      } finally {
        await fake.close();
      }
    });

    it('close() is idempotent, closes the socket and emits closed once', async () => {
      const fake = await a.startFake();
      try {
        const { session, events } = await open(fake);
        await Promise.all([session.close('one'), session.close('two')]);
        await session.close('three');
        await waitFor(() => fake.received().closed, 3000, 'the service to see the close');
        expect(events.filter((e) => e === 'closed').length).toBe(1);
        session.sendAudio(callerFrame(session.inputFormat, 0)); // ignored, never throws
      } finally {
        await fake.close();
      }
    });

    it('a refused connection rejects connect() with a typed, retryable error', async () => {
      const fake = await a.startFake();
      try {
        await fake.fault('refuse-next');
        const factory = a.createFactory(fake.env);
        const session = factory.create({ callSid: 'CA' + '1'.repeat(32), parameters: a.parameters ?? {} });
        on(session, 'error', () => undefined);
        const err = await session.connect(AbortSignal.timeout(5000)).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(BridgeError);
        expect(['BRIDGE_ERR_AGENT_CONNECT', 'BRIDGE_ERR_AGENT_AUTH', 'BRIDGE_ERR_AGENT_SERVICE']).toContain((err as BridgeError).code);
        await session.close('test');
      } finally {
        await fake.close();
      }
    });

    it('garbage from the service is a counted protocol error, never audio, and the session goes on', async () => {
      const fake = await a.startFake();
      try {
        const { session, audio, errors, events } = await open(fake);
        await fake.fault('garbage');
        await waitFor(() => errors.some((e) => e.code === 'BRIDGE_ERR_AGENT_PROTOCOL' || e.code === 'BRIDGE_ERR_AGENT_AUDIO_FORMAT'), 3000, 'a protocol error');
        expect(audio.length).toBe(0);
        await fake.speak(200);
        await waitFor(() => events.includes('responseDone'), 3000, 'audio after garbage');
        expect(audio.length).toBeGreaterThan(0);
        await session.close('test');
      } finally {
        await fake.close();
      }
    });

    it('caller audio a service does not read is dropped past the send bound and counted (callerAudioDroppedMs), never queued without bound; it flows again once the service reads', async () => {
      const fake = await a.startFake();
      try {
        const { session } = await open(fake);
        await expectDroppedWhileNotReading(session, fake);
        await session.close('test');
      } finally {
        await fake.close();
      }
    }, 60_000);

    it('a service that closes mid-call or stops answering ends in a typed error or a recovered session, within a bounded time', async () => {
      for (const kind of ['close-mid-call', 'stop-answering'] as const) {
        const fake = await a.startFake();
        try {
          const { session, errors, events } = await open(fake, a.faultEnv);
          await fake.fault(kind);
          // Either the adapter recovers (reconnects and can speak again) or it reports a fatal typed error and closes.
          const recovered = async () => {
            await fake.speak(100);
            return events.includes('responseDone');
          };
          await waitFor(() => errors.length > 0 || events.includes('closed'), a.faultTimeoutMs ?? 8000, `${kind} to surface`).catch(async () => {
            expect(await recovered()).toBe(true);
          });
          for (const e of errors) expect(e).toBeInstanceOf(BridgeError);
          await session.close('test');
        } finally {
          await fake.close();
        }
      }
    });
  });
}
