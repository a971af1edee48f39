/**
 * X-Twilio-Signature on the voice webhook, the status callback and the Media
 * Streams upgrade (accepted when right, 403 when missing or wrong), the TwiML the
 * webhook answers, and outbound calls through a fake Twilio REST API.
 */
import { describe, expect, it } from 'vitest';
import { runSimulatedCall } from '../../src/sim/simulator.js';
import { computeSignature } from '../../src/twilio/signature.js';
import { startFakeTwilioRest } from '../fakes/twilio-rest.js';
import { ulawClip, withBridge } from './helpers.js';

const TOKEN = 'f'.repeat(32);
const SID = 'AC' + 'a'.repeat(32);

function form(params: Record<string, string>): string {
  return new URLSearchParams(params).toString();
}

describe('X-Twilio-Signature', () => {
  it('the voice webhook answers a signed request with TwiML and refuses unsigned or wrongly signed ones', async () => {
    await withBridge({ TWILIO_AUTH_TOKEN: TOKEN, BRIDGE_PUBLIC_URL: 'https://bridge.example.com' }, async (bridge) => {
      const params = { CallSid: 'CA' + '1'.repeat(32), From: '+15551230000', To: '+15557654321', AccountSid: SID };
      const publicUrl = 'https://bridge.example.com/twilio/voice?agent=echo&voice=Puck';
      const post = (sig?: string) =>
        fetch(`${bridge.url}/twilio/voice?agent=echo&voice=Puck`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', ...(sig ? { 'x-twilio-signature': sig } : {}) },
          body: form(params),
        });
      expect((await post()).status).toBe(403);
      expect((await post(computeSignature('wrong-token', publicUrl, params))).status).toBe(403);
      expect((await post(computeSignature(TOKEN, 'https://bridge.example.com/twilio/voice', params))).status).toBe(403); // query string is signed too
      const ok = await post(computeSignature(TOKEN, publicUrl, params));
      expect(ok.status).toBe(200);
      expect(ok.headers.get('content-type')).toMatch(/text\/xml/);
      const xml = await ok.text();
      // The stream URL ends in this process's routing key (its instance id: the host name by default).
      expect(xml).toMatch(/<Connect><Stream url="wss:\/\/bridge\.example\.com\/twilio\/stream\/[A-Za-z0-9_-]+"/);
      expect(xml).toContain('<Parameter name="agent" value="echo"/>');
      expect(xml).toContain('<Parameter name="voice" value="Puck"/>');
      expect(xml).toContain('statusCallback="https://bridge.example.com/twilio/status"');
    });
  });

  it('the status callback is signed too, and recorded on the call', async () => {
    await withBridge({ TWILIO_AUTH_TOKEN: TOKEN, BRIDGE_PUBLIC_URL: 'https://bridge.example.com' }, async (bridge) => {
      const params = { CallSid: 'CA' + '4'.repeat(32), StreamSid: 'MZ' + '4'.repeat(32), StreamEvent: 'stream-started', AccountSid: SID };
      const post = (sig?: string) =>
        fetch(`${bridge.url}/twilio/status`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...(sig ? { 'x-twilio-signature': sig } : {}) }, body: form(params) });
      expect((await post()).status).toBe(403);
      expect((await post(computeSignature(TOKEN, 'https://bridge.example.com/twilio/status', params))).status).toBe(204);
    });
  });

  it('the Media Streams upgrade is checked over the wss:// URL: signed calls connect, unsigned ones get 403', async () => {
    const clip = (await ulawClip('caller-barge-in.8k-ulaw.wav')).subarray(0, 8000);
    await withBridge({ TWILIO_AUTH_TOKEN: TOKEN }, async (bridge) => {
      const unsigned = await runSimulatedCall({ url: bridge.streamUrl, audio: clip, fast: true, tailMs: 0, timeoutMs: 5000 });
      expect(unsigned.outcome).toBe('connect-failed');
      expect(unsigned.httpStatus).toBe(403);
      const wrong = await runSimulatedCall({ url: bridge.streamUrl, authToken: 'x'.repeat(32), audio: clip, fast: true, tailMs: 0, timeoutMs: 5000 });
      expect(wrong.httpStatus).toBe(403);
      const signed = await runSimulatedCall({ url: bridge.streamUrl, authToken: TOKEN, audio: clip, fast: true, tailMs: 0, timeoutMs: 10_000 });
      expect(signed.outcome).toBe('completed');
      expect(signed.framesSent).toBe(50);
    });
  });

  it('an unknown agent gets a polite refusal instead of a stream', async () => {
    await withBridge({}, async (bridge) => {
      const r = await fetch(`${bridge.url}/twilio/voice?agent=nosuch`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form({ CallSid: 'CA1' }) });
      const xml = await r.text();
      expect(xml).toContain('<Say>');
      expect(xml).toContain('<Hangup/>');
      expect(xml).not.toContain('<Stream');
    });
  });
});

describe('outbound calls', () => {
  it('POST /calls places a call through the Twilio REST API with a <Stream> back to the bridge (admin token required)', async () => {
    const rest = await startFakeTwilioRest();
    try {
      await withBridge(
        {
          TWILIO_ACCOUNT_SID: rest.accountSid,
          TWILIO_AUTH_TOKEN: rest.authToken,
          TWILIO_API_URL: rest.url,
          TWILIO_FROM_NUMBER: '+15557654321',
          BRIDGE_ADMIN_TOKEN: 'admin-secret',
          BRIDGE_PUBLIC_URL: 'https://bridge.example.com',
        },
        async (bridge) => {
          const call = (auth?: string, body: object = { to: '+15551234567', agent: 'echo' }) =>
            fetch(`${bridge.url}/calls`, { method: 'POST', headers: { 'content-type': 'application/json', ...(auth ? { authorization: auth } : {}) }, body: JSON.stringify(body) });
          expect((await call()).status).toBe(401);
          expect((await call('Bearer nope')).status).toBe(401);
          expect((await call('Bearer admin-secret', { to: '5551234' })).status).toBe(400);
          const ok = await call('Bearer admin-secret');
          expect(ok.status).toBe(201);
          const body = (await ok.json()) as { callSid: string; status: string };
          expect(body.callSid).toMatch(/^CA[0-9a-f]{32}$/);
          const created = rest.requests.filter((q) => q.method === 'POST' && q.path.endsWith('/Calls.json'));
          expect(created.length).toBe(1);
          expect(created[0]!.form.To).toBe('+15551234567');
          expect(created[0]!.form.From).toBe('+15557654321');
          expect(created[0]!.form.Twiml).toContain('<Stream url="wss://bridge.example.com/twilio/stream"');
          expect(created[0]!.form.Twiml).toContain('<Parameter name="agent" value="echo"/>');
        },
      );
      await withBridge({}, async (bridge) => {
        const r = await fetch(`${bridge.url}/calls`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"to":"+15551234567"}' });
        expect(r.status).toBe(403); // admin routes are off without BRIDGE_ADMIN_TOKEN
      });
    } finally {
      await rest.close();
    }
  });
});
