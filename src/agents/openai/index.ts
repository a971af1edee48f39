/**
 * The `openai` agent: OpenAI Realtime API (GA) over WebSocket. Registered in
 * agents/registry.ts; configured by OPENAI_* (see docs/agents/openai.md).
 */
import type { AgentContext, AgentFactory } from '../agent.js';
import type { AgentModule } from '../registry.js';
import type { Config } from '../../config.js';
import { BridgeError, ErrorCodes } from '../../errors.js';
import { readOpenAiConfig, sessionSettingsFor } from './config.js';
import { OpenAiRealtimeSession } from './session.js';

export { OpenAiRealtimeSession } from './session.js';
export { readOpenAiConfig } from './config.js';

/** The factory from raw environment variables; `problems` lists every bad OPENAI_* value. */
export function createOpenAiAgentFactory(env: Readonly<Record<string, string | undefined>>): { factory: AgentFactory; problems: string[] } {
  const { config, problems } = readOpenAiConfig(env);
  const factory: AgentFactory = Object.freeze({
    name: 'openai',
    available: config !== undefined,
    create: (ctx: AgentContext) => {
      if (config === undefined) throw new BridgeError(ErrorCodes.AGENT_CONFIG, 'openai agent: OPENAI_API_KEY is not set');
      let settings;
      try {
        settings = sessionSettingsFor(config.defaults, ctx.parameters);
        if (ctx.tools && ctx.tools.length > 0) settings = { ...settings, tools: ctx.tools };
      } catch (e) {
        // A bad agent parameter: connect() rejects with it (BRIDGE_ERR_AGENT_CONFIG).
        settings = e instanceof BridgeError ? e : new BridgeError(ErrorCodes.AGENT_CONFIG, String(e));
      }
      return new OpenAiRealtimeSession({ config, settings });
    },
  });
  return { factory, problems };
}

export const agentModule: AgentModule = {
  create: (config: Config) => createOpenAiAgentFactory(config.env),
};
