/**
 * The per-call frame paths a CallSession drives: caller → agent (inbound) and
 * agent → caller (outbound). Results leave through a sink callback so that one
 * session code path serves two implementations:
 *
 *  - `InlineFramePaths` (this file, the default): today's synchronous pipelines on the
 *    event loop; every sink call happens inside push()/poll()/flush();
 *  - `DspPool` (dsp/pool/dsp-pool.ts, BRIDGE_DSP_POOL=N, experimental): the same
 *    pipelines inside worker threads, many calls' frames batched per task; the sinks
 *    are called later, in order, when the batch comes back.
 *
 * ```text
 *  session ─push(frame)/poll(now)─► InboundPath ──sink(pcm)──► agent.sendAudio
 *  playout ─push(pcm)/flush()/reset()─► OutboundPath ──sink(ulaw, off, bytes)──► playout queue
 * ```
 *
 * Rules both keep: results per call arrive in the order of the operations; after
 * reset() no frame produced before it reaches the sink; after close() nothing does.
 * A sink's arguments are views into reused buffers: consume them before returning.
 */
import type { DspBackend, InboundPipeline, InboundPipelineOptions, JitterStats, OutboundPipeline, OutboundPipelineOptions } from './backend.js';

/** Inbound dst size in whole resampled frames (a push may release several held frames at once). */
export const INBOUND_DST_FRAMES = 8;

export type InboundSink = (pcm: Int16Array) => void;
/** Whole 160-byte μ-law frames: `bytes` (a multiple of 160, possibly 0) starting at `offset` of `ulaw`. */
export type OutboundSink = (ulaw: Uint8Array, offset: number, bytes: number) => void;

export interface InboundPath {
  /** One 160-byte G.711 frame in (copied before this returns); released PCM goes to the sink. */
  push(payload: Uint8Array, seq: number, timestampMs: number, nowMs: number): void;
  /** Releases frames whose gap deadline has passed (call on the tick while bufferedFrames > 0). */
  poll(nowMs: number): void;
  /** Frames held in the jitter buffer (in pool mode: as last reported by the worker). */
  readonly bufferedFrames: number;
  /** Jitter statistics (in pool mode: as last reported by the worker). */
  stats(): JitterStats;
}

export interface OutboundPath {
  /** Agent PCM16 at the path's rate (copied before this returns); whole μ-law frames go to the sink. */
  push(pcm: Int16Array): void;
  /** End of a response: resampler tail and last partial frame, after every earlier push. */
  flush(): void;
  /** Barge-in: drops pending audio and filter state, and every result not yet delivered. */
  reset(): void;
  /**
   * The agent's audio changes rate: what was pushed at the old rate goes out (like
   * flush()), and the next push is at `fromHz`.
   */
  retune(fromHz: number): void;
  /** Operations whose frames have not reached the sink yet (always 0 inline). */
  readonly pending: number;
}

/** The DSP of one call. close() releases both paths (and, in pool mode, the worker's state); they are inert after it. */
export interface CallDsp {
  openInbound(options: InboundPipelineOptions, sink: InboundSink): InboundPath;
  openOutbound(options: OutboundPipelineOptions, sink: OutboundSink): OutboundPath;
  close(): void;
}

export interface FramePaths {
  readonly mode: 'inline' | 'pool';
  /** `onFailed` is called at most once if the call's DSP is lost (pool mode: a worker crash); never inline. */
  openCall(onFailed: (reason: string) => void): CallDsp;
}

class InlineInbound implements InboundPath {
  readonly #p: InboundPipeline;
  readonly #sink: InboundSink;
  readonly #dst: Int16Array;
  #closed = false;

  constructor(p: InboundPipeline, sink: InboundSink) {
    this.#p = p;
    this.#sink = sink;
    this.#dst = new Int16Array(p.maxFrameOutput * INBOUND_DST_FRAMES);
  }
  push(payload: Uint8Array, seq: number, timestampMs: number, nowMs: number): void {
    const n = this.#p.push(payload, seq, timestampMs, nowMs, this.#dst);
    if (n > 0) this.#sink(this.#dst.subarray(0, n));
  }
  poll(nowMs: number): void {
    const n = this.#p.poll(nowMs, this.#dst);
    if (n > 0) this.#sink(this.#dst.subarray(0, n));
  }
  get bufferedFrames(): number {
    return this.#closed ? 0 : this.#p.bufferedFrames;
  }
  stats(): JitterStats {
    return this.#p.stats();
  }
  close(): void {
    this.#closed = true;
    this.#p.close();
  }
}

class InlineOutbound implements OutboundPath {
  #p: OutboundPipeline;
  readonly #sink: OutboundSink;
  readonly #open: (fromHz: number) => OutboundPipeline;
  #dst = new Uint8Array(160 * 64);

  constructor(open: (fromHz: number) => OutboundPipeline, fromHz: number, sink: OutboundSink) {
    this.#open = open;
    this.#p = open(fromHz);
    this.#sink = sink;
  }
  readonly pending = 0;
  push(pcm: Int16Array): void {
    const need = this.#p.maxOutputBytes(pcm.length);
    if (this.#dst.length < need) this.#dst = new Uint8Array(need * 2);
    this.#sink(this.#dst, 0, this.#p.push(pcm, this.#dst));
  }
  flush(): void {
    const need = this.#p.maxFlushBytes();
    if (this.#dst.length < need) this.#dst = new Uint8Array(need * 2);
    this.#sink(this.#dst, 0, this.#p.flush(this.#dst));
  }
  reset(): void {
    this.#p.reset();
  }
  retune(fromHz: number): void {
    const next = this.#open(fromHz); // first: a rate the DSP refuses leaves this path as it was
    this.flush();
    this.#p.close();
    this.#p = next;
  }
  close(): void {
    this.#p.close();
  }
}

class InlineCallDsp implements CallDsp {
  readonly #dsp: DspBackend;
  #in: InlineInbound | undefined;
  #out: InlineOutbound | undefined;
  constructor(dsp: DspBackend) {
    this.#dsp = dsp;
  }
  openInbound(options: InboundPipelineOptions, sink: InboundSink): InboundPath {
    this.#in = new InlineInbound(this.#dsp.createInboundPipeline(options), sink);
    return this.#in;
  }
  openOutbound(options: OutboundPipelineOptions, sink: OutboundSink): OutboundPath {
    this.#out?.close();
    this.#out = new InlineOutbound((fromHz) => this.#dsp.createOutboundPipeline({ ...options, fromHz }), options.fromHz, sink);
    return this.#out;
  }
  close(): void {
    this.#in?.close();
    this.#out?.close();
  }
}

/** Today's path: the pipelines run synchronously on the event loop (the default). */
export class InlineFramePaths implements FramePaths {
  readonly mode = 'inline' as const;
  readonly #dsp: DspBackend;
  constructor(dsp: DspBackend) {
    this.#dsp = dsp;
  }
  /** Inline DSP cannot be lost behind the call's back: `onFailed` is never called. */
  openCall(_onFailed?: (reason: string) => void): CallDsp {
    return new InlineCallDsp(this.#dsp);
  }
}
