/**
 * A tool's result in each AI service's own message shape: pure functions the agent
 * adapters call with what runTool returned (or with an error of their own, e.g. a
 * transfer destination that is not allowed). Shapes from the services' docs:
 *
 * - OpenAI Realtime (GA): `conversation.item.create` with a `function_call_output` item
 *   whose `output` is text — the output as JSON text, or `{"error":"…"}` on failure
 *   (https://platform.openai.com/docs/api-reference/realtime-client-events/conversation/item/create).
 *   The adapter sends `response.create` afterwards, once the response that made the call is done.
 * - Gemini Live: `toolResponse.functionResponses[] {id, name, response}`, where `response`
 *   is an object — `{"output": …}` or `{"error": "…"}`, the two keys the API documents
 *   (https://ai.google.dev/api/live#bidigeneratecontenttoolresponse,
 *   https://ai.google.dev/api/caching#FunctionResponse).
 * - ElevenLabs Agents: `client_tool_result {tool_call_id, result, is_error}`
 *   (https://elevenlabs.io/docs/agents-platform/api-reference/agents-platform/websocket).
 * - Hume EVI: `tool_response {tool_call_id, content}` or `tool_error {tool_call_id, error,
 *   content, code, level}` (https://dev.hume.ai/reference/speech-to-speech-evi/chat).
 */

/** What the shapes need of a result (runTool's ToolResult fits). */
import type { ToolResult as AgentToolResult } from '../agents/agent.js';
export type ToolOutcomeLike = AgentToolResult;

/** An output as text: a string stays as it is, anything else is its JSON text. */
export function outputText(output: unknown): string {
  if (typeof output === 'string') return output;
  const s = JSON.stringify(output);
  return s === undefined ? 'null' : s;
}

/** The JSON text `{"error":"…"}` (what OpenAI's `output` carries on failure). */
export function errorText(error: string): string {
  return JSON.stringify({ error });
}

export interface OpenAIFunctionCallOutputEvent {
  type: 'conversation.item.create';
  item: { type: 'function_call_output'; call_id: string; output: string };
}

export function openaiToolResult(callId: string, r: ToolOutcomeLike): OpenAIFunctionCallOutputEvent {
  return { type: 'conversation.item.create', item: { type: 'function_call_output', call_id: callId, output: r.ok ? outputText(r.output) : errorText(r.error) } };
}

export interface GeminiFunctionResponse {
  id: string;
  name: string;
  response: { output: unknown } | { error: string };
}

export function geminiFunctionResponse(id: string, name: string, r: ToolOutcomeLike): GeminiFunctionResponse {
  return { id, name, response: r.ok ? { output: r.output ?? null } : { error: r.error } };
}

/** One `toolResponse` message for the results of one `toolCall` (several calls may be answered together). */
export function geminiToolResponse(responses: readonly GeminiFunctionResponse[]): { toolResponse: { functionResponses: GeminiFunctionResponse[] } } {
  return { toolResponse: { functionResponses: [...responses] } };
}

export interface ElevenLabsClientToolResult {
  type: 'client_tool_result';
  tool_call_id: string;
  result: string;
  is_error: boolean;
}

export function elevenlabsToolResult(toolCallId: string, r: ToolOutcomeLike): ElevenLabsClientToolResult {
  return r.ok
    ? { type: 'client_tool_result', tool_call_id: toolCallId, result: outputText(r.output), is_error: false }
    : { type: 'client_tool_result', tool_call_id: toolCallId, result: r.error, is_error: true };
}

export type HumeToolMessage =
  | { type: 'tool_response'; tool_call_id: string; content: string; tool_name?: string }
  | { type: 'tool_error'; tool_call_id: string; error: string; content: string; code?: string; level: 'warn' };

/**
 * `tool_error.content` is what the model is given in place of a result, so it carries the
 * message too; `level: "warn"` keeps the chat going (an error level may end it).
 */
export function humeToolResult(toolCallId: string, r: ToolOutcomeLike, toolName?: string): HumeToolMessage {
  if (r.ok) return { type: 'tool_response', tool_call_id: toolCallId, content: outputText(r.output), ...(toolName !== undefined ? { tool_name: toolName } : {}) };
  return { type: 'tool_error', tool_call_id: toolCallId, error: r.error, content: errorText(r.error), ...(r.code !== undefined ? { code: r.code } : {}), level: 'warn' };
}
