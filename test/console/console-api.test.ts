/**
 * The call console's data (docs/console.md) through a real bridge, the simulator as
 * Twilio and the fake OpenAI Realtime service: the live list is pushed when a call starts
 * (numbers redacted without BRIDGE_LOG_PII), a call's feed carries its transcript turns,
 * tool calls with arguments and results, levels and operator actions as they happen and
 * ends with the call; the record keeps the same timeline and the audited actions; the
 * recording is served with the token and only with it; a transfer goes only to the
 * profile's destinations, through Twilio's REST API.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseWav } from '../../src/audio/wav.js';
import { runSimulatedCall } from '../../src/sim/simulator.js';
import type { AppTool } from '../../src/tools/app-tools.js';
import { startFakeOpenAi } from '../fakes/openai-realtime.js';
import { startFakeTwilioRest } from '../fakes/twilio-rest.js';
import { profilesFile } from '../profiles/profiles-helpers.js';
import { callSid as newCallSid } from '../lifecycle/child-bridge.js';
import { ulawClip, withBridge } from '../bridge/helpers.js';
import { openSse } from './sse-client.js';

const TOKEN = 'console-test-token';
const TO = '+15557650000';
const FROM = '+15551230042';
const DESK = '+15550002222';
const auth = { authorization: `Bearer ${TOKEN}` };

const yaml = `
profiles:
  - name: support
    match: { to: ["${TO}"] }
    agent: openai
    options: { format: pcmu }
    tools:
      - builtin: transfer_call
        to: ["${DESK}"]
`;
const tools: AppTool[] = [{ name: 'lookup_order', description: 'Look up an order', parameters: { type: 'object', properties: { order_id: { type: 'string' } } }, run: async (args) => ({ status: 'shipped', order: args.order_id }) }];

async function post(url: string, body?: unknown): Promise<{ status: number; body: any }> {
  const r = await fetch(url, { method: 'POST', headers: { ...auth, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: r.status, body: await r.json().catch(() => null) };
}
async function get(url: string): Promise<{ status: number; body: any }> {
  const r = await fetch(url, { headers: auth });
  return { status: r.status, body: await r.json().catch(() => null) };
}

describe('call console data', () => {
  it('live list, a call feed with transcripts, tools, levels and a hang-up; the record and the recording afterwards', async () => {
    const fake = await startFakeOpenAi({ replyMs: 800, vad: true, autoAnswer: true });
    const clip = await ulawClip('caller-order-status.8k-ulaw.wav');
    const recordDir = mkdtempSync(join(tmpdir(), 'vb-rec-'));
    try {
      await withBridge(
        { ...fake.env, BRIDGE_PROFILES: profilesFile(yaml), BRIDGE_ADMIN_TOKEN: TOKEN, BRIDGE_RECORD: '1', BRIDGE_RECORD_DIR: recordDir },
        async (bridge) => {
          // The event stream needs the token.
          expect((await openSse(`${bridge.url}/console/api/live`, undefined)).status).toBe(401);
          expect((await get(`${bridge.url}/console/api/info`)).body).toMatchObject({ pii: false });

          const live = await openSse(`${bridge.url}/console/api/live`, TOKEN);
          expect(live.status).toBe(200);
          await live.next((e) => e.event === 'calls', 'the first snapshot');

          const sid = newCallSid();
          const call = runSimulatedCall({ url: bridge.streamUrl, callSid: sid, customParameters: { profile: 'support', vb_from: FROM, vb_to: TO }, audio: clip, fast: false, tailMs: 60_000, timeoutMs: 90_000 });
          const listed = await live.next((e) => e.event === 'calls' && e.data.calls.some((c: { callSid: string }) => c.callSid === sid), 'the call in the live list');
          const row = listed.data.calls.find((c: { callSid: string }) => c.callSid === sid);
          expect(row).toMatchObject({ agent: 'openai', profile: 'support', local: true, from: '+•••••••••42', to: '+•••••••••00' });
          expect(JSON.stringify(live.events)).not.toContain(FROM.slice(1));

          const feed = await openSse(`${bridge.url}/console/api/calls/${sid}/feed`, TOKEN);
          const head = await feed.next((e) => e.event === 'call', 'the call');
          expect(head.data.call).toMatchObject({ callSid: sid, transferTo: [DESK], recording: true });
          // The caller's turn and the agent's answer, as they are spoken.
          const callerLine = await feed.next((e) => e.event === 'timeline' && e.data.type === 'transcript' && e.data.role === 'caller', 'a caller transcript');
          expect(callerLine.data.text).toMatch(/^\[caller turn 1/);
          await feed.next((e) => e.event === 'timeline' && e.data.type === 'transcript' && e.data.role === 'agent', 'an agent transcript');
          await feed.next((e) => e.event === 'levels' && e.data.caller !== null, 'a caller level');
          await feed.next((e) => e.event === 'timeline' && e.data.type === 'speech' && e.data.role === 'caller', 'a stretch of caller speech');

          // A tool call: its arguments, then its result with a duration.
          await fake.callTool('lookup_order', { order_id: 'A-17' });
          const tool = await feed.next((e) => e.event === 'timeline' && e.data.type === 'tool', 'the tool call');
          expect(tool.data).toMatchObject({ name: 'lookup_order', arguments: { order_id: 'A-17' } });
          const result = await feed.next((e) => e.event === 'timeline' && e.data.type === 'toolResult', 'the tool result');
          expect(result.data).toMatchObject({ callId: tool.data.callId, name: 'lookup_order', ok: true, output: { status: 'shipped', order: 'A-17' } });
          expect(result.data.durationMs).toBeGreaterThanOrEqual(0);

          // A transfer outside the profile's list is refused and changes nothing.
          const refused = await post(`${bridge.url}/calls/${sid}/transfer`, { to: '+15559999999' });
          expect(refused.status).toBe(403);
          expect(refused.body.code).toBe('BRIDGE_ERR_TRANSFER_NOT_ALLOWED');

          // Hang up from the console's API: the feed ends with the reason, the list drops the call.
          expect((await post(`${bridge.url}/calls/${sid}/hangup`)).status).toBe(202);
          const ended = await feed.next((e) => e.event === 'ended', 'the end');
          expect(ended.data.endReason).toBe('hangup-requested');
          await feed.ended;
          await live.next((e) => e.event === 'calls' && live.events.indexOf(e) > live.events.indexOf(listed) && !e.data.calls.some((c: { callSid: string }) => c.callSid === sid), 'the list without the call');
          live.close();
          const sim = await call;
          expect(sim.outcome).toBe('server-closed');

          // The record: the same timeline, the hang-up audited, numbers redacted, no custom parameters.
          const rec = await waitForRecord(bridge.url, sid);
          expect(rec.from).toBe('+•••••••••42');
          expect(rec.customParameters).toBeUndefined();
          const types = rec.timeline.map((e: { type: string }) => e.type);
          for (const t of ['transcript', 'speech', 'tool', 'toolResult', 'action', 'end']) expect(types).toContain(t);
          expect(rec.actions).toEqual([expect.objectContaining({ action: 'hangup' })]);
          expect(rec.timeline.at(-1)).toMatchObject({ type: 'end', reason: 'hangup-requested' });

          // The recording, with the token only; as long as the call streamed (its start to its end, the timeline's last event).
          expect((await fetch(`${bridge.url}/calls/${sid}/recording`)).status).toBe(401);
          const wav = await fetch(`${bridge.url}/calls/${sid}/recording`, { headers: auth });
          expect(wav.status).toBe(200);
          expect(wav.headers.get('content-type')).toBe('audio/wav');
          const parsed = parseWav(new Uint8Array(await wav.arrayBuffer()));
          expect(parsed.channels).toBe(2);
          const seconds = parsed.data.length / parsed.channels / parsed.sampleRateHz;
          const streamedMs = rec.timeline.at(-1).t;
          console.log(`recording ${Math.round(seconds * 1000)} ms, streamed ${streamedMs} ms, record duration ${rec.durationMs} ms`);
          expect(Math.abs(seconds * 1000 - streamedMs)).toBeLessThan(500);
        },
        { tools },
      );
    } finally {
      await fake.close();
    }
  });

  it('a transfer to an allowed destination redirects the call through the REST API and is audited', async () => {
    const fake = await startFakeOpenAi({ replyMs: 300 });
    const rest = await startFakeTwilioRest();
    try {
      await withBridge(
        { ...fake.env, BRIDGE_PROFILES: profilesFile(yaml), BRIDGE_ADMIN_TOKEN: TOKEN, TWILIO_ACCOUNT_SID: rest.accountSid, TWILIO_AUTH_TOKEN: rest.authToken, TWILIO_API_URL: rest.url },
        async (bridge) => {
          const sid = newCallSid();
          const call = runSimulatedCall({ url: bridge.streamUrl, authToken: rest.authToken, callSid: sid, customParameters: { profile: 'support', vb_from: FROM, vb_to: TO }, audio: new Uint8Array(8000).fill(0xff), fast: false, tailMs: 60_000, timeoutMs: 90_000 });
          const feed = await waitForFeed(bridge.url, sid);
          await feed.next((e) => e.event === 'call', 'the call');
          const r = await post(`${bridge.url}/calls/${sid}/transfer`, { to: DESK });
          expect(r.status).toBe(202);
          expect(r.body).toEqual({ callSid: sid, to: DESK });
          const ended = await feed.next((e) => e.event === 'ended', 'the end');
          expect(ended.data.endReason).toBe(`transferred:${DESK}`);
          expect((await call).outcome).toBe('server-closed');
          const update = rest.requests.find((q) => q.method === 'POST' && q.path.endsWith(`/Calls/${sid}.json`));
          expect(update?.form.Twiml).toContain(`<Number>${DESK}</Number>`);
          const rec = await waitForRecord(bridge.url, sid);
          expect(rec.actions).toEqual([expect.objectContaining({ action: 'transfer', detail: DESK })]);
        },
        { tools },
      );
    } finally {
      await rest.close();
      await fake.close();
    }
  });
});

/** The call's feed, once the stream has started (the simulator's start reaches the bridge after a connect). */
async function waitForFeed(base: string, sid: string) {
  for (;;) {
    const feed = await openSse(`${base}/console/api/calls/${sid}/feed`, TOKEN);
    if (feed.status === 200) return feed;
    feed.close();
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The completed record (written through the outbox: it lands shortly after the call ends). */
async function waitForRecord(base: string, sid: string): Promise<any> {
  for (;;) {
    const r = await get(`${base}/console/api/calls/${sid}`);
    if (r.status === 200 && r.body.endReason !== null && r.body.live === false) return r.body;
    await new Promise((res) => setTimeout(res, 50));
  }
}
