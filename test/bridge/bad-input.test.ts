/**
 * Hostile and malformed input on one Media Streams socket while a real call runs on
 * another: every bad message is counted under its stable code, the bad call goes on
 * where it can, the real call's audio is untouched, and nothing crashes.
 */
import { describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { runSimulatedCall } from '../../src/sim/simulator.js';
import { getJson, ulawClip, withBridge } from './helpers.js';

describe('bad input from the Twilio side', () => {
  it('is counted with stable codes, never crashes the process, and never disturbs another call', async () => {
    const clip = await ulawClip('caller-barge-in.8k-ulaw.wav');
    const rejections: unknown[] = [];
    const onRejection = (e: unknown) => rejections.push(e);
    process.on('unhandledRejection', onRejection);
    try {
      await withBridge({}, async (bridge) => {
        const real = runSimulatedCall({ url: bridge.streamUrl, audio: clip, tailMs: 4000, timeoutMs: 20_000 });

        const ws = new WebSocket(bridge.streamUrl);
        await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
        const streamSid = 'MZ' + 'b'.repeat(32);
        const callSid = 'CA' + 'b'.repeat(32);
        const good = (i: number) => JSON.stringify({ event: 'media', sequenceNumber: String(i + 2), streamSid, media: { track: 'inbound', chunk: String(i + 1), timestamp: String(i * 20), payload: Buffer.alloc(160, 0xff).toString('base64') } });
        ws.send(JSON.stringify({ event: 'connected', protocol: 'Call', version: '1.0.0' }));
        ws.send(JSON.stringify({ event: 'start', sequenceNumber: '1', streamSid, start: { streamSid, callSid, accountSid: 'AC' + 'b'.repeat(32), tracks: ['inbound'], customParameters: {}, mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 } } }));
        ws.send(good(0));
        ws.send('{not json');
        ws.send('[]');
        ws.send(JSON.stringify({ event: 'teleport', streamSid }));
        ws.send(JSON.stringify({ event: 'media', sequenceNumber: '3', streamSid: 'MZ' + 'c'.repeat(32), media: { chunk: '2', timestamp: '20', payload: Buffer.alloc(160).toString('base64') } }));
        ws.send(JSON.stringify({ event: 'media', sequenceNumber: '3', media: { chunk: '2', timestamp: '20', payload: Buffer.alloc(160).toString('base64') } }));
        ws.send(JSON.stringify({ event: 'media', sequenceNumber: '3', streamSid, media: { chunk: '2', timestamp: '20', payload: '!!!not base64!!!' } }));
        ws.send(JSON.stringify({ event: 'media', sequenceNumber: '3', streamSid, media: { chunk: '2', timestamp: '20', payload: Buffer.alloc(100).toString('base64') } }));
        // The right length (216 characters) but not 160 bytes of base64: one character outside the
        // alphabet; 162 bytes without padding; a '=' mid-string.
        const b64 = Buffer.alloc(160, 0x55).toString('base64');
        for (const payload of [b64.slice(0, 100) + '$' + b64.slice(101), Buffer.alloc(162, 0x55).toString('base64'), b64.slice(0, 100) + '=' + b64.slice(101)]) {
          expect(payload).toHaveLength(216);
          ws.send(JSON.stringify({ event: 'media', sequenceNumber: '3', streamSid, media: { chunk: '2', timestamp: '20', payload } }));
        }
        ws.send(JSON.stringify({ event: 'media', sequenceNumber: '3', streamSid, media: { chunk: 'two', timestamp: '20', payload: Buffer.alloc(160).toString('base64') } }));
        ws.send(Buffer.from([1, 2, 3]), { binary: true });
        ws.send('x'.repeat(70 * 1024));
        ws.send(JSON.stringify({ event: 'dtmf', streamSid, dtmf: { digit: 'Z' } }));
        ws.send(good(1));
        // A flood: 3,000 messages at once (Twilio sends 50 a second).
        for (let i = 2; i < 3002; i++) ws.send(good(i));
        await new Promise((r) => setTimeout(r, 500));

        const rec = await getJson(`${bridge.url}/calls/${callSid}`);
        expect(rec.status).toBe(200);
        expect(rec.body.state).toBe('streaming'); // the call goes on
        expect(rec.body.badInput).toMatchObject({
          BRIDGE_ERR_TWILIO_JSON: 1,
          BRIDGE_ERR_TWILIO_UNKNOWN_EVENT: 1,
          BRIDGE_ERR_TWILIO_BINARY_FRAME: 1,
          BRIDGE_ERR_TWILIO_MESSAGE_TOO_LARGE: 1,
          BRIDGE_ERR_TWILIO_PAYLOAD: 5,
        });
        expect(rec.body.badInput.BRIDGE_ERR_TWILIO_STREAM_SID).toBe(2);
        expect(rec.body.badInput.BRIDGE_ERR_TWILIO_INVALID_MESSAGE).toBe(3); // '[]', chunk 'two', digit 'Z'
        expect(rec.body.badInput.BRIDGE_ERR_TWILIO_FLOOD).toBeGreaterThan(1000);
        expect(rec.body.framesIn).toBeGreaterThan(900);

        const r = await real;
        expect(r.outcome).toBe('completed');
        expect(r.gaps).toEqual([]);
        expect(r.heardSegments.length).toBe(1);
        const realRec = await getJson(`${bridge.url}/calls/${r.callSid}`);
        expect(realRec.body.badInput).toEqual({});
        expect(realRec.body.playout.underruns).toBe(0);
        ws.close();
      });
    } finally {
      process.off('unhandledRejection', onRejection);
    }
    expect(rejections).toEqual([]);
  });

  it('a socket that never sends start is closed after the start timeout', async () => {
    await withBridge({ BRIDGE_START_TIMEOUT_MS: '300' }, async (bridge) => {
      const ws = new WebSocket(bridge.streamUrl);
      const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
      await new Promise((resolve) => ws.once('open', resolve));
      ws.send(JSON.stringify({ event: 'connected', protocol: 'Call', version: '1.0.0' }));
      expect(await closed).toEqual({ code: 1000, reason: 'start-timeout' });
    });
  });
});
