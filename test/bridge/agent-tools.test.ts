/**
 * Agents that act, end to end through a real bridge (docs/tools.md): a profile with an
 * HTTP tool, end_call and transfer_call; the fake OpenAI Realtime service as the agent;
 * a local tool server; the fake Twilio REST API.
 *
 * - lookup_order: the tool server receives a correctly signed POST with the call's
 *   identity and the arguments as an object; the agent gets the output and answers with it.
 * - a tool that times out and one that answers 500: error results, the call goes on.
 * - end_call: the goodbye is heard to its end (every mark acknowledged) before the REST
 *   hang-up; end reason agent-ended:<reason>.
 * - transfer_call: a destination outside the list is refused to the agent and nothing is
 *   dialled; an allowed one redirects the live call to <Dial> (caller ID: the called
 *   number) after the last words, end reason transferred:<to>.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { runSimulatedCall, type SimulatedCallResult } from '../../src/sim/simulator.js';
import { verifySignature, SIGNATURE_HEADER } from '../../src/tools/signature.js';
import { startFakeOpenAi, type FakeOpenAi } from '../fakes/openai-realtime.js';
import { startFakeTwilioRest, type FakeTwilioRest } from '../fakes/twilio-rest.js';
import { profilesFile } from '../profiles/profiles-helpers.js';
import { callSid as newCallSid } from '../lifecycle/child-bridge.js';
import { getJson, withBridge } from './helpers.js';
import { until } from '../agents/agent-events.js';

const SECRET = 'tool-secret-0123456789';
const FROM = '+15551230000';
const TO = '+15557650000';

interface ToolRequest {
  path: string;
  body: string;
  signature: string | undefined;
}

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
});

/** The user's tool server: /lookup answers, /slow never does, /broken answers 500. */
async function toolServer(): Promise<{ url: string; requests: ToolRequest[] }> {
  const requests: ToolRequest[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      requests.push({ path: req.url ?? '', body, signature: req.headers[SIGNATURE_HEADER.toLowerCase()] as string | undefined });
      if (req.url === '/lookup') {
        const args = (JSON.parse(body) as { arguments: { order_id: string } }).arguments;
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ output: { order: args.order_id, status: 'shipped' } }));
      } else if (req.url === '/broken') res.writeHead(500).end('oops');
      // /slow: never answers
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

const profiles = (toolUrl: string) => `
profiles:
  - name: support
    match: { to: ["${TO}"] }
    agent: openai
    options: { format: pcmu, instructions: "You are Acme's phone assistant." }
    tools:
      - name: lookup_order
        description: Look up an order by its number
        parameters: { type: object, properties: { order_id: { type: string } }, required: [order_id] }
        url: ${toolUrl}/lookup
      - name: slow_tool
        description: Never answers in time
        url: ${toolUrl}/slow
        timeoutMs: 300
      - name: broken_tool
        description: Always fails
        url: ${toolUrl}/broken
      - builtin: end_call
      - builtin: transfer_call
        to: ["+15550002222", "sip:desk@pbx.example.com"]
    secret: "${SECRET}"
`;

async function setup(withRest: boolean) {
  const tools = await toolServer();
  const fake = await startFakeOpenAi({ replyMs: 300 });
  closers.push(() => fake.close());
  let rest: FakeTwilioRest | undefined;
  if (withRest) {
    rest = await startFakeTwilioRest();
    closers.push(() => rest!.close());
  }
  const env: Record<string, string> = { ...fake.env, BRIDGE_PROFILES: profilesFile(profiles(tools.url)) };
  if (rest) Object.assign(env, { TWILIO_ACCOUNT_SID: rest.accountSid, TWILIO_AUTH_TOKEN: rest.authToken, TWILIO_API_URL: rest.url });
  return { tools, fake, rest, env };
}

/** The stream Twilio opens for a call the webhook routed to `support` (its TwiML's parameters). */
function callOf(bridgeStreamUrl: string, o: { sid: string; tailMs: number; authToken?: string }): Promise<SimulatedCallResult> {
  return runSimulatedCall({
    url: bridgeStreamUrl,
    callSid: o.sid,
    ...(o.authToken ? { authToken: o.authToken } : {}),
    customParameters: { profile: 'support', vb_from: FROM, vb_to: TO },
    audio: new Uint8Array(8000).fill(0xff),
    fast: true,
    tailMs: o.tailMs,
    timeoutMs: 30_000,
  });
}

const outputs = (fake: FakeOpenAi) => fake.current?.items.filter((i) => i.type === 'function_call_output') ?? [];

