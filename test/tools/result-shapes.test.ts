import { describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../src/errors.js';
import { elevenlabsToolResult, geminiFunctionResponse, geminiToolResponse, humeToolResult, openaiToolResult } from '../../src/tools/result-shapes.js';

const ok = { ok: true as const, output: { status: 'shipped' } };
const err = { ok: false as const, error: 'lookup_order failed (HTTP 500)', code: ErrorCodes.TOOL_HTTP_STATUS };

describe('tool results in each provider’s shape', () => {
  it('OpenAI: conversation.item.create with a function_call_output; output is JSON text, {"error"} on failure', () => {
    expect(openaiToolResult('call_1', ok)).toEqual({ type: 'conversation.item.create', item: { type: 'function_call_output', call_id: 'call_1', output: '{"status":"shipped"}' } });
    const e = openaiToolResult('call_1', err);
    expect(e.item.type).toBe('function_call_output');
    expect(JSON.parse(e.item.output)).toEqual({ error: 'lookup_order failed (HTTP 500)' });
    expect(openaiToolResult('c', { ok: true, output: 'plain text' }).item.output).toBe('plain text');
  });

  it('Gemini: functionResponses[] {id, name, response: {output} | {error}}', () => {
    const a = geminiFunctionResponse('fc_1', 'lookup_order', ok);
    const b = geminiFunctionResponse('fc_2', 'lookup_order', err);
    expect(a).toEqual({ id: 'fc_1', name: 'lookup_order', response: { output: { status: 'shipped' } } });
    expect(b).toEqual({ id: 'fc_2', name: 'lookup_order', response: { error: 'lookup_order failed (HTTP 500)' } });
    expect(geminiToolResponse([a, b])).toEqual({ toolResponse: { functionResponses: [a, b] } });
  });

  it('ElevenLabs: client_tool_result with is_error', () => {
    expect(elevenlabsToolResult('t1', ok)).toEqual({ type: 'client_tool_result', tool_call_id: 't1', result: '{"status":"shipped"}', is_error: false });
    expect(elevenlabsToolResult('t1', err)).toEqual({ type: 'client_tool_result', tool_call_id: 't1', result: 'lookup_order failed (HTTP 500)', is_error: true });
  });

  it('Hume: tool_response, or tool_error at level warn', () => {
    expect(humeToolResult('h1', ok, 'lookup_order')).toEqual({ type: 'tool_response', tool_call_id: 'h1', content: '{"status":"shipped"}', tool_name: 'lookup_order' });
    expect(humeToolResult('h1', err)).toEqual({
      type: 'tool_error',
      tool_call_id: 'h1',
      error: 'lookup_order failed (HTTP 500)',
      content: '{"error":"lookup_order failed (HTTP 500)"}',
      code: 'BRIDGE_ERR_TOOL_HTTP_STATUS',
      level: 'warn',
    });
  });
});
