/**
 * A call's timeline (src/call/timeline.ts) from the frames and events a session gives it:
 * who spoke when (with the hangover, a barge-in cutting the agent, a side that stops
 * sending), levels, turn latency, tool calls with parsed and bounded arguments, actions,
 * the end, and its bound on events.
 */
import { describe, expect, it } from 'vitest';
import { CallTimeline, MAX_EVENTS, MAX_TOOL_JSON, type TimelineEvent } from '../../src/call/timeline.js';
import { encodeUlawSample } from '../../src/dsp/ts/g711.js';

/** 20 ms of a 440 Hz tone at `amp` (0 = μ-law silence), 8 kHz μ-law. */
function frame(amp: number): Uint8Array {
  const f = new Uint8Array(160);
  for (let i = 0; i < 160; i++) f[i] = encodeUlawSample(Math.round(amp * Math.sin((2 * Math.PI * 440 * i) / 8000)));
  return f;
}
const LOUD = frame(8000);
const QUIET = frame(0);
const speech = (events: TimelineEvent[], role: 'caller' | 'agent') => events.filter((e): e is Extract<TimelineEvent, { type: 'speech' }> => e.type === 'speech' && e.role === role).map((e) => [e.t, e.endT]);

describe('CallTimeline', () => {
  it('finds stretches of caller speech: quiet for 300 ms ends one, a click is not one', () => {
    const tl = new CallTimeline(1000);
    let t = 0;
    const feed = (f: Uint8Array, n: number) => {
      for (let i = 0; i < n; i++, t += 20) tl.caller(f, t);
    };
    feed(QUIET, 10); // 0–200
    feed(LOUD, 25); // 200–700: speech
    feed(QUIET, 10); // 200 ms of quiet: the same stretch goes on
    feed(LOUD, 10); // 900–1100
    feed(QUIET, 20); // 400 ms: ends it at 1100
    feed(LOUD, 2); // 40 ms: a click
    feed(QUIET, 20);
    tl.closing('twilio-stop', 1000 + t);
    expect(speech(tl.events, 'caller')).toEqual([[200, 1100]]);
  });

  it("the agent's speech is placed at its play time, cut by a barge-in, and ended once its audio stops coming", () => {
    const tl = new CallTimeline(1000);
    // Sent ahead of time: played from 500 ms for 1 s.
    for (let i = 0; i < 50; i++) tl.agent(LOUD, 1500 + i * 20);
    tl.bargeIn('agent-vad', 700, 'r1', 1000 + 1200);
    expect(speech(tl.events, 'agent')).toEqual([[500, 1200]]);
    expect(tl.events.find((e) => e.type === 'bargeIn')).toEqual({ type: 'bargeIn', t: 1200, heardMs: 700, source: 'agent-vad' });
    // A reply from 2000 to 2400 ms; then nothing comes: the stretch ends once now is past the hangover.
    for (let i = 0; i < 20; i++) tl.agent(LOUD, 3000 + i * 20);
    tl.levels(1000 + 2500);
    expect(speech(tl.events, 'agent')).toHaveLength(1);
    tl.levels(1000 + 2800);
    expect(speech(tl.events, 'agent')).toEqual([
      [500, 1200],
      [2000, 2400],
    ]);
  });

  it('levels in dBFS: null before any audio, the floor once a side has gone quiet', () => {
    const tl = new CallTimeline(0);
    expect(tl.levels(0)).toEqual({ caller: null, agent: null });
    for (let t = 0; t < 400; t += 20) tl.caller(LOUD, t);
    const loud = tl.levels(400).caller!;
    // A sine of amplitude 8000: RMS 8000/√2, 20·log10(5657/32768) = −15.3 dBFS.
    expect(loud).toBeGreaterThanOrEqual(-16);
    expect(loud).toBeLessThanOrEqual(-14);
    expect(tl.levels(2000).caller).toBe(-90);
  });

  it('a turn: from the caller stopping to the reply first heard', () => {
    const tl = new CallTimeline(1000);
    tl.callerStopped('transcript', 3000);
    tl.audioSent(3450);
    tl.audioSent(3470); // later audio of the same reply: no second turn
    expect(tl.events).toEqual([{ type: 'turn', t: 2000, latencyMs: 450 }]);
  });

  it('tool calls: arguments parsed (or kept as text), long ones cut and marked; results with their duration; actions kept for the record', () => {
    const tl = new CallTimeline(0);
    tl.toolCall('c1', 'lookup_order', '{"order_id":"A-1"}', 100);
    tl.toolResult('c1', { ok: true, tool: 'lookup_order', output: { status: 'shipped' }, durationMs: 41.6 }, 150);
    tl.toolCall('c2', 'broken', '{not json', 200);
    tl.toolResult('c2', { ok: false, tool: 'broken', error: 'bad arguments', code: 'BRIDGE_ERR_TOOL_ARGUMENTS', durationMs: 0 }, 201);
    tl.toolCall('c3', 'big', JSON.stringify({ blob: 'x'.repeat(MAX_TOOL_JSON * 2) }), 300);
    tl.action('hangup', 400, 'rest');
    const ev = tl.events;
    expect(ev[0]).toEqual({ type: 'tool', t: 100, callId: 'c1', name: 'lookup_order', arguments: { order_id: 'A-1' } });
    expect(ev[1]).toEqual({ type: 'toolResult', t: 150, callId: 'c1', name: 'lookup_order', durationMs: 42, ok: true, output: { status: 'shipped' } });
    expect(ev[2]).toMatchObject({ arguments: '{not json' });
    expect(ev[3]).toMatchObject({ ok: false, error: 'bad arguments', code: 'BRIDGE_ERR_TOOL_ARGUMENTS' });
    const big = ev[4] as { arguments: { truncated: boolean; json: string } };
    expect(big.arguments.truncated).toBe(true);
    expect(big.arguments.json).toHaveLength(MAX_TOOL_JSON);
    expect(ev[5]).toEqual({ type: 'action', t: 400, action: 'hangup', detail: 'rest' });
    expect(tl.actions).toEqual([{ at: expect.any(String), action: 'hangup', detail: 'rest' }]);
  });

  it('bounded: events past MAX_EVENTS are counted, not kept — except the end', () => {
    const tl = new CallTimeline(0);
    const heard: TimelineEvent[] = [];
    tl.listen((e) => heard.push(e));
    for (let i = 0; i < MAX_EVENTS + 10; i++) tl.transcript('caller', `turn ${i}`, i);
    tl.closing('hangup-requested', 5000);
    expect(tl.events).toHaveLength(MAX_EVENTS + 1);
    expect(tl.events.at(-1)).toEqual({ type: 'end', t: 5000, reason: 'hangup-requested' });
    expect(tl.dropped).toBe(10);
    expect(heard).toHaveLength(MAX_EVENTS + 1);
  });

  it('a listener that throws costs only itself', () => {
    const tl = new CallTimeline(0);
    const heard: string[] = [];
    tl.listen(() => {
      throw new Error('broken watcher');
    });
    tl.listen((e) => heard.push(e.type));
    tl.transcript('agent', 'hello', 10);
    expect(heard).toEqual(['transcript']);
  });
});
