import { describe, expect, it } from 'vitest';
import type { Tool } from '../../src/profiles/schema.js';
import { declareTools, geminiSetupTools, humeSessionTools, openaiSessionTools, transferAllowed } from '../../src/tools/declarations.js';

// A loaded profile's tools (parameters is open: any JSON Schema of an object).
const tools = [
  {
    name: 'lookup_order',
    description: 'Look up an order by its number',
    parameters: { type: 'object', properties: { order_id: { type: 'string' } }, required: ['order_id'] },
    url: 'https://app.example.com/tools/lookup_order',
    timeoutMs: 5000,
  },
  { name: 'ping', description: 'No arguments', url: 'https://app.example.com/ping' },
  { builtin: 'end_call' },
  { builtin: 'transfer_call', to: ['+15550002222', 'sip:desk@pbx.example.com'] },
] as unknown as Tool[];

describe('tool declarations', () => {
  const decls = declareTools(tools);

  it('a provider-neutral list: the profile’s tools in order, builtins included', () => {
    expect(decls.map((d) => d.name)).toEqual(['lookup_order', 'ping', 'end_call', 'transfer_call']);
    expect(decls[0]).toEqual({ name: 'lookup_order', description: 'Look up an order by its number', parameters: { type: 'object', properties: { order_id: { type: 'string' } }, required: ['order_id'] } });
    expect(decls[1]!.parameters).toEqual({ type: 'object', properties: {} });
    expect(decls[2]!.parameters).toEqual({ type: 'object', properties: { reason: expect.objectContaining({ type: 'string' }) } });
    expect(decls[2]!.parameters.required).toBeUndefined(); // reason is optional
    expect(decls[3]!.parameters).toEqual({ type: 'object', properties: { to: expect.objectContaining({ type: 'string', enum: ['+15550002222', 'sip:desk@pbx.example.com'] }) }, required: ['to'] });
    expect(declareTools(undefined)).toEqual([]);
  });

  it('does not share the profile’s objects (an adapter may change its copy)', () => {
    (decls[0]!.parameters.properties as Record<string, unknown>).extra = 1;
    expect((tools[0] as unknown as { parameters: { properties: object } }).parameters.properties).not.toHaveProperty('extra');
  });

  it('OpenAI session.tools: function tools', () => {
    const t = openaiSessionTools(declareTools(tools));
    expect(t[0]).toEqual({ type: 'function', name: 'lookup_order', description: 'Look up an order by its number', parameters: declareTools(tools)[0]!.parameters });
    expect(t.every((x) => x.type === 'function')).toBe(true);
  });

  it('Gemini setup.tools: one tool with every functionDeclaration; none → []', () => {
    const d = declareTools(tools);
    expect(geminiSetupTools(d)).toEqual([{ functionDeclarations: d.map((x) => ({ name: x.name, description: x.description, parameters: x.parameters })) }]);
    expect(geminiSetupTools(d, { schemaField: 'parametersJsonSchema' })[0]!.functionDeclarations[0]).toEqual({ name: 'lookup_order', description: d[0]!.description, parametersJsonSchema: d[0]!.parameters });
    expect(geminiSetupTools([])).toEqual([]);
  });

  it('Hume session_settings.tools: parameters as JSON text', () => {
    const h = humeSessionTools(declareTools(tools));
    expect(h[3]).toEqual({ type: 'function', name: 'transfer_call', parameters: JSON.stringify(declareTools(tools)[3]!.parameters), description: declareTools(tools)[3]!.description });
    expect(JSON.parse(h[0]!.parameters)).toEqual(declareTools(tools)[0]!.parameters);
  });

  it('transferAllowed: only the listed destinations', () => {
    expect(transferAllowed(tools, '+15550002222')).toBe(true);
    expect(transferAllowed(tools, 'sip:desk@pbx.example.com')).toBe(true);
    expect(transferAllowed(tools, '+15559999999')).toBe(false);
    expect(transferAllowed(tools, 42)).toBe(false);
    expect(transferAllowed([tools[2]!], '+15550002222')).toBe(false);
  });
});
