/**
 * Structured logs: lines captured from a real pino destination (a stream). Caller
 * data — numbers, custom parameters, transcripts, status-callback parameters —
 * appears only under `pii`, which reads "[redacted]" unless BRIDGE_LOG_PII=1.
 * The CallRecord logged here comes from a real call through a real CallManager.
 */
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CallRecord } from '../../src/call/call-manager.js';
import { loadConfig } from '../../src/config.js';
import { callLogger, createLogger, logFields, piiLoggingEnabled, REDACTED } from '../../src/log.js';
import { runSimulatedCall } from '../../src/sim/simulator.js';
import { ulawClip } from '../bridge/helpers.js';
import { computeSignature } from '../../src/twilio/signature.js';
import { startMetricsBridge, type MetricsBridge } from './harness.js';

function capture(): { stream: Writable; lines: () => Record<string, unknown>[]; raw: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer | string, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  const raw = () => chunks.join('');
  return { stream, raw, lines: () => raw().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

const TOKEN = 'e'.repeat(32);
const FROM = '+15551230000';
const TO = '+15559870000';
const SECRET_PARAM = 'Ada Lovelace';
const CALL_SID = `CA${'2e'.repeat(16)}`;

describe('structured logs with PII under `pii`', () => {
  let b: MetricsBridge;
  let record: CallRecord;

  beforeAll(async () => {
    // Signed, as Twilio does: unsigned status callbacks are not attached to records.
    b = await startMetricsBridge({ TWILIO_AUTH_TOKEN: TOKEN });
    const speech = await ulawClip('caller-barge-in.8k-ulaw.wav');
    const hookUrl = `${b.url}/twilio/voice?agent=echo&customer=${encodeURIComponent(SECRET_PARAM)}`;
    const hookParams = { CallSid: CALL_SID, From: FROM, To: TO };
    const hook = await fetch(hookUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': computeSignature(TOKEN, hookUrl, hookParams) },
      body: new URLSearchParams(hookParams).toString(),
    });
    expect(hook.status).toBe(200);
    // A status callback carrying the numbers too (Twilio sends From/To/Caller on each).
    const statusParams = { CallSid: CALL_SID, CallStatus: 'in-progress', From: FROM, To: TO, Caller: FROM };
    const status = await fetch(`${b.url}/twilio/status`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': computeSignature(TOKEN, `${b.url}/twilio/status`, statusParams) },
      body: new URLSearchParams(statusParams).toString(),
    });
    expect(status.status).toBeLessThan(300);
    const r = await runSimulatedCall({
      authToken: TOKEN,
      url: b.streamUrl,
      callSid: CALL_SID,
      audio: speech,
      customParameters: { agent: 'echo', customer: SECRET_PARAM },
      dtmf: [{ digit: '7', atMs: 500 }],
      tailMs: 3000,
      timeoutMs: 20_000,
    });
    expect(r.outcome).toBe('completed');
    record = (await b.endedCount(1))[0]!;
  }, 60_000);

  afterAll(async () => {
    await b?.close();
  });

  it('the real record carries caller data (so the test below means something)', () => {
    expect(record.from).toBe(FROM);
    expect(record.to).toBe(TO);
    expect(record.customParameters.customer).toBe(SECRET_PARAM);
    expect(record.transcripts.length).toBeGreaterThan(0);
    expect(record.dtmf).toBe(1);
    expect(record.status.length).toBeGreaterThan(0);
  });

  it('logFields: ids, timings and counters at the top; numbers, parameters, transcripts, status params under pii', () => {
    const f = logFields(record);
    const { pii, ...safe } = f;
    const safeText = JSON.stringify(safe);
    for (const secret of [FROM, TO, SECRET_PARAM, ...record.transcripts.map((t) => t.text)]) expect(safeText).not.toContain(secret);
    expect(safe).toMatchObject({ callSid: CALL_SID, streamSid: record.streamSid, agent: 'echo', endReason: 'twilio-stop', framesIn: record.framesIn, dtmfCount: 1, transcriptTurns: record.transcripts.length });
    expect(safe.status[0]).toMatchObject({ CallStatus: 'in-progress' });
    expect(pii).toEqual({
      from: FROM,
      to: TO,
      customParameters: { agent: 'echo', customer: SECRET_PARAM },
      transcripts: record.transcripts,
      status: record.status.map((s) => ({ at: s.at, ...s.params })),
    });
  });

  it('redacted by default: a call logger line keeps call context and hides pii', () => {
    const c = capture();
    const logger = createLogger({ level: 'info' }, c.stream);
    const log = callLogger(logger, { callSid: record.callSid, streamSid: record.streamSid, agent: record.agent });
    log.info(logFields(record), 'call ended');
    log.info({ pii: { digits: '1234' } }, 'dtmf');
    const lines = c.lines();
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ level: 30, msg: 'call ended', callSid: CALL_SID, streamSid: record.streamSid, agent: 'echo', endReason: 'twilio-stop', pii: REDACTED });
    expect(lines[1]).toMatchObject({ msg: 'dtmf', callSid: CALL_SID, pii: REDACTED });
    for (const secret of [FROM, TO, SECRET_PARAM, '1234', ...record.transcripts.map((t) => t.text)]) expect(c.raw()).not.toContain(secret);
  });

  it('objects logged whole keep their nested pii redacted too', () => {
    const c = capture();
    createLogger({ level: 'info' }, c.stream).info({ call: logFields(record) }, 'summary');
    expect((c.lines()[0]!.call as Record<string, unknown>).pii).toBe(REDACTED);
    expect(c.raw()).not.toContain(FROM);
  });

  it('BRIDGE_LOG_PII=1 (through Config.env): pii logged in clear, with a warning line at start', () => {
    const config = loadConfig({ BRIDGE_LOG_LEVEL: 'info', BRIDGE_LOG_PII: '1' });
    const c = capture();
    const logger = createLogger(config, c.stream);
    callLogger(logger, { callSid: record.callSid, streamSid: record.streamSid, agent: record.agent }).info(logFields(record), 'call ended');
    const [warning, line] = c.lines();
    expect(warning).toMatchObject({ level: 40 });
    expect(String(warning!.msg)).toContain('BRIDGE_LOG_PII=1');
    expect(line).toMatchObject({ callSid: CALL_SID, pii: { from: FROM, to: TO, customParameters: { customer: SECRET_PARAM } } });
    expect((line!.pii as { transcripts: unknown[] }).transcripts).toEqual(record.transcripts);
  });

  it('BRIDGE_LOG_PII: only 1/true turn it on; level comes from BRIDGE_LOG_LEVEL', () => {
    expect(piiLoggingEnabled({})).toBe(false);
    expect(piiLoggingEnabled({ BRIDGE_LOG_PII: '0' })).toBe(false);
    expect(piiLoggingEnabled({ BRIDGE_LOG_PII: 'yes please' })).toBe(false);
    expect(piiLoggingEnabled({ BRIDGE_LOG_PII: '1' })).toBe(true);
    expect(piiLoggingEnabled({ BRIDGE_LOG_PII: 'true' })).toBe(true);
    const c = capture();
    const logger = createLogger(loadConfig({ BRIDGE_LOG_LEVEL: 'warn' }), c.stream);
    logger.info({ pii: { from: FROM } }, 'not shown');
    logger.warn({ pii: { from: FROM } }, 'shown');
    expect(c.lines().map((l) => [l.msg, l.pii])).toEqual([['shown', REDACTED]]);
  });
});
