import { describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../src/errors.js';
import type { Tool } from '../../src/profiles/schema.js';
import { builtinOkResult, endCallReason, findTool, transferDestination, unknownToolResult } from '../../src/tools/dispatch.js';
import { toolOutcome } from '../../src/tools/run-tool.js';
import { humeToolResult, openaiToolResult } from '../../src/tools/result-shapes.js';

const tools = [
  { name: 'lookup_order', description: 'Look up an order', url: 'https://app.example.com/lookup' },
  { builtin: 'end_call' },
  { builtin: 'transfer_call', to: ['+15550002222', 'sip:desk@pbx.example.com'] },
] as unknown as Tool[];

describe('tool dispatch', () => {
  it('finds the profile tool, the builtins, or nothing', () => {
    expect(findTool(tools, 'lookup_order')).toEqual({ kind: 'http', tool: tools[0] });
    expect(findTool(tools, 'end_call')).toEqual({ kind: 'end_call' });
    expect(findTool(tools, 'transfer_call')).toEqual({ kind: 'transfer_call', allowed: ['+15550002222', 'sip:desk@pbx.example.com'] });
    expect(findTool(tools, 'delete_everything')).toEqual({ kind: 'unknown' });
    expect(findTool([tools[0]!], 'end_call')).toEqual({ kind: 'unknown' }); // a builtin the profile does not list
    expect(findTool(undefined, 'lookup_order')).toEqual({ kind: 'unknown' });
  });

  it('an unknown tool is an error result with its code, in every provider shape', () => {
    const r = unknownToolResult('delete_everything');
    expect(r).toMatchObject({ ok: false, code: ErrorCodes.TOOL_UNKNOWN, error: 'there is no tool named "delete_everything"' });
    expect(toolOutcome(r)).toBe('unknown-tool');
    expect(JSON.parse(openaiToolResult('c1', r).item.output)).toEqual({ error: 'there is no tool named "delete_everything"' });
    expect(humeToolResult('h1', r)).toMatchObject({ type: 'tool_error', code: 'BRIDGE_ERR_TOOL_UNKNOWN' });
  });

  it('transfer_call: only an allowed destination; anything else refused to the agent', () => {
    const allowed = ['+15550002222', 'sip:desk@pbx.example.com'];
    expect(transferDestination(allowed, '{"to":"+15550002222"}')).toEqual({ ok: true, to: '+15550002222' });
    expect(transferDestination(allowed, { to: 'sip:desk@pbx.example.com' })).toEqual({ ok: true, to: 'sip:desk@pbx.example.com' });
    const refused = transferDestination(allowed, { to: '+15559999999' });
    expect(refused).toMatchObject({ ok: false, result: { ok: false, tool: 'transfer_call', code: ErrorCodes.TOOL_TRANSFER_REFUSED } });
    expect(!refused.ok && !refused.result.ok && refused.result.error).toMatch(/"\+15559999999" is not an allowed transfer destination; allowed: \+15550002222, sip:desk@pbx.example.com/);
    expect(transferDestination(allowed, {})).toMatchObject({ ok: false, result: { code: ErrorCodes.TOOL_TRANSFER_REFUSED } });
    expect(transferDestination(allowed, '{broken')).toMatchObject({ ok: false, result: { code: ErrorCodes.TOOL_ARGUMENTS } });
  });

  it('end_call: the reason, one line and short, or none', () => {
    expect(endCallReason('{"reason":"resolved"}')).toBe('resolved');
    expect(endCallReason({ reason: '  caller\nasked ' })).toBe('caller asked');
    expect(endCallReason({ reason: 'x'.repeat(100) })).toHaveLength(64);
    expect(endCallReason({})).toBeUndefined();
    expect(endCallReason('not json')).toBeUndefined();
    expect(endCallReason({ reason: 42 })).toBeUndefined();
    expect(builtinOkResult('end_call')).toEqual({ ok: true, tool: 'end_call', output: { ok: true }, durationMs: 0 });
  });
});
