/** The Twilio leg's per-socket guard (src/twilio/stream-guard.ts): flood bucket, size bound, send backlog, liveness. */
import { describe, expect, it } from 'vitest';
import { FLOOD_BURST, FLOOD_CLOSE_AFTER, FLOOD_RATE_PER_S, SEND_BACKLOG_GRACE_MS, SEND_BACKLOG_MAX_BYTES, StreamGuard } from '../../src/twilio/stream-guard.js';

const msg = Buffer.from('{"event":"mark"}');

describe('StreamGuard', () => {
  it('lets a burst through, refuses the excess as a flood, refills at its rate, and ends a call that keeps flooding', () => {
    const g = new StreamGuard(64 * 1024, 0);
    for (let i = 0; i < FLOOD_BURST; i++) expect(g.admit(msg, false, 0).kind).toBe('text');
    expect(g.admit(msg, false, 0)).toEqual({ kind: 'refused', code: 'BRIDGE_ERR_TWILIO_FLOOD', detail: "message rate far above Twilio's" });
    // One second later: FLOOD_RATE_PER_S more.
    let ok = 0;
    for (let i = 0; i < FLOOD_RATE_PER_S + 10; i++) if (g.admit(msg, false, 1000).kind === 'text') ok++;
    expect(ok).toBe(FLOOD_RATE_PER_S);
    let last;
    for (let i = 0; i < FLOOD_CLOSE_AFTER; i++) last = g.admit(msg, false, 1000);
    expect(last).toMatchObject({ kind: 'refused', close: 'twilio-flood' });
  });

  it('refuses a message over the size bound (the call goes on), passes binary and fragmented text as they are', () => {
    const g = new StreamGuard(100, 0);
    expect(g.admit(Buffer.alloc(101), false, 0)).toMatchObject({ kind: 'refused', code: 'BRIDGE_ERR_TWILIO_MESSAGE_TOO_LARGE' });
    expect(g.admit([Buffer.alloc(60), Buffer.alloc(60)], false, 0)).toMatchObject({ kind: 'refused', code: 'BRIDGE_ERR_TWILIO_MESSAGE_TOO_LARGE' });
    expect(g.admit(Buffer.from([1, 2]), true, 0)).toEqual({ kind: 'binary' });
    expect(g.admit([Buffer.from('{"ev'), Buffer.from('ent":"stop"}')], false, 0)).toEqual({ kind: 'text', text: '{"event":"stop"}' });
  });

  it('a send backlog over its bound for the grace period is a peer that stopped reading; one that drains is not', () => {
    const g = new StreamGuard(100, 0);
    const over = SEND_BACKLOG_MAX_BYTES + 1;
    expect(g.backlogged(SEND_BACKLOG_MAX_BYTES, 0)).toBe(false); // at the bound: fine
    expect(g.backlogged(over, 1000)).toBe(false);
    expect(g.backlogged(over, 1000 + SEND_BACKLOG_GRACE_MS - 1)).toBe(false);
    expect(g.backlogged(0, 1000 + SEND_BACKLOG_GRACE_MS)).toBe(false); // it drained: the clock restarts
    expect(g.backlogged(over, 2000 + SEND_BACKLOG_GRACE_MS)).toBe(false);
    expect(g.backlogged(over, 2000 + 2 * SEND_BACKLOG_GRACE_MS)).toBe(true);
  });

  it('any message or pong answers a ping', () => {
    const g = new StreamGuard(100, 0);
    g.pingedAt = 500;
    g.admit(msg, false, 700);
    expect(g.pingedAt).toBeUndefined();
    expect(g.lastMessageAt).toBe(700);
    g.pingedAt = 900;
    g.heard(950);
    expect(g.pingedAt).toBeUndefined();
    expect(g.lastMessageAt).toBe(950);
  });
});
