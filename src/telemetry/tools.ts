/**
 * The tracing hook for tool calls, and the registry of the calls being traced in
 * this process. No OpenTelemetry code is imported here: code that runs tools imports
 * this module whether tracing is on or not, and without tracing every function is a
 * no-op (a lookup in an empty map).
 *
 * Agents do not report tool calls to the call core yet (AgentEvents has no such
 * event: ElevenLabs' client tools are answered inside its adapter). Whatever runs a
 * tool for a call — a future tool-call event's handler, or an adapter — wraps it:
 *
 *   const result = await traceToolCall(callSid, 'lookup_order', () => lookUp(args), { id: toolCallId });
 *
 * or, when the end comes from another callback:
 *
 *   const span = startToolCall(callSid, name, { id });  …  span.end();  /  span.end({ error });
 *
 * The span is `tool <name>`, a child of the call's open turn (else of the call), with
 * gen_ai.tool.name / gen_ai.tool.call.id; an error sets status ERROR and error.type to
 * its BRIDGE_ERR_* code (else its name). Arguments and results are never recorded (caller data).
 * Spans still open when the call ends are ended with it.
 */

export interface ToolCallOptions {
  /** The agent's id for this tool call (gen_ai.tool.call.id). */
  id?: string;
}

export interface ToolCallSpan {
  /** Ends the span (idempotent): `error` set → status ERROR with its code. */
  end(outcome?: { error?: unknown }): void;
}

/** What a traced call offers the tool hook (implemented in otel.ts). */
export interface ToolTracer {
  toolCall(name: string, options: ToolCallOptions): ToolCallSpan;
}

const NOOP: ToolCallSpan = Object.freeze({ end() {} });
const active = new Map<string, ToolTracer>();

/** A traced call's tool hook, by CallSid, while its trace is open. Returns the unregister function. */
export function registerCallTrace(callSid: string, tracer: ToolTracer): () => void {
  active.set(callSid, tracer);
  return () => {
    if (active.get(callSid) === tracer) active.delete(callSid);
  };
}

/** Calls whose trace is open in this process (0 when none is running: nothing left open). */
export function openCallTraces(): number {
  return active.size;
}

/** Starts a `tool <name>` span in the call's trace; a no-op span when the call is not traced. */
export function startToolCall(callSid: string, name: string, options: ToolCallOptions = {}): ToolCallSpan {
  const tracer = active.get(callSid);
  if (!tracer) return NOOP;
  try {
    return tracer.toolCall(name, options);
  } catch {
    return NOOP; // tracing never breaks the tool
  }
}

/** Runs `run` as a tool call of the call: the span ends when it settles, with its error if it throws. */
export async function traceToolCall<T>(callSid: string, name: string, run: () => T | Promise<T>, options: ToolCallOptions = {}): Promise<T> {
  const span = startToolCall(callSid, name, options);
  try {
    const result = await run();
    span.end();
    return result;
  } catch (error) {
    span.end({ error });
    throw error;
  }
}
