/**
 * What a tool call of the agent is, by its name in the profile — one answer for every
 * agent adapter and the call layer:
 *
 *   a profile tool with a `url`  → runTool (src/tools/run-tool.ts)
 *   `end_call`                   → the call layer hangs up after the goodbye; endCallReason() reads `reason`
 *   `transfer_call`              → transferDestination() checks `to` against the allowed list
 *   anything else                → unknownToolResult(): an error result, nothing sent
 *
 * Results made here have the shape runTool returns, so the per-provider result shapes
 * (result-shapes.ts) and the metrics (`observe`) take them the same way.
 */
import { ErrorCodes } from '../errors.js';
import type { FunctionTool, Tool } from '../profiles/schema.js';
import { parseToolArguments, type ToolErrorCode, type ToolResult } from './run-tool.js';

export type ToolTarget = { kind: 'http'; tool: FunctionTool } | { kind: 'end_call' } | { kind: 'transfer_call'; allowed: readonly string[] } | { kind: 'unknown' };

/** The profile's tool the agent called by `name`. */
export function findTool(tools: readonly Tool[] | undefined, name: string): ToolTarget {
  for (const t of tools ?? []) {
    if ('builtin' in t) {
      if (t.builtin === name) return t.builtin === 'end_call' ? { kind: 'end_call' } : { kind: 'transfer_call', allowed: t.to };
    } else if (t.name === name) return { kind: 'http', tool: t };
  }
  return { kind: 'unknown' };
}

/** An error result made by the bridge itself (nothing was sent anywhere). */
export function toolErrorResult(tool: string, code: ToolErrorCode, error: string, durationMs = 0): ToolResult {
  return { ok: false, tool, error, code, durationMs };
}

/** A builtin's success, in the shape of a tool result (the agent is told it is done). */
export function builtinOkResult(tool: 'end_call' | 'transfer_call', output: unknown = { ok: true }): ToolResult {
  return { ok: true, tool, output, durationMs: 0 };
}

export function unknownToolResult(name: string): ToolResult {
  // The name is the model's; quoted back shortened so the model can correct itself.
  return toolErrorResult(name.slice(0, 64), ErrorCodes.TOOL_UNKNOWN, `there is no tool named "${name.slice(0, 64)}"`);
}

/** `transfer_call`'s destination when the profile allows it; else the error result for the agent (nothing is dialled). */
export function transferDestination(allowed: readonly string[], rawArguments: unknown): { ok: true; to: string } | { ok: false; result: ToolResult } {
  const args = parseToolArguments(rawArguments);
  if (!args.ok) return { ok: false, result: toolErrorResult('transfer_call', ErrorCodes.TOOL_ARGUMENTS, `transfer_call: ${args.error}`) };
  const to = args.value.to;
  if (typeof to === 'string' && allowed.includes(to)) return { ok: true, to };
  const said = typeof to === 'string' ? `"${to.slice(0, 64)}" is not` : 'no destination is';
  return { ok: false, result: toolErrorResult('transfer_call', ErrorCodes.TOOL_TRANSFER_REFUSED, `${said} an allowed transfer destination; allowed: ${allowed.join(', ')}`) };
}

/**
 * `end_call`'s `reason`, fit for an end reason (`agent-ended:<reason>`): one line, at most
 * 64 characters; undefined when absent or unreadable (end_call never fails on its reason).
 */
export function endCallReason(rawArguments: unknown): string | undefined {
  const args = parseToolArguments(rawArguments);
  if (!args.ok || typeof args.value.reason !== 'string') return undefined;
  const r = args.value.reason.replace(/[\r\n\t]+/g, ' ').trim().slice(0, 64);
  return r.length > 0 ? r : undefined;
}
