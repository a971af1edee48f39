/**
 * The `hume` agent: Hume EVI over its chat WebSocket (see session.ts).
 *
 * NOTE: Hume announced that EVI access ends on 2026-11-13. The adapter follows the
 * documented protocol and works against any Hume-compatible endpoint (HUME_EVI_URL).
 */
import type { AgentContext, AgentFactory } from '../agent.js';
import type { AgentModule } from '../registry.js';
import type { Config } from '../../config.js';
import { BridgeError, ErrorCodes } from '../../errors.js';
import { readHumeCallOptions, readHumeConfig, type HumeCallOptions } from './config.js';
import { HumeSession } from './session.js';

export { HumeSession } from './session.js';
export type { HumeSessionStats } from './session.js';
export { readHumeConfig, readHumeCallOptions, type HumeConfig } from './config.js';

export function createHumeAgentFactory(config: Config): { factory: AgentFactory; problems: string[] } {
  const { config: hume, problems } = readHumeConfig(config.env);
  const factory: AgentFactory = Object.freeze({
    name: 'hume',
    available: hume !== undefined && problems.length === 0,
    create: (ctx: AgentContext) => {
      let call: HumeCallOptions | BridgeError;
      try {
        call = readHumeCallOptions(ctx.parameters);
        if (ctx.tools && ctx.tools.length > 0) call = { ...call, tools: ctx.tools };
      } catch (e) {
        call = e instanceof BridgeError ? e : new BridgeError(ErrorCodes.AGENT_CONFIG, String(e));
      }
      if (hume === undefined) call = new BridgeError(ErrorCodes.AGENT_CONFIG, 'hume: HUME_API_KEY is not set');
      // The session rejects connect() with `call` when it is an error; the config is then only a placeholder.
      return new HumeSession({
        config: hume ?? { apiKey: '', url: 'wss://invalid.invalid/', inputRateHz: 16_000, outputRateHz: 24_000, keepaliveMs: 5000, resumeAttempts: 0 },
        call,
        dialTimeoutMs: config.agentConnectTimeoutMs,
      });
    },
  });
  return { factory, problems };
}

export const agentModule: AgentModule = { create: createHumeAgentFactory };
