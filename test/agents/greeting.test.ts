/**
 * The agent speaks first (a profile's `greeting`), each service in its own way, against
 * its fake: OpenAI a response.create with per-response instructions, Gemini a complete
 * user turn asking for it, Hume an assistant_input spoken verbatim, ElevenLabs the
 * conversation's first_message override. In each case greeting audio follows with no
 * caller audio at all.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { AgentSession } from '../../src/agents/agent.js';
import { createOpenAiAgentFactory } from '../../src/agents/openai/index.js';
import { createGeminiAgentFactory } from '../../src/agents/gemini/index.js';
import { createHumeAgentFactory } from '../../src/agents/hume/index.js';
import { createElevenLabsAgentFactory } from '../../src/agents/elevenlabs/index.js';
import { loadConfig } from '../../src/config.js';
import { startFakeOpenAi } from '../fakes/openai-realtime.js';
import { startFakeGemini } from '../fakes/gemini.js';
import { startFakeHume } from '../fakes/hume.js';
import { startFakeElevenLabs } from '../fakes/elevenlabs-agents.js';
import { next } from './agent-events.js';

const GREETING = 'Thanks for calling Acme, how can I help?';
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});
const sid = 'CA' + '9'.repeat(32);

async function opened(s: AgentSession): Promise<AgentSession> {
  cleanups.unshift(() => s.close('test'));
  await s.connect(AbortSignal.timeout(5000));
  return s;
}

describe('greeting: the agent speaks first', () => {
  it('openai: response.create with instructions to say the words; `auto` lets the model greet', async () => {
    const fake = await startFakeOpenAi({ replyMs: 300 });
    cleanups.push(() => fake.close());
    const s = await opened(createOpenAiAgentFactory(fake.env).factory.create({ callSid: sid, parameters: {} }));
    const audio = next(s, 'audio');
    s.greet(GREETING);
    await audio;
    expect(fake.current!.responseCreates).toHaveLength(1);
    expect(fake.current!.responseCreates[0]!.response.instructions).toContain(JSON.stringify(GREETING));
    await next(s, 'responseDone');
    s.greet('auto');
    await next(s, 'audio');
    expect(fake.current!.responseCreates[1]!.response.instructions).toMatch(/Greet the caller/);
  });

  it('gemini: a complete user turn asking for the greeting, answered at once', async () => {
    const fake = await startFakeGemini();
    cleanups.push(() => fake.close());
    const s = await opened(createGeminiAgentFactory(fake.env).factory.create({ callSid: sid, parameters: {} }));
    const audio = next(s, 'audio');
    s.greet(GREETING);
    await audio;
    expect(fake.notes()).toEqual([{ channel: 'clientContent', role: 'user', text: expect.stringContaining(JSON.stringify(GREETING)), turnComplete: true }]);
  });

  it('hume: assistant_input with the words, spoken verbatim; `auto` sends nothing (the EVI config greets)', async () => {
    const fake = await startFakeHume();
    cleanups.push(() => fake.close());
    const s = await opened(createHumeAgentFactory(loadConfig({ BRIDGE_DSP: process.env.BRIDGE_DSP ?? 'auto', ...fake.env })).factory.create({ callSid: sid, parameters: {} }));
    s.greet('auto');
    const audio = next(s, 'audio');
    s.greet(GREETING);
    await audio;
    expect(fake.current!.assistantInputs).toEqual([GREETING]);
  });

  it("elevenlabs: the greeting is the conversation's first_message, spoken as it starts — an explicit first_message option wins", async () => {
    const fake = await startFakeElevenLabs();
    cleanups.push(() => fake.close());
    const factory = createElevenLabsAgentFactory(fake.env).factory;
    const s = factory.create({ callSid: sid, parameters: {}, greeting: GREETING });
    // Nobody listens until after connect (a pre-connected session): the first listener still gets the greeting.
    await opened(s);
    await next(s, 'audio');
    expect(fake.replies[0]).toBe(GREETING);
    const t = factory.create({ callSid: sid, parameters: { first_message: 'Hello from the option' }, greeting: GREETING });
    await opened(t);
    await next(t, 'audio');
    expect(fake.replies.at(-1)).toBe('Hello from the option');
  });
});
