/**
 * AgentRegistry: the agents this process can run, by the name used in ?agent=….
 * createAgentRegistry(config) registers the built-in echo agent (always available);
 * the AI service adapters register here as they land.
 */
import type { AgentFactory } from './agent.js';
import type { Config } from '../config.js';
import { createEchoAgentFactory } from './echo/echo-agent.js';

/**
 * An agent name nobody registered. Shaped like BridgeError (code, category,
 * retryable) until errors.ts has an AGENT_UNKNOWN code; then this becomes a BridgeError.
 */
import { BridgeError, ErrorCodes } from '../errors.js';

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

export function createAgentRegistry(config: Config): AgentRegistry {
  return new AgentRegistry().register(createEchoAgentFactory(config));
}
