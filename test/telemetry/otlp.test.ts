/**
 * OpenTelemetry traces through a real bridge: OTEL_EXPORTER_OTLP_ENDPOINT points at a
 * local collector stub (a real HTTP server decoding OTLP protobuf or JSON), the
 * simulator calls through the bridge, and the stub must receive the call's `call` span
 * with its `turn` spans as children — same trace, parent = the call span, all ended —
 * under a resource named voice-bridge. Every wait is on the spans the stub receives.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentSession, pcm16, type AgentFactory, type AudioFormat } from '../../src/agents/agent.js';
import { BridgeError, ErrorCodes } from '../../src/errors.js';
import { runSimulatedCall } from '../../src/sim/simulator.js';
import { openCallTraces } from '../../src/telemetry/index.js';
import { expectHeardAtClear, getJson, ulawClip, withBridge } from '../bridge/helpers.js';
import { startChildBridge } from '../lifecycle/child-bridge.js';
import { SpanKind, StatusCode, startCollectorStub, type CollectorStub, type ReceivedSpan } from './collector-stub.js';

let stub: CollectorStub;
beforeAll(async () => {
  stub = await startCollectorStub();
});
afterAll(async () => {
  await stub?.close();
});

const callSpanOf = (callSid: string) => (spans: ReceivedSpan[]) => spans.find((s) => s.name === 'call' && s.attributes['twilio.call.sid'] === callSid);
const childrenOf = (spans: ReceivedSpan[], parent: ReceivedSpan) => spans.filter((s) => s.traceId === parent.traceId && s.parentSpanId === parent.spanId);

/** The trace of one call, once its call span and as many turn spans as it counts have arrived. */
async function traceOf(callSid: string): Promise<{ call: ReceivedSpan; turns: ReceivedSpan[]; all: ReceivedSpan[] }> {
  const spans = await stub.waitFor((s) => {
    const call = callSpanOf(callSid)(s);
    return call !== undefined && childrenOf(s, call).filter((c) => c.name === 'turn').length >= Number(call.attributes['voice_bridge.call.turns']);
  });
  const call = callSpanOf(callSid)(spans)!;
  const all = spans.filter((s) => s.traceId === call.traceId);
  return { call, turns: childrenOf(spans, call).filter((s) => s.name === 'turn').sort((a, b) => Number(a.attributes['voice_bridge.turn.index']) - Number(b.attributes['voice_bridge.turn.index'])), all };
}

/**
 * A provider without VAD that starts talking as soon as it connects (a 300 Hz hum in
 * 200 ms chunks, faster than real time, as response `t1`), and that can fail: at
 * connect, or with a fatal error after `failAfterMs` of its reply.
 */
