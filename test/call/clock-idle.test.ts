/**
 * A call is on the shared 20 ms clock only while it has work for it (a real bridge: the
 * CallManager, fastify, ws; a raw WebSocket client as Twilio): agent audio that did not
 * all fit under the playout lead puts it on the clock until the last frame has gone out,
 * and a caller frame held by the jitter buffer for a gap puts it on until the frame is
 * released on its deadline. Caller frames that arrive in order and a silent agent leave
 * it off — no work per call per tick. The clock must still release what it holds: the
 * gap test fails if a held frame does not wake the call.
 */
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { AgentSession, ULAW_8K, type AgentFactory, type AudioFormat } from '../../src/agents/agent.js';
import { mediaText, startText } from '../../bench/bench-call.js';
import { BridgeError, ErrorCodes } from '../../src/errors.js';
import { startMetricsBridge, type MetricsBridge } from '../metrics/harness.js';

class QuietAgent extends AgentSession {
  readonly outputFormat: AudioFormat = ULAW_8K;
  readonly hasVad = true;
  samples = 0;
  #failed = false;
  constructor(
    readonly inputFormat: AudioFormat,
    /** Fails (fatally, synchronously) when this many samples have come. */
    readonly failAt = Infinity,
  ) {
    super();
  }
  async connect(): Promise<void> {}
  sendAudio(d: Int16Array | Uint8Array): void {
    this.samples += d.length;
    if (this.samples < this.failAt || this.#failed) return;
    this.#failed = true;
    this.emitEvent({ type: 'error', error: new BridgeError(ErrorCodes.AGENT_SERVICE, 'gone'), fatal: true });
  }
  speak(ms: number): void {
    this.emitEvent({ type: 'audio', data: new Uint8Array(ms * 8).fill(0x2a), sampleRateHz: 8000, responseId: 'r1' });
    this.emitEvent({ type: 'responseDone', responseId: 'r1' });
  }
  interrupt(): void {}
  sendDtmf(): void {}
  async close(): Promise<void> {}
}

let bridge: MetricsBridge | undefined;
let twilio: WebSocket | undefined;
afterEach(async () => {
  twilio?.terminate();
  await bridge?.close();
  bridge = twilio = undefined;
});

/** Polls a state (not a duration): resolves when `cond` holds, fails after `timeoutMs`. */
async function until(cond: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function call(inputFormat: AudioFormat, failAt?: number) {
  const agents: QuietAgent[] = [];
  const factory: AgentFactory = { name: 'quiet', available: true, create: () => (agents.push(new QuietAgent(inputFormat, failAt)), agents.at(-1)!) };
  const b = (bridge = await startMetricsBridge({}, [factory]));
  const ws = (twilio = new WebSocket(b.streamUrl));
  let agentBytes = 0;
  ws.on('message', (data) => {
    const m = JSON.parse(data.toString()) as { event: string; media?: { payload: string } };
    if (m.event === 'media') agentBytes += Buffer.from(m.media!.payload, 'base64').length;
  });
  await new Promise((r, j) => ws.once('open', r).once('error', j));
  const streamSid = 'MZ' + '1'.repeat(32);
  const start = JSON.parse(startText(streamSid, 'CA' + '2'.repeat(32))) as { start: { customParameters: Record<string, string> } };
  start.start.customParameters = { agent: 'quiet' };
  ws.send(JSON.stringify(start));
  await until(() => b.calls.session('CA' + '2'.repeat(32))?.state === 'streaming', 'the call to stream');
  return { b, ws, streamSid, agent: agents[0]!, agentBytes: () => agentBytes, onClock: () => b.calls.clock.stats().subscribers };
}

describe('a call on the clock only while it has work', () => {
  it('μ-law call: caller frames in order and a silent agent cost no tick; agent audio beyond the lead is sent by the clock, then the call is off it again', async () => {
    const c = await call(ULAW_8K);
    for (let k = 1; k <= 25; k++) c.ws.send(mediaText(c.streamSid, k));
    await until(() => c.agent.samples === 25 * 160, 'the caller frames at the agent');
    expect(c.onClock()).toBe(0);

    // 3 s at once: the 2 s lead goes out now, the last second only on the clock.
    c.agent.speak(3000);
    expect(c.onClock()).toBe(1);
    await until(() => c.agentBytes() === 3000 * 8, 'all 3 s of agent audio at Twilio');
    await until(() => c.onClock() === 0, 'the call off the clock once its queue is empty');

    for (let k = 26; k <= 50; k++) c.ws.send(mediaText(c.streamSid, k));
    await until(() => c.agent.samples === 50 * 160, 'the later caller frames at the agent');
    expect(c.onClock()).toBe(0);
  });

  it('PCM call: a frame held for a gap wakes the call, and the clock releases it on its deadline with the gap concealed — no later caller frame needed', async () => {
    const c = await call({ encoding: 'pcm16', sampleRateHz: 16_000 });
    for (let k = 1; k <= 5; k++) c.ws.send(mediaText(c.streamSid, k));
    await until(() => c.agent.samples === 5 * 320, 'five frames at the agent');
    expect(c.onClock()).toBe(0);
    // Frame 6 never comes; 7 waits for it, then goes with 6 concealed.
    c.ws.send(mediaText(c.streamSid, 7));
    await until(() => c.agent.samples === 7 * 320, 'frame 7 and the concealed frame 6 at the agent');
    await until(() => c.onClock() === 0, 'the call off the clock once nothing is held');
  });

  it('PCM call whose agent fails while taking a frame: the call ends with the agent error and is off the clock', async () => {
    const c = await call({ encoding: 'pcm16', sampleRateHz: 16_000 }, 3 * 320);
    for (let k = 1; k <= 3; k++) c.ws.send(mediaText(c.streamSid, k));
    const [record] = await c.b.endedCount(1);
    expect(record!.endReason).toBe('agent-error:BRIDGE_ERR_AGENT_SERVICE');
    expect(c.onClock()).toBe(0);
    expect(c.agent.samples).toBeLessThanOrEqual(3 * 320); // nothing reached the failed agent
  });
});
