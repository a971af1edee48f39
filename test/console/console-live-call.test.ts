/**
 * The call console with a call on it, in headless Chromium: a simulated Twilio call
 * (src/sim) to a profile whose agent is a local fake of OpenAI Realtime. The live view
 * lists it within 1 s of its start (numbers masked: BRIDGE_LOG_PII is off), its page
 * follows it live (transcript turns, a tool call and its result), "Hang up" ends it, and
 * the page turns into the call's record with its end reason and its recording, which plays
 * for as long as the call lasted while its position highlights the transcript line being
 * heard; history finds it by a number fragment that never appears in any URL. A call whose
 * agent does not take the caller's audio shows how much was lost, in the live list, live on
 * its page and in its record.
 * Screenshots in test/artifacts/console/.
 */
import { createServer, type Server } from 'node:http';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentSession, ULAW_8K, type AgentFactory, type AudioFormat } from '../../src/agents/agent.js';
import { startBridge, type RunningBridge } from '../../src/main.js';
import { runSimulatedCall } from '../../src/sim/simulator.js';
import { startFakeOpenAi, type FakeOpenAi } from '../fakes/openai-realtime.js';
import { profilesFile } from '../profiles/profiles-helpers.js';
import { callSid as newCallSid } from '../lifecycle/child-bridge.js';
import { until } from '../agents/agent-events.js';
import { ulawClip } from '../bridge/helpers.js';
import { ensureConsoleBuilt, launchChromium, shot } from './browser.js';

const TOKEN = 'console-live-token-Hq2mV8';
const FROM = '+15551230000';
const TO = '+15557650000';

let bridge: RunningBridge;
let browser: Browser;
let fake: FakeOpenAi;
let toolServer: Server;

/**
 * An agent whose service stops taking the caller's audio after its first 10 frames, as an
 * adapter does when the service stops reading (AgentSession.callerAudioDroppedMs): every
 * later frame is counted as lost.
 */
