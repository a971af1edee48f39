/**
 * Every line a running bridge writes on stdout is one JSON object with unique keys —
 * scanned on the raw text, since JSON.parse keeps the last of two equal keys and log
 * stores (Loki, Elasticsearch) refuse the line. Real `voice-bridge start` processes
 * (one, and a primary with two workers) take a whole call with the echo agent, refuse
 * calls at the webhook, and drain on SIGTERM; errors are `err` objects with a stack
 * and a stable code; refusals are logged with their reason and code, and caller
 * numbers stay under `pii` (redacted).
 */
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { BridgeError, ErrorCodes } from '../../src/errors.js';
import { callerDataErr, callLogger, createLogger, REDACTED } from '../../src/log.js';
import { runSimulatedCall } from '../../src/sim/simulator.js';
import { computeSignature } from '../../src/twilio/signature.js';
import { ulawClip, withBridge } from '../bridge/helpers.js';
import { callSid, form, startChildBridge, type ChildBridge } from './child-bridge.js';

/**
 * The keys that appear twice in one object of a JSON text, as paths (`a.b[0].c`).
 * Throws when the text is not one JSON value.
 */
function duplicateKeys(text: string): string[] {
  let i = 0;
  const dups: string[] = [];
  const SCALAR = /-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null/y;
  const fail = (what: string): never => {
    throw new Error(`${what} at ${i}: ${text.slice(Math.max(0, i - 20), i + 20)}`);
  };
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++;
  };
  const str = (): string => {
    const start = i;
    if (text[i] !== '"') fail('expected a string');
    i++;
    while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    if (i >= text.length) fail('unterminated string');
    i++;
    return JSON.parse(text.slice(start, i)) as string; // decoded: "a" and "\u0061" are one key
  };
  const value = (path: string): void => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      ws();
      if (text[i] === '}') return void i++;
      const seen = new Set<string>();
      for (;;) {
        ws();
        const key = str();
        const at = path ? `${path}.${key}` : key;
        if (seen.has(key)) dups.push(at);
        seen.add(key);
        ws();
        if (text[i] !== ':') fail('expected ":"');
        i++;
        value(at);
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === '}') return void i++;
        else fail('expected "," or "}"');
      }
    }
    if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') return void i++;
      for (let n = 0; ; n++) {
        value(`${path}[${n}]`);
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === ']') return void i++;
        else fail('expected "," or "]"');
      }
    }
    if (c === '"') return void str();
    SCALAR.lastIndex = i;
    const m = SCALAR.exec(text);
    if (!m) fail('expected a value');
    i += m![0].length;
  };
  value('');
  ws();
  if (i !== text.length) fail('trailing text');
  return dups;
}

type Line = Record<string, any>;

/** Every line of `out`: one JSON object with unique keys and pino's level, time and msg; else a problem. */
function scan(out: string): { lines: Line[]; problems: string[] } {
  const lines: Line[] = [];
  const problems: string[] = [];
  for (const raw of out.split('\n')) {
    if (raw === '') continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      problems.push(`not JSON: ${raw}`);
      continue;
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      problems.push(`not a JSON object: ${raw}`);
      continue;
    }
    const dups = duplicateKeys(raw);
    if (dups.length > 0) problems.push(`duplicate keys ${dups.join(', ')}: ${raw.slice(0, 400)}`);
    for (const k of ['level', 'time', 'msg']) if (!(k in parsed)) problems.push(`no "${k}": ${raw.slice(0, 400)}`);
    lines.push(parsed as Line);
  }
  return { lines, problems };
}

function capture(): { stream: Writable; raw: () => string } {
  let raw = '';
  const stream = new Writable({
    write(chunk: Buffer | string, _enc, cb) {
      raw += chunk.toString();
      cb();
    },
  });
  return { stream, raw: () => raw };
}

const TOKEN = 'f'.repeat(32);
const FROM = '+15551239876';
const TO = '+15557654321';

