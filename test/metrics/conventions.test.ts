/**
 * /metrics of a real bridge, as Prometheus and an operator see it:
 * - `promtool check metrics` (Prometheus' own linter: names, units, suffixes, help) finds
 *   nothing on the whole exposition, after calls, refusals and errors;
 * - counters move while a call runs (frames), not only when it ends;
 * - refusals by stage and reason, HTTP answers by route and status (403, 429), the build,
 *   the DSP core as an _info metric without file paths, the record outbox.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runSimulatedCall } from '../../src/sim/simulator.js';
import { ulawClip, withBridge } from '../bridge/helpers.js';
import { callSid, form, pollUntil, repoRoot } from '../lifecycle/child-bridge.js';

const promtool = process.env.VB_PROMTOOL ?? 'promtool';
const version = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;

/** One sample's value from Prometheus text (labels matched as given, in any order). */
function value(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[3]);
  }
  return undefined;
}

const lint = (text: string) =>
  new Promise<{ code: number; out: string }>((resolve, reject) => {
    const p = execFile(promtool, ['check', 'metrics'], { timeout: 60_000 }, (e, stdout, stderr) => {
      if (e && (e as NodeJS.ErrnoException).code === 'ENOENT') reject(new Error(`${promtool} not found: npm test installs Debian's prometheus package with consent (README: Testing), or set VB_PROMTOOL`));
      else resolve({ code: e ? ((e as { code?: number }).code ?? 1) : 0, out: stdout + stderr });
    });
    p.stdin!.end(text);
  });

