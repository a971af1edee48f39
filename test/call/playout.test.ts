/**
 * Playout against a model of Twilio's side (plays what arrives, in order, in real time;
 * echoes a mark when the audio before it has played), on a manual clock: audio goes out
 * as it arrives, marks are few but one is always outstanding while audio plays, and the
 * heard position at a barge-in is the last echo plus the time since, never past what
 * can have played.
 */
import { describe, expect, it } from 'vitest';
import { COALESCE_MS, Playout, MARK_MAX_GAP_MS } from '../../src/call/playout.js';

class FakeTwilio {
  now = 0;
  playedUntil = 0;
  media = 0;
  firstMediaAt = -1;
  marks: { name: string; at: number }[] = [];
  clears = 0;
  sent: string[] = [];
  send = (text: string) => {
    this.sent.push(text);
    const m = JSON.parse(text) as { event: string; media?: { payload: string }; mark?: { name: string } };
    if (m.event === 'media') {
      this.media++;
      if (this.firstMediaAt < 0) this.firstMediaAt = this.now;
      const ms = (Buffer.from(m.media!.payload, 'base64').length / 160) * 20;
      this.playedUntil = Math.max(this.now, this.playedUntil) + ms;
    } else if (m.event === 'mark') {
      this.marks.push({ name: m.mark!.name, at: Math.max(this.now, this.playedUntil) });
    } else if (m.event === 'clear') {
      this.clears++;
      this.playedUntil = this.now;
    }
  };
  /** Echoes due by `now`, in order. */
  due(): string[] {
    const out: string[] = [];
    while (this.marks.length > 0 && this.marks[0]!.at <= this.now) out.push(this.marks.shift()!.name);
    return out;
  }
}

function setup() {
  const tw = new FakeTwilio();
  const p = new Playout({ streamSid: 'MZ1', send: tw.send, leadMs: 80, now: () => tw.now });
  const step = (ms: number) => {
    for (let i = 0; i < ms; i++) {
      tw.now++;
      if (tw.now % 20 === 0) p.tick(tw.now);
      for (const name of tw.due()) p.onMark(name, tw.now);
    }
  };
  return { tw, p, step };
}

const chunk = new Uint8Array(160).fill(0x55); // 20 ms of μ-law (no pipeline: passthrough)

describe('Playout', () => {
  it('a real-time agent: each chunk goes out as it arrives, a mark every MARK_MAX_GAP_MS of audio, and drained() waits for the last audio', async () => {
    const { tw, p, step } = setup();
    for (let k = 0; k < 100; k++) {
      step(7); // off the 20 ms tick
      const before = tw.media;
      p.enqueue(chunk, 'resp1');
      // After the 40 ms start cushion every chunk leaves the moment it arrives, not at the next tick.
      if (k >= 1) expect(tw.media).toBe(before + 1);
      step(13);
    }
    p.endResponse();
    expect(p.stats.framesSent).toBe(100);
    const marks = p.stats.marksSent;
    expect(marks).toBeGreaterThanOrEqual(100 / (MARK_MAX_GAP_MS / 20)); // at least every MARK_MAX_GAP_MS
    expect(marks).toBeLessThanOrEqual(100 / (MARK_MAX_GAP_MS / 20) + 2); // plus the first and the last, not one per message
    let drained = false;
    void p.drained().then(() => (drained = true));
    // Still playing at Twilio: active (a barge-in now must clear), not drained.
    expect(p.active).toBe(true);
    await Promise.resolve();
    expect(drained).toBe(false);
    step(200);
    await Promise.resolve();
    expect(p.active).toBe(false);
    expect(drained).toBe(true);
    expect(tw.playedUntil).toBeLessThanOrEqual(tw.now);
  });

  it('active while Twilio still plays (so a barge-in at any moment sends clear)', () => {
    const { tw, p, step } = setup();
    for (let k = 0; k < 60; k++) {
      p.enqueue(chunk, 'resp1');
      for (let i = 0; i < 20; i++) {
        step(1);
        if (tw.playedUntil > tw.now) expect(p.active).toBe(true);
      }
    }
  });

  it('barge-in: heard = last echoed position + time since the echo, capped by what can have played', () => {
    const { tw, p, step } = setup();
    // An agent 3× faster than real time: Twilio's buffer stays leadMs ahead.
    for (let k = 0; k < 30; k++) {
      p.enqueue(chunk, 'resp1');
      if (k % 3 === 2) step(20);
    }
    step(337);
    const r = p.bargeIn();
    expect(r.cleared).toBe(true);
    expect(tw.clears).toBe(1);
    // Twilio started playing at the first send and has played continuously since.
    const playedByTwilio = tw.now - tw.firstMediaAt;
    expect(r.heardMs).toBeGreaterThanOrEqual(playedByTwilio - 20);
    expect(r.heardMs).toBeLessThanOrEqual(playedByTwilio);
  });

  it('barge-in when Twilio ran dry: heard never exceeds the audio sent', () => {
    const { p, step } = setup();
    for (let k = 0; k < 5; k++) p.enqueue(chunk, 'resp1'); // 100 ms, then the agent goes quiet mid-response
    step(400);
    expect(p.bargeIn().heardMs).toBe(100);
  });
});

