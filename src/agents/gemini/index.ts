/**
 * The Gemini Live adapter's entry (registry.ts `MODULES`): reads GEMINI_* from
 * Config.env; the factory is available only when GEMINI_API_KEY is set.
 */
import type { AgentContext, AgentFactory } from '../agent.js';
import type { AgentModule } from '../registry.js';
import type { Config } from '../../config.js';
import { BridgeError } from '../../errors.js';
import { geminiCallOptions, readGeminiConfig } from './config.js';
import { GeminiLiveSession } from './session.js';

export { GeminiLiveSession, type GeminiSessionStats, type GeminiSessionState } from './session.js';
export { readGeminiConfig, type GeminiConfig } from './config.js';

export const GEMINI_AGENT_NAME = 'gemini';

/** The factory from a raw environment (tests pass a fake's env). */
export function createGeminiAgentFactory(env: Readonly<Record<string, string | undefined>>): { factory: AgentFactory; problems: string[] } {
  const { config, problems } = readGeminiConfig(env);
  const factory: AgentFactory = Object.freeze({
    name: GEMINI_AGENT_NAME,
    available: config !== undefined && problems.length === 0,
    create: (ctx: AgentContext) => {
      if (config === undefined) throw new Error('gemini agent: GEMINI_API_KEY is not set');
      let options;
      try {
        options = geminiCallOptions(config, ctx.parameters);
        if (ctx.tools && ctx.tools.length > 0) options = { ...options, tools: ctx.tools };
      } catch (e) {
        // A bad webhook option: connect() rejects with it (BRIDGE_ERR_AGENT_CONFIG).
        options = e as BridgeError;
      }
      return new GeminiLiveSession(config, options);
    },
  });
  return { factory, problems };
}

export const agentModule: AgentModule = {
  create: (config: Config) => createGeminiAgentFactory(config.env),
};
