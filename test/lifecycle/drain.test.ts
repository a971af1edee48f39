/**
 * Graceful drain of a real `voice-bridge start` child process: SIGTERM turns /readyz
 * 503 at once, new calls are refused politely (TwiML <Say>+<Hangup>; the upgrade
 * 503), the active call runs to its end with no gap, the process exits 0. And the
 * timeout path: a call still up at BRIDGE_DRAIN_TIMEOUT_MS hears the whole bundled
 * goodbye before its stream is closed.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { readWav } from '../../src/audio/wav.js';
import { runSimulatedCall } from '../../src/sim/simulator.js';
import { ulawClip } from '../bridge/helpers.js';
import { echoedExactly, pollUntil, postVoice, repoRoot, startChildBridge, type ChildBridge } from './child-bridge.js';

const children: ChildBridge[] = [];
afterEach(() => {
  for (const c of children.splice(0)) c.kill();
});

async function readyz(url: string): Promise<{ status: number; body: any }> {
  const r = await fetch(`${url}/readyz`);
  return { status: r.status, body: await r.json() };
}

describe('graceful drain on SIGTERM (child process)', () => {
  it('refuses new calls, lets the active call finish untouched, exits 0', async () => {
    const b = await startChildBridge({ BRIDGE_DRAIN_TIMEOUT_MS: '30000' });
    children.push(b);
    const clip = await ulawClip('caller-barge-in.8k-ulaw.wav');
    const call = runSimulatedCall({ url: b.streamUrl, audio: clip, customParameters: { format: 'ulaw' }, tailMs: 4000, timeoutMs: 30_000 });
    await pollUntil(async () => (await readyz(b.url)).body.activeCalls === 1);

    const t0 = Date.now();
    b.proc.kill('SIGTERM');
    const r = await pollUntil(async () => {
      const x = await readyz(b.url);
      return x.status === 503 ? x : undefined;
    }, 15_000, 10);
    expect(r.body).toMatchObject({ ready: false, reason: 'draining', activeCalls: 1 });
    expect(Date.now() - t0).toBeLessThan(10_000); // well before the 30 s drain ends: loose for a loaded machine

    // A new call: polite TwiML refusal at the webhook, 503 on the stream upgrade.
    const v = await postVoice(b.url);
    expect(v.status).toBe(200);
    expect(v.text).toContain('<Say>');
    expect(v.text).toContain('<Hangup/>');
    expect(v.text).not.toContain('<Stream');
    const refused = await runSimulatedCall({ url: b.streamUrl, audio: clip.subarray(0, 1600), timeoutMs: 5000 });
    expect(refused.outcome).toBe('connect-failed');
    expect(refused.httpStatus).toBe(503);

    // The active call is untouched: it runs to its end and the caller hears all of the echo.
    // (Playout gaps are not asserted here: child processes starting on a loaded 2-core box can
    // starve a tick; test/lifecycle/nginx.test.ts and test/bridge/ hold the no-gap line.)
    const done = await call;
    expect(done.outcome).toBe('completed');
    expect(done.protocolErrors).toEqual([]);
    expect(echoedExactly(done, clip)).toBe(true);
    const exit = await Promise.race([b.exited, new Promise<never>((_, rej) => setTimeout(() => rej(new Error('no exit')), 15_000))]);
    expect(exit).toEqual({ code: 0, signal: null });
    expect(b.output()).toMatch(/SIGTERM — draining/);
  });

  it('drain timeout: the remaining call hears the whole goodbye, then is closed; exit 0', async () => {
    const b = await startChildBridge({ BRIDGE_DRAIN_TIMEOUT_MS: '1500' });
    children.push(b);
    const goodbye = (await readWav(join(repoRoot, 'assets', 'prompts', 'goodbye.8k-ulaw.wav'))).data as Uint8Array;
    // A caller who keeps the line open (silence) far beyond the drain timeout.
    const call = runSimulatedCall({ url: b.streamUrl, audio: new Uint8Array(1600).fill(0xff), customParameters: { format: 'ulaw' }, tailMs: 40_000, timeoutMs: 60_000 });
    await pollUntil(async () => (await readyz(b.url)).body.activeCalls === 1);
    const t0 = Date.now();
    b.proc.kill('SIGTERM');
    const done = await call;
    const elapsed = Date.now() - t0;
    expect(done.outcome).toBe('server-closed');
    // 1.5 s of drain, then the goodbye (~5.7 s) played in full before the close.
    expect(elapsed).toBeGreaterThan(1500 + (goodbye.length / 8) * 0.9);
    expect(elapsed).toBeLessThan(1500 + goodbye.length / 8 + 4000);
    const heard = Buffer.concat(done.heardSegments.map((s) => done.heard.subarray(Math.round(s.startMs * 8), Math.round(s.endMs * 8))));
    expect(heard.length).toBeGreaterThanOrEqual(goodbye.length - 160);
    // Byte for byte (μ-law straight to the playout), up to the last partial frame's padding.
    expect(Buffer.from(heard.subarray(0, goodbye.length - 160)).equals(Buffer.from(goodbye.subarray(0, goodbye.length - 160)))).toBe(true);
    expect(done.unplayedBytes).toBe(0);
    const exit = await Promise.race([b.exited, new Promise<never>((_, rej) => setTimeout(() => rej(new Error('no exit')), 15_000))]);
    expect(exit).toEqual({ code: 0, signal: null });
  });

  it('a second signal cuts the wait short', async () => {
    const b = await startChildBridge({ BRIDGE_DRAIN_TIMEOUT_MS: '60000' });
    children.push(b);
    const call = runSimulatedCall({ url: b.streamUrl, audio: new Uint8Array(1600).fill(0xff), customParameters: { format: 'ulaw' }, tailMs: 60_000, timeoutMs: 90_000 });
    await pollUntil(async () => (await readyz(b.url)).body.activeCalls === 1);
    b.proc.kill('SIGTERM');
    await b.waitFor(/SIGTERM — draining/);
    b.proc.kill('SIGINT');
    const done = await call;
    expect(done.outcome).toBe('server-closed');
    expect(done.durationMs).toBeLessThan(20_000);
    const exit = await Promise.race([b.exited, new Promise<never>((_, rej) => setTimeout(() => rej(new Error('no exit')), 20_000))]);
    expect(exit).toEqual({ code: 0, signal: null });
  });
});