/** Twilio behind a link that can stall: messages sent during a stall arrive, in order, when it ends. */
class StallingLink {
  readonly tw = new FakeTwilio();
  stallFrom = -1;
  stallTo = -1;
  #inflight: string[] = [];
  gaps: number[] = [];
  mediaSizesMs: number[] = [];
  send = (text: string) => {
    if (this.tw.now >= this.stallFrom && this.tw.now < this.stallTo) this.#inflight.push(text);
    else this.#deliver(text);
  };
  #deliver(text: string): void {
    const m = JSON.parse(text) as { event: string; media?: { payload: string } };
    if (m.event === 'media') {
      // Twilio's buffer ran dry before this audio arrived (mid-response): the caller hears a gap.
      if (this.tw.playedUntil > 0 && this.tw.now > this.tw.playedUntil) this.gaps.push(this.tw.now - this.tw.playedUntil);
      this.mediaSizesMs.push((Buffer.from(m.media!.payload, 'base64').length / 160) * 20);
    }
    this.tw.send(text);
  }
  /** Advances 1 ms: the stall's end delivers what it held. */
  advance(): void {
    this.tw.now++;
    if (this.tw.now === this.stallTo) for (const t of this.#inflight.splice(0)) this.#deliver(t);
  }
}

/** An agent streaming 100 ms deltas at 4× real time (as the providers do), for `seconds` of audio. */
function runFastAgent(leadMs: number, seconds: number, stall?: { from: number; ms: number }) {
  const link = new StallingLink();
  if (stall) {
    link.stallFrom = stall.from;
    link.stallTo = stall.from + stall.ms;
  }
  const p = new Playout({ streamSid: 'MZ1', send: link.send, leadMs, now: () => link.tw.now });
  const delta = new Uint8Array(800).fill(0x55); // 100 ms of μ-law
  const deltas = seconds * 10;
  let sent = 0;
  for (let ms = 0; ms < seconds * 1000 + 3000; ms++) {
    link.advance();
    if (sent < deltas && link.tw.now % 25 === 0) {
      p.enqueue(delta, 'resp1');
      if (++sent === deltas) p.endResponse();
    }
    if (link.tw.now % 20 === 0) p.tick(link.tw.now);
    for (const name of link.tw.due()) p.onMark(name, link.tw.now);
  }
  return { link, p };
}

