/**
 * Runs one tool call of the agent against the profile's HTTP endpoint (docs/tools.md).
 *
 * ```text
 *  agent: tool call (name, callId, arguments as JSON text or object)
 *    ─► arguments parsed ── not a JSON object ─► error result TOOL_ARGUMENTS (no request)
 *    ─► POST <url> {callSid, streamSid, profile, tool, callId, arguments, from, to}
 *         X-Voice-Bridge-Signature: t=…,v1=…      (when the profile has a secret)
 *    ─► 2xx {"output": <any JSON>}               ─► { ok: true, output }
 *       anything else, timeoutMs, > 64 KiB, abort ─► { ok: false, error, code }
 * ```
 *
 * Never throws and never rejects: the caller (an agent adapter) always has a result to
 * send back, within the tool's `timeoutMs` + 1 s at most.
 */
import { ErrorCodes } from '../errors.js';
import { DEFAULT_TOOL_TIMEOUT_MS } from '../profiles/schema.js';
import { postSigned } from './post-signed.js';

/** The largest tool reply read (bytes); a larger one is an error result. */
export const MAX_TOOL_RESPONSE_BYTES = 64 * 1024;

/** What runTool needs of a profile's tool (a FunctionTool of src/profiles/schema.ts fits). */
export interface ToolEndpoint {
  name: string;
  url: string;
  timeoutMs?: number | undefined;
}

/** One call of a tool by the agent, with the call it happens in. */
export interface ToolInvocation {
  callSid: string;
  streamSid: string;
  /** The profile's name. */
  profile: string;
  /** The provider's id of this tool call (OpenAI `call_id`, Gemini `id`, ElevenLabs/Hume `tool_call_id`). */
  callId: string;
  /** As the provider sent it: JSON text (OpenAI, Hume), an object (Gemini, ElevenLabs), or nothing. */
  arguments: unknown;
  from?: string | null | undefined;
  to?: string | null | undefined;
}

export type ToolErrorCode =
  | typeof ErrorCodes.TOOL_ARGUMENTS
  | typeof ErrorCodes.TOOL_HTTP_STATUS
  | typeof ErrorCodes.TOOL_TIMEOUT
  | typeof ErrorCodes.TOOL_BAD_RESPONSE
  | typeof ErrorCodes.TOOL_RESPONSE_TOO_LARGE
  | typeof ErrorCodes.TOOL_NETWORK
  | typeof ErrorCodes.TOOL_ABORTED
  | typeof ErrorCodes.TOOL_UNKNOWN
  | typeof ErrorCodes.TOOL_TRANSFER_REFUSED;

export type ToolResult =
  | { ok: true; tool: string; output: unknown; durationMs: number }
  | { ok: false; tool: string; error: string; code: ToolErrorCode; durationMs: number; status?: number };

/** The outcome label of voice_bridge_tool_calls_total (a bounded set). */
export type ToolOutcome = 'ok' | 'bad-arguments' | 'http-status' | 'timeout' | 'bad-response' | 'too-large' | 'network' | 'aborted' | 'unknown-tool' | 'transfer-refused';

export const TOOL_OUTCOMES: readonly ToolOutcome[] = ['ok', 'bad-arguments', 'http-status', 'timeout', 'bad-response', 'too-large', 'network', 'aborted', 'unknown-tool', 'transfer-refused'];

const OUTCOME_OF: Record<ToolErrorCode, ToolOutcome> = {
  [ErrorCodes.TOOL_ARGUMENTS]: 'bad-arguments',
  [ErrorCodes.TOOL_HTTP_STATUS]: 'http-status',
  [ErrorCodes.TOOL_TIMEOUT]: 'timeout',
  [ErrorCodes.TOOL_BAD_RESPONSE]: 'bad-response',
  [ErrorCodes.TOOL_RESPONSE_TOO_LARGE]: 'too-large',
  [ErrorCodes.TOOL_NETWORK]: 'network',
  [ErrorCodes.TOOL_ABORTED]: 'aborted',
  [ErrorCodes.TOOL_UNKNOWN]: 'unknown-tool',
  [ErrorCodes.TOOL_TRANSFER_REFUSED]: 'transfer-refused',
};

export function toolOutcome(r: ToolResult): ToolOutcome {
  return r.ok ? 'ok' : OUTCOME_OF[r.code];
}

