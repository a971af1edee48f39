/**
 * OpenTelemetry traces through a real bridge: OTEL_EXPORTER_OTLP_ENDPOINT points at a
 * local collector stub (a real HTTP server decoding OTLP protobuf or JSON), the
 * simulator calls through the bridge, and the stub must receive the call's `call` span
 * with its `turn` spans as children — same trace, parent = the call span, all ended —
 * under a resource named voice-bridge. Every wait is on the spans the stub receives.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentSession, pcm16, type AgentFactory, type AudioFormat } from '../../src/agents/agent.js';
import { BridgeError, ErrorCodes } from '../../src/errors.js';
import { runSimulatedCall } from '../../src/sim/simulator.js';
import { openCallTraces } from '../../src/telemetry/index.js';
import { ulawClip, withBridge } from '../bridge/helpers.js';
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
});
