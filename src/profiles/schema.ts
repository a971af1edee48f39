/**
 * The profiles file (`BRIDGE_PROFILES`, `voice-bridge profiles check`; docs/profiles.md):
 * its schema, declared once with TypeBox. The same declaration validates a loaded file
 * (src/profiles/load.ts) and is published as docs/profiles.schema.json for editors
 * (`npx tsx scripts/gen-profiles-schema.ts`; test/profiles/schema-drift.test.ts fails
 * when the committed file differs).
 *
 * Every object refuses unknown keys, except the two that are someone else's: `options`
 * (the agent's own options) and a tool's `parameters` (a JSON Schema of its arguments).
 * What a schema cannot say (duplicates across entries, URL schemes, transfer
 * destinations) is checked in src/profiles/semantic-checks.ts.
 */
import { Type, type Static } from '@sinclair/typebox';
import { AGENT_NAMES } from '../config.js';

/** E.164 (ITU-T E.164: "+", country code, at most 15 digits), as Twilio sends `To`. */
export const E164_PATTERN = '^\\+[1-9]\\d{6,14}$';
/** A profile name travels in `?profile=NAME` and on the command line: URL-safe, no spaces. */
export const PROFILE_NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$';
/**
 * A tool name every provider accepts: OpenAI function names are `[a-zA-Z0-9_-]{1,64}`
 * (https://platform.openai.com/docs/api-reference/realtime-client-events/session/update);
 * Gemini's must start with a letter or an underscore, at most 63 or 64 characters
 * depending on the API version (https://ai.google.dev/api/caching#FunctionDeclaration).
 */
export const TOOL_NAME_PATTERN = '^[A-Za-z_][A-Za-z0-9_-]{0,62}$';
/** `to` of the default profile: it answers every called number no other profile lists. */
export const DEFAULT_MATCH = '*';
/** An entry of `match.to`: a number, or "*" (load.ts refuses "*" listed with numbers). */
export const MATCH_TO_PATTERN = '^(\\+[1-9]\\d{6,14}|\\*)$';
export const BUILTIN_TOOL_NAMES = ['end_call', 'transfer_call'] as const;
export const DEFAULT_TOOL_TIMEOUT_MS = 5000;

const MatchSchema = Type.Object(
  {
    to: Type.Union([Type.Literal(DEFAULT_MATCH), Type.Array(Type.String({ pattern: MATCH_TO_PATTERN }), { minItems: 1 })], {
      description: 'The called number(s) in E.164 form (Twilio\'s `To`), or "*" for the default profile',
    }),
  },
  { additionalProperties: false },
);

export const FunctionToolSchema = Type.Object(
  {
    name: Type.String({ pattern: TOOL_NAME_PATTERN, description: 'The name the agent calls it by (letters, digits, _ and -, starting with a letter or _; at most 63)' }),
    description: Type.String({ minLength: 1, description: 'What it does: the model decides from this when to call it' }),
    parameters: Type.Optional(
      Type.Object({ type: Type.Literal('object') }, { additionalProperties: true, description: 'JSON Schema of the arguments (an object schema); none: the tool takes no arguments' }),
    ),
    url: Type.String({ minLength: 1, description: 'http(s) URL the bridge POSTs each call of the tool to' }),
    timeoutMs: Type.Optional(Type.Integer({ minimum: 100, maximum: 60_000, default: DEFAULT_TOOL_TIMEOUT_MS, description: 'Longest wait for the reply (ms)' })),
  },
  { additionalProperties: false },
);

export const EndCallToolSchema = Type.Object(
  { builtin: Type.Literal('end_call', { description: 'The agent may hang up (after its goodbye is heard)' }) },
  { additionalProperties: false },
);

export const TransferCallToolSchema = Type.Object(
  {
    builtin: Type.Literal('transfer_call', { description: 'The agent may hand the caller to one of `to`' }),
    to: Type.Array(Type.String({ minLength: 1 }), { minItems: 1, description: 'The only destinations allowed: E.164 numbers or sip: URIs' }),
  },
  { additionalProperties: false },
);

export const ToolSchema = Type.Union([FunctionToolSchema, EndCallToolSchema, TransferCallToolSchema]);

export const ProfileSchema = Type.Object(
  {
    name: Type.String({ pattern: PROFILE_NAME_PATTERN, description: 'Unique name (`?profile=NAME`): letters, digits, _ and -, at most 64' }),
    match: MatchSchema,
    agent: Type.Union(
      AGENT_NAMES.map((n) => Type.Literal(n)),
      { description: 'The agent that answers' },
    ),
    options: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: "The agent's own options (any length)" })),
    greeting: Type.Optional(Type.String({ minLength: 1, description: 'The agent speaks first with this text; "auto" lets the model greet' })),
    tools: Type.Optional(Type.Array(ToolSchema, { description: 'Tools the agent may call' })),
    events: Type.Optional(Type.Object({ url: Type.String({ minLength: 1, description: 'http(s) URL call events are POSTed to' }) }, { additionalProperties: false })),
    secret: Type.Optional(Type.String({ minLength: 1, description: 'Signs tool requests and events (use `${VAR}` to take it from the environment)' })),
  },
  { additionalProperties: false },
);

export const ProfilesFileSchema = Type.Object(
  { profiles: Type.Array(ProfileSchema, { minItems: 1 }) },
  { additionalProperties: false, title: 'voice-bridge profiles', description: 'Per-number agent profiles (docs/profiles.md)' },
);

export type FunctionTool = Static<typeof FunctionToolSchema>;
export type EndCallTool = Static<typeof EndCallToolSchema>;
export type TransferCallTool = Static<typeof TransferCallToolSchema>;
export type Tool = Static<typeof ToolSchema>;
export type Profile = Static<typeof ProfileSchema>;
export type ProfilesFile = Static<typeof ProfilesFileSchema>;

/** docs/profiles.schema.json: the schema as published (JSON Schema draft-07, which editors read). */
export function renderProfilesJsonSchema(): string {
  const schema = { $schema: 'http://json-schema.org/draft-07/schema#', ...ProfilesFileSchema };
  return `${JSON.stringify(schema, null, 2)}\n`;
}
