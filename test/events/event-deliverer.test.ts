/**
 * EventDeliverer against real HTTP receivers on 127.0.0.1 and a real data dir: signed
 * delivery, retries, restarts, a damaged file, limits. Retry waits are shortened through
 * the deliverer's options; tests wait on its events, never on sleeps.
 */
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../src/errors.js';
import { createEvent, isBridgeEvent, toolCalledData, type BridgeEvent } from '../../src/events/event.js';
import { DEFAULT_EVENT_MAX_AGE_MS, EventDeliverer, retryDelayMs, type EventDelivererOptions } from '../../src/events/event-deliverer.js';
import { verifySignature } from '../../src/tools/signature.js';
import { json, startReceiver, type Receiver } from '../tools/receiver.js';

const SECRET = 'events-secret';
const FAST = { firstRetryMs: 20, maxRetryMs: 60 };

let dir: string;
const receivers: Receiver[] = [];
const deliverers: EventDeliverer[] = [];
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vb-events-'));
});
afterEach(async () => {
  for (const d of deliverers.splice(0)) await d.close();
  for (const r of receivers.splice(0)) await r.close();
  await rm(dir, { recursive: true, force: true });
});

async function receiver(handler: Parameters<typeof startReceiver>[0]): Promise<Receiver> {
  const r = await startReceiver(handler);
  receivers.push(r);
  return r;
}

type Logged = { level: string; msg: string; fields?: Record<string, unknown> };
function deliverer(url: string | undefined, extra: Partial<EventDelivererOptions> = {}, logs: Logged[] = []): EventDeliverer {
  const d = new EventDeliverer({ dir, target: (p) => (p === 'support' && url ? { url, secret: SECRET } : undefined), log: (level, msg, fields) => logs.push({ level, msg, fields }), ...FAST, ...extra });
  deliverers.push(d);
  return d;
}

const started = (callSid = 'CA1') => createEvent('call.started', { callSid, profile: 'support', data: { from: '+15550001234', to: '+15550001111', agent: 'openai' } });

/** Resolves after `n` 'delivered' events. */
function deliveredN(d: EventDeliverer, n: number): Promise<BridgeEvent[]> {
  const got: BridgeEvent[] = [];
  return new Promise((resolve) => {
    const on = (e: BridgeEvent) => {
      got.push(e);
      if (got.length === n) {
        d.off('delivered', on);
        resolve(got);
      }
    };
    d.on('delivered', on);
  });
}

