/**
 * The per-call frame paths a CallSession drives, as plain calls that return their output:
 *
 * ```text
 *  caller frame ──InboundPath.push(frame, seq, ts, now)──► PCM for the agent (maybe none: held by the jitter buffer)
 *  tick         ──InboundPath.poll(now)──────────────────► PCM released on its gap deadline (nothing to do while none is held)
 *  agent PCM    ──OutboundPath.push(pcm)─────────────────► whole 160-byte μ-law frames for Playout
 *  end of reply ──OutboundPath.flush()───────────────────► the resampler tail and last partial frame
 * ```
 *
 * Nothing calls back: the session hands what a call returns to the agent or to Playout.
 * Returned arrays are views into buffers the path reuses — consume them before the
 * path's next call. The worker-thread pool (BRIDGE_DSP_POOL, dsp/pool/dsp-pool.ts) is a
 * different, batched interface with results a batch later; it does not go through here.
 */
import type { DspBackend, InboundPipeline, InboundPipelineOptions, JitterStats, OutboundPipeline, OutboundPipelineOptions } from './backend.js';

/** Inbound dst size in whole resampled frames (a push may release several held frames at once). */
export const INBOUND_DST_FRAMES = 8;

/** What poll() returns on the ticks with nothing held (every call, every 20 ms): no view to allocate. */
const NO_PCM = new Int16Array(0);

/** Caller → agent: G.711 frames in, PCM16 at the agent's rate out (jitter buffer, PLC, resampler). */
export class InboundPath {
  readonly #p: InboundPipeline;
  readonly #dst: Int16Array;
  /** Output above this many samples: the release stopped for want of room in dst (more may be due). */
  readonly #fullAt: number;
  /**
   * Whether the jitter buffer may hold frames. The buffer never delays in-order audio: a
   * push into an empty buffer either releases what it pushed (and anything now due) or
   * holds it and releases nothing — so a frame can be left held only by a push that
   * released nothing, or one that filled dst. Until such a push, poll() has nothing to ask
   * the backend (for the native addon: no N-API call per call per tick); once it happens,
   * poll() asks until the buffer reports empty. test/dsp/frame-paths.test.ts checks the
   * output against a path that polls on every tick, on random arrival patterns.
   */
  #mayHold = false;
  #closed = false;

  constructor(dsp: DspBackend, options: InboundPipelineOptions) {
    this.#p = dsp.createInboundPipeline(options);
    this.#dst = new Int16Array(this.#p.maxFrameOutput * INBOUND_DST_FRAMES);
    this.#fullAt = this.#dst.length - this.#p.maxFrameOutput;
  }

  /** One 160-byte G.711 frame in; the PCM it releases (possibly empty) out. */
  push(payload: Uint8Array, seq: number, timestampMs: number, nowMs: number): Int16Array {
    const n = this.#p.push(payload, seq, timestampMs, nowMs, this.#dst);
    if (n === 0 || n > this.#fullAt) this.#mayHold = true;
    return this.#dst.subarray(0, n);
  }

  /** Whether the jitter buffer may hold frames: poll() has work only then. */
  get mayHold(): boolean {
    return this.#mayHold && !this.#closed;
  }

  /** PCM of frames whose gap deadline has passed (call on the ticks while `mayHold`; cheap otherwise). */
  poll(nowMs: number): Int16Array {
    if (!this.#mayHold || this.#closed) return NO_PCM;
    if (this.#p.bufferedFrames === 0) {
      this.#mayHold = false;
      return NO_PCM;
    }
    return this.#dst.subarray(0, this.#p.poll(nowMs, this.#dst));
  }

  /** Frames held in the jitter buffer. */
  get bufferedFrames(): number {
    return this.#closed ? 0 : this.#p.bufferedFrames;
  }

  stats(): JitterStats {
    return this.#p.stats();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#p.close();
  }
}

/** Agent → caller: PCM16 at the agent's rate in, whole 8 kHz μ-law frames out. */
export class OutboundPath {
  readonly fromHz: number;
  readonly #p: OutboundPipeline;
  #dst = new Uint8Array(160 * 64);

  /** Throws a BridgeError (DSP_*) for a rate or option the DSP refuses. */
  constructor(dsp: DspBackend, options: OutboundPipelineOptions) {
    this.#p = dsp.createOutboundPipeline(options);
    this.fromHz = options.fromHz;
  }

  /** Agent PCM in; the whole frames it completes out (a multiple of 160 bytes, possibly 0). */
  push(pcm: Int16Array): Uint8Array {
    return this.#dst.subarray(0, this.#p.push(pcm, this.#room(this.#p.maxOutputBytes(pcm.length))));
  }

  /** End of a response: the resampler tail and the last partial frame, padded with silence. */
  flush(): Uint8Array {
    return this.#dst.subarray(0, this.#p.flush(this.#room(this.#p.maxFlushBytes())));
  }

  /** Barge-in: drops pending audio and filter state. */
  reset(): void {
    this.#p.reset();
  }

  close(): void {
    this.#p.close();
  }

  #room(need: number): Uint8Array {
    if (this.#dst.length < need) this.#dst = new Uint8Array(need * 2);
    return this.#dst;
  }
}
