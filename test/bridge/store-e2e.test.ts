/** Call records through the real start-up path: a finished call is in /calls/history. */
import { describe, expect, it } from 'vitest';
import { runSimulatedCall } from '../../src/sim/simulator.js';
import { ulawClip, withBridge } from './helpers.js';

describe('call records (startBridge wiring, SQLite default)', () => {
  it('persists every call, readable through GET /calls/history with the admin token', async () => {
    const clip = (await ulawClip('caller-barge-in.8k-ulaw.wav')).subarray(0, 8000);
    await withBridge({ BRIDGE_ADMIN_TOKEN: 'admin' }, async (bridge) => {
      const hook = await fetch(`${bridge.url}/twilio/voice`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `CallSid=CA${'5'.repeat(32)}&From=%2B15551230000&To=%2B15557654321` });
      expect(hook.status).toBe(200);
      const r = await runSimulatedCall({ url: bridge.streamUrl, callSid: 'CA' + '5'.repeat(32), audio: clip, fast: true, tailMs: 300, timeoutMs: 10_000 });
      expect(r.outcome).toBe('completed');
      expect((await fetch(`${bridge.url}/calls/history`)).status).toBe(401);
      let body: { calls: { callSid: string; from: string | null; agent: string; endReason: string }[] } = { calls: [] };
      for (let i = 0; i < 100 && body.calls.length === 0; i++) {
        await new Promise((res) => setTimeout(res, 30));
        body = (await (await fetch(`${bridge.url}/calls/history?limit=10`, { headers: { authorization: 'Bearer admin' } })).json()) as typeof body;
      }
      expect(body.calls.length).toBe(1);
      expect(body.calls[0]).toMatchObject({ callSid: r.callSid, from: '+15551230000', agent: 'echo', endReason: 'twilio-stop' });
    });
  });
});
