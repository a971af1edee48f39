/**
 * Tools of an app that embeds the bridge: functions in its own process, registered with
 * `startBridge(env, { tools: [...] })`, offered to profile calls beside the profile's own
 * tools (a profile tool of the same name wins) and run with the same contract as an HTTP
 * tool — arguments as an object, a bound (`timeoutMs`, default 5000), an AbortSignal that
 * fires when the call ends or the service withdraws the call, any JSON-serializable
 * output up to 64 KiB; a throw, a timeout or a bad output is an error result for the
 * agent, and the call goes on.
 */
import { anySignal } from '../any-signal.js';
import { ErrorCodes } from '../errors.js';
import { DEFAULT_TOOL_TIMEOUT_MS } from '../profiles/schema.js';
import type { ObjectSchema, ToolDeclaration } from './declarations.js';
import { MAX_TOOL_RESPONSE_BYTES, parseToolArguments, type ToolErrorCode, type ToolInvocation, type ToolResult } from './run-tool.js';

export interface AppTool {
  name: string;
  description: string;
  /** JSON Schema of the arguments (an object); none: no arguments. */
  parameters?: ObjectSchema;
  /** The profiles whose calls get it; absent: every profile. */
  profiles?: readonly string[];
  timeoutMs?: number;
  /** The tool's work; its (awaited) return value is the output the agent gets. */
  run(args: Record<string, unknown>, call: Omit<ToolInvocation, 'arguments'> & { signal: AbortSignal }): unknown;
}

/** The app tools a call of `profile` gets: those for every profile or naming it, except where the profile has a tool of that name. */
export function appToolsFor(tools: readonly AppTool[], profile: string, profileToolNames: readonly string[]): AppTool[] {
  return tools.filter((t) => (t.profiles === undefined || t.profiles.includes(profile)) && !profileToolNames.includes(t.name));
}

export function declareAppTools(tools: readonly AppTool[]): ToolDeclaration[] {
  return tools.map((t) => ({ name: t.name, description: t.description, parameters: structuredClone(t.parameters ?? { type: 'object', properties: {} }) }));
}

/** Runs an app tool; never throws, never rejects, settles within timeoutMs (or at abort). */
export async function runAppTool(tool: AppTool, call: ToolInvocation, signal: AbortSignal): Promise<ToolResult> {
  const started = performance.now();
  const fail = (code: ToolErrorCode, error: string): ToolResult => ({ ok: false, tool: tool.name, error, code, durationMs: performance.now() - started });
  const args = parseToolArguments(call.arguments);
  if (!args.ok) return fail(ErrorCodes.TOOL_ARGUMENTS, `${tool.name}: ${args.error}`);
  const timeoutMs = tool.timeoutMs ?? DEFAULT_TOOL_TIMEOUT_MS;
  const ac = new AbortController();
  const both = anySignal([signal, ac.signal]);
  let timer: NodeJS.Timeout | undefined;
  const { arguments: _raw, ...info } = call;
  try {
    const outcome = await Promise.race([
      Promise.resolve()
        .then(() => tool.run(args.value, { ...info, signal: both }))
        .then((output) => ({ kind: 'ok' as const, output }), (e: unknown) => ({ kind: 'threw' as const, message: e instanceof Error ? e.message : String(e) })),
      new Promise<{ kind: 'timeout' }>((resolve) => (timer = setTimeout(() => resolve({ kind: 'timeout' }), timeoutMs))),
      new Promise<{ kind: 'aborted' }>((resolve) => (signal.aborted ? resolve({ kind: 'aborted' }) : signal.addEventListener('abort', () => resolve({ kind: 'aborted' }), { once: true }))),
    ]);
    switch (outcome.kind) {
      case 'timeout':
        return fail(ErrorCodes.TOOL_TIMEOUT, `${tool.name} did not answer within ${timeoutMs} ms`);
      case 'aborted':
        return fail(ErrorCodes.TOOL_ABORTED, `${tool.name} was cancelled`);
      case 'threw':
        return fail(ErrorCodes.TOOL_BAD_RESPONSE, `${tool.name} failed: ${outcome.message.slice(0, 200)}`);
      case 'ok': {
        let text: string | undefined;
        try {
          text = JSON.stringify(outcome.output ?? null);
        } catch {
          return fail(ErrorCodes.TOOL_BAD_RESPONSE, `${tool.name} returned something that is not JSON`);
        }
        if (Buffer.byteLength(text) > MAX_TOOL_RESPONSE_BYTES) return fail(ErrorCodes.TOOL_RESPONSE_TOO_LARGE, `${tool.name} returned more than ${MAX_TOOL_RESPONSE_BYTES} bytes`);
        return { ok: true, tool: tool.name, output: JSON.parse(text) as unknown, durationMs: performance.now() - started };
      }
    }
  } finally {
    clearTimeout(timer);
    ac.abort(); // the tool's own work stops when its answer is no longer wanted
  }
}
