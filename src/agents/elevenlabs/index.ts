/**
 * The `elevenlabs` agent: ElevenLabs Agents (Conversational AI) over its conversation
 * WebSocket. Available when ELEVENLABS_AGENT_ID is set (see config.ts, agent-session.ts).
 */
import type { AgentFactory } from '../agent.js';
import type { AgentModule } from '../registry.js';
import { BridgeError, ErrorCodes } from '../../errors.js';
import { readElevenLabsAgentConfig, type ElevenLabsAgentConfig } from './config.js';
import { ElevenLabsAgentSession } from './agent-session.js';

export { ElevenLabsAgentSession } from './agent-session.js';
export type { ElevenLabsAgentConfig } from './config.js';

export const ELEVENLABS_AGENT_NAME = 'elevenlabs';

/** The factory from raw environment keys (tests and the module below use it). */
export function createElevenLabsAgentFactory(env: Readonly<Record<string, string | undefined>>): { factory: AgentFactory; problems: string[] } {
  const { config, problems } = readElevenLabsAgentConfig(env);
  const usable: ElevenLabsAgentConfig | undefined = problems.length === 0 ? config : undefined;
  const factory: AgentFactory = Object.freeze({
    name: ELEVENLABS_AGENT_NAME,
    available: usable !== undefined,
    create: (ctx) => {
      if (usable === undefined) throw new BridgeError(ErrorCodes.AGENT_CONFIG, 'elevenlabs agent: not configured (set ELEVENLABS_AGENT_ID)');
      return new ElevenLabsAgentSession(usable, ctx);
    },
  } satisfies AgentFactory);
  return { factory, problems };
}

export const agentModule: AgentModule = {
  create: (config) => createElevenLabsAgentFactory(config.env),
};