class Talker extends AgentSession {
  readonly inputFormat: AudioFormat = pcm16(16000);
  readonly outputFormat: AudioFormat = pcm16(16000);
  readonly hasVad = false;
  #timer: NodeJS.Timeout | undefined;
  #callerHeard = false;
  #talking: (() => void) | undefined;
  /** Resolves once audio has been emitted while the call streams (caller audio reached the agent): the reply is under way. */
  readonly talking = new Promise<void>((resolve) => (this.#talking = resolve));
  constructor(private readonly o: { talkMs: number; connectError?: BridgeError; failAfterMs?: number }) {
    super();
  }
  async connect(): Promise<void> {
    if (this.o.connectError) throw this.o.connectError;
    let sent = 0;
    const chunk = (): void => {
      if (this.o.failAfterMs !== undefined && sent >= this.o.failAfterMs) {
        clearInterval(this.#timer);
        this.emitEvent({ type: 'error', error: new BridgeError(ErrorCodes.AGENT_SERVICE, 'the service gave up'), fatal: true });
        return;
      }
      if (sent >= this.o.talkMs) {
        clearInterval(this.#timer);
        this.emitEvent({ type: 'responseDone', responseId: 't1' });
        return;
      }
      const pcm = new Int16Array(3200);
      for (let i = 0; i < pcm.length; i++) pcm[i] = Math.round(4000 * Math.sin((2 * Math.PI * 300 * (sent * 16 + i)) / 16000));
      this.emitEvent({ type: 'audio', data: pcm, sampleRateHz: this.outputFormat.sampleRateHz, responseId: 't1' });
      sent += 200;
      if (this.#callerHeard) this.#talking?.();
    };
    this.#timer = setInterval(chunk, 20);
  }
  sendAudio(): void {
    this.#callerHeard = true;
  }
  interrupt(): void {
    clearInterval(this.#timer);
  }
  sendDtmf(): void {}
  async close(reason: string): Promise<void> {
    clearInterval(this.#timer);
    this.emitEvent({ type: 'closed', reason });
  }
}

function talkerFactory(name: string, o: ConstructorParameters<typeof Talker>[0]): AgentFactory & { first: Promise<Talker> } {
  let created!: (t: Talker) => void;
  const first = new Promise<Talker>((resolve) => (created = resolve));
  return {
    name,
    available: true,
    first,
    create: () => {
      const t = new Talker(o);
      created(t);
      return t;
    },
  };
}

function expectWithin(child: ReceivedSpan, parent: ReceivedSpan): void {
  expect(child.traceId).toBe(parent.traceId);
  expect(child.parentSpanId).toBe(parent.spanId);
  expect(child.endNs).toBeGreaterThanOrEqual(child.startNs);
  expect(child.startNs).toBeGreaterThanOrEqual(parent.startNs);
  expect(child.endNs).toBeLessThanOrEqual(parent.endNs);
}

describe('OpenTelemetry traces over OTLP (a real bridge, a collector stub)', () => {
  it('http/protobuf (the default): one `call` span with its attributes, its turns as children, resource service.name voice-bridge', async () => {
    const clip = await ulawClip('caller-barge-in.8k-ulaw.wav'); // 2.48 s of speech: the echo replies once, after the caller stops
    await withBridge({ OTEL_EXPORTER_OTLP_ENDPOINT: stub.url, OTEL_BSP_SCHEDULE_DELAY: '50' }, async (bridge) => {
      const r = await runSimulatedCall({
        url: bridge.streamUrl,
        audio: clip,
        customParameters: { vb_from: '+15550001111', vb_to: '+15550002222' },
        fast: true,
        tailMs: 4500,
        timeoutMs: 20_000,
      });
      expect(r.outcome).toBe('completed');
      const { call, turns, all } = await traceOf(r.callSid);

      expect(call.parentSpanId).toBe('');
      expect(call.kind).toBe(SpanKind.SERVER);
      expect(call.traceId).toMatch(/^[0-9a-f]{32}$/);
      expect(call.endNs).toBeGreaterThan(call.startNs);
      expect(call.status.code).toBe(StatusCode.UNSET);
      expect(call.attributes).toMatchObject({
        'twilio.call.sid': r.callSid,
        'twilio.stream.sid': r.streamSid,
        'voice_bridge.agent.name': 'echo',
        'voice_bridge.agent.preconnected': false,
        'voice_bridge.instance.id': bridge.config.instanceId,
        'voice_bridge.route_key': bridge.config.routeKey,
        'voice_bridge.call.end_reason': 'twilio-stop',
        'voice_bridge.call.frames_in': r.framesSent,
        'voice_bridge.call.barge_ins': 0,
      });
      expect(call.attributes['voice_bridge.call.duration_ms']).toBeGreaterThan(0);
      expect(call.attributes['voice_bridge.call.frames_out']).toBeGreaterThan(0);
      expect(call.attributes['voice_bridge.call.first_agent_audio_ms']).toBeGreaterThan(0);
      // Numbers are caller data: not traced without BRIDGE_LOG_PII.
      expect(call.attributes).not.toHaveProperty('twilio.call.from');
      expect(call.attributes).not.toHaveProperty('twilio.call.to');
      expect(call.events.map((e) => e.name)).toContain('agent.ready');

      // The echo's one reply: a turn opened by the caller's end of speech, answered, heard to its end.
      expect(call.attributes['voice_bridge.call.turns']).toBe(turns.length);
      expect(turns.length).toBeGreaterThanOrEqual(1);
      for (const t of turns) expectWithin(t, call);
      const first = turns[0]!;
      expect(first.kind).toBe(SpanKind.INTERNAL);
      expect(first.attributes).toMatchObject({
        'voice_bridge.turn.index': 1,
        'voice_bridge.turn.initiator': 'caller',
        'voice_bridge.turn.caller_end_source': 'transcript',
        'voice_bridge.turn.response_id': 'echo-1',
        'voice_bridge.turn.interrupted': false,
        'voice_bridge.turn.outcome': 'completed',
      });
      expect(first.attributes['voice_bridge.turn.response_latency_ms']).toBeGreaterThan(0);
      // The turn lasts at least as long as its reply took to be heard.
      expect(Number(first.endNs - first.startNs) / 1e6).toBeGreaterThan(Number(first.attributes['voice_bridge.turn.response_latency_ms']));

      // Nothing else in the trace, and the resource says who sent it.
      expect(all.length).toBe(1 + turns.length);
      expect(call.resource['service.name']).toBe('voice-bridge');
      expect(call.resource['service.instance.id']).toBe(bridge.config.routeKey);
      expect(call.resource['telemetry.sdk.name']).toBe('opentelemetry');
      expect(call.scope).toBe('voice-bridge');
      expect(stub.requests.at(-1)!.contentType).toBe('application/x-protobuf');
    });
    expect(openCallTraces()).toBe(0);
  });

  it('http/json to OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, with its headers and resource: a barge-in ends the turn with the position heard; numbers under BRIDGE_LOG_PII', async () => {
    const clip = await ulawClip('caller-order-status.8k-ulaw.wav'); // 5.75 s; the echo replies, the caller talks over it at 8 s
    const talkOver = await ulawClip('caller-barge-in.8k-ulaw.wav');
    const env = {
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${stub.url}/v1/traces`,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_EXPORTER_OTLP_HEADERS: 'x-collector-token=s3cret%20value,x-tenant=a',
      OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'x-tenant=b',
      OTEL_SERVICE_NAME: 'bridge-under-test',
      OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=test,service.name=overridden',
      OTEL_BSP_SCHEDULE_DELAY: '50',
      BRIDGE_LOG_PII: '1',
    };
    await withBridge(env, async (bridge) => {
      const r = await runSimulatedCall({
        url: bridge.streamUrl,
        audio: clip,
        bargeInAtMs: 8000,
        bargeInAudio: talkOver,
        customParameters: { vb_from: '+15550001111', vb_to: '+15550002222' },
        fast: true,
        tailMs: 500,
        timeoutMs: 30_000,
      });
      expect(r.outcome).toBe('completed');
      expect(r.clears.length).toBeGreaterThanOrEqual(1);
      const { call, turns } = await traceOf(r.callSid);
      const rec = await getJson(`${bridge.url}/calls/${r.callSid}`);

      expect(call.attributes).toMatchObject({ 'twilio.call.from': '+15550001111', 'twilio.call.to': '+15550002222', 'voice_bridge.call.barge_ins': rec.body.bargeIns });
      const cut = turns.find((t) => t.attributes['voice_bridge.turn.interrupted'] === true)!;
      expect(cut).toBeDefined();
      expectWithin(cut, call);
      expect(cut.attributes).toMatchObject({ 'voice_bridge.turn.outcome': 'interrupted', 'voice_bridge.turn.barge_in.source': 'agent-vad', 'voice_bridge.turn.heard_ms': rec.body.lastHeardMs });
      expectHeardAtClear(Number(cut.attributes['voice_bridge.turn.heard_ms']), r.marks, r.clears[0]!.atMs);
      expect(cut.attributes['voice_bridge.turn.response_latency_ms']).toBeGreaterThan(0);

      const req = stub.requests.at(-1)!;
      expect(req.contentType).toMatch(/^application\/json/);
      expect(req.headers['x-collector-token']).toBe('s3cret value');
      expect(req.headers['x-tenant']).toBe('b');
      expect(call.resource).toMatchObject({ 'service.name': 'bridge-under-test', 'deployment.environment.name': 'test' });
    });
    expect(openCallTraces()).toBe(0);
  });

  it('an agent that fails: status ERROR with its BRIDGE_ERR_* code, on the call and on the turn it cut; a failed connect leaves a call span with no turn', async () => {
    const failing = talkerFactory('failing', { talkMs: 4000, failAfterMs: 600 });
    const refused = talkerFactory('refused', { talkMs: 0, connectError: new BridgeError(ErrorCodes.AGENT_AUTH, 'bad key') });
    const silence = new Uint8Array(8000).fill(0xff);
    await withBridge(
      { OTEL_EXPORTER_OTLP_ENDPOINT: stub.url, OTEL_BSP_SCHEDULE_DELAY: '50' },
      async (bridge) => {
        const [a, b] = await Promise.all([
          runSimulatedCall({ url: bridge.streamUrl, audio: silence, customParameters: { agent: 'failing' }, tailMs: 15_000, timeoutMs: 30_000 }),
          runSimulatedCall({ url: bridge.streamUrl, audio: silence, customParameters: { agent: 'refused' }, tailMs: 15_000, timeoutMs: 30_000 }),
        ]);
        expect(a.outcome).toBe('server-closed');
        expect(b.outcome).toBe('server-closed');

        const midCall = await traceOf(a.callSid);
        expect(midCall.call.status).toEqual({ code: StatusCode.ERROR, message: 'BRIDGE_ERR_AGENT_SERVICE' });
        expect(midCall.call.attributes).toMatchObject({ 'error.type': 'BRIDGE_ERR_AGENT_SERVICE', 'voice_bridge.call.end_reason': 'agent-error:BRIDGE_ERR_AGENT_SERVICE', 'voice_bridge.agent.name': 'failing' });
        expect(midCall.call.events).toContainEqual({ name: 'agent.error', attributes: { 'error.type': 'BRIDGE_ERR_AGENT_SERVICE', 'voice_bridge.error.fatal': true } });
        expect(midCall.turns.length).toBe(1);
        const turn = midCall.turns[0]!;
        expectWithin(turn, midCall.call);
        expect(turn.status).toEqual({ code: StatusCode.ERROR, message: 'BRIDGE_ERR_AGENT_SERVICE' });
        // The agent spoke first: no caller end before this reply, so no latency.
        expect(turn.attributes).toMatchObject({ 'voice_bridge.turn.initiator': 'agent', 'voice_bridge.turn.response_id': 't1', 'voice_bridge.turn.outcome': 'call-ended' });
        expect(turn.attributes).not.toHaveProperty('voice_bridge.turn.response_latency_ms');

        const noAgent = await traceOf(b.callSid);
        expect(noAgent.call.status).toEqual({ code: StatusCode.ERROR, message: 'BRIDGE_ERR_AGENT_AUTH' });
        expect(noAgent.call.attributes).toMatchObject({ 'voice_bridge.call.end_reason': 'agent-connect-failed:BRIDGE_ERR_AGENT_AUTH', 'voice_bridge.call.turns': 0, 'voice_bridge.call.apology': 'prompt' });
        expect(noAgent.all.length).toBe(1);
      },
      { extraAgents: [failing, refused] },
    );
    expect(openCallTraces()).toBe(0);
  });

  it('close() with a call still talking: the call and its open turn end (shutting-down) and are flushed before close() returns', async () => {
    const talker = talkerFactory('talker', { talkMs: 30_000 });
    const before = stub.spans.length;
    let callSid = '';
    await withBridge(
      // Batches every 10 minutes: only the flush at shutdown can deliver these spans.
      { OTEL_EXPORTER_OTLP_ENDPOINT: stub.url, OTEL_BSP_SCHEDULE_DELAY: '600000' },
      async (bridge) => {
        const call = runSimulatedCall({ url: bridge.streamUrl, audio: new Uint8Array(160 * 50).fill(0xff), customParameters: { agent: 'talker' }, tailMs: 30_000, timeoutMs: 40_000 });
        await (await talker.first).talking;
        expect(stub.spans.length).toBe(before);
        await bridge.close();
        const r = await call;
        expect(r.outcome).toBe('server-closed');
        callSid = r.callSid;
      },
      { extraAgents: [talker] },
    );
    // No wait: close() flushed them.
    const call = callSpanOf(callSid)(stub.spans)!;
    expect(call).toBeDefined();
    expect(call.attributes['voice_bridge.call.end_reason']).toBe('shutting-down');
    const turns = childrenOf(stub.spans, call);
    expect(turns.map((t) => [t.name, t.attributes['voice_bridge.turn.outcome']])).toEqual([['turn', 'call-ended']]);
    expectWithin(turns[0]!, call);
    expect(openCallTraces()).toBe(0);
  });
});

describe('a real `voice-bridge start` process', () => {
  const resolveLog = pathToFileURL(join(import.meta.dirname, 'fixtures', 'resolve-log.mjs')).href;

  async function callThenSigterm(env: Record<string, string>): Promise<{ imported: string[]; callSid: string }> {
    const log = join(mkdtempSync(join(tmpdir(), 'vb-otel-')), 'resolved.txt');
    const child = await startChildBridge({ ...env, NODE_OPTIONS: `--import ${resolveLog}`, VB_RESOLVE_LOG: log, BRIDGE_LOG_LEVEL: 'info' });
    try {
      const r = await runSimulatedCall({ url: child.streamUrl, audio: (await ulawClip('caller-barge-in.8k-ulaw.wav')).subarray(0, 8000), fast: true, tailMs: 300, timeoutMs: 20_000 });
      expect(r.outcome).toBe('completed');
      child.proc.kill('SIGTERM');
      expect(await child.exited).toEqual({ code: 0, signal: null });
      let imported: string[] = [];
      try {
        imported = readFileSync(log, 'utf8').split('\n').filter(Boolean);
      } catch {
        // nothing was imported: no file
      }
      return { imported, callSid: r.callSid };
    } finally {
      child.kill();
    }
  }

  it('without OTEL_EXPORTER_OTLP_ENDPOINT: no OpenTelemetry module is imported and nothing is sent', async () => {
    const before = stub.requests.length;
    const { imported } = await callThenSigterm({});
    expect(imported).toEqual([]);
    expect(stub.requests.length).toBe(before);
  });

  it('with it: the SDK and only the chosen exporter are imported, and SIGTERM\'s drain flushes the call span before exit', async () => {
    // The default batch delay is 5 s: the span is there at exit because the drain flushed it.
    const { imported, callSid } = await callThenSigterm({ OTEL_EXPORTER_OTLP_ENDPOINT: stub.url });
    expect(imported).toEqual(expect.arrayContaining(['@opentelemetry/sdk-trace-base', '@opentelemetry/exporter-trace-otlp-proto']));
    expect(imported).not.toContain('@opentelemetry/exporter-trace-otlp-http');
    const call = callSpanOf(callSid)(stub.spans);
    expect(call?.attributes['voice_bridge.call.end_reason']).toBe('twilio-stop');
    expect(call?.resource['service.name']).toBe('voice-bridge');
  });
});
