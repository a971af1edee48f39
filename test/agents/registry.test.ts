import { describe, expect, it } from 'vitest';
import { AgentRegistry, UnknownAgentError, createAgentRegistry } from '../../src/agents/registry.js';
import { EchoAgentSession } from '../../src/agents/echo/echo-agent.js';
import type { AgentFactory } from '../../src/agents/agent.js';
import { loadConfig } from '../../src/config.js';

const config = loadConfig({});

describe('AgentRegistry', () => {
  it('createAgentRegistry registers the always-available echo agent', async () => {
    const registry = createAgentRegistry(config);
    expect(registry.names()[0]).toBe('echo');
    expect(registry.names()).toEqual(expect.arrayContaining(['echo', 'pipecat', 'gemini', 'elevenlabs', 'hume', 'openai'])); // every adapter registers; only configured ones are available
    expect(registry.available()).toEqual(['echo']);
    expect(registry.has('echo')).toBe(true);
    const session = registry.get('echo').create({ callSid: 'CA1', parameters: {} });
    expect(session).toBeInstanceOf(EchoAgentSession);
    await session.close('test');
  });

  it('an unknown name throws BRIDGE_ERR_AGENT_UNKNOWN listing the known names', () => {
    const registry = createAgentRegistry(config);
    expect(() => registry.get('nope')).toThrow(UnknownAgentError);
    expect(() => registry.get('nope')).toThrow(expect.objectContaining({ code: 'BRIDGE_ERR_AGENT_UNKNOWN', category: 'invalid-input', retryable: false, agentName: 'nope' }));
    expect(() => registry.get('nope')).toThrow(/unknown agent "nope"; known agents: echo/);
  });

  it('lists unavailable agents by name but not as available; a duplicate name is refused', () => {
    const fake = (name: string, available: boolean): AgentFactory => ({ name, available, create: () => new EchoAgentSession() });
    const registry = new AgentRegistry().register(fake('a', true)).register(fake('b', false));
    expect(registry.names()).toEqual(['a', 'b']);
    expect(registry.available()).toEqual(['a']);
    expect(registry.get('b').available).toBe(false);
    expect(() => registry.register(fake('a', true))).toThrow(/already registered/);
  });
});
