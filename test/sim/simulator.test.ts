import { createHmac } from 'node:crypto';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readWav } from '../../src/audio/wav.js';
import { runSimulatedCall } from '../../src/sim/simulator.js';
import { isValidSignature, publicUrlOf } from '../../src/twilio/signature.js';
import type { MediaMessage } from '../../src/twilio/messages.js';
import { pattern, startScriptedServer, type ScriptedServer } from './scripted-server.js';
import { watchHeldUp, type HeldUp } from '../helpers/held-up.js';

const FIXTURES = new URL('../fixtures/', import.meta.url).pathname;
let server: ScriptedServer | undefined;
// The simulator and the scripted server share this process: a stall of its event loop (a loaded
// machine) makes both late. Upper timing bounds add the lateness the stalls explain (`slack()`);
// on an idle machine they are the exact bounds.
let held: HeldUp;
const slack = () => held.slackMs();
beforeEach(() => {
  held = watchHeldUp();
});
afterEach(async () => {
  held.stop();
  expect(server?.parseFailures ?? []).toEqual([]);
  await server?.close();
  server = undefined;
});

const media = (ms: MediaMessage[]) => Buffer.concat(ms.map((m) => Buffer.from(m.payload, 'base64')));
const mediaOf = (s: ScriptedServer) => s.peers[0]!.received.map((r) => r.message).filter((m): m is MediaMessage => m.event === 'media');
/** Position of the first byte equal to `value` in `bytes` (−1 if none). */
const firstOf = (bytes: Uint8Array, value: number) => bytes.indexOf(value);