describe('agent tools through the bridge (openai)', () => {
  it('lookup_order: a signed POST with the call and the arguments; the agent answers with the output. A timeout and a 500 are error results and the call goes on', async () => {
    const { tools, fake, env } = await setup(false);
    await withBridge(env, async (bridge) => {
      const sid = newCallSid();
      const call = callOf(bridge.streamUrl, { sid, tailMs: 5000 });
      await until(() => fake.current?.sessionUpdates.length === 1, 'the agent session');
      expect(fake.current!.sessionUpdates[0]!.tools.map((t: { name: string }) => t.name)).toEqual(['lookup_order', 'slow_tool', 'broken_tool', 'end_call', 'transfer_call']);

      const callId = await fake.callTool('lookup_order', { order_id: 'A-17' });
      await until(() => outputs(fake).length === 1, 'the lookup output');
      const req = tools.requests[0]!;
      expect(req.path).toBe('/lookup');
      expect(verifySignature(SECRET, req.body, req.signature)).toMatchObject({ ok: true });
      const streamSid = fake.current && JSON.parse(req.body).streamSid;
      expect(JSON.parse(req.body)).toEqual({ callSid: sid, streamSid, profile: 'support', tool: 'lookup_order', callId, arguments: { order_id: 'A-17' }, from: FROM, to: TO });
      expect(outputs(fake)[0]).toEqual({ type: 'function_call_output', call_id: callId, output: '{"order":"A-17","status":"shipped"}' });

      await until(() => fake.current?.current === undefined, 'the reply that used the output to end');
      await fake.callTool('slow_tool', {});
      await until(() => outputs(fake).length === 2, 'the timeout error result');
      expect(JSON.parse(outputs(fake)[1]!.output)).toEqual({ error: expect.stringMatching(/did not answer within 300 ms/) });
      await until(() => fake.current?.current === undefined, 'the reply after the timeout to end');
      await fake.callTool('broken_tool', {});
      await until(() => outputs(fake).length === 3, 'the 500 error result');
      expect(JSON.parse(outputs(fake)[2]!.output)).toEqual({ error: expect.stringMatching(/500/) });

      const r = await call;
      expect(r.outcome).toBe('completed');
      const rec = await getJson(`${bridge.url}/calls/${sid}`);
      expect(rec.body.transcripts.some((t: { text: string }) => t.text.includes('tool lookup_order said {"order":"A-17","status":"shipped"}'))).toBe(true);
      const metrics = await (await fetch(`${bridge.url}/metrics`)).text();
      expect(metrics).toMatch(/voice_bridge_tool_calls_total\{[^}]*tool="lookup_order"[^}]*outcome="ok"[^}]*\} 1|voice_bridge_tool_calls_total\{[^}]*outcome="ok"[^}]*tool="lookup_order"[^}]*\} 1/);
    });
  });

  it('end_call: the goodbye is heard to its end (every mark acknowledged) before the REST hang-up; end reason agent-ended:<reason>', async () => {
    const { fake, rest, env } = await setup(true);
    await withBridge(env, async (bridge) => {
      const sid = newCallSid();
      rest!.calls.set(sid, { sid, to: TO, from: FROM, status: 'in-progress' });
      const call = callOf(bridge.streamUrl, { sid, tailMs: 15_000, authToken: rest!.authToken });
      await until(() => fake.current?.sessionUpdates.length === 1, 'the agent session');
      await fake.speak(1200); // the goodbye, sent faster than real time
      await fake.callTool('end_call', { reason: 'caller is done' });
      const r = await call;
      expect(r.outcome).toBe('server-closed');
      // Heard whole: every mark of the goodbye was echoed because its audio played, none cut by a clear.
      expect(r.marks.length).toBeGreaterThan(0);
      expect(r.marks.every((m) => m.echoedAtMs !== null && !m.viaClear)).toBe(true);
      expect(r.clears).toEqual([]);
      const hangups = rest!.requests.filter((q) => q.path.endsWith(`/Calls/${sid}.json`) && q.form.Status === 'completed');
      expect(hangups).toHaveLength(1);
      const rec = await getJson(`${bridge.url}/calls/${sid}`);
      expect(rec.body.endReason).toBe('agent-ended:caller is done (rest)');
    });
  });

  it('transfer_call: a destination outside the list is refused to the agent, nothing dialled; an allowed one becomes <Dial> after the last words', async () => {
    const { fake, rest, env } = await setup(true);
    await withBridge(env, async (bridge) => {
      const sid = newCallSid();
      rest!.calls.set(sid, { sid, to: TO, from: FROM, status: 'in-progress' });
      const call = callOf(bridge.streamUrl, { sid, tailMs: 15_000, authToken: rest!.authToken });
      await until(() => fake.current?.sessionUpdates.length === 1, 'the agent session');
      await fake.callTool('transfer_call', { to: '+15550009999' });
      await until(() => outputs(fake).length === 1, 'the refusal');
      expect(JSON.parse(outputs(fake)[0]!.output).error).toMatch(/not an allowed transfer destination/);
      expect(rest!.requests.filter((q) => q.form.Twiml !== undefined)).toEqual([]);

      await until(() => fake.current?.current === undefined, 'the reply to the refusal to end');
      await fake.callTool('transfer_call', { to: '+15550002222' });
      const r = await call;
      expect(r.outcome).toBe('server-closed');
      const updates = rest!.requests.filter((q) => q.path.endsWith(`/Calls/${sid}.json`) && q.form.Twiml !== undefined);
      expect(updates).toHaveLength(1);
      expect(updates[0]!.form.Twiml).toBe(`<?xml version="1.0" encoding="UTF-8"?><Response><Dial callerId="${TO}"><Number>+15550002222</Number></Dial></Response>`);
      const rec = await getJson(`${bridge.url}/calls/${sid}`);
      expect(rec.body.endReason).toBe('transferred:+15550002222');
    });
  });
});
