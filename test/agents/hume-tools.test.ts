/**
 * Hume EVI function tools, adapter against the fake (test/fakes/hume.ts): the call's tools
 * go in session_settings.tools (the JSON Schema as text); a `tool_call` of one of them
 * becomes a 'toolCall' event (parameters: EVI's JSON text), answered with
 * `tool_response {tool_call_id, content}` or `tool_error` (level warn: the chat goes on)
 * — and the assistant answers with it. A function tool the call does not have is still
 * answered with a tool_error at once.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startFakeHume, type FakeHume } from '../fakes/hume.js';
import { createHumeAgentFactory } from '../../src/agents/hume/index.js';
import { loadConfig } from '../../src/config.js';
import type { AgentSession, ToolDeclaration } from '../../src/agents/agent.js';
import { next, on, until } from './agent-events.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

const LOOKUP: ToolDeclaration = { name: 'lookup_order', description: 'Look up an order', parameters: { type: 'object', properties: { order_id: { type: 'string' } } } };

async function open(): Promise<{ fake: FakeHume; s: AgentSession; transcripts: string[]; calls: string[] }> {
  const fake = await startFakeHume();
  cleanups.push(() => fake.close());
  const s = createHumeAgentFactory(loadConfig({ BRIDGE_DSP: process.env.BRIDGE_DSP ?? 'auto', ...fake.env })).factory.create({ callSid: 'CA' + 'f'.repeat(32), parameters: {}, tools: [LOOKUP] });
  cleanups.unshift(() => s.close('test'));
  const transcripts: string[] = [];
  const calls: string[] = [];
  on(s, 'transcript', (t) => t.role === 'agent' && transcripts.push(t.text));
  on(s, 'toolCall', (c) => calls.push(c.name));
  await s.connect(AbortSignal.timeout(5000));
  return { fake, s, transcripts, calls };
}

describe('hume tools', () => {
  it('declares the tools in session_settings.tools (schema as JSON text)', async () => {
    const { fake } = await open();
    await until(() => fake.current!.sessionSettings.length > 0, 'session_settings');
    expect(fake.current!.sessionSettings[0]!['tools']).toEqual([{ type: 'function', name: 'lookup_order', description: 'Look up an order', parameters: JSON.stringify(LOOKUP.parameters) }]);
  });

  it('a tool_call → toolCall (parameters as EVI sent them); tool_response with the output, and the assistant answers with it', async () => {
    const { fake, s, transcripts } = await open();
    const call = next(s, 'toolCall');
    const id = await fake.callTool('lookup_order', { order_id: 'A-17' });
    expect(await call).toEqual({ type: 'toolCall', callId: id, name: 'lookup_order', arguments: '{"order_id":"A-17"}' });
    s.sendToolResult(id, { ok: true, output: { status: 'shipped' } });
    await until(() => transcripts.some((t) => t.includes('tool lookup_order said')), 'the reply that uses the output');
    expect(fake.current!.toolResponses).toEqual([{ type: 'tool_response', tool_call_id: id, content: '{"status":"shipped"}', tool_name: 'lookup_order' }]);
    expect(fake.current!.errorsSent).toEqual([]);
  });

  it('an error result is a tool_error at level warn, and the chat goes on', async () => {
    const { fake, s, transcripts } = await open();
    const call = next(s, 'toolCall');
    const id = await fake.callTool('lookup_order', { order_id: 'X' });
    await call;
    s.sendToolResult(id, { ok: false, error: 'tool lookup_order timed out after 5000 ms' });
    await until(() => transcripts.some((t) => t.includes('said error')), 'the reply after the error');
    expect(fake.current!.toolErrors[0]).toMatchObject({ type: 'tool_error', tool_call_id: id, error: 'tool lookup_order timed out after 5000 ms', level: 'warn' });
  });

  it('barge-in while the tool runs: the tool_response is still sent when it comes, and the chat goes on with it', async () => {
    const { fake, s, transcripts } = await open();
    const call = next(s, 'toolCall');
    const id = await fake.callTool('lookup_order', { order_id: 'B' });
    await call;
    const interrupted = next(s, 'interruption');
    await fake.interruptFromService();
    await interrupted;
    s.sendToolResult(id, { ok: true, output: { status: 'late' } });
    await until(() => transcripts.some((t) => t.includes('tool lookup_order said')), 'the reply that uses the output');
    expect(fake.current!.toolResponses).toEqual([{ type: 'tool_response', tool_call_id: id, content: '{"status":"late"}', tool_name: 'lookup_order' }]);
  });

  it('a function tool the call does not have gets a tool_error at once and never reaches the call core', async () => {
    const { fake, calls } = await open();
    await fake.callTool('book_table', {});
    await until(() => fake.current!.toolErrors.length === 1, 'the tool_error');
    expect(calls).toEqual([]);
  });
});
