/**
 * The Pipecat adapter against its fake (test/fakes/pipecat-server.ts): the agent
 * contract, then what is specific to Pipecat's protobuf serializer.
 */
import { describe, expect, it } from 'vitest';
import { runAgentContract } from './agent-contract.js';
import { startFakePipecat } from '../fakes/pipecat-server.js';
import { loadConfig } from '../../src/config.js';
import { createPipecatAgentFactory } from '../../src/agents/pipecat/index.js';

function factoryFor(env: Record<string, string>) {
  const config = loadConfig({ BRIDGE_LOG_LEVEL: 'silent', ...env });
  const { factory, problems } = createPipecatAgentFactory(config);
  if (problems.length > 0) throw new Error(problems.join('; '));
  return factory;
}

runAgentContract({
  name: 'pipecat',
  startFake: () => startFakePipecat(),
  createFactory: factoryFor,
  faultTimeoutMs: 4000,
});