describe('simulator: the Twilio messages it sends', () => {
  it('connected, start, media at 50 frames per second with string counters, stop; payloads carry the audio', async () => {
    server = await startScriptedServer(() => {});
    const audio = Uint8Array.from({ length: 8000 }, (_, i) => (i * 7) & 0x7f); // 1 s, never 0xFF
    const t0 = performance.now();
    const result = await runSimulatedCall({ url: server.url, audio, tailMs: 0, customParameters: { FirstName: 'Jane', lang: 'en' }, callSid: `CA${'ab'.repeat(16)}` });
    const elapsed = performance.now() - t0;
    expect(result.outcome).toBe('completed');
    expect(result.close).toMatchObject({ code: 1000, initiatedBy: 'simulator' });

    const rec = server.peers[0]!.received;
    const raws = rec.map((r) => JSON.parse(r.raw) as Record<string, unknown>);
    expect(raws[0]).toEqual({ event: 'connected', protocol: 'Call', version: '1.0.0' });
    const start = raws[1] as { event: string; sequenceNumber: string; streamSid: string; start: Record<string, unknown> };
    expect(start.event).toBe('start');
    expect(start.sequenceNumber).toBe('1');
    expect(start.streamSid).toMatch(/^MZ[0-9a-f]{32}$/);
    expect(start.start).toEqual({
      accountSid: expect.stringMatching(/^AC[0-9a-f]{32}$/),
      streamSid: start.streamSid,
      callSid: `CA${'ab'.repeat(16)}`,
      tracks: ['inbound'],
      customParameters: { FirstName: 'Jane', lang: 'en' },
      mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
    });
    const medias = raws.filter((r) => r.event === 'media') as { sequenceNumber: string; media: { track: string; chunk: string; timestamp: string; payload: string } }[];
    expect(medias).toHaveLength(50);
    expect(result.framesSent).toBe(50);
    medias.forEach((m, i) => {
      // Twilio sends numbers as strings (see its websocket-messages examples)
      expect(m.sequenceNumber).toBe(String(i + 2));
      expect(m.media.chunk).toBe(String(i + 1));
      expect(m.media.timestamp).toBe(String(i * 20));
      expect(m.media.track).toBe('inbound');
      expect(m.media.payload).toHaveLength(216);
    });
    expect(new Uint8Array(media(mediaOf(server)))).toEqual(audio);
    expect(raws.at(-1)).toEqual({ event: 'stop', sequenceNumber: '52', stop: { accountSid: (start.start as { accountSid: string }).accountSid, callSid: `CA${'ab'.repeat(16)}` }, streamSid: start.streamSid });

    // Pacing, loosely: 50 frames spread over ~1 s, not bursts.
    const times = rec.filter((r) => r.message.event === 'media').map((r) => r.at);
    const span = times.at(-1)! - times[0]!;
    expect(span).toBeGreaterThan(900 - slack());
    expect(span).toBeLessThan(1150 + slack());
    const firstHalf = times.filter((t) => t - times[0]! < 500).length;
    // (a stall delays some frames, and the simulator's drift-free clock then sends them at once)
    const stalled = Math.ceil(slack() / 20);
    expect(firstHalf).toBeGreaterThanOrEqual(22 - stalled);
    expect(firstHalf).toBeLessThanOrEqual(28 + stalled);
    expect(elapsed).toBeGreaterThan(950);
    expect(result.durationMs).toBeGreaterThanOrEqual(1000);
    expect(result.heard.length).toBe(Math.round(result.durationMs * 8));
  });

  it('sends DTMF at the given times, between the right frames', async () => {
    server = await startScriptedServer(() => {});
    const result = await runSimulatedCall({ url: server.url, audio: new Uint8Array(2400), tailMs: 0, dtmf: [{ digit: '#', atMs: 240 }, { digit: '1', atMs: 100 }] });
    expect(result.outcome).toBe('completed');
    const rec = server.peers[0]!.received;
    const i1 = rec.findIndex((r) => r.message.event === 'dtmf' && r.message.digit === '1');
    const i2 = rec.findIndex((r) => r.message.event === 'dtmf' && r.message.digit === '#');
    expect(i1).toBeGreaterThan(0);
    expect(i2).toBeGreaterThan(i1);
    // sent just before the frame of its time: after the 80 ms frame, before the 100 ms one
    expect((rec[i1 - 1]!.message as MediaMessage).timestampMs).toBe(80);
    expect((rec[i1 + 1]!.message as MediaMessage).timestampMs).toBe(100);
    expect((rec[i2 - 1]!.message as MediaMessage).timestampMs).toBe(220);
    expect(rec[i1]!.at - rec[1]!.at).toBeGreaterThan(85 - slack()); // a stall before it sends the frames behind it at once
    expect(rec[i1]!.at - rec[1]!.at).toBeLessThan(160 + slack());
    expect(JSON.parse(rec[i1]!.raw)).toMatchObject({ event: 'dtmf', dtmf: { track: 'inbound_track', digit: '1' }, sequenceNumber: expect.any(String) });
    expect(result.dtmfSent.map((d) => d.digit)).toEqual(['1', '#']);
    expect(result.dtmfSent[0]!.atMs).toBeGreaterThanOrEqual(100);
  });

  it('signs the upgrade over the wss:// form of the URL; the bridge-side check passes', async () => {
    const token = 'test-auth-token';
    let header: string | undefined;
    let rebuilt = '';
    server = await startScriptedServer(() => {}, {
      verify: (req) => {
        header = req.headers['x-twilio-signature'] as string | undefined;
        rebuilt = publicUrlOf({ headers: req.headers, url: req.url ?? '/', protocol: 'http' });
        return isValidSignature(token, header, rebuilt);
      },
    });
    const result = await runSimulatedCall({ url: server.url, audio: new Uint8Array(160), tailMs: 0, authToken: token });
    expect(result.outcome).toBe('completed');
    const wss = `wss://127.0.0.1:${server.port}/twilio/stream`;
    expect(rebuilt).toBe(wss);
    expect(header).toBe(createHmac('sha1', token).update(wss).digest('base64'));
  });

  it('a refused upgrade (bad signature → 403) resolves as connect-failed with the status', async () => {
    server = await startScriptedServer(() => {}, { verify: (req) => isValidSignature('right-token', req.headers['x-twilio-signature'] as string, publicUrlOf({ headers: req.headers, url: req.url ?? '/' })) });
    const result = await runSimulatedCall({ url: server.url, audio: new Uint8Array(160), authToken: 'wrong-token' });
    expect(result).toMatchObject({ outcome: 'connect-failed', httpStatus: 403, framesSent: 0, durationMs: 0 });
    expect(result.error).toMatch(/403/);
    expect(server.peers).toHaveLength(0);
  });
});