describe('/metrics conventions', () => {
  it('promtool check metrics finds no problem; refusals, 403/429, build and DSP info, record outbox', async () => {
    const clip = (await ulawClip('caller-barge-in.8k-ulaw.wav')).subarray(0, 8000);
    await withBridge({ TWILIO_AUTH_TOKEN: 'secret-token', BRIDGE_PUBLIC_URL: 'https://voice.example.com', BRIDGE_LOAD_THRESHOLD: 'off' }, async (bridge) => {
      const post = (headers: Record<string, string> = {}) =>
        fetch(`${bridge.url}/twilio/voice`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: form({ CallSid: callSid(), From: '+15551230000', To: '+15557650000' }) });
      expect((await post()).status).toBe(403); // unsigned
      expect((await post({ 'x-twilio-signature': 'forged' })).status).toBe(403);
      expect((await fetch(`${bridge.url}/nowhere`)).status).toBe(404);
      const text = await (await fetch(`${bridge.url}/metrics`)).text();
      expect(value(text, 'voice_bridge_calls_refused_total', { stage: 'webhook', reason: 'signature' })).toBe(2);
      expect(value(text, 'voice_bridge_http_responses_total', { method: 'POST', route: '/twilio/voice', code: '403' })).toBe(2);
      expect(value(text, 'voice_bridge_http_responses_total', { method: 'GET', route: 'unmatched', code: '404' })).toBe(1);
      expect(value(text, 'voice_bridge_build_info', { version, node_version: process.versions.node })).toBe(1);
      const dsp = /^voice_bridge_dsp_info\{(.*)\} 1$/m.exec(text)?.[1];
      expect(dsp).toBeDefined();
      expect(dsp).not.toMatch(/\//); // no file paths in labels
      expect(value(text, 'voice_bridge_record_outbox_depth')).toBe(0);
      const l = await lint(text);
      expect(l.out.trim(), l.out).toBe('');
      expect(l.code).toBe(0);
    });
    // Rate limit and an unknown agent (no signatures: a local bridge), then a call: still clean.
    await withBridge({ BRIDGE_WEBHOOK_RATE_PER_MIN: '1', BRIDGE_LOAD_THRESHOLD: 'off' }, async (bridge) => {
      const post = (q = '') => fetch(`${bridge.url}/twilio/voice${q}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form({ CallSid: callSid(), From: '+15551230000', To: '+15557650000' }) });
      const statuses: number[] = [];
      for (let i = 0; i < 30 && !statuses.includes(429); i++) statuses.push((await post('?agent=nosuch')).status);
      expect(statuses).toContain(429);
      const r = await runSimulatedCall({ url: bridge.streamUrl, audio: clip, fast: true, tailMs: 300, timeoutMs: 20_000, customParameters: { format: 'ulaw' } });
      expect(r.outcome).toBe('completed');
      const text = await pollUntil(async () => {
        const t = await (await fetch(`${bridge.url}/metrics`)).text();
        return value(t, 'voice_bridge_calls_ended_total', { agent: 'echo' }) === 1 ? t : undefined;
      });
      expect(value(text, 'voice_bridge_calls_refused_total', { stage: 'webhook', reason: 'agent-unavailable' })).toBeGreaterThanOrEqual(1);
      expect(value(text, 'voice_bridge_calls_refused_total', { stage: 'webhook', reason: 'rate-limited' })).toBeGreaterThanOrEqual(1);
      expect(value(text, 'voice_bridge_http_responses_total', { method: 'POST', route: '/twilio/voice', code: '429' })).toBeGreaterThanOrEqual(1);
      const l = await lint(text);
      expect(l.out.trim(), l.out).toBe('');
      expect(l.code).toBe(0);
    });
  });

  it('frames are counted while the call runs, not only when it ends', async () => {
    const clip = await ulawClip('caller-barge-in.8k-ulaw.wav');
    await withBridge({ BRIDGE_LOAD_THRESHOLD: 'off' }, async (bridge) => {
      const ac = new AbortController();
      // Real time (not fast): the call lasts seconds; the abort ends it once the counters moved.
      const call = runSimulatedCall({ url: bridge.streamUrl, audio: clip, tailMs: 30_000, timeoutMs: 60_000, signal: ac.signal, customParameters: { format: 'ulaw' } });
      const during = await pollUntil(async () => {
        const t = await (await fetch(`${bridge.url}/metrics`)).text();
        return value(t, 'voice_bridge_active_calls') === 1 && (value(t, 'voice_bridge_frames_total', { direction: 'inbound' }) ?? 0) > 0 && (value(t, 'voice_bridge_frames_total', { direction: 'outbound' }) ?? 0) > 0 ? t : undefined;
      }, 30_000, 50);
      expect(value(during, 'voice_bridge_calls_ended_total', { agent: 'echo' })).toBeUndefined();
      const inDuring = value(during, 'voice_bridge_frames_total', { direction: 'inbound' })!;
      ac.abort();
      await call;
      const after = await pollUntil(async () => {
        const t = await (await fetch(`${bridge.url}/metrics`)).text();
        return value(t, 'voice_bridge_active_calls') === 0 && value(t, 'voice_bridge_calls_ended_total', { agent: 'echo' }) !== undefined ? t : undefined;
      });
      // Monotonic across the call's end: the ended call's total replaces its live count.
      expect(value(after, 'voice_bridge_frames_total', { direction: 'inbound' })).toBeGreaterThanOrEqual(inDuring);
    });
  });

  it('per-turn response latency: the caller stops speaking → the reply starts playing, one observation per answered turn', async () => {
    const clip = await ulawClip('caller-barge-in.8k-ulaw.wav');
    await withBridge({ BRIDGE_LOAD_THRESHOLD: 'off' }, async (bridge) => {
      const r = await runSimulatedCall({ url: bridge.streamUrl, audio: clip, fast: true, tailMs: 2500, timeoutMs: 30_000, customParameters: { format: 'ulaw' } });
      expect(r.outcome).toBe('completed');
      expect(r.firstAgentAudioMs).not.toBeNull(); // the echo agent answered
      const text = await pollUntil(async () => {
        const t = await (await fetch(`${bridge.url}/metrics`)).text();
        return value(t, 'voice_bridge_calls_ended_total', { agent: 'echo' }) === 1 ? t : undefined;
      });
      const n = value(text, 'voice_bridge_turn_response_seconds_count', { agent: 'echo' }) ?? 0;
      expect(n).toBeGreaterThanOrEqual(1);
      const meanS = value(text, 'voice_bridge_turn_response_seconds_sum', { agent: 'echo' })! / n;
      // The echo agent answers after its silence timeout: a real latency, not 0 and not the call's length.
      expect(meanS).toBeGreaterThan(0);
      expect(meanS).toBeLessThan(r.durationMs / 1000);
    });
  });
});
