/**
 * The OpenAI Realtime adapter against its fake (test/fakes/openai-realtime.ts):
 * the shared agent contract, then what is specific to OpenAI — the GA session.update,
 * μ-law passthrough and PCM16 24 kHz, barge-in (truncate at the heard position,
 * cancel, late deltas dropped), transcripts, DTMF as text, service errors, reconnects,
 * and rolling over to a fresh session before the cap.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { runAgentContract } from './agent-contract.js';
import { startFakeOpenAi, type FakeOpenAi, type FakeOpenAiOptions } from '../fakes/openai-realtime.js';
import { createOpenAiAgentFactory, type OpenAiRealtimeSession } from '../../src/agents/openai/index.js';
import type { AgentAudio, Transcript } from '../../src/agents/agent.js';
import type { BridgeError } from '../../src/errors.js';

runAgentContract({
  name: 'openai',
  startFake: () => startFakeOpenAi(),
  createFactory: (env) => createOpenAiAgentFactory(env).factory,
});
