/**
 * What the agent is told it may call: a profile's tools as a provider-neutral list,
 * builtins included, and that list in each AI service's declaration format (pure
 * functions; the agent adapters put the result in their session set-up).
 *
 * - OpenAI Realtime (GA): `session.tools[] {type:"function", name, description, parameters}`
 *   (https://platform.openai.com/docs/api-reference/realtime-client-events/session/update).
 * - Gemini Live: `setup.tools[] {functionDeclarations[] {name, description, parameters}}`
 *   (https://ai.google.dev/api/live#bidigeneratecontentsetup). `parameters` takes the
 *   OpenAPI subset of JSON Schema; a schema using more (e.g. `additionalProperties`) can
 *   go as `parametersJsonSchema` instead (`{ schemaField: 'parametersJsonSchema' }`).
 * - Hume EVI: `session_settings.tools[] {type:"function", name, parameters, description}`
 *   with `parameters` as JSON *text* (https://dev.hume.ai/reference/speech-to-speech-evi/chat).
 * - ElevenLabs declares client tools in the agent's settings at ElevenLabs, Pipecat in the
 *   bot: nothing is sent for them (docs/tools.md).
 */
import type { Tool } from '../profiles/schema.js';

/** A JSON Schema of an object (a tool's arguments). */
export type ObjectSchema = { type: 'object'; [k: string]: unknown };

export interface ToolDeclaration {
  name: string;
  description: string;
  parameters: ObjectSchema;
}

export const END_CALL_DESCRIPTION = 'Hang up the call. Say goodbye first: the call ends once your last words have been heard.';
export const TRANSFER_CALL_DESCRIPTION = 'Transfer the caller to another number or person. Tell the caller first: the transfer happens once your last words have been heard.';

/** A tool without `parameters` takes none: an empty object schema. */
const NO_PARAMETERS: ObjectSchema = { type: 'object', properties: {} };

/** The profile's tools (in order) as the agent is to be told of them. */
export function declareTools(tools: readonly Tool[] | undefined): ToolDeclaration[] {
  const out: ToolDeclaration[] = [];
  for (const t of tools ?? []) {
    if ('builtin' in t) {
      if (t.builtin === 'end_call') {
        out.push({
          name: 'end_call',
          description: END_CALL_DESCRIPTION,
          parameters: { type: 'object', properties: { reason: { type: 'string', description: 'Why the call ends, in a few words (e.g. "resolved", "caller asked")' } } },
        });
      } else {
        out.push({
          name: 'transfer_call',
          description: TRANSFER_CALL_DESCRIPTION,
          parameters: { type: 'object', properties: { to: { type: 'string', enum: [...t.to], description: 'Where to transfer the caller: one of the allowed destinations' } }, required: ['to'] },
        });
      }
    } else {
      out.push({ name: t.name, description: t.description, parameters: structuredClone(t.parameters ?? NO_PARAMETERS) as ObjectSchema });
    }
  }
  return out;
}

/** Whether `to` is one of the destinations the profile's `transfer_call` allows (false without one). */
export function transferAllowed(tools: readonly Tool[] | undefined, to: unknown): boolean {
  if (typeof to !== 'string') return false;
  for (const t of tools ?? []) if ('builtin' in t && t.builtin === 'transfer_call' && t.to.includes(to)) return true;
  return false;
}

export interface OpenAIFunctionTool {
  type: 'function';
  name: string;
  description: string;
  parameters: ObjectSchema;
}

/** `session.tools` for OpenAI Realtime (GA). */
export function openaiSessionTools(decls: readonly ToolDeclaration[]): OpenAIFunctionTool[] {
  return decls.map((d) => ({ type: 'function', name: d.name, description: d.description, parameters: d.parameters }));
}

export type GeminiFunctionDeclaration = { name: string; description: string } & ({ parameters: ObjectSchema } | { parametersJsonSchema: ObjectSchema });

/** `setup.tools` for Gemini Live: one tool holding every declaration; `[]` when there are none (omit the key then). */
export function geminiSetupTools(decls: readonly ToolDeclaration[], options: { schemaField?: 'parameters' | 'parametersJsonSchema' } = {}): { functionDeclarations: GeminiFunctionDeclaration[] }[] {
  if (decls.length === 0) return [];
  const field = options.schemaField ?? 'parameters';
  return [{ functionDeclarations: decls.map((d) => ({ name: d.name, description: d.description, [field]: d.parameters }) as GeminiFunctionDeclaration) }];
}

export interface HumeFunctionTool {
  type: 'function';
  name: string;
  /** The JSON Schema as JSON text (Hume's format). */
  parameters: string;
  description: string;
}

/** `session_settings.tools` for Hume EVI. */
export function humeSessionTools(decls: readonly ToolDeclaration[]): HumeFunctionTool[] {
  return decls.map((d) => ({ type: 'function', name: d.name, parameters: JSON.stringify(d.parameters), description: d.description }));
}
