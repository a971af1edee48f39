/**
 * The same profile tool through the bridge for Gemini Live, ElevenLabs Agents and Hume
 * EVI (OpenAI: agent-tools.test.ts): the service's fake calls `lookup_order`, the local
 * tool server receives a correctly signed POST with the arguments as an object, and the
 * service gets the output in its own shape; a tool answering 500 gives it an error
 * result in its own shape, and the call goes on to its normal end.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { runSimulatedCall } from '../../src/sim/simulator.js';
import { verifySignature, SIGNATURE_HEADER } from '../../src/tools/signature.js';
import { startFakeGemini, type FakeGemini } from '../fakes/gemini.js';
import { startFakeElevenLabs, type FakeElevenLabs } from '../fakes/elevenlabs-agents.js';
import { startFakeHume, type FakeHume } from '../fakes/hume.js';
import { profilesFile } from '../profiles/profiles-helpers.js';
import { callSid as newCallSid } from '../lifecycle/child-bridge.js';
import { withBridge } from './helpers.js';
import { until } from '../agents/agent-events.js';

const SECRET = 'provider-tools-secret';
const FROM = '+15551230000';
const TO = '+15557650000';

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
});

async function toolServer(): Promise<{ url: string; requests: { path: string; body: string; signature: string }[] }> {
  const requests: { path: string; body: string; signature: string }[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      requests.push({ path: req.url ?? '', body, signature: String(req.headers[SIGNATURE_HEADER.toLowerCase()]) });
      if (req.url === '/lookup') res.writeHead(200, { 'content-type': 'application/json' }).end('{"output":{"status":"shipped"}}');
      else res.writeHead(500).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(() => new Promise<void>((r) => server.close(() => r())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

/** What the test needs of a provider's fake: make the model call a tool, and read back what the bridge answered. */
interface Provider<F> {
  agent: string;
  start(): Promise<F & { env: Record<string, string>; close(): Promise<void> }>;
  ready(f: F): boolean;
  call(f: F, name: string, args: Record<string, unknown>): Promise<string>;
  /** The answer for `id` as the service got it: success with its output text, or an error with its message; undefined before it came. */
  answer(f: F, id: string): { ok: boolean; text: string } | undefined;
}

const gemini: Provider<FakeGemini> = {
  agent: 'gemini',
  start: () => startFakeGemini(),
  ready: (f) => f.connections().some((c) => c.setup !== undefined),
  call: async (f, name, args) => f.callTool(name, args),
  answer: (f, id) => {
    const r = f.toolResponses().find((x) => x.id === id)?.response;
    if (!r) return undefined;
    return 'error' in r ? { ok: false, text: String(r['error']) } : { ok: true, text: JSON.stringify(r['output']) };
  },
};
const elevenlabs: Provider<FakeElevenLabs> = {
  agent: 'elevenlabs',
  start: () => startFakeElevenLabs(),
  ready: (f) => f.replies !== undefined && f.toolResults !== undefined,
  call: (f, name, args) => f.callTool(name, args),
  answer: (f, id) => {
    const r = f.toolResults.find((x) => x['tool_call_id'] === id);
    return r ? { ok: r['is_error'] !== true, text: String(r['result']) } : undefined;
  },
};
const hume: Provider<FakeHume> = {
  agent: 'hume',
  start: () => startFakeHume(),
  ready: (f) => (f.current?.sessionSettings.length ?? 0) > 0,
  call: (f, name, args) => f.callTool(name, args),
  answer: (f, id) => {
    const ok = f.current?.toolResponses.find((x) => x['tool_call_id'] === id);
    if (ok) return { ok: true, text: String(ok['content']) };
    const err = f.current?.toolErrors.find((x) => x['tool_call_id'] === id);
    return err ? { ok: false, text: String(err['error']) } : undefined;
  },
};

describe('profile tools through the bridge, per provider', () => {
  for (const p of [gemini, elevenlabs, hume] as Provider<any>[]) {
    it(`${p.agent}: lookup_order reaches the tool server signed, its output reaches the service; a 500 is an error result and the call goes on`, async () => {
      const tools = await toolServer();
      const fake = await p.start();
      closers.push(() => fake.close());
      const yaml = `
profiles:
  - name: support
    match: { to: ["${TO}"] }
    agent: ${p.agent}
    tools:
      - name: lookup_order
        description: Look up an order
        parameters: { type: object, properties: { order_id: { type: string } } }
        url: ${tools.url}/lookup
      - name: broken_tool
        description: Always fails
        url: ${tools.url}/broken
    secret: "${SECRET}"
`;
      await withBridge({ ...fake.env, BRIDGE_PROFILES: profilesFile(yaml) }, async (bridge) => {
        const sid = newCallSid();
        const call = runSimulatedCall({ url: bridge.streamUrl, callSid: sid, customParameters: { profile: 'support', vb_from: FROM, vb_to: TO }, audio: new Uint8Array(8000).fill(0xff), fast: true, tailMs: 3000, timeoutMs: 30_000 });
        await until(() => p.ready(fake), 'the agent session');
        const id = await p.call(fake, 'lookup_order', { order_id: 'A-17' });
        await until(() => p.answer(fake, id) !== undefined, 'the lookup answer');
        expect(p.answer(fake, id)).toEqual({ ok: true, text: '{"status":"shipped"}' });
        const req = tools.requests.find((r) => r.path === '/lookup')!;
        expect(verifySignature(SECRET, req.body, req.signature)).toMatchObject({ ok: true });
        expect(JSON.parse(req.body)).toMatchObject({ callSid: sid, profile: 'support', tool: 'lookup_order', callId: id, arguments: { order_id: 'A-17' }, from: FROM, to: TO });

        const bad = await p.call(fake, 'broken_tool', {});
        await until(() => p.answer(fake, bad) !== undefined, 'the error result');
        expect(p.answer(fake, bad)).toMatchObject({ ok: false, text: expect.stringMatching(/500/) });
        // Hume's tool_error carries the bridge's stable code too (docs/tools.md).
        if (p.agent === 'hume') expect((fake as FakeHume).current!.toolErrors.find((x) => x['tool_call_id'] === bad)).toMatchObject({ code: 'BRIDGE_ERR_TOOL_HTTP_STATUS', level: 'warn' });
        expect((await call).outcome).toBe('completed');
      });
    });
  }
});
