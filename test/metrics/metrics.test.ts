/**
 * GET /metrics on a real bridge (real fastify, CallManager, DSP and echo agent;
 * the simulator in Twilio's role): each metric is exposed with the right type and
 * the values the calls produced; labels stay bounded; the per-frame histograms
 * count what the call core observed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { watchHeldUp } from '../helpers/held-up.js';
import { AgentSession, pcm16, type AgentFactory, type AudioFormat } from '../../src/agents/agent.js';
import type { CallRecord } from '../../src/call/call-manager.js';
import { runSimulatedCall } from '../../src/sim/simulator.js';
import { createMetrics, FRAME_BUCKETS_S, MAX_AGENT_VALUES, MAX_REASON_VALUES, normaliseEndReason, registerMetricsRoute } from '../../src/metrics/index.js';
import { decadeBuckets } from '../../src/metrics/fast-histogram.js';
import Fastify from 'fastify';
import { ulawClip } from '../bridge/helpers.js';
import { parseExposition, sample, scrape, startMetricsBridge, type MetricsBridge } from './harness.js';

/** A provider without VAD that talks as soon as it connects (a 300 Hz hum), so the bridge's VAD does the barge-in. */
class Talker extends AgentSession {
  readonly inputFormat: AudioFormat = pcm16(16000);
  readonly outputFormat: AudioFormat = pcm16(16000);
  readonly hasVad = false;
  #timer: NodeJS.Timeout | undefined;
  async connect(): Promise<void> {
    let sent = 0;
    this.#timer = setInterval(() => {
      if (sent >= 6000) return void clearInterval(this.#timer);
      const chunk = new Int16Array(3200);
      for (let i = 0; i < chunk.length; i++) chunk[i] = Math.round(4000 * Math.sin((2 * Math.PI * 300 * (sent * 16 + i)) / 16000));
      this.emitEvent({ type: 'audio', data: chunk, sampleRateHz: this.outputFormat.sampleRateHz, responseId: 't1' });
      sent += 200;
    }, 20);
  }
  sendAudio(): void {}
  interrupt(): void {
    clearInterval(this.#timer);
  }
  sendDtmf(): void {}
  async close(reason: string): Promise<void> {
    clearInterval(this.#timer);
    this.emitEvent({ type: 'closed', reason });
  }
}
const talker: AgentFactory = { name: 'talker', available: true, create: () => new Talker() };

const CALL_SID = `CA${'1f'.repeat(16)}`;

describe('GET /metrics after real calls', () => {
  let b: MetricsBridge;
  let records: CallRecord[];
  let during: Awaited<ReturnType<typeof scrape>>;
  let after: Awaited<ReturnType<typeof scrape>>;
  let bargeReactionMs: number | null = null;
  /** Lateness this process's event-loop stalls explain during the calls (test/helpers/held-up.ts). */
  let slackMs = 0;

  beforeAll(async () => {
    b = await startMetricsBridge({}, [talker]);
    const held = watchHeldUp();
    const speech = await ulawClip('caller-barge-in.8k-ulaw.wav');
    const silence = new Uint8Array(8000 * 2).fill(0xff);
    // The echo call goes through the voice webhook first, so its agent is pre-connected.
    const hook = await fetch(`${b.url}/twilio/voice?agent=echo&rate=24000`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ CallSid: CALL_SID, From: '+15551230000', To: '+15559870000' }).toString(),
    });
    expect(hook.status).toBe(200);
    const echo = runSimulatedCall({ url: b.streamUrl, callSid: CALL_SID, audio: speech, customParameters: { agent: 'echo', rate: '24000' }, tailMs: 4500, timeoutMs: 25_000 });
    const barge = runSimulatedCall({ url: b.streamUrl, audio: silence, bargeInAtMs: 1500, bargeInAudio: speech, customParameters: { agent: 'talker' }, tailMs: 1500, timeoutMs: 25_000 });
    // While both run: the active-call gauge reads the CallManager at scrape time.
    await b.startedCount(2);
    during = await scrape(b.url);
    const [re, rb] = await Promise.all([echo, barge]);
    expect(re.outcome).toBe('completed');
    expect(rb.outcome).toBe('completed');
    bargeReactionMs = rb.bargeIn?.reactionMs ?? null;
    held.stop();
    slackMs = held.slackMs();
    // An unknown agent: the call is refused by the core; its agent label must not leak the name.
    const unknown = await runSimulatedCall({ url: b.streamUrl, audio: silence.subarray(0, 1600), customParameters: { agent: 'no-such-agent' }, tailMs: 2000, timeoutMs: 25_000 });
    expect(['completed', 'server-closed']).toContain(unknown.outcome);
    records = await b.endedCount(3);
    after = await scrape(b.url);
  }, 90_000);

  afterAll(async () => {
    await b?.close();
  });

  it('serves Prometheus text with the right content type and metric types', () => {
    expect(after.status).toBe(200);
    expect(after.contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
    const t = after.parsed.types;
    expect(Object.fromEntries([...t].filter(([k]) => k.startsWith('voice_bridge_')))).toEqual({
      voice_bridge_active_calls: 'gauge',
      voice_bridge_calls_started_total: 'counter',
      voice_bridge_calls_ended_total: 'counter',
      voice_bridge_preconnect_total: 'counter',
      voice_bridge_call_duration_seconds: 'histogram',
      voice_bridge_frames_total: 'counter',
      voice_bridge_twilio_bad_input_total: 'counter',
      voice_bridge_frame_processing_seconds: 'histogram',
      voice_bridge_jitter_late_frames_total: 'counter',
      voice_bridge_jitter_lost_frames_total: 'counter',
      voice_bridge_jitter_concealed_frames_total: 'counter',
      voice_bridge_playout_underruns_total: 'counter',
      voice_bridge_caller_audio_dropped_seconds_total: 'counter',
      voice_bridge_barge_ins_total: 'counter',
      voice_bridge_barge_in_reaction_seconds: 'histogram',
      voice_bridge_agent_connect_seconds: 'histogram',
      voice_bridge_first_agent_audio_seconds: 'histogram',
      voice_bridge_turn_response_seconds: 'histogram',
      voice_bridge_eventloop_delay_p99_seconds: 'gauge',
      voice_bridge_dsp_info: 'gauge',
      voice_bridge_build_info: 'gauge',
      voice_bridge_calls_refused_total: 'counter',
      voice_bridge_http_responses_total: 'counter',
      voice_bridge_record_outbox_depth: 'gauge',
      voice_bridge_records_written_total: 'counter',
      voice_bridge_record_write_failures_total: 'counter',
      voice_bridge_record_outbox_write_failures_total: 'counter',
      voice_bridge_profiles_reloads_total: 'counter',
      voice_bridge_profiles_loaded: 'gauge',
      voice_bridge_tool_calls_total: 'counter',
      voice_bridge_tool_call_duration_seconds: 'histogram',
      voice_bridge_events_pending: 'gauge',
      voice_bridge_events_delivered_total: 'counter',
      voice_bridge_event_delivery_failures_total: 'counter',
      voice_bridge_events_outbox_write_failures_total: 'counter',
      voice_bridge_events_outbox_corrupt_lines_total: 'counter',
      voice_bridge_events_dropped_total: 'counter',
    });
    // prom-client's Node default metrics, including event-loop lag.
    expect(t.get('nodejs_eventloop_lag_seconds')).toBe('gauge');
    expect(t.get('nodejs_eventloop_lag_p99_seconds')).toBe('gauge');
    expect(t.get('process_cpu_user_seconds_total')).toBe('counter');
    expect(t.get('nodejs_heap_size_used_bytes')).toBe('gauge');
  });

  it('active calls: 2 while both calls ran, 0 after', () => {
    expect(sample(during.parsed.samples, 'voice_bridge_active_calls')).toBe(2);
    expect(sample(after.parsed.samples, 'voice_bridge_active_calls')).toBe(0);
  });

  it('calls by agent and end reason, with unknown agent names folded into "other"/"none"', () => {
    const s = after.parsed.samples;
    expect(sample(s, 'voice_bridge_calls_started_total', { agent: 'echo' })).toBe(1);
    expect(sample(s, 'voice_bridge_calls_started_total', { agent: 'talker' })).toBe(1);
    expect(sample(s, 'voice_bridge_calls_started_total', { agent: 'other' })).toBe(1);
    const ended = s.filter((x) => x.name === 'voice_bridge_calls_ended_total').map((x) => ({ ...x.labels, n: x.value }));
    const unknownRec = records.find((r) => r.agent === null)!;
    expect(unknownRec.endReason).toBe('agent-unknown');
    expect(ended).toEqual(
      expect.arrayContaining([
        { agent: 'echo', reason: 'twilio-stop', n: 1 },
        { agent: 'talker', reason: 'twilio-stop', n: 1 },
        { agent: 'none', reason: 'agent-unknown', n: 1 },
      ]),
    );
    expect(ended).toHaveLength(3);
    expect(after.text).not.toContain('no-such-agent');
    expect(sample(s, 'voice_bridge_call_duration_seconds_count', { agent: 'echo' })).toBe(1);
    const echoRec = records.find((r) => r.agent === 'echo')!;
    expect(sample(s, 'voice_bridge_call_duration_seconds_sum', { agent: 'echo' })).toBeCloseTo(echoRec.durationMs / 1000, 6);
    expect(sample(s, 'voice_bridge_frames_total', { direction: 'inbound' })).toBe(records.reduce((n, r) => n + r.framesIn, 0));
    expect(sample(s, 'voice_bridge_frames_total', { direction: 'outbound' })).toBe(records.reduce((n, r) => n + r.framesOut, 0));
  });

  it('per-direction frame processing histograms: 1 µs … 10 ms buckets, one observation per frame handled', () => {
    const s = after.parsed.samples;
    const les = s.filter((x) => x.name === 'voice_bridge_frame_processing_seconds_bucket' && x.labels.direction === 'inbound').map((x) => x.labels.le);
    expect(les).toEqual([...FRAME_BUCKETS_S.map(String), '+Inf']);
    expect(FRAME_BUCKETS_S[0]).toBe(1e-6);
    expect(FRAME_BUCKETS_S.at(-1)).toBe(1e-2);
    const inCount = sample(s, 'voice_bridge_frame_processing_seconds_count', { direction: 'inbound' })!;
    const outCount = sample(s, 'voice_bridge_frame_processing_seconds_count', { direction: 'outbound' })!;
    // Frames that arrive before the agent is ready are buffered and released without the hook.
    const framesIn = records.reduce((n, r) => n + r.framesIn, 0);
    const prestart = records.reduce((n, r) => n + r.prestartFramesBuffered + r.prestartFramesDropped, 0);
    expect(inCount).toBeLessThanOrEqual(framesIn);
    expect(inCount).toBeGreaterThanOrEqual(framesIn - prestart - records.filter((r) => r.agent === null).reduce((n, r) => n + r.framesIn, 0));
    expect(outCount).toBeGreaterThan(0);
    expect(outCount).toBeLessThanOrEqual(records.reduce((n, r) => n + r.framesOut, 0));
    expect(sample(s, 'voice_bridge_frame_processing_seconds_bucket', { direction: 'inbound', le: '+Inf' })).toBe(inCount);
    const sum = sample(s, 'voice_bridge_frame_processing_seconds_sum', { direction: 'inbound' })!;
    expect(sum / inCount).toBeGreaterThan(0);
    expect(sum / inCount).toBeLessThan(0.01); // a frame takes microseconds, not 10 ms
    // Buckets are cumulative.
    const counts = s.filter((x) => x.name === 'voice_bridge_frame_processing_seconds_bucket' && x.labels.direction === 'outbound').map((x) => x.value);
    expect(counts).toEqual([...counts].sort((a, c) => a - c));
  });

  it('jitter-buffer and playout counters equal the sums of the call records', () => {
    const s = after.parsed.samples;
    const sum = (f: (r: CallRecord) => number | undefined) => records.reduce((n, r) => n + (f(r) ?? 0), 0);
    expect(records.some((r) => r.jitter !== null)).toBe(true); // the 24 kHz echo call ran the jitter buffer
    expect(sample(s, 'voice_bridge_jitter_late_frames_total')).toBe(sum((r) => r.jitter?.late));
    expect(sample(s, 'voice_bridge_jitter_lost_frames_total')).toBe(sum((r) => r.jitter?.lost));
    expect(sample(s, 'voice_bridge_jitter_concealed_frames_total')).toBe(sum((r) => r.jitter?.concealed));
    expect(sample(s, 'voice_bridge_playout_underruns_total')).toBe(sum((r) => r.playout?.underruns));
  });

  it('barge-ins and their reaction time, by source', () => {
    const s = after.parsed.samples;
    expect(sample(s, 'voice_bridge_barge_ins_total', { source: 'bridge-vad' })).toBe(1);
    expect(sample(s, 'voice_bridge_barge_in_reaction_seconds_count', { source: 'bridge-vad' })).toBe(1);
    expect(sample(s, 'voice_bridge_barge_in_reaction_seconds_count', { source: 'agent-vad' })).toBe(0);
    const reaction = sample(s, 'voice_bridge_barge_in_reaction_seconds_sum', { source: 'bridge-vad' })!;
    expect(reaction).toBeGreaterThanOrEqual(0);
    expect(reaction).toBeLessThan(0.25 + slackMs / 1000);
    expect(bargeReactionMs).not.toBeNull();
    expect(records.find((r) => r.agent === 'talker')!.bargeIns).toBe(1);
  });

  it('agent connect time (pre-connected or not) and time to first agent audio', () => {
    const s = after.parsed.samples;
    const echoRec = records.find((r) => r.agent === 'echo')!;
    const talkerRec = records.find((r) => r.agent === 'talker')!;
    expect(echoRec.agentPreconnected).toBe(true);
    expect(sample(s, 'voice_bridge_agent_connect_seconds_count', { agent: 'echo', preconnected: 'true' })).toBe(1);
    expect(sample(s, 'voice_bridge_agent_connect_seconds_sum', { agent: 'echo', preconnected: 'true' })).toBeCloseTo(echoRec.agentReadyMs! / 1000, 6);
    expect(sample(s, 'voice_bridge_agent_connect_seconds_count', { agent: 'talker', preconnected: 'false' })).toBe(1);
    expect(sample(s, 'voice_bridge_first_agent_audio_seconds_count', { agent: 'echo' })).toBe(1);
    expect(sample(s, 'voice_bridge_first_agent_audio_seconds_count', { agent: 'talker' })).toBe(1);
    // The hook measures from the stream's `start`; the record's figure from the socket's
    // accept, earlier by however long `start` took to arrive (load-dependent).
    for (const rec of [echoRec, talkerRec]) {
      const hook = sample(s, 'voice_bridge_first_agent_audio_seconds_sum', { agent: rec.agent! })!;
      expect(hook).toBeGreaterThan(0);
      expect(hook).toBeLessThanOrEqual(rec.timeToFirstAgentAudioMs! / 1000 + 0.001);
    }
  });

  it('event-loop lag and the DSP backend info gauge', () => {
    const s = after.parsed.samples;
    const p99 = sample(s, 'voice_bridge_eventloop_delay_p99_seconds')!;
    expect(p99).toBeGreaterThanOrEqual(0);
    expect(p99).toBeLessThan(5);
    // The raw figure prom-client reports includes the 10 ms sampling interval; ours does not.
    expect(sample(s, 'nodejs_eventloop_lag_p99_seconds')).toBeGreaterThanOrEqual(0.009);
    expect(sample(s, 'nodejs_eventloop_lag_seconds')).toBeGreaterThanOrEqual(0);
    const dsp = s.filter((x) => x.name === 'voice_bridge_dsp_info');
    expect(dsp).toHaveLength(1);
    expect(dsp[0]!.value).toBe(1);
    expect(['native', 'ts']).toContain(dsp[0]!.labels.backend);
    expect(Object.keys(dsp[0]!.labels).sort()).toEqual(['backend', 'fallback', 'requested', 'simd']);
    if (dsp[0]!.labels.backend === 'native') expect(dsp[0]!.labels.simd).not.toBe('');
  });
});