describe('simulator: Twilio playout of the bridge audio', () => {
  it('plays agent audio at the right offset and echoes its mark only after it played; a mark with nothing buffered echoes at once', async () => {
    const reply = pattern(0x20, 1600); // 200 ms
    let sentAudioAt = 0;
    const echoes: { name: string; at: number }[] = [];
    server = await startScriptedServer((peer, m) => {
      if (m.event === 'media' && m.chunk === 3) peer.sendMark('empty'); // nothing buffered yet
      if (m.event === 'media' && m.chunk === 26) {
        // caller frame at 500 ms
        sentAudioAt = performance.now();
        peer.sendAudio(reply.subarray(0, 800));
        peer.sendAudio(reply.subarray(800));
        peer.sendMark('reply-1');
      }
      if (m.event === 'mark') echoes.push({ name: m.name, at: performance.now() });
    });
    const result = await runSimulatedCall({ url: server.url, audio: new Uint8Array(8000).fill(0x7e), tailMs: 0 });
    expect(result.outcome).toBe('completed');
    expect(result.protocolErrors).toEqual([]);
    expect(result.framesReceived).toBe(2);
    expect(result.bytesReceived).toBe(1600);

    // the heard timeline: 200 ms of the reply starting at ~500 ms, silence elsewhere
    expect(result.heardSegments).toHaveLength(1);
    const seg = result.heardSegments[0]!;
    expect(seg.endMs - seg.startMs).toBe(200);
    expect(seg.startMs).toBeGreaterThanOrEqual(500);
    expect(seg.startMs).toBeLessThan(560 + slack());
    const at = seg.startMs * 8;
    expect(result.heard.subarray(at, at + 1600)).toEqual(reply);
    expect(result.heard.subarray(0, at).every((b) => b === 0xff)).toBe(true);
    expect(result.heard.subarray(at + 1600).every((b) => b === 0xff)).toBe(true);
    expect(result.firstAgentAudioMs).toBeCloseTo(seg.startMs, 0);

    const [empty, reply1] = result.marks;
    expect(empty).toMatchObject({ name: 'empty', viaClear: false });
    expect(empty!.echoedAtMs).toBe(empty!.receivedAtMs);
    expect(reply1).toMatchObject({ name: 'reply-1', viaClear: false });
    expect(reply1!.echoedAtMs!).toBeGreaterThanOrEqual(seg.endMs);
    expect(reply1!.echoedAtMs!).toBeLessThan(seg.endMs + 45 + slack()); // checked on the 20 ms tick
    // seen from the bridge: the echo comes back once the 200 ms have played
    const echo = echoes.find((e) => e.name === 'reply-1')!;
    expect(echo.at - sentAudioAt).toBeGreaterThanOrEqual(195);
    expect(echo.at - sentAudioAt).toBeLessThan(300 + slack());
    expect(echoes.map((e) => e.name)).toEqual(['empty', 'reply-1']);
    // one sequenceNumber counter across start, media, mark echoes and stop, as strings
    const seqs = server.peers[0]!.received.slice(1).map((r) => JSON.parse(r.raw).sequenceNumber as unknown);
    expect(seqs).toEqual(seqs.map((_, i) => String(i + 1)));
    expect(result.gaps).toEqual([]);
    expect(result.clears).toEqual([]);
  });

  it('clear drops the buffered audio and echoes every pending mark immediately', async () => {
    let clearAt = 0;
    const echoes: { name: string; at: number }[] = [];
    server = await startScriptedServer((peer, m) => {
      if (m.event === 'media' && m.chunk === 6) {
        peer.sendAudio(pattern(0x30, 16000)); // 2 s
        peer.sendMark('part-1');
        peer.sendAudio(pattern(0x31, 8000)); // 1 s
        peer.sendMark('part-2');
      }
      if (m.event === 'media' && m.chunk === 26) {
        // ~400 ms after the audio started
        clearAt = performance.now();
        peer.sendClear();
      }
      if (m.event === 'mark') echoes.push({ name: m.name, at: performance.now() });
    });
    const result = await runSimulatedCall({ url: server.url, audio: new Uint8Array(8000).fill(0x7e), tailMs: 200 });
    expect(result.outcome).toBe('completed');
    expect(echoes.map((e) => e.name)).toEqual(['part-1', 'part-2']);
    for (const e of echoes) expect(e.at - clearAt).toBeLessThan(50 + slack()); // at once, not after 3 s of audio
    expect(result.marks.every((m) => m.viaClear)).toBe(true);
    expect(result.clears).toHaveLength(1);
    const clear = result.clears[0]!;
    expect(clear.marksFlushed).toBe(2);
    const seg = result.heardSegments[0]!;
    expect(result.heardSegments).toHaveLength(1);
    expect(seg.endMs).toBeCloseTo(clear.atMs, 0);
    const playedMs = seg.endMs - seg.startMs;
    expect(playedMs).toBeGreaterThan(340 - slack());
    expect(playedMs).toBeLessThan(460 + slack());
    expect(clear.droppedBytes).toBe(24000 - playedMs * 8);
    // only the first part was heard, and nothing after the clear
    const heard = result.heard;
    expect(firstOf(heard, 0x31)).toBe(-1);
    expect(heard.subarray(seg.endMs * 8).every((b) => b === 0xff)).toBe(true);
    expect(result.unplayedBytes).toBe(0);
  });

  it('barge-in: switches the caller audio at the given moment and measures the clear reaction', async () => {
    const main = pattern(0x11, 4000); // 500 ms
    const barge = pattern(0x22, 2400); // 300 ms
    let clearedAtChunk = 0;
    server = await startScriptedServer((peer, m) => {
      if (m.event !== 'media') return;
      if (m.chunk === 30) peer.sendAudio(pattern(0x40, 16000)); // the agent starts a 2 s reply at ~580 ms
      const payload = Buffer.from(m.payload, 'base64');
      if (clearedAtChunk === 0 && payload.includes(0x22)) {
        clearedAtChunk = m.chunk;
        peer.sendClear(); // the bridge's barge-in: stop playout
      }
    });
    const result = await runSimulatedCall({ url: server.url, audio: main, bargeInAtMs: 810, bargeInAudio: barge, tailMs: 100 });
    expect(result.outcome).toBe('completed');
    // the caller stream: main clip, silence, the barge-in clip from 810 ms (sample 6480), then silence
    const sent = media(mediaOf(server));
    expect(sent.length).toBe(Math.ceil((6480 + 2400 + 800) / 160) * 160);
    expect(sent.subarray(0, 4000).every((b) => b === 0x11)).toBe(true);
    expect(sent.subarray(4000, 6480).every((b) => b === 0xff)).toBe(true);
    expect(sent.subarray(6480, 8880).every((b) => b === 0x22)).toBe(true);
    expect(sent.subarray(8880).every((b) => b === 0xff)).toBe(true);
    expect(clearedAtChunk).toBe(Math.floor(6480 / 160) + 1);
    expect(result.bargeIn).toMatchObject({ atMs: 810 });
    expect(result.bargeIn!.reactionMs!).toBeGreaterThanOrEqual(0);
    expect(result.bargeIn!.reactionMs!).toBeLessThan(60 + slack());
    expect(result.bargeIn!.clearAtMs).toBe(result.clears[0]!.atMs);
    // the agent was heard from ~580 ms until the clear, then silence
    const seg = result.heardSegments[0]!;
    expect(seg.endMs).toBeCloseTo(result.bargeIn!.clearAtMs!, 0);
    expect(result.responseLatencyMs).toBeGreaterThan(50); // main clip ended at 500 ms
    expect(result.responseLatencyMs).toBeLessThan(140 + slack());
  });

  it('counts an underrun when the agent audio runs dry mid-reply, not across a turn', async () => {
    server = await startScriptedServer((peer, m) => {
      if (m.event !== 'media') return;
      if (m.chunk === 6) peer.sendAudio(pattern(0x50, 800)); // 100 ms at ~100 ms
      if (m.chunk === 14) peer.sendAudio(pattern(0x51, 800)); // ~160 ms later: a 60 ms hole
      if (m.chunk === 60) peer.sendAudio(pattern(0x52, 800)); // much later: a new turn, no gap
    });
    const result = await runSimulatedCall({ url: server.url, audio: new Uint8Array(8000).fill(0x7e), tailMs: 300, maxGapMs: 500 });
    expect(result.outcome).toBe('completed');
    expect(result.gaps).toHaveLength(1);
    expect(result.gaps[0]!.durationMs).toBeGreaterThan(40 - slack());
    expect(result.gaps[0]!.durationMs).toBeLessThan(90 + slack());
    expect(result.heardSegments).toHaveLength(3);
  });
});