export interface RunToolOptions {
  /** Aborts the request: the caller barged in, the call ended, the provider cancelled the call. */
  signal?: AbortSignal | undefined;
  /** The profile's `secret`: signs the request. */
  secret?: string | undefined;
  /** Told of every result (metrics: `metrics.onToolCall`). */
  observe?: ((r: ToolResult) => void) | undefined;
}

/**
 * The provider's arguments as an object: JSON text is parsed; nothing (undefined, null,
 * empty text) is `{}`; anything that is not a JSON object is refused.
 */
export function parseToolArguments(raw: unknown): { ok: true; value: Record<string, unknown> } | { ok: false; error: string } {
  let v = raw;
  if (typeof raw === 'string') {
    if (raw.trim() === '') return { ok: true, value: {} };
    try {
      v = JSON.parse(raw);
    } catch {
      return { ok: false, error: 'the arguments are not valid JSON' };
    }
  }
  if (v === undefined || v === null) return { ok: true, value: {} };
  if (typeof v !== 'object' || Array.isArray(v)) return { ok: false, error: 'the arguments must be a JSON object' };
  return { ok: true, value: v as Record<string, unknown> };
}

export async function runTool(tool: ToolEndpoint, call: ToolInvocation, options: RunToolOptions = {}): Promise<ToolResult> {
  const started = performance.now();
  const done = (r: { ok: true; output: unknown } | { ok: false; error: string; code: ToolErrorCode; status?: number }): ToolResult => {
    const result = { ...r, tool: tool.name, durationMs: performance.now() - started } as ToolResult;
    try {
      options.observe?.(result);
    } catch {
      // an observer's bug must not cost the agent its result
    }
    return result;
  };
  try {
    const args = parseToolArguments(call.arguments);
    if (!args.ok) return done({ ok: false, code: ErrorCodes.TOOL_ARGUMENTS, error: `${tool.name}: ${args.error}` });
    const timeoutMs = tool.timeoutMs ?? DEFAULT_TOOL_TIMEOUT_MS;
    const body = JSON.stringify({
      callSid: call.callSid,
      streamSid: call.streamSid,
      profile: call.profile,
      tool: tool.name,
      callId: call.callId,
      arguments: args.value,
      from: call.from ?? null,
      to: call.to ?? null,
    });
    const o = await postSigned(tool.url, body, { secret: options.secret, timeoutMs, maxResponseBytes: MAX_TOOL_RESPONSE_BYTES, signal: options.signal });
    switch (o.kind) {
      case 'timeout':
        return done({ ok: false, code: ErrorCodes.TOOL_TIMEOUT, error: `${tool.name} did not answer within ${timeoutMs} ms` });
      case 'aborted':
        return done({ ok: false, code: ErrorCodes.TOOL_ABORTED, error: `${tool.name} was cancelled` });
      case 'network':
        return done({ ok: false, code: ErrorCodes.TOOL_NETWORK, error: `${tool.name} could not be reached (${o.message})` });
      case 'too-large':
        return done({ ok: false, code: ErrorCodes.TOOL_RESPONSE_TOO_LARGE, error: `${tool.name} answered with more than ${MAX_TOOL_RESPONSE_BYTES} bytes`, status: o.status });
      case 'response':
        break;
    }
    if (o.status < 200 || o.status > 299) return done({ ok: false, code: ErrorCodes.TOOL_HTTP_STATUS, error: `${tool.name} failed (HTTP ${o.status})`, status: o.status });
    let reply: unknown;
    try {
      reply = JSON.parse(o.body.toString('utf8'));
    } catch {
      return done({ ok: false, code: ErrorCodes.TOOL_BAD_RESPONSE, error: `${tool.name} answered with something that is not JSON`, status: o.status });
    }
    if (reply === null || typeof reply !== 'object' || Array.isArray(reply) || !Object.hasOwn(reply, 'output')) {
      return done({ ok: false, code: ErrorCodes.TOOL_BAD_RESPONSE, error: `${tool.name} answered without an "output"`, status: o.status });
    }
    return done({ ok: true, output: (reply as { output: unknown }).output });
  } catch (e) {
    // Cannot happen (postSigned never throws); a result all the same.
    return done({ ok: false, code: ErrorCodes.TOOL_NETWORK, error: `${tool.name} failed (${(e as Error).message})` });
  }
}