describe('label cardinality stays bounded', () => {
  it('end reasons keep their kind and a BRIDGE_ERR_* code, never free text', () => {
    expect(normaliseEndReason('twilio-stop')).toBe('twilio-stop');
    expect(normaliseEndReason('agent-connect-failed:BRIDGE_ERR_AGENT_AUTH')).toBe('agent-connect-failed:BRIDGE_ERR_AGENT_AUTH');
    expect(normaliseEndReason('agent-error:BRIDGE_ERR_AGENT_SERVICE')).toBe('agent-error:BRIDGE_ERR_AGENT_SERVICE');
    expect(normaliseEndReason('agent-closed:server went away (1006)')).toBe('agent-closed');
    expect(normaliseEndReason('agent-ended:goodbye +15551234567 (rest)')).toBe('agent-ended');
    expect(normaliseEndReason('agent-closed:BRIDGE_ERR_AGENT_CLOSED the socket died')).toBe('agent-closed:BRIDGE_ERR_AGENT_CLOSED');
    expect(normaliseEndReason(null)).toBe('unknown');
    expect(normaliseEndReason('Robert"); DROP TABLE')).toBe('other');
    expect(normaliseEndReason('x'.repeat(500))).toBe('other');
  });

  it('thousands of calls with random reasons and agent names add a bounded set of series', async () => {
    const metrics = createMetrics({ dspInfo: () => ({ backend: 'ts', requested: 'ts' }), defaultMetrics: false });
    const app = Fastify();
    registerMetricsRoute(app, metrics);
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const rnd = (n: number) => Math.random().toString(36).slice(2, 2 + n);
      const kinds = ['agent-closed', 'agent-ended', 'agent-error', 'agent-connect-failed'];
      for (let i = 0; i < 5000; i++) {
        const kind = kinds[i % kinds.length]!;
        const reason = i % 7 === 0 ? `${rnd(6)}-${rnd(4)}` : i % 5 === 0 ? `${kind}:BRIDGE_ERR_${rnd(8).toUpperCase()}` : `${kind}:${rnd(20)} ${rnd(10)}`;
        metrics.onCallStarted({ callSid: `CA${i}`, streamSid: `MZ${i}`, agent: `agent-${rnd(5)}` });
        metrics.onCallEnded({ ...baseRecord, agent: i % 3 === 0 ? `agent-${rnd(5)}` : i % 3 === 1 ? '<script>' : null, endReason: reason, badInput: { [`code-${rnd(5)}`]: 1 } as CallRecord['badInput'] });
      }
      const { parsed, status } = await scrape(url);
      expect(status).toBe(200);
      const ended = parsed.samples.filter((x) => x.name === 'voice_bridge_calls_ended_total');
      const agents = new Set(ended.map((x) => x.labels.agent));
      const reasons = new Set(ended.map((x) => x.labels.reason));
      expect(agents.size).toBeLessThanOrEqual(MAX_AGENT_VALUES + 2); // + "other" and "none"
      expect(reasons.size).toBeLessThanOrEqual(MAX_REASON_VALUES + 1); // + "other"
      expect(agents.has('other')).toBe(true);
      expect(agents.has('none')).toBe(true);
      expect(reasons.has('other')).toBe(true);
      for (const r of reasons) expect(r).toMatch(/^[a-z][a-z0-9-]*(:BRIDGE_ERR_[A-Z0-9_]+)?$/);
      expect(parsed.samples.filter((x) => x.name === 'voice_bridge_calls_started_total').length).toBeLessThanOrEqual(MAX_AGENT_VALUES + 1);
      expect(parsed.samples.filter((x) => x.name === 'voice_bridge_twilio_bad_input_total').length).toBeLessThanOrEqual(33);
      expect(ended.reduce((n, x) => n + x.value, 0)).toBe(5000);
    } finally {
      await app.close();
      metrics.close();
    }
  });
});