describe('Playout: coalesced messages and a lead that rides out network stalls', () => {
  it('an agent ahead of real time: media messages of at least COALESCE_MS (the last may be less), ≤ 10 per second of audio — the 80 ms lead sent 50', () => {
    const coalesced = runFastAgent(2000, 10);
    const sizes = coalesced.link.mediaSizesMs;
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(10_000);
    expect(sizes.slice(0, -1).filter((ms) => ms < COALESCE_MS), JSON.stringify(sizes)).toEqual([]);
    expect(sizes.length / 10).toBeLessThanOrEqual(10);
    const drip = runFastAgent(80, 10);
    expect(drip.link.mediaSizesMs.length / 10).toBeGreaterThanOrEqual(45);
    // A mark per message at most: the heard position keeps its 100 ms resolution.
    expect(coalesced.p.stats.marksSent).toBeLessThanOrEqual(sizes.length + 1);
    expect(coalesced.link.gaps).toEqual([]);
  });

  it('a 300 ms stall of the link to Twilio while the agent is ahead: no gap (the 80 ms lead had one)', () => {
    const stall = { from: 2_000, ms: 300 };
    expect(runFastAgent(2000, 5, stall).link.gaps).toEqual([]);
    const thin = runFastAgent(80, 5, stall).link.gaps;
    expect(thin.length).toBeGreaterThan(0);
    expect(Math.max(...thin)).toBeGreaterThanOrEqual(200);
  });

  it('barge-in with seconds buffered at Twilio: clear at once, heard = what played, never past it', () => {
    const link = new StallingLink();
    const p = new Playout({ streamSid: 'MZ1', send: link.send, leadMs: 2000, now: () => link.tw.now });
    const delta = new Uint8Array(800).fill(0x55);
    for (let ms = 0; ms < 1337; ms++) {
      link.advance();
      if (ms < 400 && ms % 25 === 0) p.enqueue(delta, 'resp1'); // 1.6 s of audio within 400 ms
      if (link.tw.now % 20 === 0) p.tick(link.tw.now);
      for (const name of link.tw.due()) p.onMark(name, link.tw.now);
    }
    expect(link.tw.playedUntil - link.tw.now).toBeGreaterThan(200); // Twilio holds audio not yet played
    const r = p.bargeIn();
    expect(r.cleared).toBe(true);
    expect(link.tw.clears).toBe(1);
    const played = link.tw.now - link.tw.firstMediaAt;
    expect(r.heardMs).toBeGreaterThanOrEqual(played - 20);
    expect(r.heardMs).toBeLessThanOrEqual(played);
  });

  it('an agent that fails mid-reply: discardUnsent() drops only what Twilio does not have — no clear, the sent reply plays on, the next audio follows it', async () => {
    const link = new StallingLink();
    const p = new Playout({ streamSid: 'MZ1', send: link.send, leadMs: 2000, now: () => link.tw.now });
    const delta = new Uint8Array(800).fill(0x55);
    // 3 s of reply within 600 ms: 2 s (the lead) reach Twilio, the rest waits here.
    for (let ms = 0; ms < 600; ms++) {
      link.advance();
      if (ms % 20 === 0) p.enqueue(delta, 'resp1');
      if (link.tw.now % 20 === 0) p.tick(link.tw.now);
      for (const name of link.tw.due()) p.onMark(name, link.tw.now);
    }
    const atTwilio = link.tw.playedUntil - link.tw.now;
    expect(atTwilio).toBeGreaterThan(1000);
    expect(p.stats.queuedMs).toBeGreaterThan(0);
    p.discardUnsent();
    expect(link.tw.clears).toBe(0);
    expect(p.stats.queuedMs).toBe(0);
    p.enqueue(delta, 'resp1'); // late audio of the failed reply: dropped
    expect(p.stats.staleChunksDropped).toBe(1);
    p.enqueue(new Uint8Array(1600).fill(0x11), 'apology');
    p.endResponse();
    const apologyFrom = link.tw.playedUntil; // the apology queues behind the reply Twilio holds
    let drained = false;
    void p.drained().then(() => (drained = true));
    for (let ms = 0; ms < 4000 && !drained; ms++) {
      link.advance();
      if (link.tw.now % 20 === 0) p.tick(link.tw.now);
      for (const name of link.tw.due()) p.onMark(name, link.tw.now);
      await Promise.resolve();
    }
    expect(drained).toBe(true);
    expect(link.tw.playedUntil).toBe(apologyFrom + 200);
    expect(link.tw.now).toBeGreaterThanOrEqual(apologyFrom + 200);
  });
});
