/**
 * runTool against real HTTP servers on 127.0.0.1: what the tool server receives, and the
 * result the agent gets for every kind of answer (or none).
 */
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../src/errors.js';
import { MAX_TOOL_RESPONSE_BYTES, runTool, toolOutcome, type ToolInvocation, type ToolResult } from '../../src/tools/run-tool.js';
import { verifySignature } from '../../src/tools/signature.js';
import { json, startReceiver, type Receiver } from './receiver.js';

const SECRET = 'tool-secret';
const call: ToolInvocation = { callSid: 'CA1', streamSid: 'MZ1', profile: 'support', callId: 'call_42', arguments: '{"order_id":"A-17"}', from: '+15550001234', to: '+15550001111' };

let receiver: Receiver | undefined;
afterEach(async () => {
  await receiver?.close();
  receiver = undefined;
});

describe('runTool', () => {
  it('POSTs the signed contract body with the parsed arguments and returns the 2xx output', async () => {
    receiver = await startReceiver((_r, res) => json(res, 200, { output: { status: 'shipped', eta: '2026-12-05' } }));
    const seen: ToolResult[] = [];
    const r = await runTool({ name: 'lookup_order', url: receiver.url }, call, { secret: SECRET, observe: (x) => seen.push(x) });
    expect(r).toMatchObject({ ok: true, tool: 'lookup_order', output: { status: 'shipped', eta: '2026-12-05' } });
    expect(r.durationMs).toBeGreaterThanOrEqual(0);
    expect(seen).toEqual([r]);
    const [req] = receiver.requests;
    expect(req!.method).toBe('POST');
    expect(req!.headers['content-type']).toBe('application/json');
    expect(verifySignature(SECRET, req!.raw, req!.headers['x-voice-bridge-signature'] as string).ok).toBe(true);
    expect(JSON.parse(req!.raw)).toEqual({ callSid: 'CA1', streamSid: 'MZ1', profile: 'support', tool: 'lookup_order', callId: 'call_42', arguments: { order_id: 'A-17' }, from: '+15550001234', to: '+15550001111' });
  });

  it('takes arguments as an object too (Gemini, ElevenLabs), and a JSON null output', async () => {
    receiver = await startReceiver((_r, res) => json(res, 201, { output: null }));
    const r = await runTool({ name: 't', url: receiver.url }, { ...call, arguments: { a: [1, 2] } });
    expect(r).toMatchObject({ ok: true, output: null });
    expect(JSON.parse(receiver.requests[0]!.raw).arguments).toEqual({ a: [1, 2] });
    expect(receiver.requests[0]!.headers['x-voice-bridge-signature']).toBeUndefined(); // no secret, no signature
  });

  it('a 500 is an error result', async () => {
    receiver = await startReceiver((_r, res) => json(res, 500, { output: 'ignored' }));
    const r = await runTool({ name: 'lookup_order', url: receiver.url }, call);
    expect(r).toMatchObject({ ok: false, code: ErrorCodes.TOOL_HTTP_STATUS, status: 500 });
    expect(!r.ok && r.error).toMatch(/HTTP 500/);
    expect(toolOutcome(r)).toBe('http-status');
  });

  it('no answer within timeoutMs is an error result, well within timeoutMs + 1 s', async () => {
    receiver = await startReceiver(() => undefined); // never answers
    const r = await runTool({ name: 'slow', url: receiver.url, timeoutMs: 200 }, call);
    expect(r).toMatchObject({ ok: false, code: ErrorCodes.TOOL_TIMEOUT });
    expect(r.durationMs).toBeLessThan(200 + 1000);
  });

  it('headers then a trickling body: cut off at the timeout', async () => {
    const timers: NodeJS.Timeout[] = [];
    receiver = await startReceiver((_r, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"output":"');
      timers.push(setInterval(() => res.write('x'), 20));
    });
    try {
      const r = await runTool({ name: 'trickle', url: receiver.url, timeoutMs: 200 }, call);
      expect(r).toMatchObject({ ok: false, code: ErrorCodes.TOOL_TIMEOUT });
      expect(r.durationMs).toBeLessThan(200 + 1000);
    } finally {
      for (const t of timers) clearInterval(t);
    }
  });

  it('a reply over 64 KiB is an error result (declared, or streamed without a length)', async () => {
    const big = { output: 'x'.repeat(MAX_TOOL_RESPONSE_BYTES + 10) };
    receiver = await startReceiver((_r, res, n) => {
      if (n === 1) return json(res, 200, big);
      res.writeHead(200, { 'content-type': 'application/json' }); // chunked, no length
      for (let i = 0; i < 80; i++) res.write('x'.repeat(1024));
      res.end();
    });
    const a = await runTool({ name: 'big', url: receiver.url }, call);
    expect(a).toMatchObject({ ok: false, code: ErrorCodes.TOOL_RESPONSE_TOO_LARGE });
    const b = await runTool({ name: 'big', url: receiver.url }, call);
    expect(b).toMatchObject({ ok: false, code: ErrorCodes.TOOL_RESPONSE_TOO_LARGE });
  });

  it('a body that is not JSON, or JSON without "output", is an error result', async () => {
    receiver = await startReceiver((_r, res, n) => {
      if (n === 1) {
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end('<html>oops</html>');
      } else json(res, 200, { result: 'wrong key' });
    });
    expect(await runTool({ name: 't', url: receiver.url }, call)).toMatchObject({ ok: false, code: ErrorCodes.TOOL_BAD_RESPONSE });
    expect(await runTool({ name: 't', url: receiver.url }, call)).toMatchObject({ ok: false, code: ErrorCodes.TOOL_BAD_RESPONSE });
  });

  it('arguments from the provider that are not a JSON object: an error result, counted, no request sent', async () => {
    receiver = await startReceiver((_r, res) => json(res, 200, { output: 1 }));
    const seen: string[] = [];
    for (const bad of ['{"order_id":', '[1,2]', '42', 7]) {
      const r = await runTool({ name: 'lookup_order', url: receiver.url }, { ...call, arguments: bad }, { observe: (x) => seen.push(toolOutcome(x)) });
      expect(r).toMatchObject({ ok: false, code: ErrorCodes.TOOL_ARGUMENTS });
    }
    expect(seen).toEqual(['bad-arguments', 'bad-arguments', 'bad-arguments', 'bad-arguments']);
    expect(receiver.requests).toHaveLength(0);
    // Nothing at all is no arguments: {}.
    const ok = await runTool({ name: 'lookup_order', url: receiver.url }, { ...call, arguments: '' });
    expect(ok.ok).toBe(true);
    expect(JSON.parse(receiver.requests[0]!.raw).arguments).toEqual({});
  });

  it('an abort (barge-in, call ended, cancellation) is an error result at once', async () => {
    receiver = await startReceiver(() => undefined); // never answers
    const ac = new AbortController();
    const pending = runTool({ name: 'slow', url: receiver.url, timeoutMs: 60_000 }, call, { signal: ac.signal });
    await receiver.waitFor(1);
    ac.abort();
    expect(await pending).toMatchObject({ ok: false, code: ErrorCodes.TOOL_ABORTED });
    // Already aborted: nothing is sent.
    const before = receiver.requests.length;
    expect(await runTool({ name: 'slow', url: receiver.url }, call, { signal: ac.signal })).toMatchObject({ ok: false, code: ErrorCodes.TOOL_ABORTED });
    expect(receiver.requests.length).toBe(before);
  });

  it('connection refused is an error result', async () => {
    // A port that was just free: nothing listens there.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as AddressInfo;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const r = await runTool({ name: 'gone', url: `http://127.0.0.1:${port}/x` }, call);
    expect(r).toMatchObject({ ok: false, code: ErrorCodes.TOOL_NETWORK });
    expect(!r.ok && r.error).toMatch(/ECONNREFUSED/);
  });

  it('a redirect is not followed (the signed body goes only to the configured URL)', async () => {
    receiver = await startReceiver((_r, res) => {
      res.writeHead(307, { location: 'http://127.0.0.1:1/elsewhere' });
      res.end();
    });
    expect(await runTool({ name: 't', url: receiver.url }, call, { secret: SECRET })).toMatchObject({ ok: false, code: ErrorCodes.TOOL_HTTP_STATUS, status: 307 });
  });
});
