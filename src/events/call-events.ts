/**
 * The call layer's events for the user's app (docs/events.md), from the call manager's
 * own events — never on the frame path: each is one enqueue() into the durable outbox.
 *
 *   callStarted (stream `start`) ─► call.started   {from, to, agent, streamSid, startedAt}
 *   a tool call's result         ─► tool.called    {name, durationMs, outcome, code?}
 *   callEnded, transferred:<to>  ─► call.transferred {to}, then call.ended
 *   callEnded                    ─► call.ended     the call record: from, to, agent, start/end,
 *                                                  duration, end reason, transcript turns,
 *                                                  recording path, latency figures
 *
 * Only calls answered by a profile with `events.url` produce events (the deliverer drops
 * the rest at enqueue).
 */
import type { CallManager, CallRecord } from '../call/call-manager.js';
import type { ToolResult } from '../tools/run-tool.js';
import { createEvent, toolCalledData, type BridgeEvent } from './event.js';

/** call.ended's `data`: what the user's app needs of the record (not the bridge's own frame counters). */
export function callEndedData(r: CallRecord): Record<string, unknown> {
  return {
    from: r.from,
    to: r.to,
    agent: r.agent,
    streamSid: r.streamSid,
    startedAt: r.startedAt,
    endedAt: r.endedAt,
    durationMs: r.durationMs,
    endReason: r.endReason,
    transcript: r.transcripts.map((t) => ({ role: t.role, text: t.text })),
    recordingPath: r.recordingPath,
    latency: { agentReadyMs: r.agentReadyMs, timeToFirstAgentAudioMs: r.timeToFirstAgentAudioMs, agentPreconnected: r.agentPreconnected },
    bargeIns: r.bargeIns,
  };
}

/** Where events go: the durable outbox to the profile's events.url, and in-process listeners (RunningBridge.onEvent). */
export type EventSink = (event: BridgeEvent) => void;

/**
 * Makes events of the manager's profile calls and hands each to every sink; returns
 * what a tool call's observer calls. A sink that throws costs only itself.
 */
export function wireCallEvents(calls: CallManager, sinks: readonly EventSink[], log?: (msg: string, err: unknown) => void): (r: ToolResult, call: { callSid: string; profile: string }) => void {
  const emit = (e: BridgeEvent) => {
    for (const sink of sinks) {
      try {
        sink(e);
      } catch (err) {
        log?.('a call event listener threw', err);
      }
    }
  };
  calls.on('callStarted', ({ callSid, streamSid, agent, record }) => {
    if (!record.profile) return;
    emit(createEvent('call.started', { callSid, profile: record.profile, data: { from: record.from, to: record.to, agent, streamSid, startedAt: record.startedAt } }));
  });
  calls.on('callEnded', (r) => {
    if (!r.profile || !r.callSid) return;
    const transferred = /^transferred:(.+)$/.exec(r.endReason ?? '');
    if (transferred) emit(createEvent('call.transferred', { callSid: r.callSid, profile: r.profile, data: { to: transferred[1] } }));
    emit(createEvent('call.ended', { callSid: r.callSid, profile: r.profile, data: callEndedData(r) }));
  });
  return (r, call) => emit(createEvent('tool.called', { callSid: call.callSid, profile: call.profile, data: toolCalledData(r) }));
}
