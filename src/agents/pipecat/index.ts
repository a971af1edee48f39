/**
 * The `pipecat` agent: a Pipecat voice-agent server reached over WebSocket with its
 * protobuf frame serializer (https://github.com/pipecat-ai/pipecat). Registered in src/agents/registry.ts.
 */
import type { AgentContext, AgentFactory } from '../agent.js';
import type { AgentModule } from '../registry.js';
import type { Config } from '../../config.js';
import { BridgeError, ErrorCodes } from '../../errors.js';
import { readPipecatConfig } from './config.js';
import { PipecatAgentSession } from './session.js';

export { PipecatAgentSession } from './session.js';
export { readPipecatConfig, type PipecatConfig } from './config.js';

export function createPipecatAgentFactory(config: Config): { factory: AgentFactory; problems: string[] } {
  const { config: pc, problems } = readPipecatConfig(config.env);
  const factory: AgentFactory = Object.freeze({
    name: 'pipecat',
    available: pc !== undefined,
    create: (ctx: AgentContext) => {
      if (pc === undefined) throw new BridgeError(ErrorCodes.AGENT_CONFIG, 'pipecat agent: PIPECAT_URL is not set');
      return new PipecatAgentSession({ config: pc, parameters: ctx.parameters, callSid: ctx.callSid });
    },
  });
  return { factory, problems };
}

export const agentModule: AgentModule = { create: createPipecatAgentFactory };
