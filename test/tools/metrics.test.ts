/**
 * Tool calls and event deliveries in /metrics: counted by tool and outcome, durations,
 * event delivery counts and the pending gauge; the exposition passes `promtool check
 * metrics` when promtool is installed.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { createMetrics, type Metrics } from '../../src/metrics/metrics.js';
import { runTool } from '../../src/tools/run-tool.js';
import { unknownToolResult } from '../../src/tools/dispatch.js';
import { EventDeliverer } from '../../src/events/event-deliverer.js';
import { createEvent } from '../../src/events/event.js';
import { json, startReceiver, type Receiver } from './receiver.js';
import { parseExposition, sample } from '../metrics/harness.js';

const promtool = (text: string) =>
  new Promise<{ code: number; out: string } | undefined>((resolve) => {
    const p = execFile(process.env.VB_PROMTOOL ?? 'promtool', ['check', 'metrics'], { timeout: 60_000 }, (e, stdout, stderr) => {
      if (e && (e as NodeJS.ErrnoException).code === 'ENOENT') resolve(undefined);
      else resolve({ code: e ? ((e as { code?: number }).code ?? 1) : 0, out: stdout + stderr });
    });
    p.stdin!.end(text);
  });

let metrics: Metrics | undefined;
let receiver: Receiver | undefined;
let dir: string | undefined;
afterEach(async () => {
  metrics?.close();
  await receiver?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('tool and event metrics', () => {
  it('counts tool calls by tool and outcome, their durations, and event deliveries', async () => {
    metrics = createMetrics({ dspInfo: () => undefined, defaultMetrics: false });
    receiver = await startReceiver((q, res) => json(res, q.url.includes('fail') ? 500 : 200, { output: 'ok' }));
    const call = { callSid: 'CA1', streamSid: 'MZ1', profile: 'support', callId: 'c1', arguments: '{}' };
    await runTool({ name: 'lookup_order', url: receiver.url }, call, { observe: metrics.onToolCall });
    await runTool({ name: 'lookup_order', url: `${receiver.url}?fail` }, call, { observe: metrics.onToolCall });
    await runTool({ name: 'lookup_order', url: receiver.url }, { ...call, arguments: 'not json' }, { observe: metrics.onToolCall });
    metrics.onToolCall(unknownToolResult('made_up_by_the_model'));

    dir = await mkdtemp(join(tmpdir(), 'vb-evmetrics-'));
    const d = new EventDeliverer({ dir, target: () => ({ url: receiver!.url }), firstRetryMs: 10, maxRetryMs: 20 });
    metrics.setEventStats(() => d.stats());
    await d.start();
    const delivered = once(d, 'delivered');
    d.enqueue(createEvent('call.started', { callSid: 'CA1', profile: 'support', data: {} }));
    await delivered;
    await d.close();

    const text = await metrics.registry.metrics();
    const { samples } = parseExposition(text);
    const value = (name: string, labels: Record<string, string> = {}) => sample(samples, name, labels);
    expect(value('voice_bridge_tool_calls_total', { tool: 'lookup_order', outcome: 'ok' })).toBe(1);
    expect(value('voice_bridge_tool_calls_total', { tool: 'lookup_order', outcome: 'http-status' })).toBe(1);
    expect(value('voice_bridge_tool_calls_total', { tool: 'lookup_order', outcome: 'bad-arguments' })).toBe(1);
    expect(value('voice_bridge_tool_call_duration_seconds_count', { tool: 'lookup_order' })).toBe(3);
    expect(value('voice_bridge_tool_calls_total', { tool: 'unknown', outcome: 'unknown-tool' })).toBe(1);
    expect(text).not.toContain('made_up_by_the_model');
    expect(value('voice_bridge_events_delivered_total')).toBe(1);
    expect(value('voice_bridge_events_pending')).toBe(0);
    expect(value('voice_bridge_events_dropped_total', { reason: 'expired' })).toBe(0);
    expect(value('voice_bridge_event_delivery_failures_total')).toBe(0);
    const lint = await promtool(text);
    if (lint) expect(lint.out.trim(), lint.out).toBe('');
  });
});