describe('simulator: fast mode, endings and bad peers', () => {
  it('fast: sends a 5.75 s fixture in a fraction of its length, then plays the tail in real time', async () => {
    const wav = await readWav(join(FIXTURES, 'caller-order-status.8k-ulaw.wav'));
    let replyAt = -1;
    server = await startScriptedServer((peer, m) => {
      if (m.event === 'media' && m.chunk === 288) {
        // the last frame of the clip: answer with 100 ms of audio and a mark
        replyAt = performance.now();
        peer.sendAudio(pattern(0x60, 800));
        peer.sendMark('answer');
      }
    });
    const t0 = performance.now();
    const result = await runSimulatedCall({ url: server.url, audio: wav.data as Uint8Array, fast: true, tailMs: 300 });
    const elapsed = performance.now() - t0;
    expect(result.outcome).toBe('completed');
    expect(elapsed).toBeLessThan(2500 + slack());
    expect(result.framesSent).toBe(Math.ceil((46010 + 2400) / 160));
    expect(new Uint8Array(media(mediaOf(server)).subarray(0, 46010))).toEqual(wav.data);
    // call time is virtual through the clip: the answer is heard at ≥ 5.74 s even though little real time passed
    expect(replyAt).toBeGreaterThan(0);
    expect(result.firstAgentAudioMs!).toBeGreaterThanOrEqual(5740);
    expect(result.heardSegments[0]!.endMs - result.heardSegments[0]!.startMs).toBe(100);
    expect(result.marks[0]!.echoedAtMs).not.toBeNull();
    expect(result.durationMs).toBeGreaterThanOrEqual(46010 / 8 + 300 - 20);
    expect(result.heard.length).toBe(Math.round(result.durationMs * 8));
  });

  it('the bridge closing first ends the call with its code and reason', async () => {
    server = await startScriptedServer((peer, m) => {
      if (m.event === 'media' && m.chunk === 5) peer.ws.close(1011, 'agent failed');
    });
    const result = await runSimulatedCall({ url: server.url, audio: new Uint8Array(8000), tailMs: 0 });
    expect(result.outcome).toBe('server-closed');
    expect(result.close).toEqual({ code: 1011, reason: 'agent failed', initiatedBy: 'server' });
    expect(result.framesSent).toBeLessThan(30 + Math.ceil(slack() / 20)); // of 50: it stopped at the close (loose: the close travels while frames keep their 20 ms pace)
    expect(server.peers[0]!.received.some((r) => r.message.event === 'stop')).toBe(false);
  });

  it('records messages Twilio would reject and keeps going', async () => {
    server = await startScriptedServer((peer, m) => {
      if (m.event !== 'media' || m.chunk !== 2) return;
      peer.ws.send(Buffer.from([1, 2, 3]), { binary: true });
      peer.ws.send('{not json');
      peer.ws.send(JSON.stringify({ event: 'media', streamSid: 'MZ-other', media: { payload: 'AAAA' } }));
      peer.ws.send(JSON.stringify({ event: 'media', streamSid: peer.streamSid, media: { payload: '***' } }));
      peer.ws.send(JSON.stringify({ event: 'playAudio', streamSid: peer.streamSid }));
      peer.ws.send(JSON.stringify({ event: 'mark', streamSid: peer.streamSid, mark: {} }));
    });
    const result = await runSimulatedCall({ url: server.url, audio: new Uint8Array(1600), tailMs: 0 });
    expect(result.outcome).toBe('completed');
    expect(result.protocolErrors).toHaveLength(6);
    expect(result.protocolErrors.join('\n')).toMatch(/binary[\s\S]*not JSON[\s\S]*not this stream's[\s\S]*base64[\s\S]*unknown event "playAudio"[\s\S]*mark without/);
    expect(result.framesReceived).toBe(0);
  });

  it('every wait is bounded: connection refused, a silent server, timeout and abort all resolve', async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
    const deadPort = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const refused = await runSimulatedCall({ url: `ws://127.0.0.1:${deadPort}/twilio/stream`, audio: new Uint8Array(160) });
    expect(refused.outcome).toBe('connect-failed');
    expect(refused.error).toMatch(/ECONNREFUSED/);

    // a TCP server that accepts and never answers the upgrade
    const silent = createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const silentPort = (silent.address() as AddressInfo).port;
    try {
      const hung = await runSimulatedCall({ url: `ws://127.0.0.1:${silentPort}/`, audio: new Uint8Array(160), connectTimeoutMs: 200 });
      expect(hung.outcome).toBe('connect-failed');
    } finally {
      silent.close();
    }

    server = await startScriptedServer(() => {});
    const timedOut = await runSimulatedCall({ url: server.url, audio: new Uint8Array(16000), timeoutMs: 300 });
    expect(timedOut.outcome).toBe('timeout');
    expect(timedOut.durationMs).toBeGreaterThan(250);
    expect(timedOut.durationMs).toBeLessThan(400 + slack());

    const ac = new AbortController();
    const p = runSimulatedCall({ url: server.url, audio: new Uint8Array(16000), signal: ac.signal });
    setTimeout(() => ac.abort(), 100);
    const aborted = await p;
    expect(aborted.outcome).toBe('aborted');
    expect(aborted.heard.length).toBe(Math.round(aborted.durationMs * 8));
  });

  it('rejects invalid options', async () => {
    await expect(runSimulatedCall({ url: 'http://x/', audio: new Uint8Array(0) })).rejects.toThrow(/ws:\/\/ or wss:\/\//);
    await expect(runSimulatedCall({ url: 'ws://127.0.0.1:1/', audio: new Uint8Array(0), bargeInAtMs: 5 })).rejects.toThrow(/bargeInAudio/);
    await expect(runSimulatedCall({ url: 'ws://127.0.0.1:1/', audio: new Uint8Array(0), dtmf: [{ digit: 'x', atMs: 0 }] })).rejects.toThrow(/dtmf digit/);
  });
});
