/**
 * Barge-in, DTMF, hang-up after the goodbye, and the caller's first words — through
 * a real bridge, the simulator as Twilio, and (for hang-up) a fake Twilio REST API.
 */
import { describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { AgentSession, pcm16, type AgentFactory, type AudioFormat } from '../../src/agents/agent.js';
import { runSimulatedCall } from '../../src/sim/simulator.js';
import { startFakeTwilioRest } from '../fakes/twilio-rest.js';
import { decode, expectHeardAtClear, getJson, ulawClip, withBridge } from './helpers.js';
import { ULAW_DECODE } from '../../src/dsp/ts/g711.js';

describe('barge-in', () => {
  it('clears Twilio, drops the rest of the reply and tells the agent what was heard, from acknowledged marks and the clock', async () => {
    const clip = await ulawClip('caller-order-status.8k-ulaw.wav'); // 5.75 s; the echo replies ~6.4 s in
    const talkOver = await ulawClip('caller-barge-in.8k-ulaw.wav');
    await withBridge({}, async (bridge, held) => {
      const r = await runSimulatedCall({ url: bridge.streamUrl, audio: clip, bargeInAtMs: 8000, bargeInAudio: talkOver, fast: true, tailMs: 500, timeoutMs: 30_000 });
      expect(r.outcome).toBe('completed');
      expect(r.clears.length).toBeGreaterThanOrEqual(1);
      const clear = r.clears[0]!;
      // Reaction: the VAD needs 60 ms of speech; frames arrive every 20 ms.
      expect(r.bargeIn!.reactionMs).not.toBeNull();
      expect(r.bargeIn!.reactionMs!).toBeLessThan(250 + held.slackMs());

      // heardMs = the last mark Twilio acknowledged as played, plus the time since its echo,
      // never past what had played: between the acknowledged position and the clear.
      const rec = await getJson(`${bridge.url}/calls/${r.callSid}`);
      expect(rec.body.bargeIns).toBe(1);
      const reply = r.heardSegments.find((s) => s.startMs < clear.atMs && s.endMs >= clear.atMs - 60)!;
      expectHeardAtClear(rec.body.lastHeardMs, r.marks, clear.atMs);
      // …and that matches what the simulator actually played of the reply (within one tick + the mark check).
      expect(Math.abs(rec.body.lastHeardMs - (clear.atMs - reply.startMs))).toBeLessThanOrEqual(60 + held.slackMs());

      // The rest of the interrupted reply never plays: silence from the clear until the caller's next turn is answered.
      const heard = decode(r.heard);
      const after = heard.subarray(Math.round(clear.atMs * 8) + 8, Math.round(clear.atMs * 8) + 8 * 500);
      expect(after.every((v) => v === 0)).toBe(true);
      expect(rec.body.playout.framesCleared + clear.droppedBytes / 160).toBeGreaterThan(0);
      expect(r.marks.some((m) => m.viaClear)).toBe(true); // the marks of the dropped audio came back through the clear
    });
  });
});

describe('DTMF and hang-up', () => {
  it('digits reach the agent; "#" ends the call only after the goodbye has been heard, through the REST API', async () => {
    const rest = await startFakeTwilioRest();
    const clip = await ulawClip('caller-barge-in.8k-ulaw.wav');
    try {
      await withBridge(
        { TWILIO_ACCOUNT_SID: rest.accountSid, TWILIO_AUTH_TOKEN: rest.authToken, TWILIO_API_URL: rest.url },
        async (bridge) => {
          // The reply starts ~3.1 s in and lasts ~2.4 s; "#" comes in the middle of it.
          const r = await runSimulatedCall({
            url: bridge.streamUrl,
            authToken: rest.authToken,
            audio: clip,
            dtmf: [
              { digit: '1', atMs: 500 },
              { digit: '#', atMs: 3800 },
            ],
            tailMs: 6000,
            timeoutMs: 30_000,
          });
          expect(r.outcome).toBe('server-closed');
          expect(r.close!.reason).toMatch(/^agent-ended:caller pressed #/);
          expect(r.dtmfSent.map((d) => d.digit)).toEqual(['1', '#']);
          // The goodbye was heard: nothing left unplayed, every mark echoed (none by a clear), before the close.
          expect(r.unplayedBytes).toBe(0);
          expect(r.marks.length).toBeGreaterThan(0);
          expect(r.marks.every((m) => m.echoedAtMs !== null && !m.viaClear)).toBe(true);
          const lastEcho = Math.max(...r.marks.map((m) => m.echoedAtMs!));
          expect(r.durationMs).toBeGreaterThanOrEqual(lastEcho);
          // The whole reply played (its end is after "#").
          expect(r.heardSegments.at(-1)!.endMs).toBeGreaterThan(3800);
          // The REST hang-up: Status=completed for this call.
          const hangups = rest.requests.filter((q) => q.method === 'POST' && q.path.endsWith(`/Calls/${r.callSid}.json`));
          expect(hangups.length).toBe(1);
          expect(hangups[0]!.form.Status).toBe('completed');
          const rec = await getJson(`${bridge.url}/calls/${r.callSid}`);
          expect(rec.body.dtmf).toBe(2);
        },
      );
    } finally {
      await rest.close();
    }
  });
});

/** A fake AI service that takes ~400 ms to connect and records all caller audio it gets. */
class SlowRecordingAgent extends AgentSession {
  readonly inputFormat: AudioFormat = pcm16(8000);
  readonly outputFormat: AudioFormat = pcm16(8000);
  readonly hasVad = true;
  readonly received: number[] = [];
  connected = false;
  async connect(signal: AbortSignal): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(resolve, 400);
      signal.addEventListener('abort', () => {
        clearTimeout(t);
        reject(new Error('aborted'));
      });
    });
    this.connected = true;
  }
  sendAudio(data: Int16Array | Uint8Array): void {
    if (!this.connected) throw new Error('audio before connect');
    for (const v of data as Int16Array) this.received.push(v);
  }
  interrupt(): void {}
  sendDtmf(): void {}
  async close(reason: string): Promise<void> {
    this.emitEvent({ type: 'closed', reason });
  }
}

