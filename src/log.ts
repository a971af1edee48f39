/**
 * Structured logs (pino), one JSON object per line.
 *
 * The PII rule: anything that may carry caller data — phone
 * numbers, transcripts, DTMF digits, TwiML custom parameters, Twilio status
 * callback parameters — goes under a top-level `pii` field and nowhere else. pino
 * redacts that field to "[redacted]" unless BRIDGE_LOG_PII=1, so the safe fields
 * of a line are always readable and the caller's data only with an explicit opt-in.
 *
 *   logger.info({ callSid, pii: { from, to } }, 'call ended')
 *     → {"level":30,…,"callSid":"CA…","pii":"[redacted]","msg":"call ended"}
 *
 * Errors go under `err`, in pino's shape ({ type, message, stack, code, … }):
 * `log.warn({ err: e }, '…')`. An error whose message may quote caller data (a
 * provider's words, the call's options, a database's copy of a record) is logged
 * with callerDataErr(e): its type, code and stack frames in `err`, its message under
 * `pii.err`. Every key appears once on a line: a call logger's bindings (callSid,
 * streamSid, agent) are dropped from the fields logged through it.
 */
import { types } from 'node:util';
import pino, { type DestinationStream, type Logger } from 'pino';
import type { CallRecord } from './call/call-manager.js';
import type { Config } from './config.js';
import { parseBoolean, rawValue } from './env-schema.js';

export type LogLevel = Config['logLevel'];

export interface LoggerOptions {
  level: LogLevel;
  /** Log `pii` fields in clear (BRIDGE_LOG_PII=1). Default false: "[redacted]". */
  pii?: boolean;
}

export const REDACTED = '[redacted]';

/**
 * BRIDGE_LOG_PII, a boolean of the one grammar (src/env-schema.ts): 1/true/yes/on turn
 * PII logging on. Any other word is refused at start by loadConfig (it never silently
 * means off); here it reads as off.
 */
export function piiLoggingEnabled(env: Readonly<Record<string, string | undefined>>): boolean {
  const v = rawValue(env, 'BRIDGE_LOG_PII');
  return v !== undefined && parseBoolean(v) === true;
}

function isConfig(x: Config | LoggerOptions): x is Config {
  return 'env' in x && typeof (x as Config).env === 'object';
}

/**
 * The process logger. From the Config (level from BRIDGE_LOG_LEVEL, PII from
 * BRIDGE_LOG_PII in `config.env`) or explicit options; `destination` defaults to
 * stdout (tests pass a stream to read the lines back).
 */
export function createLogger(from: Config | LoggerOptions, destination?: DestinationStream): Logger {
  const level = isConfig(from) ? from.logLevel : from.level;
  const pii = isConfig(from) ? piiLoggingEnabled(from.env) : from.pii === true;
  const options: pino.LoggerOptions = {
    level,
    base: { pid: process.pid },
    serializers: { err: serializeErr },
    // `pii` at the top of a line, and one level down for objects logged whole (e.g. { call: logFields(r) }).
    ...(pii ? {} : { redact: { paths: ['pii', '*.pii'], censor: REDACTED } }),
  };
  const logger = destination ? pino(options, destination) : pino(options);
  if (pii) logger.warn('BRIDGE_LOG_PII=1: caller numbers, transcripts, digits and custom parameters are logged in clear');
  return logger;
}

export interface CallContext {
  callSid: string | null | undefined;
  streamSid?: string | null;
  agent?: string | null;
}

/**
 * A child logger whose every line carries the call's ids and agent (none of them caller
 * data). Fields of the same names logged through it are dropped (the bindings are already
 * on the line): pino would write both, and a line with a key twice is refused by log
 * stores (Loki, Elasticsearch) or read as the last one.
 */
export function callLogger(logger: Logger, ctx: CallContext): Logger {
  const bindings: Record<string, string> = {};
  if (ctx.callSid) bindings.callSid = ctx.callSid;
  if (ctx.streamSid) bindings.streamSid = ctx.streamSid;
  if (ctx.agent) bindings.agent = ctx.agent;
  const keys = Object.keys(bindings);
  const withoutBound = (obj: object): object => {
    if (!keys.some((k) => k in obj)) return obj;
    const out: Record<string, unknown> = { ...obj };
    for (const k of keys) delete out[k];
    return out;
  };
  return logger.child(bindings, { formatters: { log: withoutBound } });
}

/**
 * The lines a supervisor, an operator or a test waits for — listening, draining, a
 * worker died — through this logger: at info, and written whatever BRIDGE_LOG_LEVEL
 * says (silent excepted), as they were when they were plain text.
 */
export function lifecycleLogger(logger: Logger): Logger {
  if (logger.level === 'silent' || logger.levelVal <= logger.levels.values.info!) return logger;
  return logger.child({}, { level: 'info' });
}

/** An error on a log line, in pino's std serializer shape (plus the error's own fields, e.g. a BridgeError's `code`). */
export interface LoggedError {
  type: string;
  message: string;
  stack?: string;
  code?: string | number;
  [field: string]: unknown;
}

function isError(e: unknown): e is Error {
  return e instanceof Error || types.isNativeError(e);
}

