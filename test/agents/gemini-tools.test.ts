/**
 * Gemini Live function calling, adapter against the fake (test/fakes/gemini.ts): tools are
 * declared in setup.tools[].functionDeclarations (the JSON Schema as written, in
 * parametersJsonSchema); toolCall.functionCalls[] become 'toolCall' events (args as
 * JSON text); the answer is toolResponse.functionResponses[] with the same id and name,
 * `response: {output}` or `{error}`, and the model answers with it. toolCallCancellation
 * (the caller interrupted) → 'toolCancel', and nothing is sent for those calls.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startFakeGemini, type FakeGemini } from '../fakes/gemini.js';
import { createGeminiAgentFactory } from '../../src/agents/gemini/index.js';
import type { AgentSession, ToolDeclaration } from '../../src/agents/agent.js';
import { next, on, until } from './agent-events.js';

const fakes: FakeGemini[] = [];
const sessions: AgentSession[] = [];
afterEach(async () => {
  await Promise.all(sessions.splice(0).map((s) => s.close('test end')));
  await Promise.all(fakes.splice(0).map((f) => f.close()));
});

const LOOKUP: ToolDeclaration = {
  name: 'lookup_order',
  description: 'Look up an order by its number',
  parameters: { type: 'object', properties: { order_id: { type: 'string' } }, required: ['order_id'] },
};

async function open(tools: ToolDeclaration[] = [LOOKUP]) {
  const fake = await startFakeGemini();
  fakes.push(fake);
  const s = createGeminiAgentFactory(fake.env).factory.create({ callSid: 'CA' + 'c'.repeat(32), parameters: {}, tools });
  sessions.push(s);
  const transcripts: string[] = [];
  const errors: string[] = [];
  on(s, 'transcript', (t) => t.role === 'agent' && transcripts.push(t.text));
  on(s, 'error', ({ error }) => errors.push(error.code));
  await s.connect(AbortSignal.timeout(5000));
  return { fake, s, transcripts, errors };
}

describe('gemini tools', () => {
  it('declares the tools in setup.tools[].functionDeclarations (parametersJsonSchema); none → no tools key', async () => {
    const { fake } = await open();
    expect(fake.connections()[0]!.setup!['tools']).toEqual([{ functionDeclarations: [{ name: 'lookup_order', description: 'Look up an order by its number', parametersJsonSchema: LOOKUP.parameters }] }]);
    const bare = await open([]);
    expect('tools' in bare.fake.connections()[0]!.setup!).toBe(false);
  });

  it('a toolCall → toolCall event (id, name, args as JSON text); the toolResponse carries the same id and name with {output}, and the model answers with it', async () => {
    const { fake, s, transcripts, errors } = await open();
    const call = next(s, 'toolCall');
    const id = fake.callTool('lookup_order', { order_id: 'A-17' });
    expect(await call).toEqual({ type: 'toolCall', callId: id, name: 'lookup_order', arguments: '{"order_id":"A-17"}' });
    s.sendToolResult(id, { ok: true, output: { status: 'shipped' } });
    await until(() => transcripts.some((t) => t.includes('tool lookup_order said')), 'the reply that uses the output');
    expect(fake.toolResponses()).toEqual([{ id, name: 'lookup_order', response: { output: { status: 'shipped' } } }]);
    expect(transcripts.at(-1)).toContain('tool lookup_order said {"output":{"status":"shipped"}}');
    expect(errors).toEqual([]);
    // Answered once: a second answer to the same id sends nothing.
    s.sendToolResult(id, { ok: true, output: 'again' });
    expect(fake.toolResponses()).toHaveLength(1);
  });

  it('an error result is response: {"error": "…"}, and the call goes on', async () => {
    const { fake, s, transcripts } = await open();
    const call = next(s, 'toolCall');
    const id = fake.callTool('lookup_order', { order_id: 'X' });
    await call;
    s.sendToolResult(id, { ok: false, error: 'tool lookup_order timed out after 5000 ms' });
    await until(() => transcripts.some((t) => t.includes('said {"error"')), 'the reply after the error');
    expect(fake.toolResponses()[0]!.response).toEqual({ error: 'tool lookup_order timed out after 5000 ms' });
    expect(fake.connections().at(-1)!.closedBy).toBeUndefined(); // the fake found nothing to refuse
  });

  it('toolCallCancellation (the caller interrupted) → toolCancel with the ids; an answer after it sends nothing', async () => {
    const { fake, s } = await open();
    const call = next(s, 'toolCall');
    const id = fake.callTool('lookup_order', { order_id: 'B' });
    await call;
    const cancelled = next(s, 'toolCancel');
    expect(fake.cancelTools()).toEqual([id]);
    expect(await cancelled).toEqual({ type: 'toolCancel', callIds: [id] });
    s.sendToolResult(id, { ok: true, output: 'too late' });
    // A DTMF digit after it: the fake handles messages in order, so once it has the digit it had anything sent before.
    s.sendDtmf('7');
    await until(() => fake.received().dtmf.includes('7'), 'the DTMF after the late answer');
    expect(fake.toolResponses()).toEqual([]);
  });
});
