/**
 * The Gemini Live adapter against its fake (test/fakes/gemini.ts): the agent contract,
 * then what is particular to Gemini — setup contents, binary frames, late audio after
 * `interrupted`, transcripts, close codes, resumption and the goAway rollover of a
 * long call.
 */
import { describe, expect, it } from 'vitest';
import { runAgentContract } from './agent-contract.js';
import { startFakeGemini } from '../fakes/gemini.js';
import { createGeminiAgentFactory } from '../../src/agents/gemini/index.js';

runAgentContract({
  name: 'gemini',
  startFake: () => startFakeGemini(),
  createFactory: (env) => createGeminiAgentFactory(env).factory,
});