describe("the caller's first words", () => {
  it('audio sent while the agent connects (and before start) is delivered in order, none lost', async () => {
    const sessions: SlowRecordingAgent[] = [];
    const slow: AgentFactory = {
      name: 'slow',
      available: true,
      create: () => {
        const s = new SlowRecordingAgent();
        sessions.push(s);
        return s;
      },
    };
    const clip = await ulawClip('caller-barge-in.8k-ulaw.wav');
    await withBridge(
      {},
      async (bridge) => {
        const ws = new WebSocket(bridge.streamUrl);
        await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
        const streamSid = 'MZ' + '1'.repeat(32);
        const callSid = 'CA' + '2'.repeat(32);
        const frames = Math.floor(clip.length / 160);
        const media = (i: number) =>
          JSON.stringify({ event: 'media', sequenceNumber: String(i + 2), streamSid, media: { track: 'inbound', chunk: String(i + 1), timestamp: String(i * 20), payload: Buffer.from(clip.subarray(i * 160, i * 160 + 160)).toString('base64') } });
        ws.send(JSON.stringify({ event: 'connected', protocol: 'Call', version: '1.0.0' }));
        // Two frames even before `start` (Twilio never does this; the bridge keeps them anyway).
        ws.send(media(0));
        ws.send(media(1));
        ws.send(JSON.stringify({ event: 'start', sequenceNumber: '1', streamSid, start: { streamSid, callSid, accountSid: 'AC' + '3'.repeat(32), tracks: ['inbound'], customParameters: { agent: 'slow' }, mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 } } }));
        for (let i = 2; i < frames; i++) ws.send(media(i)); // all of it within the 400 ms connect
        await new Promise<void>((resolve) => {
          const poll = setInterval(() => {
            if (sessions[0]?.received.length === frames * 160) {
              clearInterval(poll);
              resolve();
            }
          }, 20);
        });
        const expected = Array.from(clip.subarray(0, frames * 160), (c) => ULAW_DECODE[c]!);
        expect(sessions[0]!.received).toEqual(expected);
        const rec = await getJson(`${bridge.url}/calls/${callSid}`);
        expect(rec.body.badInput).toEqual({ BRIDGE_ERR_TWILIO_MEDIA_BEFORE_START: 2 });
        expect(rec.body.prestartFramesBuffered).toBe(frames);
        expect(rec.body.prestartFramesDropped).toBe(0);
        ws.close();
      },
      { extraAgents: [slow] },
    );
  });
});