async function signedVoice(baseUrl: string, query: string, sid: string, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  const url = `${baseUrl}/twilio/voice${query}`;
  const params = { CallSid: sid, From: FROM, To: TO };
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': computeSignature(TOKEN, url, params), ...headers }, body: form(params) });
  return { status: r.status, text: await r.text() };
}

const exitWithin = (b: ChildBridge, ms: number) => Promise.race([b.exited, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no exit within ${ms} ms:\n${b.output()}`)), ms))]);

describe('the line scanner', () => {
  it('finds a key twice in one object, at any depth, however it is escaped; not in strings or across objects', () => {
    expect(duplicateKeys('{"a":1,"b":{"a":2}}')).toEqual([]);
    expect(duplicateKeys('{"a":1,"a":2}')).toEqual(['a']);
    expect(duplicateKeys('{"x":{"b":[{"c":1,"c":null}],"b":true}}')).toEqual(['x.b[0].c', 'x.b']);
    expect(duplicateKeys('{"a":1,"\\u0061":2}')).toEqual(['a']);
    expect(duplicateKeys('{"m":"{\\"a\\":1,\\"a\\":2}","n":[{"a":1},{"a":2}]}')).toEqual([]);
    expect(() => duplicateKeys('{"a":1} x')).toThrow(/trailing/);
  });
});

describe('log lines', () => {
  const children: ChildBridge[] = [];
  afterEach(() => {
    for (const c of children.splice(0)) c.kill();
  });

  it('errors: `err` in pino\'s shape with the stack and a BridgeError\'s code; caller data in an error\'s message only under pii; a call logger never repeats its bindings', () => {
    const c = capture();
    const logger = createLogger({ level: 'info' }, c.stream);
    logger.error({ err: new BridgeError(ErrorCodes.AGENT_CONNECT, 'agent "x" failed to connect') }, 'plain');
    logger.warn({ code: ErrorCodes.AGENT_PROTOCOL, ...callerDataErr(new BridgeError(ErrorCodes.AGENT_PROTOCOL, `the service said: caller ${FROM}`)) }, 'provider');
    logger.warn({ err: 'a thrown string' }, 'not an Error');
    callLogger(logger, { callSid: 'CA1', streamSid: 'MZ1', agent: 'echo' }).info({ callSid: 'CA1', streamSid: 'MZ1', agent: 'echo', endReason: 'twilio-stop' }, 'call ended');
    const { lines, problems } = scan(c.raw());
    expect(problems).toEqual([]);
    const [plain, provider, thrown, ended] = lines;
    expect(plain!.err).toMatchObject({ type: 'BridgeError', code: 'BRIDGE_ERR_AGENT_CONNECT', message: 'agent "x" failed to connect' });
    expect(plain!.err.stack).toMatch(/^BridgeError: agent "x" failed to connect\n\s+at /);
    expect(provider!.err).toEqual({ type: 'BridgeError', code: 'BRIDGE_ERR_AGENT_PROTOCOL', message: REDACTED, stack: expect.stringMatching(/^BridgeError: \[redacted\]\n\s+at /) });
    expect(provider!.pii).toBe(REDACTED);
    expect(c.raw()).not.toContain(FROM);
    expect(thrown!.err).toEqual({ type: 'string', message: 'a thrown string' });
    expect(ended).toMatchObject({ callSid: 'CA1', streamSid: 'MZ1', agent: 'echo', endReason: 'twilio-stop' });

    const clear = capture();
    createLogger({ level: 'info', pii: true }, clear.stream).warn({ ...callerDataErr(new BridgeError(ErrorCodes.AGENT_PROTOCOL, `caller ${FROM}`)) }, 'provider');
    const [, line] = scan(clear.raw()).lines; // [0]: the BRIDGE_LOG_PII warning
    expect(line!.pii.err).toMatchObject({ type: 'BridgeError', code: 'BRIDGE_ERR_AGENT_PROTOCOL', message: `caller ${FROM}` });
  });

  it('voice-bridge start: a whole call, calls refused at the webhook, a stream with an unknown agent and the drain — every stdout line one JSON object with unique keys', async () => {
    const b = await startChildBridge({ BRIDGE_LOG_LEVEL: 'debug', TWILIO_AUTH_TOKEN: TOKEN });
    children.push(b);
    // The whole call: the signed webhook pre-connects the echo agent; the stream adopts it.
    const sid = callSid();
    expect((await signedVoice(b.url, '?agent=echo', sid)).status).toBe(200);
    const clip = await ulawClip('caller-barge-in.8k-ulaw.wav');
    const call = await runSimulatedCall({ url: b.streamUrl, authToken: TOKEN, callSid: sid, audio: clip, customParameters: { agent: 'echo', format: 'ulaw' }, tailMs: 2500, timeoutMs: 30_000 });
    expect(call.outcome).toBe('completed');
    // Refused at the webhook: an unknown agent, an agent without its key, a forged signature.
    const unknown = callSid();
    expect((await signedVoice(b.url, '?agent=no-such-agent', unknown)).text).toContain('<Hangup/>');
    const noKey = callSid();
    expect((await signedVoice(b.url, '?agent=openai', noKey)).text).toContain('<Hangup/>');
    const forged = await fetch(`${b.url}/twilio/voice`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': 'bm90IGl0' }, body: form({ CallSid: callSid(), From: FROM, To: TO }) });
    expect(forged.status).toBe(403);
    // A stream asking for an agent there is none of: an error line.
    await runSimulatedCall({ url: b.streamUrl, authToken: TOKEN, audio: clip.subarray(0, 1600), customParameters: { agent: 'no-such-agent' }, tailMs: 500, timeoutMs: 20_000 });
    await b.waitFor(/no agent for call/);
    await b.waitFor(new RegExp(`"callSid":"${sid}"[^\\n]*"msg":"call ended"`));
    b.proc.kill('SIGTERM');
    expect(await exitWithin(b, 30_000)).toEqual({ code: 0, signal: null });

    const { lines, problems } = scan(b.stdout());
    expect(problems).toEqual([]);
    const msgs = lines.map((l) => String(l.msg));
    expect(msgs.find((m) => /listening on http:\/\/127\.0\.0\.1:\d+ /.test(m))).toBeDefined();
    expect(msgs.some((m) => /SIGTERM — draining/.test(m))).toBe(true);
    expect(msgs).toContain('drained');
    const ended = lines.find((l) => l.msg === 'call ended' && l.callSid === sid)!;
    expect(ended).toMatchObject({ streamSid: call.streamSid, agent: 'echo', endReason: 'twilio-stop', pii: REDACTED });
    const refusals = lines.filter((l) => l.msg === 'call refused at the voice webhook');
    expect(refusals.map((l) => [l.reason, l.code, l.agent ?? null, l.level])).toEqual([
      ['agent-unavailable', 'BRIDGE_ERR_AGENT_UNKNOWN', 'no-such-agent', 40],
      ['agent-unavailable', 'BRIDGE_ERR_AGENT_CONFIG', 'openai', 40],
      ['signature', 'BRIDGE_ERR_TWILIO_SIGNATURE', null, 40],
    ]);
    expect(refusals.slice(0, 2).map((l) => l.callSid)).toEqual([unknown, noKey]);
    for (const l of refusals) expect(l).toMatchObject({ stage: 'webhook', ip: '127.0.0.1', pii: REDACTED });
    const noAgent = lines.find((l) => l.msg === 'no agent for call')!;
    expect(noAgent.err).toMatchObject({ type: 'UnknownAgentError', code: 'BRIDGE_ERR_AGENT_UNKNOWN', message: REDACTED });
    expect(noAgent.err.stack).toMatch(/\n\s+at /);
    // No caller numbers anywhere (BRIDGE_LOG_PII is off), and no `error` strings left.
    expect(b.stdout()).not.toContain(FROM);
    expect(b.stdout()).not.toContain(TO);
    expect(lines.filter((l) => 'error' in l)).toEqual([]);
  }, 90_000);

  it('voice-bridge start --workers 2: the primary\'s lines and the workers\' are all JSON with unique keys', async () => {
    const b = await startChildBridge({ BRIDGE_LOG_LEVEL: 'info' }, ['--workers', '2']);
    children.push(b);
    await b.waitFor(/cluster: 2 workers \(primary pid \d+\) listening/);
    const clip = await ulawClip('caller-barge-in.8k-ulaw.wav');
    const call = await runSimulatedCall({ url: b.streamUrl, audio: clip, customParameters: { format: 'ulaw' }, tailMs: 2500, timeoutMs: 30_000 });
    expect(call.outcome).toBe('completed');
    await b.waitFor(/"msg":"call ended"/);
    b.proc.kill('SIGTERM');
    expect(await exitWithin(b, 40_000)).toEqual({ code: 0, signal: null });

    const { lines, problems } = scan(b.stdout());
    expect(problems).toEqual([]);
    const primary = lines.filter((l) => l.pid === b.pid).map((l) => String(l.msg));
    expect(primary).toEqual(expect.arrayContaining([expect.stringMatching(/^voice-bridge cluster: 2 workers \(primary pid \d+\) listening on http:\/\/127\.0\.0\.1:\d+$/), 'voice-bridge cluster: SIGTERM — draining 2 workers']));
    // Only the primary says "listening on" (a worker's line would start callers before every worker is ready).
    expect(lines.filter((l) => l.pid !== b.pid && /listening on http:/.test(String(l.msg)))).toEqual([]);
    const workers = new Set(lines.filter((l) => l.pid !== b.pid && /^voice-bridge worker [01] ready$/.test(String(l.msg))).map((l) => l.pid));
    expect(workers.size).toBe(2);
    expect(lines.filter((l) => /^voice-bridge worker \d+: drain — draining/.test(String(l.msg))).map((l) => l.pid).sort()).toEqual([...workers].sort());
    expect(lines.filter((l) => l.msg === 'call ended').map((l) => l.callSid)).toEqual([call.callSid]);
  }, 90_000);

  it('refusals for capacity, draining and the rate limit: one line each with reason and code, at the webhook and at the upgrade', async () => {
    const c = capture();
    const logger = createLogger({ level: 'info' }, c.stream);
    await withBridge({ BRIDGE_MAX_CALLS: '1', BRIDGE_WEBHOOK_RATE_PER_MIN: '1' }, async (bridge) => {
      const voice = (sid: string) => fetch(`${bridge.url}/twilio/voice`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form({ CallSid: sid, From: FROM, To: TO }) });
      // A burst of 10 from one source: the first takes the one place, the second finds none.
      expect((await (await voice(callSid())).text())).toContain('<Connect>');
      expect((await (await voice(callSid())).text())).toContain('<Hangup/>');
      bridge.admission.startDraining();
      for (let n = 3; n <= 10; n++) expect((await voice(callSid())).status).toBe(200);
      expect((await voice(callSid())).status).toBe(429);
      const stream = await runSimulatedCall({ url: bridge.streamUrl, audio: new Uint8Array(1600), tailMs: 0, timeoutMs: 10_000 });
      expect(stream.outcome).toBe('connect-failed');
    }, { logger });
    const { lines, problems } = scan(c.raw());
    expect(problems).toEqual([]);
    const refused = lines.filter((l) => /refused at the/.test(String(l.msg)));
    const summary = refused.map((l) => `${l.stage} ${l.reason} ${l.code} ${l.level}`);
    expect(summary).toEqual([
      'webhook max-calls BRIDGE_ERR_AT_CAPACITY 40',
      ...Array.from({ length: 8 }, () => 'webhook draining BRIDGE_ERR_DRAINING 30'),
      'webhook rate-limited BRIDGE_ERR_RATE_LIMITED 40',
      'stream draining BRIDGE_ERR_DRAINING 30',
    ]);
    expect(refused.at(-2)).toMatchObject({ retryAfterS: expect.any(Number), pii: REDACTED });
    expect(c.raw()).not.toContain(FROM);
  }, 60_000);
});