describe('EventDeliverer', () => {
  it('POSTs the event as JSON, signed, and counts it delivered', async () => {
    const r = await receiver((_q, res) => json(res, 204, {}));
    const d = deliverer(r.url);
    await d.start();
    const ev = started();
    const delivered = once(d, 'delivered');
    expect(d.enqueue(ev)).toBe(true);
    await delivered;
    const [req] = r.requests;
    expect(req!.headers['content-type']).toBe('application/json');
    expect(verifySignature(SECRET, req!.raw, req!.headers['x-voice-bridge-signature'] as string).ok).toBe(true);
    const body = JSON.parse(req!.raw) as BridgeEvent;
    expect(body).toEqual(ev);
    expect(Object.keys(body)).toEqual(['id', 'type', 'createdAt', 'callSid', 'profile', 'data']);
    expect(body.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(d.stats()).toMatchObject({ delivered: 1, failedAttempts: 0, pending: 0 });
    expect(d.path).toBe(join(dir, 'events-outbox.jsonl'));
  });

  it('a receiver that answers 500 twice gets the event on the third try, one id throughout', async () => {
    const r = await receiver((_q, res, n) => json(res, n <= 2 ? 500 : 200, {}));
    const logs: Logged[] = [];
    const d = deliverer(r.url, {}, logs);
    await d.start();
    const ev = started();
    const delivered = once(d, 'delivered');
    d.enqueue(ev);
    await delivered;
    await d.close();
    expect(r.requests).toHaveLength(3);
    expect(new Set(r.requests.map((q) => (JSON.parse(q.raw) as BridgeEvent).id))).toEqual(new Set([ev.id]));
    for (const q of r.requests) expect(verifySignature(SECRET, q.raw, q.headers['x-voice-bridge-signature'] as string).ok).toBe(true);
    expect(d.stats()).toMatchObject({ delivered: 1, failedAttempts: 2, pending: 0 });
    expect(logs.some((l) => l.fields?.code === ErrorCodes.EVENTS_DELIVERY)).toBe(true);
  });

  it('survives a restart: pending events stay on disk and a new deliverer on the same dir delivers them, once', async () => {
    const down = await receiver((_q, res) => json(res, 503, {}));
    const a = deliverer(down.url, { workerSlot: 0 });
    await a.start();
    const evs = [started('CA1'), started('CA2')];
    for (const e of evs) a.enqueue(e);
    await down.waitFor(2); // both durable and tried
    expect(await a.close()).toBe(2);
    expect(a.enqueue(started('CA3'))).toBe(false); // closed
    const file = join(dir, 'events-outbox-w0.jsonl');
    expect((await readFile(file, 'utf8')).trim().split('\n')).toHaveLength(2);

    const up = await receiver((_q, res) => json(res, 200, {}));
    const b = deliverer(up.url, { workerSlot: 0 });
    const both = deliveredN(b, 2);
    await b.start();
    await both;
    expect(await b.close()).toBe(0);
    expect(await readFile(file, 'utf8')).toBe(''); // nothing pending: the file is emptied
    expect(up.requests.map((q) => (JSON.parse(q.raw) as BridgeEvent).id).sort()).toEqual(evs.map((e) => e.id).sort());

    const c = deliverer(up.url, { workerSlot: 0 });
    await c.start();
    expect(c.stats().pending).toBe(0); // nothing delivered twice
    await c.close();
    expect(up.requests).toHaveLength(2);
  });

  it('a corrupt line in the file is skipped with a log and counted; the rest are delivered', async () => {
    const [e1, e2, e3] = [started('CA1'), started('CA2'), started('CA3')];
    const add = (e: BridgeEvent) => JSON.stringify({ v: 1, op: 'add', event: e });
    await writeFile(join(dir, 'events-outbox.jsonl'), [add(e1), 'not json {', add(e2), add(e3), JSON.stringify({ v: 1, op: 'done', id: e3.id }), '{"v":1,"op":"add","event":{"id":"x"}}', ''].join('\n'));
    const r = await receiver((_q, res) => json(res, 200, {}));
    const logs: Logged[] = [];
    const d = deliverer(r.url, {}, logs);
    const two = deliveredN(d, 2);
    await d.start();
    await two;
    expect(r.requests.map((q) => (JSON.parse(q.raw) as BridgeEvent).id)).toEqual([e1.id, e2.id]); // e3 was delivered before
    expect(d.stats().corruptLines).toBe(2);
    expect(logs.filter((l) => l.fields?.code === ErrorCodes.EVENTS_OUTBOX_CORRUPT).map((l) => l.fields?.line)).toEqual([2, 6]);
  });

  it('adopts the outbox of a worker that is gone', async () => {
    const ev = started('CA9');
    await writeFile(join(dir, 'events-outbox-w3.jsonl'), `${JSON.stringify({ v: 1, op: 'add', event: ev })}\n`);
    const r = await receiver((_q, res) => json(res, 200, {}));
    const d = deliverer(r.url, { workerSlot: 0 });
    const delivered = once(d, 'delivered');
    await d.start();
    expect(((await delivered) as BridgeEvent[])[0]!.id).toBe(ev.id);
    expect((await readdir(dir)).filter((f) => f.startsWith('events-outbox-w3'))).toEqual([]);
  });

  it('drops an event older than the maximum age, with a log and a count, without sending it', async () => {
    const r = await receiver((_q, res) => json(res, 200, {}));
    const logs: Logged[] = [];
    const d = deliverer(r.url, {}, logs);
    await d.start();
    const old = createEvent('call.ended', { callSid: 'CA1', profile: 'support', data: {} }, Date.now() - DEFAULT_EVENT_MAX_AGE_MS - 1000);
    const dropped = once(d, 'dropped');
    d.enqueue(old);
    expect((await dropped)[1]).toBe('expired');
    expect(r.requests).toHaveLength(0);
    expect(d.stats().dropped.expired).toBe(1);
    expect(logs.some((l) => l.fields?.code === ErrorCodes.EVENTS_EXPIRED && l.fields.id === old.id)).toBe(true);
  });

  it('takes nothing for a profile without an events URL, and bounds the queue', async () => {
    const r = await receiver((_q, res) => json(res, 200, {}));
    const d = deliverer(r.url, { maxPending: 2 });
    expect(d.enqueue(createEvent('call.started', { callSid: 'CA1', profile: 'other', data: {} }))).toBe(false);
    // Not started yet: accepted events wait in memory.
    expect([d.enqueue(started('CA1')), d.enqueue(started('CA2')), d.enqueue(started('CA3'))]).toEqual([true, true, false]);
    expect(d.stats()).toMatchObject({ pending: 2, dropped: { 'queue-full': 1 } });
    const two = deliveredN(d, 2);
    await d.start();
    await two;
  });

  it('an unwritable data dir is logged with a code and counted, never thrown; once writable, the events go', async () => {
    const notADir = join(dir, 'file');
    await writeFile(notADir, 'x');
    const r = await receiver((_q, res) => json(res, 200, {}));
    const logs: Logged[] = [];
    const d = new EventDeliverer({ dir: join(notADir, 'sub'), target: () => ({ url: r.url }), log: (level, msg, fields) => logs.push({ level, msg, fields }) });
    deliverers.push(d);
    await d.start();
    expect(d.enqueue(started())).toBe(true); // waits in memory
    expect(d.stats().writeFailures).toBeGreaterThanOrEqual(1);
    expect(logs.some((l) => l.fields?.code === ErrorCodes.EVENTS_OUTBOX)).toBe(true);
    expect(r.requests).toHaveLength(0); // never sent before it is on disk
    const delivered = once(d, 'delivered');
    await rm(notADir); // the disk is back: the open is retried
    await delivered;
    expect(r.requests).toHaveLength(1);
  });

  it('a listener that throws costs neither the delivery nor the process', async () => {
    const r = await receiver((_q, res) => json(res, 200, {}));
    const logs: Logged[] = [];
    const d = deliverer(r.url, {}, logs);
    await d.start();
    const delivered = once(d, 'delivered');
    d.on('delivered', () => {
      throw new Error('listener bug');
    });
    d.enqueue(started());
    await delivered;
    expect(await d.close()).toBe(0);
    expect(d.stats().delivered).toBe(1);
    expect(logs.some((l) => l.level === 'error' && /listener threw/.test(l.msg))).toBe(true);
  });

  it('a second deliverer on a locked file uses a stand-in of its own, removed when it closes empty', async () => {
    const r = await receiver((_q, res) => json(res, 200, {}));
    const a = deliverer(r.url);
    const b = deliverer(r.url);
    await a.start();
    await b.start();
    expect(b.path).toBe(join(dir, `events-outbox-p${process.pid}.jsonl`));
    const delivered = once(b, 'delivered');
    b.enqueue(started());
    await delivered;
    expect(await b.close()).toBe(0);
    expect((await readdir(dir)).filter((f) => f.includes(`-p${process.pid}`))).toEqual([]);
  });

  it('an attempt that gets no answer is bounded, failed and retried', async () => {
    const r = await receiver((_q, res, n) => {
      if (n > 1) json(res, 200, {}); // the first request hangs
    });
    const d = deliverer(r.url, { attemptTimeoutMs: 100 });
    await d.start();
    const failed = once(d, 'attemptFailed');
    const delivered = once(d, 'delivered');
    d.enqueue(started());
    expect((await failed)[1]).toBe('timeout');
    await delivered;
    expect(d.stats()).toMatchObject({ delivered: 1, failedAttempts: 1 });
  });

  it('close() with a request in flight returns at once and keeps the event for the next start', async () => {
    const r = await receiver(() => undefined); // never answers
    const d = deliverer(r.url, { attemptTimeoutMs: 60_000 });
    await d.start();
    d.enqueue(started());
    await r.waitFor(1);
    expect(await d.close()).toBe(1);
    expect((await readFile(d.path, 'utf8')).trim().split('\n')).toHaveLength(1);
  });

  it('events: the tool.called data of a result; the shape check the file reader uses', () => {
    expect(toolCalledData({ ok: true, tool: 'lookup_order', output: 1, durationMs: 12.4 })).toEqual({ name: 'lookup_order', durationMs: 12, outcome: 'ok' });
    expect(toolCalledData({ ok: false, tool: 'lookup_order', error: 'x', code: ErrorCodes.TOOL_TIMEOUT, durationMs: 5000 })).toEqual({ name: 'lookup_order', durationMs: 5000, outcome: 'timeout', code: 'BRIDGE_ERR_TOOL_TIMEOUT' });
    expect(isBridgeEvent(started())).toBe(true);
    expect(isBridgeEvent({ ...started(), type: 'call.exploded' })).toBe(false);
    expect(isBridgeEvent({ ...started(), createdAt: 'yesterday' })).toBe(false);
    const { data: _omitted, ...noData } = started();
    expect(isBridgeEvent(noData)).toBe(false);
  });

  it('retry schedule: the first retry within 10 s, never more than 60 s between tries, jittered', () => {
    expect(retryDelayMs(1, {}, 0)).toBe(2500);
    expect(retryDelayMs(1, {}, 0.999)).toBeLessThanOrEqual(10_000);
    for (let n = 1; n <= 40; n++) {
      expect(retryDelayMs(n, {}, 0.999)).toBeLessThanOrEqual(60_000);
      expect(retryDelayMs(n, {}, 0)).toBeGreaterThanOrEqual(2500);
    }
    expect(retryDelayMs(10, {}, 0)).toBe(30_000);
  });
});
