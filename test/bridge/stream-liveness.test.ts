/**
 * A started Media Stream that goes silent (a crashed peer, a half-open connection, a
 * dead NAT mapping) is pinged after BRIDGE_STREAM_IDLE_MS and closed when no pong
 * comes: its call slot is freed and the reason recorded (before: it held the slot for
 * as long as the TCP connection looked open). A silent stream that still answers pings
 * is left alone.
 */
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { pollUntil } from '../lifecycle/child-bridge.js';
import { getJson, withBridge } from './helpers.js';

const hex = (c: string) => c.repeat(32);

/** A Twilio-like client that sends `connected` + `start`, then nothing. `answerPings: false` stops reading the socket (no pongs). */
async function silentStream(url: string, callSid: string, answerPings: boolean): Promise<WebSocket> {
  const ws = new WebSocket(url);
  await new Promise<void>((resolve, reject) => ws.once('open', () => resolve()).once('error', reject));
  const streamSid = 'MZ' + callSid.slice(2);
  ws.send(JSON.stringify({ event: 'connected', protocol: 'Call', version: '1.0.0' }));
  ws.send(JSON.stringify({ event: 'start', sequenceNumber: '1', streamSid, start: { streamSid, callSid, accountSid: 'AC' + hex('b'), tracks: ['inbound'], customParameters: { format: 'ulaw' }, mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 } } }));
  if (!answerPings) {
    // Half-open from the bridge's point of view: nothing read, so no pong ever goes back.
    await new Promise((r) => setImmediate(r));
    (ws as unknown as { _socket: { pause(): void } })._socket.pause();
  }
  return ws;
}

describe('silent Twilio streams', () => {
  it('no message and no pong: closed as twilio-inactive, the only call slot freed for the next call', async () => {
    await withBridge({ BRIDGE_STREAM_IDLE_MS: '400', BRIDGE_MAX_CALLS: '1', BRIDGE_LOAD_THRESHOLD: 'off' }, async (bridge) => {
      const callSid = 'CA' + hex('a');
      const ws = await silentStream(bridge.streamUrl, callSid, false);
      try {
        await pollUntil(async () => (await getJson(`${bridge.url}/readyz`)).body.activeCalls === 1, 10_000, 20);
        const rec = await pollUntil(async () => {
          const r = await getJson(`${bridge.url}/calls/${callSid}`);
          return r.body?.state === 'closed' ? r.body : undefined;
        }, 20_000, 50);
        expect(rec.endReason).toBe('twilio-inactive');
        expect((await getJson(`${bridge.url}/readyz`)).body).toMatchObject({ ready: true, activeCalls: 0 });
      } finally {
        ws.terminate();
      }
    });
  });

  it('silent but answering pings: the stream stays open', async () => {
    await withBridge({ BRIDGE_STREAM_IDLE_MS: '200' }, async (bridge) => {
      const callSid = 'CA' + hex('c');
      const ws = await silentStream(bridge.streamUrl, callSid, true);
      try {
        let pings = 0;
        ws.on('ping', () => pings++);
        await pollUntil(async () => pings >= 5, 20_000, 20); // five idle periods, each answered
        expect(ws.readyState).toBe(WebSocket.OPEN);
        expect((await getJson(`${bridge.url}/calls/${callSid}`)).body.state).not.toBe('closed');
      } finally {
        ws.close();
      }
    });
  });
});
