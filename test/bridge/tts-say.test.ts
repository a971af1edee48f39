/**
 * ElevenLabs TTS in a live call (against the local stream-input fake): an optional
 * greeting when the call starts, and POST /calls/:callSid/say (admin token) speaking
 * text into the call with any agent — the caller hears exactly the synthesized audio.
 */
import { describe, expect, it } from 'vitest';
import { runSimulatedCall } from '../../src/sim/simulator.js';
import { fakeSpeech, startFakeElevenLabsTts } from '../fakes/elevenlabs-tts.js';
import { ulawClip, withBridge } from './helpers.js';

function played(r: { heard: Uint8Array; heardSegments: { startMs: number; endMs: number }[] }): Buffer {
  return Buffer.concat(r.heardSegments.map((s) => r.heard.subarray(Math.round(s.startMs * 8), Math.round(s.endMs * 8))));
}

describe('ElevenLabs TTS in a call', () => {
  it('greets the caller, and speaks text posted to /calls/:callSid/say', async () => {
    const tts = await startFakeElevenLabsTts();
    const silence = new Uint8Array(8000).fill(0xff);
    try {
      await withBridge({ ...tts.env, ELEVENLABS_GREETING: 'Hello, thanks for calling.', BRIDGE_ADMIN_TOKEN: 'admin' }, async (bridge) => {
        const callSid = 'CA' + '7'.repeat(32);
        const call = runSimulatedCall({ url: bridge.streamUrl, callSid, audio: silence, tailMs: 6000, timeoutMs: 20_000 });
        // Wait until the call is streaming, then say something.
        let status = 0;
        for (let i = 0; i < 100 && status !== 202; i++) {
          await new Promise((r) => setTimeout(r, 50));
          const res = await fetch(`${bridge.url}/calls/${callSid}/say`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer admin' }, body: JSON.stringify({ text: 'Your order has shipped.' }) });
          status = res.status;
          if (status === 202) expect(((await res.json()) as { queuedMs: number }).queuedMs).toBeGreaterThan(0);
        }
        expect(status).toBe(202);
        const r = await call;
        const greeting = fakeSpeech('Hello, thanks for calling.');
        const said = fakeSpeech('Your order has shipped.');
        const heard = played(r);
        // Greeting first, then the /say text, each padded to whole 20 ms frames with μ-law silence.
        expect(heard.subarray(0, greeting.length).equals(Buffer.from(greeting))).toBe(true);
        const at = heard.indexOf(Buffer.from(said.subarray(0, 400)), greeting.length);
        expect(at).toBeGreaterThanOrEqual(greeting.length);
        expect(heard.subarray(at, at + said.length).equals(Buffer.from(said))).toBe(true);
        // Unauthenticated, unknown call, bad text.
        expect((await fetch(`${bridge.url}/calls/${callSid}/say`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } })).status).toBe(401);
        expect((await fetch(`${bridge.url}/calls/CAnope/say`, { method: 'POST', body: '{"text":"x"}', headers: { 'content-type': 'application/json', authorization: 'Bearer admin' } })).status).toBe(404);
      });
      // One synthesis per distinct text (the cache itself is tested in test/agents/elevenlabs-tts.test.ts).
      expect(tts.connections).toBe(2);
    } finally {
      await tts.close();
    }
  });
});
