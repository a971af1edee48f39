/**
 * ElevenLabs Agents adapter configuration: the ELEVENLABS_* keys this adapter reads
 * from Config.env (validated once, every problem listed), and the per-call agent
 * options from the webhook (`ctx.parameters`), validated when a session connects.
 *
 * ELEVENLABS_API_KEY is shared with the ElevenLabs TTS client; here it only selects
 * the signed-URL path (private agents). The agent's own settings (voice, prompt,
 * audio formats, max duration) live in the ElevenLabs dashboard; per-call overrides
 * only work for fields the agent's security settings allow.
 */
import { BridgeError, ErrorCodes } from '../../errors.js';
import { envDefault, readEnv } from '../../env-schema.js';
import { normaliseAgentLanguage, type ConversationOverrides, type ElevenLabsAudioFormat } from './agent-protocol.js';

export type DtmfMode = 'user_message' | 'contextual_update' | 'off';

export interface ElevenLabsAgentConfig {
  readonly agentId: string;
  /** Set → private agent: a signed URL is fetched with it first. */
  readonly apiKey: string | undefined;
  /** Conversation WebSocket URL without query (ELEVENLABS_CONVAI_URL). */
  readonly convaiUrl: string;
  /** REST base for the signed URL (ELEVENLABS_API_URL). */
  readonly apiUrl: string;
  /** The format we expect the agent to be configured with (both directions). */
  readonly audioFormat: ElevenLabsAudioFormat;
  /** No data (message or WebSocket pong) for this long → the service stopped answering. */
  readonly idleTimeoutMs: number;
  /** Quiet time after the last audio of a response (its agent_response seen) that ends it. */
  readonly responseGapMs: number;
  readonly dtmfMode: DtmfMode;
  /** On barge-in, tell the agent (contextual_update) how much of its reply the caller heard. */
  readonly reportHeard: boolean;
  /** Client tool names that end the call. */
  readonly endCallTools: readonly string[];
}

export const DEFAULT_CONVAI_URL = envDefault('ELEVENLABS_CONVAI_URL');
export const DEFAULT_API_URL = envDefault('ELEVENLABS_API_URL');

type Env = Readonly<Record<string, string | undefined>>;

/** Reads ELEVENLABS_* of the Agents adapter (declared in src/env-schema.ts); `config` is undefined without ELEVENLABS_AGENT_ID. */
export function readElevenLabsAgentConfig(env: Env): { config: ElevenLabsAgentConfig | undefined; problems: string[] } {
  const { values: e, problems } = readEnv(env, 'elevenlabs');
  const tools = e.ELEVENLABS_END_CALL_TOOLS.split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const agentId = e.ELEVENLABS_AGENT_ID;
  if (agentId === undefined) return { config: undefined, problems };
  return {
    config: Object.freeze({
      agentId,
      apiKey: e.ELEVENLABS_API_KEY,
      convaiUrl: e.ELEVENLABS_CONVAI_URL.replace(/\/+$/, ''),
      apiUrl: e.ELEVENLABS_API_URL.replace(/\/+$/, ''),
      audioFormat: e.ELEVENLABS_AUDIO_FORMAT as ElevenLabsAudioFormat,
      idleTimeoutMs: e.ELEVENLABS_IDLE_TIMEOUT_MS,
      responseGapMs: e.ELEVENLABS_RESPONSE_GAP_MS,
      dtmfMode: e.ELEVENLABS_DTMF_MODE,
      reportHeard: e.ELEVENLABS_REPORT_HEARD,
      endCallTools: Object.freeze(tools),
    }),
    problems,
  };
}

/** Per-call agent options, from the webhook's query (TwiML <Parameter>s). */
export interface CallOptions {
  readonly overrides: ConversationOverrides;
  readonly dynamicVariables: Readonly<Record<string, string>>;
}

const MAX_VARIABLES = 32;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/;

/**
 * Agent options (all optional; each needs its override enabled in the agent's
 * security settings, or the service refuses the conversation):
 *   instructions   → conversation_config_override.agent.prompt.prompt
 *   first_message  → …agent.first_message ("" = the agent waits for the caller)
 *   language       → …agent.language, one of the service's lowercase codes (en, de, pt, pt-br…);
 *                    pt-BR / pt_BR are normalised to pt-br, an unlisted region falls back to its
 *                    language (en-US → en), an unsupported language is refused
 *   voice          → …tts.voice_id
 *   var_<name>     → dynamic_variables.<name> (referenced as {{name}} in the agent's prompt)
 * Other parameters are not ours (the webhook may carry options for other purposes) and are ignored.
 * Throws BRIDGE_ERR_AGENT_CONFIG on a bad value.
 */
export function parseCallOptions(parameters: Readonly<Record<string, string>>): CallOptions {
  const fail = (msg: string): never => {
    throw new BridgeError(ErrorCodes.AGENT_CONFIG, `elevenlabs agent: ${msg}`);
  };
  const text = (name: string, max: number, allowEmpty: boolean): string | undefined => {
    const v = parameters[name];
    if (v === undefined) return undefined;
    if (v.length > max) fail(`${name} is longer than ${max} characters`);
    if (CONTROL.test(v)) fail(`${name} contains control characters`);
    if (!allowEmpty && v.trim() === '') fail(`${name} is empty`);
    return v;
  };
  const overrides: { -readonly [K in keyof ConversationOverrides]: ConversationOverrides[K] } = {};
  const prompt = text('instructions', 20_000, false);
  if (prompt !== undefined) overrides.prompt = prompt;
  const firstMessage = text('first_message', 2000, true);
  if (firstMessage !== undefined) overrides.firstMessage = firstMessage;
  const language = parameters['language'];
  if (language !== undefined) {
    const code = normaliseAgentLanguage(language);
    if (code === undefined) fail(`language=${JSON.stringify(language.slice(0, 40))} is not a language ElevenLabs Agents supports; use a code such as en, de, es, pt or pt-br (see docs/agents/elevenlabs.md)`);
    overrides.language = code;
  }
  const voice = parameters['voice'];
  if (voice !== undefined) {
    if (!/^[A-Za-z0-9]{8,64}$/.test(voice)) fail(`voice=${JSON.stringify(voice.slice(0, 80))} must be an ElevenLabs voice id (letters and digits)`);
    overrides.voiceId = voice;
  }
  const dynamicVariables: Record<string, string> = {};
  for (const [k, v] of Object.entries(parameters)) {
    if (!k.startsWith('var_')) continue;
    const name = k.slice(4);
    if (!/^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(name)) fail(`${JSON.stringify(k.slice(0, 80))}: a dynamic variable name must be letters, digits and _`);
    if (name.startsWith('system__')) fail(`${k}: system__ variables are set by ElevenLabs`);
    if (v.length > 2000 || CONTROL.test(v)) fail(`${k}: at most 2000 characters, no control characters`);
    dynamicVariables[name] = v;
  }
  if (Object.keys(dynamicVariables).length > MAX_VARIABLES) fail(`at most ${MAX_VARIABLES} var_ parameters`);
  return { overrides, dynamicVariables };
}
