/**
 * ElevenLabs Agents client tools, adapter against the fake: the tools themselves are
 * declared in the agent's settings at ElevenLabs (docs/tools.md); a `client_tool_call`
 * whose name is one of the call's tools becomes a 'toolCall' event (parameters as JSON
 * text), answered with `client_tool_result {tool_call_id, result, is_error}` — and the
 * agent answers with it. A name the call does not have is still answered at once with an
 * error result (the agent never hangs), and end_call keeps ending the call.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startFakeElevenLabs, type FakeElevenLabs } from '../fakes/elevenlabs-agents.js';
import { createElevenLabsAgentFactory } from '../../src/agents/elevenlabs/index.js';
import type { AgentSession, ToolDeclaration } from '../../src/agents/agent.js';
import { next, on, until } from './agent-events.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

const LOOKUP: ToolDeclaration = { name: 'lookup_order', description: 'Look up an order', parameters: { type: 'object', properties: { order_id: { type: 'string' } } } };

async function open(): Promise<{ fake: FakeElevenLabs; s: AgentSession; transcripts: string[]; calls: string[] }> {
  const fake = await startFakeElevenLabs();
  cleanups.push(() => fake.close());
  const s = createElevenLabsAgentFactory(fake.env).factory.create({ callSid: 'CA' + 'd'.repeat(32), parameters: {}, tools: [LOOKUP] });
  cleanups.unshift(() => s.close('test'));
  const transcripts: string[] = [];
  const calls: string[] = [];
  on(s, 'transcript', (t) => t.role === 'agent' && transcripts.push(t.text));
  on(s, 'toolCall', (c) => calls.push(c.name));
  await s.connect(AbortSignal.timeout(5000));
  return { fake, s, transcripts, calls };
}

describe('elevenlabs client tools', () => {
  it('a client_tool_call of a profile tool → toolCall; client_tool_result with the output, and the agent answers with it', async () => {
    const { fake, s, transcripts } = await open();
    const call = next(s, 'toolCall');
    const id = await fake.callTool('lookup_order', { order_id: 'A-17' });
    expect(await call).toEqual({ type: 'toolCall', callId: id, name: 'lookup_order', arguments: '{"order_id":"A-17"}' });
    s.sendToolResult(id, { ok: true, output: { status: 'shipped' } });
    await until(() => transcripts.some((t) => t.includes('Tool lookup_order said')), 'the reply that uses the result');
    expect(fake.toolResults).toEqual([{ type: 'client_tool_result', tool_call_id: id, result: '{"status":"shipped"}', is_error: false }]);
    s.sendToolResult(id, { ok: true, output: 'twice' });
    expect(fake.toolResults).toHaveLength(1);
  });

  it('an error result is is_error: true with the message, and the call goes on', async () => {
    const { fake, s, transcripts } = await open();
    const call = next(s, 'toolCall');
    const id = await fake.callTool('lookup_order', { order_id: 'X' });
    await call;
    s.sendToolResult(id, { ok: false, error: 'tool lookup_order answered HTTP 500' });
    await until(() => transcripts.some((t) => t.includes('(an error)')), 'the reply after the error');
    expect(fake.toolResults[0]).toEqual({ type: 'client_tool_result', tool_call_id: id, result: 'tool lookup_order answered HTTP 500', is_error: true });
  });

  it('barge-in while the tool runs: the result is still sent when it comes, and the agent goes on with it', async () => {
    const { fake, s, transcripts } = await open();
    const call = next(s, 'toolCall');
    const id = await fake.callTool('lookup_order', { order_id: 'B' });
    await call;
    await fake.speak(2000);
    const interrupted = next(s, 'interruption');
    await fake.interruptFromService();
    await interrupted;
    s.sendToolResult(id, { ok: true, output: { status: 'late' } });
    await until(() => transcripts.some((t) => t.includes('Tool lookup_order said')), 'the reply that uses the result');
    expect(fake.toolResults).toEqual([{ type: 'client_tool_result', tool_call_id: id, result: '{"status":"late"}', is_error: false }]);
  });

  it('a tool the call does not have is answered at once with an error result, never handed to the call core', async () => {
    const { fake, calls } = await open();
    await fake.callTool('book_table', { people: 2 });
    await until(() => fake.toolResults.length === 1, 'the error result');
    expect(fake.toolResults[0]).toMatchObject({ is_error: true });
    expect(calls).toEqual([]);
  });
});
