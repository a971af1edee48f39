/**
 * A call event as the user's application receives it (docs/events.md): POSTed as JSON to
 * the profile's `events.url`, signed like tool requests (X-Voice-Bridge-Signature).
 * `id` is a UUID: delivery is at least once, so a receiver dedupes by it.
 */
import { randomUUID } from 'node:crypto';
import { toolOutcome, type ToolOutcome, type ToolResult } from '../tools/run-tool.js';

export const EVENT_TYPES = ['call.started', 'call.ended', 'tool.called', 'call.transferred'] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export interface BridgeEvent<D = unknown> {
  /** A UUID, the same on every delivery attempt of this event. */
  id: string;
  type: EventType;
  /** ISO 8601, when the bridge created the event. */
  createdAt: string;
  callSid: string;
  /** The profile whose `events.url` receives it. */
  profile: string;
  data: D;
}

/** A new event with a fresh id, created now (or at `nowMs`). */
export function createEvent<D>(type: EventType, fields: { callSid: string; profile: string; data: D }, nowMs: number = Date.now()): BridgeEvent<D> {
  return { id: randomUUID(), type, createdAt: new Date(nowMs).toISOString(), callSid: fields.callSid, profile: fields.profile, data: fields.data };
}

const TYPES = new Set<string>(EVENT_TYPES);

/** Whether `v` has an event's shape (what the outbox accepts back from its file). */
export function isBridgeEvent(v: unknown): v is BridgeEvent {
  if (v === null || typeof v !== 'object') return false;
  const e = v as Record<string, unknown>;
  return (
    typeof e.id === 'string' &&
    e.id.length > 0 &&
    typeof e.type === 'string' &&
    TYPES.has(e.type) &&
    typeof e.createdAt === 'string' &&
    Number.isFinite(Date.parse(e.createdAt)) &&
    typeof e.callSid === 'string' &&
    typeof e.profile === 'string' &&
    'data' in e
  );
}

export interface ToolCalledData {
  name: string;
  durationMs: number;
  /** `ok`, or why the agent got an error result (docs/tools.md). */
  outcome: ToolOutcome;
  /** The BRIDGE_ERR_TOOL_* code of an error result. */
  code?: string;
}

/** `tool.called`'s `data` for a tool's result (the call layer emits it after each tool call). */
export function toolCalledData(r: ToolResult): ToolCalledData {
  const d: ToolCalledData = { name: r.tool, durationMs: Math.round(r.durationMs), outcome: toolOutcome(r) };
  if (!r.ok) d.code = r.code;
  return d;
}
