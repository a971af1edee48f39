/**
 * The early hold: what arrives before the agent is ready is kept in arrival order, bounded
 * (the oldest caller frames go first), copied (the session reuses its frame buffer), and
 * handed over once.
 */
import { describe, expect, it } from 'vitest';
import { EARLY_AUDIO_MAX_SAMPLES, EarlyHold } from '../../src/call/early-hold.js';

const SID = 'MZ00000000000000000000000000000001';

describe('early hold', () => {
  it('keeps the newest caller frames within its bound, as copies, in order', () => {
    const hold = new EarlyHold(3);
    const buf = new Uint8Array(160);
    for (let i = 0; i < 5; i++) {
      buf.fill(i);
      hold.caller(buf, i + 1, i * 20, 1000 + i * 20, SID);
    }
    buf.fill(0xee); // the session's buffer is reused: the held frames must not change
    const { caller } = hold.take();
    expect(caller.map((f) => [f.chunk, f.timestampMs, f.atMs, f.payload[0], f.payload.length])).toEqual([
      [3, 40, 1040, 2, 160],
      [4, 60, 1060, 3, 160],
      [5, 80, 1080, 4, 160],
    ]);
    expect(hold.counts).toEqual({ buffered: 5, dropped: 2 });
    expect(hold.take().caller).toEqual([]); // handed over once
  });

  it("drops frames that came under another stream than the start's", () => {
    const hold = new EarlyHold(10);
    hold.caller(new Uint8Array(160), 1, 0, 0, 'MZ00000000000000000000000000000002');
    hold.caller(new Uint8Array(160), 2, 20, 20, 'MZ00000000000000000000000000000002');
    hold.started(SID);
    expect(hold.take().caller).toEqual([]);
    expect(hold.counts.dropped).toBe(2);
    const same = new EarlyHold(10);
    same.caller(new Uint8Array(160), 1, 0, 0, SID);
    same.started(SID);
    expect(same.take().caller.length).toBe(1);
  });

  it("keeps the agent's first audio and response ends in order, bounded, and notes up to 8", () => {
    const hold = new EarlyHold(1);
    const chunk = new Int16Array(EARLY_AUDIO_MAX_SAMPLES / 2).fill(7);
    hold.agentAudio({ data: chunk, sampleRateHz: 24000, responseId: 'r1' });
    chunk.fill(9); // copied
    hold.responseDone();
    hold.agentAudio({ data: new Int16Array(EARLY_AUDIO_MAX_SAMPLES / 2), sampleRateHz: 24000, responseId: 'r2' });
    hold.agentAudio({ data: new Int16Array(1), sampleRateHz: 24000, responseId: 'r3' }); // over the bound: dropped
    for (let i = 0; i < 10; i++) hold.note(`note ${i}`);
    const { agent, notes } = hold.take();
    expect(agent.map((a) => (a === 'done' ? 'done' : a.responseId))).toEqual(['r1', 'done', 'r2']);
    expect((agent[0] as { data: Int16Array }).data[0]).toBe(7);
    expect(notes).toEqual(['note 0', 'note 1', 'note 2', 'note 3', 'note 4', 'note 5', 'note 6', 'note 7']);
  });
});
