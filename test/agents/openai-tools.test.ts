/**
 * OpenAI Realtime function calling, adapter against the fake (GA shapes): tools are
 * declared in session.update; a `function_call` output item becomes a 'toolCall'
 * event with the provider's call_id, name and JSON-text arguments; the answer goes back
 * as a `function_call_output` item for that call_id, then one `response.create` after
 * the response that made the call is done — and the model answers with the output. An
 * error result is the JSON text {"error": "…"}. A barge-in while the tool runs: the
 * output still goes in, no response.create on top of the caller's turn.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startFakeOpenAi, type FakeOpenAi } from '../fakes/openai-realtime.js';
import { createOpenAiAgentFactory, type OpenAiRealtimeSession } from '../../src/agents/openai/index.js';
import type { ToolDeclaration } from '../../src/agents/agent.js';
import { next, on, until } from './agent-events.js';

const fakes: FakeOpenAi[] = [];
const sessions: OpenAiRealtimeSession[] = [];
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
  const fake = await startFakeOpenAi({ replyMs: 300 });
  fakes.push(fake);
  const s = createOpenAiAgentFactory(fake.env).factory.create({ callSid: 'CA' + 'b'.repeat(32), parameters: {}, tools }) as OpenAiRealtimeSession;
  sessions.push(s);
  const transcripts: string[] = [];
  const errors: string[] = [];
  on(s, 'transcript', (t) => t.role === 'agent' && transcripts.push(t.text));
  on(s, 'error', ({ error }) => errors.push(error.code));
  await s.connect(AbortSignal.timeout(5000));
  return { fake, s, transcripts, errors };
}

describe('openai tools', () => {
  it('declares the tools in session.update (GA function tools, tool_choice auto); none → no tools key', async () => {
    const { fake } = await open();
    const su = fake.current!.sessionUpdates[0]!;
    expect(su.tools).toEqual([{ type: 'function', name: 'lookup_order', description: 'Look up an order by its number', parameters: LOOKUP.parameters }]);
    expect(su.tool_choice).toBe('auto');
    const bare = await open([]);
    expect('tools' in bare.fake.current!.sessionUpdates[0]!).toBe(false);
  });

  it('a function_call → toolCall (call_id, name, arguments text); the output goes back for that call_id, then one response.create, and the model answers with it', async () => {
    const { fake, s, transcripts, errors } = await open();
    const call = next(s, 'toolCall');
    const callId = await fake.callTool('lookup_order', { order_id: 'A-17' });
    const tc = await call;
    expect(tc).toEqual({ type: 'toolCall', callId, name: 'lookup_order', arguments: '{"order_id":"A-17"}' });
    const before = fake.current!.responses.length;
    s.sendToolResult(callId, { ok: true, output: { status: 'shipped', eta: '2026-12-04' } });
    await until(() => transcripts.some((t) => t.includes('tool lookup_order said')), 'the reply that uses the output');
    const c = fake.current!;
    expect(c.items.filter((i) => i.type === 'function_call_output')).toEqual([{ type: 'function_call_output', call_id: callId, output: '{"status":"shipped","eta":"2026-12-04"}' }]);
    expect(transcripts.at(-1)).toContain('tool lookup_order said {"status":"shipped","eta":"2026-12-04"}');
    expect(c.responses.length).toBe(before + 1); // exactly one follow-up response
    expect(c.errorsSent).toEqual([]);
    expect(errors).toEqual([]);
    // A second answer to the same call changes nothing.
    s.sendToolResult(callId, { ok: true, output: 'again' });
    expect(c.items.filter((i) => i.type === 'function_call_output')).toHaveLength(1);
  });

  it('an error result is the JSON text {"error": "…"} in function_call_output, and the call goes on', async () => {
    const { fake, s, transcripts } = await open();
    const call = next(s, 'toolCall');
    const callId = await fake.callTool('lookup_order', { order_id: 'X' });
    await call;
    s.sendToolResult(callId, { ok: false, error: 'tool lookup_order answered HTTP 500' });
    await until(() => transcripts.some((t) => t.includes('said {"error"')), 'the reply after the error');
    expect(fake.current!.items.find((i) => i.type === 'function_call_output')!.output).toBe('{"error":"tool lookup_order answered HTTP 500"}');
  });

  it('arguments the model sent as broken JSON reach the call core untouched (it answers with an error result)', async () => {
    const { fake, s } = await open();
    const call = next(s, 'toolCall');
    await fake.callTool('lookup_order', '{"order_id": ');
    expect((await call).arguments).toBe('{"order_id": ');
  });

  it('barge-in while the tool runs: the output still goes in, but no response.create on top of the caller\'s turn', async () => {
    const { fake, s } = await open();
    const call = next(s, 'toolCall');
    const callId = await fake.callTool('lookup_order', { order_id: 'B' });
    await call;
    const interrupted = next(s, 'interruption');
    await fake.interruptFromService(); // the caller starts talking (speech_started)
    await interrupted;
    const before = fake.current!.responses.length;
    s.sendToolResult(callId, { ok: true, output: { status: 'late' } });
    await until(() => fake.current!.items.some((i) => i.type === 'function_call_output'), 'the output item');
    // The fake answers each client event in order: a DTMF text item after it proves the output was handled first.
    s.sendDtmf('5');
    await until(() => fake.received().dtmf.includes('5'), 'the DTMF after the output');
    expect(fake.current!.responses.length).toBe(before);
    expect(fake.current!.errorsSent).toEqual([]);
  });
});
