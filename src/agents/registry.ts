/**
 * AgentRegistry: the agents this process can run, by the name used in ?agent=….
 * createAgentRegistry(config) registers the built-in echo agent (always available);
 * the AI service adapters register here as they land.
 */
import type { AgentFactory } from './agent.js';
import { ConfigError, type Config } from '../config.js';
import { createEchoAgentFactory } from './echo/echo-agent.js';
import { agentModule as pipecat } from './pipecat/index.js';
import { agentModule as gemini } from './gemini/index.js';
import { agentModule as elevenlabsModule } from './elevenlabs/index.js';
import { agentModule as hume } from './hume/index.js';
import { agentModule as openai } from './openai/index.js';

import { BridgeError, ErrorCodes } from '../errors.js';

/** An agent name nobody registered (BRIDGE_ERR_AGENT_UNKNOWN). */
export class UnknownAgentError extends BridgeError {
  constructor(
    readonly agentName: string,
    known: readonly string[],
  ) {
    super(ErrorCodes.AGENT_UNKNOWN, `unknown agent ${JSON.stringify(agentName)}; known agents: ${known.length > 0 ? known.join(', ') : '(none)'}`);
    this.name = 'UnknownAgentError';
  }
}

export class AgentRegistry {
  readonly #factories = new Map<string, AgentFactory>();

  /** Adds a factory; a second factory with the same name is a programming error (throws). */
  register(factory: AgentFactory): this {
    if (this.#factories.has(factory.name)) throw new Error(`agent ${JSON.stringify(factory.name)} is already registered`);
    this.#factories.set(factory.name, factory);
    return this;
  }

  has(name: string): boolean {
    return this.#factories.has(name);
  }

  /** The factory for `name`, available or not (check `.available`); throws UnknownAgentError (BRIDGE_ERR_AGENT_UNKNOWN). */
  get(name: string): AgentFactory {
    const factory = this.#factories.get(name);
    if (factory === undefined) throw new UnknownAgentError(name, this.names());
    return factory;
  }

  /** Every registered name, in registration order. */
  names(): string[] {
    return [...this.#factories.keys()];
  }

  /** Names of the agents the configuration allows (keys present). */
  available(): string[] {
    return [...this.#factories.values()].filter((f) => f.available).map((f) => f.name);
  }
}

/**
 * A provider adapter's entry: builds its factory from the bridge config (each
 * adapter reads and validates its own env keys from `config.env`) and reports every
 * problem it finds, so start-up can list them all at once.
 */
export interface AgentModule {
  create(config: Config): { factory: AgentFactory; problems: string[] };
}

/** The provider adapters, one line each (src/agents/<name>/index.ts exports `agentModule`). */
const MODULES: AgentModule[] = [
  // adapters register here
  pipecat,
  gemini,
  elevenlabsModule,
  hume,
  openai,
];

export function createAgentRegistry(config: Config): AgentRegistry {
  const registry = new AgentRegistry().register(createEchoAgentFactory(config));
  const problems: string[] = [];
  for (const m of MODULES) {
    const r = m.create(config);
    problems.push(...r.problems);
    registry.register(r.factory);
  }
  if (!registry.has(config.defaultAgent)) problems.push(`BRIDGE_AGENT=${config.defaultAgent}: no such agent (known: ${registry.names().join(', ')})`);
  else if (!registry.get(config.defaultAgent).available) problems.push(`BRIDGE_AGENT=${config.defaultAgent}: that agent is not configured (set its keys)`);
  if (problems.length > 0) throw new ConfigError(problems);
  return registry;
}
