/**
 * The tool-call tracing hook, driven directly (agents report no tool calls to the
 * call core yet): `tool <name>` spans under the call's open turn, else under the call;
 * errors with their code; no-ops for calls that are not traced; tool spans still open
 * when the call ends, and calls still open at shutdown, are ended — nothing leaks.
 * Spans reach a collector stub through the real exporter.
 */
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CallSummary } from '../../src/call/call-session.js';
import { BridgeError, ErrorCodes } from '../../src/errors.js';
import { openCallTraces, startTelemetry, startToolCall, traceToolCall, type Telemetry } from '../../src/telemetry/index.js';
import { StatusCode, startCollectorStub, type CollectorStub, type ReceivedSpan } from './collector-stub.js';

let stub: CollectorStub;
beforeAll(async () => {
  stub = await startCollectorStub();
});
afterAll(async () => {
  await stub?.close();
});

function summary(over: Partial<CallSummary>): CallSummary {
  return {
    callSid: null,
    streamSid: null,
    agent: 'echo',
    state: 'closed',
    startedAt: new Date().toISOString(),
    durationMs: 1000,
    endReason: 'twilio-stop',
    framesIn: 50,
    chunksToAgent: 50,
    framesOut: 10,
    prestartFramesBuffered: 0,
    prestartFramesDropped: 0,
    badInput: {},
    jitter: null,
    playout: null,
    bargeIns: 0,
    lastHeardMs: null,
    dtmf: 0,
    marksEchoed: 0,
    transcripts: [],
    timeToFirstAgentAudioMs: null,
    agentPreconnected: false,
    agentReadyMs: 5,
    apology: null,
    recordingPath: null,
    endedAt: new Date().toISOString(),
    customParameters: {},
    ...over,
  };
}

async function tracing(): Promise<Telemetry> {
  const t = await startTelemetry({ OTEL_EXPORTER_OTLP_ENDPOINT: stub.url, OTEL_BSP_SCHEDULE_DELAY: '600000' }, { instanceId: 'test', routeKey: 'test', workerSlot: undefined });
  expect(t).toBeDefined();
  return t!;
}

const info = (callSid: string) => ({ callSid, streamSid: `MZ${callSid.slice(2)}`, agent: 'echo', startedAtMs: performance.now(), from: '+15550001111', to: '+15550002222' });
const byName = (spans: ReceivedSpan[], callSid: string) => {
  const call = spans.find((s) => s.name === 'call' && s.attributes['twilio.call.sid'] === callSid)!;
  const mine = spans.filter((s) => s.traceId === call.traceId);
  return { call, named: (name: string) => mine.filter((s) => s.name === name) };
};

describe('tool-call spans (startToolCall / traceToolCall)', () => {
  it('children of the open turn, else of the call; errors carry their code; the call ends what is still open', async () => {
    const telemetry = await tracing();
    const sid = 'CA00000000000000000000000000000001';
    const trace = telemetry.traceFor(info(sid))!;
    expect(openCallTraces()).toBe(1);

    // During a turn: the caller has stopped, the agent looks something up before it answers.
    trace.callerStopped('transcript', performance.now());
    startToolCall(sid, 'lookup_order', { id: 'call_1' }).end();
    const boom = new BridgeError(ErrorCodes.AGENT_SERVICE, 'order service down');
    await expect(traceToolCall(sid, 'charge_card', () => Promise.reject(boom), { id: 'call_2' })).rejects.toBe(boom);
    expect(await traceToolCall(sid, 'weather', () => 'sunny')).toBe('sunny');
    trace.agentAudio('r1', performance.now());
    trace.audioSent(performance.now() + 40);
    trace.bargeIn('agent-vad', 120, 'r1', performance.now());

    // Between turns: under the call. A plain Error: its name as error.type.
    await expect(traceToolCall(sid, 'transfer', () => { throw new TypeError('bad number'); })).rejects.toThrow(TypeError);
    const slow = startToolCall(sid, 'slow_lookup'); // still running when the call ends
    trace.closing('twilio-stop', performance.now());
    trace.ended(summary({ callSid: sid, bargeIns: 1 }));
    slow.end(); // after the call: nothing more to do
    expect(openCallTraces()).toBe(0);
    // A call that is not traced (or no longer): a no-op.
    startToolCall(sid, 'late').end();
    startToolCall('CA_not_traced', 'x').end({ error: new Error('x') });

    await telemetry.shutdown();
    const { call, named } = byName(stub.spans, sid);
    const [turn] = named('turn');
    expect(turn).toBeDefined();
    expect(turn!.attributes).toMatchObject({ 'voice_bridge.turn.interrupted': true, 'voice_bridge.turn.heard_ms': 120, 'voice_bridge.turn.response_latency_ms': expect.any(Number) });

    const [lookup] = named('tool lookup_order');
    expect(lookup!.parentSpanId).toBe(turn!.spanId);
    expect(lookup!.attributes).toEqual({ 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'lookup_order', 'gen_ai.tool.call.id': 'call_1', 'voice_bridge.turn.index': 1 });
    expect(lookup!.status.code).toBe(StatusCode.UNSET);
    const [charge] = named('tool charge_card');
    expect(charge!.parentSpanId).toBe(turn!.spanId);
    expect(charge!.status).toEqual({ code: StatusCode.ERROR, message: 'BRIDGE_ERR_AGENT_SERVICE' });
    expect(charge!.attributes['error.type']).toBe('BRIDGE_ERR_AGENT_SERVICE');
    expect(named('tool weather')[0]!.status.code).toBe(StatusCode.UNSET);

    const [transfer] = named('tool transfer');
    expect(transfer!.parentSpanId).toBe(call.spanId);
    expect(transfer!.attributes['error.type']).toBe('TypeError');
    const [unfinished] = named('tool slow_lookup');
    expect(unfinished!.parentSpanId).toBe(call.spanId);
    expect(unfinished!.attributes['voice_bridge.tool.unfinished']).toBe(true);
    expect(unfinished!.endNs).toBeLessThanOrEqual(call.endNs);
    expect(named('tool late')).toEqual([]);
    expect(stub.spans.some((s) => s.name === 'tool x')).toBe(false);
    // Caller numbers stay out without BRIDGE_LOG_PII.
    expect(call.attributes).not.toHaveProperty('twilio.call.from');
  });

  it('shutdown ends a call still open (and its turn and tools) and flushes it; later calls are not traced', async () => {
    const telemetry = await tracing();
    const sid = 'CA00000000000000000000000000000002';
    const trace = telemetry.traceFor(info(sid))!;
    trace.agentAudio(undefined, performance.now()); // an agent greeting: an agent-initiated turn
    startToolCall(sid, 'crm_lookup');
    await telemetry.shutdown();
    expect(openCallTraces()).toBe(0);
    expect(telemetry.traceFor(info('CA00000000000000000000000000000003'))).toBeUndefined();
    trace.ended(summary({ callSid: sid })); // the session's own end, after the shutdown: ignored

    const { call, named } = byName(stub.spans, sid);
    expect(call.attributes['voice_bridge.call.end_reason']).toBe('shutting-down');
    expect(named('turn').map((t) => t.attributes['voice_bridge.turn.outcome'])).toEqual(['call-ended']);
    expect(named('turn')[0]!.attributes['voice_bridge.turn.initiator']).toBe('agent');
    expect(named('tool crm_lookup')[0]!.attributes['voice_bridge.tool.unfinished']).toBe(true);
    expect(stub.spans.filter((s) => s.attributes['twilio.call.sid'] === sid).length).toBe(1);
  });
});