class DeafAgent extends AgentSession {
  readonly inputFormat: AudioFormat = ULAW_8K;
  readonly outputFormat: AudioFormat = ULAW_8K;
  readonly hasVad = true;
  #frames = 0;
  async connect(): Promise<void> {}
  sendAudio(data: Int16Array | Uint8Array): void {
    if (++this.#frames > 10) this.noteCallerAudioDropped(data.length / 8);
  }
  interrupt(): void {}
  sendDtmf(): void {}
  async close(reason: string): Promise<void> {
    this.emitEvent({ type: 'closed', reason });
  }
}
const deaf: AgentFactory = { name: 'deaf', available: true, create: () => new DeafAgent() };

beforeAll(async () => {
  await ensureConsoleBuilt();
  toolServer = createServer((req, res) => {
    req.resume();
    req.on('end', () => void res.writeHead(200, { 'content-type': 'application/json' }).end('{"output":{"status":"shipped"}}'));
  });
  await new Promise<void>((r) => toolServer.listen(0, '127.0.0.1', r));
  const toolUrl = `http://127.0.0.1:${(toolServer.address() as AddressInfo).port}/lookup`;
  fake = await startFakeOpenAi({ replyMs: 800, vad: true, autoAnswer: true });
  const profiles = profilesFile(`
profiles:
  - name: support
    match: { to: ["${TO}"] }
    agent: openai
    options: { format: pcmu }
    tools:
      - name: lookup_order
        description: Look up an order
        url: ${toolUrl}
`);
  bridge = await startBridge(
    { ...fake.env, BRIDGE_PROFILES: profiles, BRIDGE_LOG_LEVEL: 'silent', BRIDGE_DSP: process.env.BRIDGE_DSP ?? 'auto', BRIDGE_DSP_POOL: '0', BRIDGE_DATA_DIR: mkdtempSync(join(tmpdir(), 'vb-data-')), BRIDGE_LOAD_THRESHOLD: 'off', BRIDGE_ADMIN_TOKEN: TOKEN, BRIDGE_RECORD: '1', BRIDGE_RECORD_DIR: mkdtempSync(join(tmpdir(), 'vb-rec-')) },
    { port: 0, host: '127.0.0.1', extraAgents: [deaf] },
  );
  browser = await launchChromium();
}, 240_000);

afterAll(async () => {
  await browser?.close();
  await bridge?.close();
  await fake?.close();
  toolServer?.closeAllConnections();
  await new Promise<void>((r) => (toolServer ? toolServer.close(() => r()) : r()));
});

/** A page signed in to the console (dialogs accepted), with the URLs it requested and its errors. */
async function signedIn() {
  const context = await browser.newContext({ viewport: { width: 1366, height: 900 } });
  const page = await context.newPage();
  const urls: string[] = [];
  const problems: string[] = [];
  page.on('request', (r) => urls.push(r.url()));
  page.on('pageerror', (e) => problems.push(e.message));
  page.on('dialog', (d) => void d.accept());
  await page.goto(`${bridge.url}/console`);
  await page.getByLabel('Admin token').fill(TOKEN);
  await page.getByTestId('login-submit').click();
  return { context, page, urls, problems };
}

describe('call console with a live call', () => {
  it('lists the call live, follows it on its page, hangs it up, then shows its record', async () => {
    const { context, page, urls, problems } = await signedIn();
    try {
      await page.getByTestId('live-empty').waitFor();

      const sid = newCallSid();
      const ctl = new AbortController();
      let startedAt = 0;
      const stopListening = bridge.onEvent((e) => {
        if (e.type === 'call.started' && e.callSid === sid) startedAt = Date.now();
      });
      // Real time (not `fast`): the caller asks about an order, then stays on until hung up (or 60 s).
      const speech = await ulawClip('caller-order-status.8k-ulaw.wav');
      const call = runSimulatedCall({ url: bridge.streamUrl, callSid: sid, customParameters: { profile: 'support', vb_from: FROM, vb_to: TO }, audio: speech, tailMs: 60_000, timeoutMs: 90_000, signal: ctl.signal });
      try {
        const row = page.locator(`[data-testid="live-row"][data-call-sid="${sid}"]`);
        await row.waitFor();
        const listedAt = Date.now();
        stopListening();
        // Pushed when the stream starts (no polling): on the page within 1 s of the call's start.
        expect(startedAt).toBeGreaterThan(0);
        expect(listedAt - startedAt).toBeLessThanOrEqual(1000);
        console.log(`call listed on the page ${listedAt - startedAt} ms after its start`);
        await page.getByTestId('live-empty').waitFor({ state: 'hidden' });
        expect(await row.locator('td').nth(3).textContent()).toBe('support');
        expect(await row.getByTestId('live-audio-lost').textContent()).toBe('none');
        // Without BRIDGE_LOG_PII the bridge masks the numbers before they reach the page.
        expect(await row.locator('td').nth(0).textContent()).toContain('•••00');
        expect(await page.content()).not.toContain(FROM.slice(2));
        await shot(page, 'live-with-call');

        await row.getByTestId('live-link').click();
        expect(new URL(page.url()).hash).toBe(`#/calls/${sid}`);
        await page.getByTestId('call-mode').filter({ hasText: 'Live' }).waitFor();
        await page.getByTestId('hangup').waitFor();
        expect(await page.getByTestId('call-profile').textContent()).toBe('support');
        expect(await page.getByTestId('call-audio-lost').textContent()).toBe('none');

        // The caller's turn and the agent's answer, turn by turn, while the call runs.
        await page.locator('[data-testid="transcript-line"][data-role="caller"]').first().waitFor();
        await page.locator('[data-testid="transcript-line"][data-role="agent"]').first().waitFor();
        await until(() => fake.current?.sessionUpdates.length === 1, 'the agent session');
        await fake.callTool('lookup_order', { order_id: '42' });
        const tool = page.getByTestId('tool-call').filter({ hasText: 'lookup_order' });
        await tool.waitFor();
        await tool.getByTestId('tool-output').filter({ hasText: 'shipped' }).waitFor();
        expect(await tool.getByTestId('tool-args').textContent()).toContain('42');
        await shot(page, 'call-live');

        // Say without TTS configured: the problem's detail is shown, the call goes on.
        await page.getByTestId('say-text').fill('One moment please');
        await page.getByTestId('say-submit').click();
        await page.getByTestId('action-error').filter({ hasText: /^Say failed: \S/ }).waitFor();

        await page.getByTestId('hangup').click();
        await page.getByTestId('end-reason').waitFor();
        await page.getByTestId('call-mode').filter({ hasText: /Ended|Record/ }).waitFor();
        await page.getByTestId('hangup').waitFor({ state: 'hidden' });
        await page.getByTestId('call-mode').filter({ hasText: 'Record' }).waitFor({ timeout: 15_000 });
        await page.getByTestId('tool-call').filter({ hasText: 'lookup_order' }).waitFor();
        expect(await page.getByTestId('end-reason').textContent()).toMatch(/^Ended: \S/);

        // The recording, fetched with the token into a blob: URL (the page's CSP allows media from blob: only).
        const audio = page.getByTestId('call-audio');
        await audio.waitFor();
        expect(await audio.getAttribute('src')).toMatch(/^blob:/);
        await page.waitForFunction(`document.querySelector('[data-testid="call-audio"]')?.readyState >= 1`);
        // Seek to a transcript line's time: that line is the one highlighted.
        const line = page.getByTestId('transcript-line').first();
        const t = Number(await line.getAttribute('data-t'));
        expect(Number.isFinite(t)).toBe(true);
        await audio.evaluate((a: { currentTime: number }, ms) => (a.currentTime = (ms + 20) / 1000), t);
        await page.locator('[data-testid="transcript-line"].current').first().waitFor();
        expect(await line.getAttribute('aria-current')).toBe('true');
        // It plays, and lasts as long as the call did.
        // (the call streamed from its start to its end: the timeline's last event)
        const rec = (await (await fetch(`${bridge.url}/console/api/calls/${sid}`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { timeline: { type: string; t: number }[] };
        const streamedMs = rec.timeline.at(-1)!.t;
        expect(rec.timeline.at(-1)!.type).toBe('end');
        const seconds = await audio.evaluate((a: { duration: number }) => a.duration);
        expect(Math.abs(seconds * 1000 - streamedMs)).toBeLessThan(500);
        await audio.evaluate((a: { play(): Promise<void> }) => a.play());
        await page.waitForFunction(`document.querySelector('[data-testid="call-audio"]').currentTime > 0.3`);
        await audio.evaluate((a: { pause(): void }) => a.pause());
        await shot(page, 'call-record');
        // The same page on a phone: nothing wider than the screen (the timeline scrolls inside its box).
        await page.setViewportSize({ width: 375, height: 800 });
        await page.waitForFunction('document.documentElement.scrollWidth <= 375');
        await shot(page, 'call-record-375');
        await page.setViewportSize({ width: 1366, height: 900 });

        // History: found by a fragment of its number (sent to the API, never put in the page's URL), linked to its page.
        await page.getByRole('link', { name: 'History' }).click();
        await page.getByTestId('history-q').fill('1230000');
        await page.getByTestId('history-search').click();
        const hrow = page.locator(`[data-testid="history-row"][data-call-sid="${sid}"]`);
        await hrow.waitFor();
        expect(page.url()).not.toContain('1230000');
        await shot(page, 'history-with-call');
        await page.getByTestId('history-q').fill('9999999');
        await page.getByTestId('history-search').click();
        await hrow.waitFor({ state: 'detached' });
        await page.getByTestId('history-q').fill('1230000');
        await page.getByTestId('history-search').click();
        await hrow.getByRole('link').click();
        await page.getByTestId('call-mode').filter({ hasText: 'Record' }).waitFor();
        expect(new URL(page.url()).hash).toBe(`#/calls/${sid}`);
      } finally {
        ctl.abort();
        await call;
      }
      for (const u of urls) {
        expect(u).not.toContain(TOKEN);
        expect(u).not.toContain('1230000'); // the number fragment searched for: in a POST body only
      }
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('a call whose agent does not take the caller audio: how much was lost, in the live list, live on its page, and in its record', async () => {
    const { context, page, problems } = await signedIn();
    try {
      const sid = newCallSid();
      const ctl = new AbortController();
      const call = runSimulatedCall({ url: bridge.streamUrl, callSid: sid, customParameters: { agent: 'deaf' }, audio: new Uint8Array(8000).fill(0xff), tailMs: 60_000, timeoutMs: 90_000, signal: ctl.signal });
      try {
        // In the list: seconds lost, marked (the 11th frame on is lost: 0.1 s after 0.3 s of call).
        const lostCell = page.locator(`[data-testid="live-row"][data-call-sid="${sid}"] [data-testid="live-audio-lost"]`);
        await lostCell.filter({ hasText: /^\d+\.\d s$/ }).waitFor();
        expect(await lostCell.getAttribute('class')).toContain('lost');
        await shot(page, 'live-audio-lost');

        // On its page, growing while the call runs: the feed sends it as it grows.
        await page.locator(`[data-testid="live-row"][data-call-sid="${sid}"] [data-testid="live-link"]`).click();
        await page.getByTestId('call-mode').filter({ hasText: 'Live' }).waitFor();
        const field = page.getByTestId('call-audio-lost');
        await field.filter({ hasText: / s$/ }).waitFor();
        const seconds = async () => Number((await field.textContent())!.replace(' s', ''));
        const first = await seconds();
        await expect.poll(seconds, { timeout: 20_000 }).toBeGreaterThanOrEqual(first + 0.5);
        expect(await field.getAttribute('class')).toContain('lost');

        // Hung up: the record's figure, exactly.
        await page.getByTestId('hangup').click();
        await page.getByTestId('call-mode').filter({ hasText: 'Record' }).waitFor({ timeout: 15_000 });
        const rec = (await (await fetch(`${bridge.url}/console/api/calls/${sid}`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { callerAudioDroppedMs: number; chunksToAgent: number };
        // Every frame handed to the agent after its first 10 (a frame that arrives as the call hangs up is in framesIn, never handed over).
        expect(rec.callerAudioDroppedMs).toBe((rec.chunksToAgent - 10) * 20);
        expect(await field.textContent()).toBe(`${(Math.round(rec.callerAudioDroppedMs / 100) / 10).toFixed(1)} s`);
        expect(await field.getAttribute('title')).toBe(`${rec.callerAudioDroppedMs} ms of what the caller said never reached the agent`);
        await shot(page, 'call-audio-lost');
      } finally {
        ctl.abort();
        await call;
      }
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });
});
