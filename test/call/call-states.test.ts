/**
 * A call's states through a real bridge (CallManager, fastify, the simulator as Twilio):
 * an agent that says goodbye and ends the call drains through 'draining' (cause
 * 'goodbye') with its last words heard; an agent that fails drains through 'draining'
 * (cause 'apology'), and from then on no caller audio reaches it; an agent that fails
 * while its goodbye drains changes the cause, and that change is a state event.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { AgentSession, ULAW_8K, type AgentFactory, type AudioFormat } from '../../src/agents/agent.js';
import type { CallState, DrainCause } from '../../src/call/call-session.js';
import { runSimulatedCall } from '../../src/sim/simulator.js';
import { BridgeError, ErrorCodes } from '../../src/errors.js';
import { startMetricsBridge, type MetricsBridge } from '../metrics/harness.js';

/** Speaks one second of μ-law once streaming, then either ends the call or fails. */
class ScriptedAgent extends AgentSession {
  readonly inputFormat: AudioFormat = ULAW_8K;
  readonly outputFormat: AudioFormat = ULAW_8K;
  readonly hasVad = true;
  /** Caller frames received, and how many of them came after the agent failed. */
  frames = 0;
  framesAfterFailure = 0;
  #failed = false;
  constructor(readonly ending: 'goodbye' | 'fail' | 'goodbye-then-fail') {
    super();
  }
  async connect(): Promise<void> {}
  sendAudio(): void {
    this.frames++;
    if (this.#failed) this.framesAfterFailure++;
    // Caller audio still reaches an agent whose goodbye drains (barge-in may cut it short).
    if (this.ending === 'goodbye-then-fail' && this.frames === 20) return this.#fail();
    // Speak once a little caller audio has arrived (the call is streaming by then).
    if (this.frames !== 10) return;
    this.emitEvent({ type: 'audio', data: new Uint8Array(8000).fill(0x2a), sampleRateHz: 8000, responseId: 'bye' });
    this.emitEvent({ type: 'responseDone', responseId: 'bye' });
    if (this.ending === 'fail') this.#fail();
    else this.emitEvent({ type: 'end', reason: 'done talking' });
  }
  #fail(): void {
    this.#failed = true;
    this.emitEvent({ type: 'error', error: new BridgeError(ErrorCodes.AGENT_SERVICE, 'the service went away'), fatal: true });
  }
  interrupt(): void {}
  sendDtmf(): void {}
  async close(reason: string): Promise<void> {
    this.emitEvent({ type: 'closed', reason });
  }
}

let bridge: MetricsBridge | undefined;
afterEach(async () => {
  await bridge?.close();
  bridge = undefined;
});

async function run(ending: 'goodbye' | 'fail' | 'goodbye-then-fail') {
  const agents: ScriptedAgent[] = [];
  const factory: AgentFactory = {
    name: 'scripted',
    available: true,
    create: () => {
      const a = new ScriptedAgent(ending);
      agents.push(a);
      return a;
    },
  };
  bridge = await startMetricsBridge({}, [factory]);
  const b = bridge;
  const states: { state: CallState; cause: DrainCause | undefined }[] = [];
  b.calls.on('callStarted', ({ callSid }: { callSid: string }) => {
    const s = b.calls.session(callSid)!;
    s.on('state', (state) => states.push({ state, cause: s.drainCause }));
  });
  const r = await runSimulatedCall({ url: b.streamUrl, audio: new Uint8Array(8000 * 4).fill(0xff), customParameters: { agent: 'scripted' }, tailMs: 4000, timeoutMs: 30_000 });
  const [record] = await b.endedCount(1);
  return { r, record: record!, states, agent: agents[0]! };
}

describe('call states', () => {
  it("an agent's goodbye: streaming → draining (goodbye) → closing → closed, the goodbye heard in full", async () => {
    const { r, record, states } = await run('goodbye');
    expect(states).toEqual([
      { state: 'connecting', cause: undefined },
      { state: 'streaming', cause: undefined },
      { state: 'draining', cause: 'goodbye' },
      { state: 'closing', cause: undefined },
      { state: 'closed', cause: undefined },
    ]);
    expect(record.endReason).toMatch(/^agent-ended:done talking/);
    expect(r.outcome).toBe('server-closed');
    // The whole second of goodbye played before the close.
    const heard = r.heardSegments.reduce((ms, s) => ms + s.endMs - s.startMs, 0);
    expect(heard).toBeGreaterThanOrEqual(1000);
    expect(r.unplayedBytes).toBe(0);
  });

  it('an agent that fails: draining (apology); no caller audio reaches it afterwards', async () => {
    const { record, states, agent } = await run('fail');
    expect(states.map((s) => s.state)).toEqual(['connecting', 'streaming', 'draining', 'closing', 'closed']);
    expect(states[2]!.cause).toBe('apology');
    expect(record.endReason).toBe(`agent-error:${ErrorCodes.AGENT_SERVICE}`);
    expect(agent.frames).toBeGreaterThanOrEqual(10);
    expect(agent.framesAfterFailure).toBe(0);
  });

  it('an agent that fails while its goodbye drains: draining (goodbye) → draining (apology), nothing more to it', async () => {
    const { record, states, agent } = await run('goodbye-then-fail');
    expect(states).toEqual([
      { state: 'connecting', cause: undefined },
      { state: 'streaming', cause: undefined },
      { state: 'draining', cause: 'goodbye' },
      { state: 'draining', cause: 'apology' },
      { state: 'closing', cause: undefined },
      { state: 'closed', cause: undefined },
    ]);
    expect(record.endReason).toBe(`agent-error:${ErrorCodes.AGENT_SERVICE}`);
    expect(agent.frames).toBeGreaterThanOrEqual(20);
    expect(agent.framesAfterFailure).toBe(0);
  });
});