const baseRecord: CallRecord = {
  callSid: 'CA0',
  streamSid: 'MZ0',
  agent: 'echo',
  state: 'closed',
  startedAt: new Date(0).toISOString(),
  durationMs: 1000,
  endReason: 'twilio-stop',
  framesIn: 50,
  chunksToAgent: 5,
  framesOut: 40,
  prestartFramesBuffered: 0,
  prestartFramesDropped: 0,
  badInput: {},
  jitter: null,
  playout: null,
  bargeIns: 0,
  lastHeardMs: null,
  dtmf: 0,
  marksEchoed: 0,
  transcripts: [],
  timeToFirstAgentAudioMs: null,
  agentPreconnected: false,
  agentReadyMs: null,
  apology: null,
  recordingPath: null,
  endedAt: new Date(1000).toISOString(),
  customParameters: {},
  from: null,
  to: null,
  status: [],
};

describe('counters fed from call records (direct)', () => {
  it('jitter late/lost/concealed and playout underruns add up across calls, including calls still running', async () => {
    const metrics = createMetrics({ dspInfo: () => undefined, defaultMetrics: false });
    try {
      const jitter = (late: number, lost: number, concealed: number) => ({ framesIn: 100, framesOut: 100, duplicate: 0, late, lost, concealed, resyncs: 0, bufferedFrames: 0, currentDelayMs: 40, targetDelayMs: 40 });
      const playout = (underruns: number) => ({ framesQueued: 0, framesSent: 10, messagesSent: 10, marksSent: 1, marksAcked: 1, framesCleared: 0, staleChunksDropped: 0, underruns, bargeIns: 0, queuedMs: 0 });
      const live = [{ jitter: jitter(1, 2, 3), playout: playout(4) }];
      metrics.setLiveCalls(() => live);
      metrics.onCallEnded({ ...baseRecord, jitter: jitter(5, 6, 7), playout: playout(8) });
      metrics.onCallEnded({ ...baseRecord, jitter: null, playout: null });
      let p = parseExposition(await metrics.registry.metrics()).samples;
      expect([sample(p, 'voice_bridge_jitter_late_frames_total'), sample(p, 'voice_bridge_jitter_lost_frames_total'), sample(p, 'voice_bridge_jitter_concealed_frames_total'), sample(p, 'voice_bridge_playout_underruns_total')]).toEqual([6, 8, 10, 12]);
      // The live call ends with its final figures: counted once, never decreasing.
      live.length = 0;
      metrics.onCallEnded({ ...baseRecord, jitter: jitter(2, 2, 3), playout: playout(4) });
      p = parseExposition(await metrics.registry.metrics()).samples;
      expect([sample(p, 'voice_bridge_jitter_late_frames_total'), sample(p, 'voice_bridge_jitter_lost_frames_total'), sample(p, 'voice_bridge_jitter_concealed_frames_total'), sample(p, 'voice_bridge_playout_underruns_total')]).toEqual([7, 8, 10, 12]);
      // No DSP info yet: the info gauge has no sample rather than a fake one.
      expect(p.filter((x) => x.name === 'voice_bridge_dsp_info')).toEqual([]);
    } finally {
      metrics.close();
    }
  });

  it('caller audio the agent service never got: seconds from running and ended calls; records from before the field count 0', async () => {
    const metrics = createMetrics({ dspInfo: () => undefined, defaultMetrics: false });
    try {
      const live = [{ jitter: null, playout: null, callerAudioDroppedMs: 1500 }];
      metrics.setLiveCalls(() => live);
      metrics.onCallEnded({ ...baseRecord, callerAudioDroppedMs: 500 });
      metrics.onCallEnded({ ...baseRecord }); // an old record read back: no such field
      let p = parseExposition(await metrics.registry.metrics()).samples;
      expect(sample(p, 'voice_bridge_caller_audio_dropped_seconds_total')).toBe(2);
      live.length = 0;
      metrics.onCallEnded({ ...baseRecord, callerAudioDroppedMs: 1500 });
      p = parseExposition(await metrics.registry.metrics()).samples;
      expect(sample(p, 'voice_bridge_caller_audio_dropped_seconds_total')).toBe(2);
    } finally {
      metrics.close();
    }
  });

  it('the observer ignores non-finite and negative timings instead of poisoning sums', async () => {
    const metrics = createMetrics({ dspInfo: () => undefined, defaultMetrics: false });
    try {
      metrics.observer.inboundFrame(NaN);
      metrics.observer.inboundFrame(-1);
      metrics.observer.inboundFrame(Infinity);
      metrics.observer.inboundFrame(0.004); // 4 µs
      metrics.observer.outboundTick(50); // 50 ms: above the last bucket, counted in +Inf
      metrics.observer.agentReady('echo', NaN, false);
      const p = parseExposition(await metrics.registry.metrics()).samples;
      expect(sample(p, 'voice_bridge_frame_processing_seconds_count', { direction: 'inbound' })).toBe(1);
      expect(sample(p, 'voice_bridge_frame_processing_seconds_bucket', { direction: 'inbound', le: '0.000002' })).toBe(0);
      expect(sample(p, 'voice_bridge_frame_processing_seconds_bucket', { direction: 'inbound', le: '0.000005' })).toBe(1);
      expect(sample(p, 'voice_bridge_frame_processing_seconds_sum', { direction: 'inbound' })).toBeCloseTo(4e-6, 12);
      expect(sample(p, 'voice_bridge_frame_processing_seconds_bucket', { direction: 'outbound', le: '0.01' })).toBe(0);
      expect(sample(p, 'voice_bridge_frame_processing_seconds_bucket', { direction: 'outbound', le: '+Inf' })).toBe(1);
      expect(sample(p, 'voice_bridge_agent_connect_seconds_count', { agent: 'echo', preconnected: 'false' })).toBeUndefined();
      expect(decadeBuckets(1e-6, 1e-2)).toEqual([1e-6, 2e-6, 5e-6, 1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2]);
    } finally {
      metrics.close();
    }
  });
});
