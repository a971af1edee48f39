/** The JSON shapes of the console contract (issue 15). */
export type CallState = 'awaiting-start' | 'connecting' | 'streaming' | 'draining' | 'closing' | 'closed';

export interface Info {
  version: string;
  instance: string | null;
  pii: boolean;
}

export interface LiveCall {
  callSid: string;
  streamSid: string | null;
  agent: string | null;
  profile: string | null;
  from: string | null;
  to: string | null;
  startedAt: string;
  durationMs: number;
  state: CallState;
  instance: string | null;
  worker: number | null;
  local: boolean;
  bargeIns: number;
  /** Caller audio the agent never received, ms (null: another instance's call, not known here). */
  callerAudioDroppedMs?: number | null;
}

export interface Level {
  caller: number | null;
  agent: number | null;
}

export type Role = 'caller' | 'agent';

export type TimelineEvent =
  | { type: 'transcript'; t: number; role: Role; text: string }
  | { type: 'speech'; t: number; endT: number; role: Role }
  | { type: 'turn'; t: number; latencyMs: number }
  | { type: 'tool'; t: number; callId: string; name: string; arguments: unknown }
  | { type: 'toolResult'; t: number; callId: string; name: string; durationMs: number; ok: boolean; output?: unknown; error?: string; code?: string }
  | { type: 'bargeIn'; t: number; heardMs: number; source: string }
  | { type: 'action'; t: number; action: 'say' | 'hangup' | 'transfer'; detail?: string }
  | { type: 'end'; t: number; reason: string };

export interface FeedCall extends LiveCall {
  transferTo: string[];
  recording: boolean;
}

export interface CallListItem {
  callSid: string;
  agent: string | null;
  profile: string | null;
  from: string | null;
  to: string | null;
  startedAt: string;
  endedAt: string | null;
  durationMs: number | null;
  endReason: string | null;
  bargeIns: number | null;
}

export interface CallRecord extends CallListItem {
  transcripts?: { role: Role; text: string }[];
  timeline?: TimelineEvent[];
  actions?: { at: string; action: string; detail?: string }[];
  recordingPath?: string | null;
  recordState?: string;
  /** Absent from records written before the bridge counted it. */
  callerAudioDroppedMs?: number;
}

/** GET /console/api/history: a page of records (numbers redacted unless BRIDGE_LOG_PII). */
export interface HistoryPage {
  calls: CallListItem[];
  page: number;
  more: boolean;
}