/** The `err` serializer: errors in pino's shape (causes appended); a shape already made (callerDataErr) as it is; anything else thrown as { type, message }. */
function serializeErr(e: unknown): unknown {
  if (isError(e)) return pino.stdSerializers.err(e);
  if (typeof e === 'object' && e !== null && typeof (e as LoggedError).type === 'string' && typeof (e as LoggedError).message === 'string') return e;
  return { type: typeof e, message: String(e) };
}

/**
 * An error whose message may carry caller data (the PII rule above): `err` keeps its type,
 * its stable code and its stack frames, with the message "[redacted]"; the whole error
 * (message, causes, fields) goes under `pii.err` — redacted unless BRIDGE_LOG_PII=1.
 * Other caller data of the line may be passed in `pii`.
 *
 *   log.warn({ callSid, ...callerDataErr(e) }, 'agent error')
 *     → {…,"err":{"type":"BridgeError","code":"BRIDGE_ERR_AGENT_PROTOCOL","message":"[redacted]","stack":"BridgeError: [redacted]\n    at …"},"pii":"[redacted]",…}
 */
export function callerDataErr(e: unknown, pii: Record<string, unknown> = {}): { err: LoggedError; pii: Record<string, unknown> } {
  const full = serializeErr(e) as LoggedError;
  const err: LoggedError = { type: full.type, message: REDACTED };
  const code = isError(e) ? (e as { code?: unknown }).code : undefined;
  if (typeof code === 'string' || typeof code === 'number') err.code = code;
  if (isError(e) && typeof e.stack === 'string') {
    const frames = e.stack.split('\n').filter((l) => /^\s+at /.test(l));
    err.stack = [`${full.type}: ${REDACTED}`, ...frames].join('\n');
  }
  return { err, pii: { ...pii, err: full } };
}

/** Status-callback keys that are safe to log (everything else Twilio sends may identify the caller). */
const SAFE_STATUS_KEYS = new Set(['CallStatus', 'CallDuration', 'Duration', 'SequenceNumber', 'Timestamp', 'CallbackSource', 'StreamEvent', 'StreamName', 'StreamSid', 'StreamError', 'Direction', 'ErrorCode', 'SipResponseCode', 'AnsweredBy']);

export interface CallLogFields {
  callSid: string | null;
  streamSid: string | null;
  agent: string | null;
  startedAt: string;
  endedAt: string | null;
  durationMs: number;
  endReason: string | null;
  framesIn: number;
  framesOut: number;
  chunksToAgent: number;
  callerAudioDroppedMs: number;
  prestartFramesBuffered: number;
  prestartFramesDropped: number;
  badInput: CallRecord['badInput'];
  jitter: CallRecord['jitter'];
  underruns: number | null;
  framesCleared: number | null;
  bargeIns: number;
  lastHeardMs: number | null;
  dtmfCount: number;
  marksEchoed: number;
  transcriptTurns: number;
  timeToFirstAgentAudioMs: number | null;
  agentPreconnected: boolean;
  agentReadyMs: number | null;
  apology: CallRecord['apology'];
  recordingPath: string | null;
  status: Record<string, string>[];
  /** Caller data: redacted unless BRIDGE_LOG_PII=1. */
  pii: {
    from: string | null;
    to: string | null;
    customParameters: Record<string, string>;
    transcripts: CallRecord['transcripts'];
    status: Record<string, string>[];
  };
}

/**
 * A CallRecord split for logging: ids, timings and counters at the top; numbers,
 * custom parameters, transcripts and the full status-callback parameters under
 * `pii`. Log it spread: `log.info(logFields(record), 'call ended')`.
 */
export function logFields(r: CallRecord): CallLogFields {
  const safeStatus = (r.status ?? []).map((s) => {
    const out: Record<string, string> = { at: s.at };
    for (const [k, v] of Object.entries(s.params)) if (SAFE_STATUS_KEYS.has(k)) out[k] = v;
    return out;
  });
  return {
    callSid: r.callSid,
    streamSid: r.streamSid,
    agent: r.agent,
    startedAt: r.startedAt,
    endedAt: r.endedAt,
    durationMs: r.durationMs,
    endReason: r.endReason,
    framesIn: r.framesIn,
    framesOut: r.framesOut,
    chunksToAgent: r.chunksToAgent,
    callerAudioDroppedMs: r.callerAudioDroppedMs ?? 0,
    prestartFramesBuffered: r.prestartFramesBuffered,
    prestartFramesDropped: r.prestartFramesDropped,
    badInput: r.badInput,
    jitter: r.jitter,
    underruns: r.playout?.underruns ?? null,
    framesCleared: r.playout?.framesCleared ?? null,
    bargeIns: r.bargeIns,
    lastHeardMs: r.lastHeardMs,
    dtmfCount: r.dtmf,
    marksEchoed: r.marksEchoed,
    transcriptTurns: r.transcripts.length,
    timeToFirstAgentAudioMs: r.timeToFirstAgentAudioMs,
    agentPreconnected: r.agentPreconnected,
    agentReadyMs: r.agentReadyMs,
    apology: r.apology,
    recordingPath: r.recordingPath,
    status: safeStatus,
    pii: {
      from: r.from,
      to: r.to,
      customParameters: r.customParameters,
      transcripts: r.transcripts,
      status: (r.status ?? []).map((s) => ({ at: s.at, ...s.params })),
    },
  };
}
