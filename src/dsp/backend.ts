/**
 * The DSP contract. Two implementations: `native` (thin adapter over the Rust
 * addon in native/dsp-node) and `ts` (pure TypeScript + the speex-resampler WASM
 * package). One contract test suite runs against both (test/dsp/contract.test.ts).
 *
 * Rules of the boundary:
 *  - only typed arrays and numbers cross it on the frame path;
 *  - outputs go into caller-supplied buffers; methods return how much they wrote;
 *  - nothing is allocated per frame;
 *  - bad input throws BridgeError with a stable code and leaves state unchanged;
 *  - any object used after close() throws BRIDGE_ERR_DSP_CLOSED.
 */

export type DspBackendName = 'native' | 'ts';
export type G711Codec = 'ulaw' | 'alaw';

export interface ResamplerOptions {
  fromHz: number;
  toHz: number;
  /** Speex quality 0–10; default 7. */
  quality?: number;
}

/** A streaming resampler for mono PCM16 (Speex algorithm family). */
export interface Resampler {
  readonly fromHz: number;
  readonly toHz: number;
  readonly quality: number;
  /** Filter delay in input samples (Speex `get_input_latency`). */
  readonly inputLatency: number;
  /** Filter delay in output samples (Speex `get_output_latency`). */
  readonly outputLatency: number;
  /** Upper bound of the samples process() can write for `inputSamples` of input. */
  maxOutput(inputSamples: number): number;
  /** Consumes all of `src`; returns samples written into `dst`. Throws DST_TOO_SMALL (nothing consumed) if dst.length < maxOutput(src.length). */
  process(src: Int16Array, dst: Int16Array): number;
  /** Drains the filter tail (end of speech), then resets; returns samples written. dst must hold outputLatency + 1 samples. */
  flush(dst: Int16Array): number;
  /** Drops all history (on interruption). Never called on a timer. */
  reset(): void;
  /** Releases native / WASM memory. Idempotent. */
  close(): void;
}

export interface JitterBufferOptions {
  /** G.711 codec of the payloads; default 'ulaw'. */
  codec?: G711Codec;
  /** Maximum frames held (bounded memory); default 50 (1 s). */
  capacityFrames?: number;
  /** Initial target delay; default 20 ms. */
  initialDelayMs?: number;
  /** Lower bound of the adaptive target delay; default 0 ms. */
  minDelayMs?: number;
  /** Upper bound of the adaptive target delay; default 200 ms. */
  maxDelayMs?: number;
  /** Largest gap (in frames) filled with concealment/silence; a larger jump resyncs. Default 50 (1 s). */
  maxGapFillFrames?: number;
}

/** Result of JitterBuffer.push(). */
export const PushResult = { Accepted: 0, Duplicate: 1, Late: 2, Resync: 3 } as const;
export type PushResult = (typeof PushResult)[keyof typeof PushResult];

/** What JitterBuffer.pop() produced. */
export const FrameKind = { None: 0, Normal: 1, Concealed: 2, Silence: 3 } as const;
export type FrameKind = (typeof FrameKind)[keyof typeof FrameKind];

export interface JitterStats {
  framesIn: number;
  framesOut: number;
  duplicate: number;
  late: number;
  lost: number;
  concealed: number;
  resyncs: number;
  bufferedFrames: number;
  currentDelayMs: number;
  targetDelayMs: number;
}

/** Jitter buffer for 20 ms 8 kHz G.711 frames with packet-loss concealment. Times are ms on one monotonic clock. */
export interface JitterBuffer {
  /** payload: exactly 160 bytes. seq and timestampMs are unsigned 32-bit (they wrap). */
  push(payload: Uint8Array, seq: number, timestampMs: number, nowMs: number): PushResult;
  /** Writes the next 160 samples of 8 kHz PCM into dst (length ≥ 160) if a frame is due; returns its kind (None: nothing due). */
  pop(nowMs: number, dst: Int16Array): FrameKind;
  stats(): JitterStats;
  reset(): void;
  close(): void;
}

export interface InboundPipelineOptions {
  /** Output rate for the agent (8000 → no resampling). */
  toHz: number;
  quality?: number;
  codec?: G711Codec;
  jitter?: Omit<JitterBufferOptions, 'codec'>;
}

/** Caller → agent: one G.711 frame in, PCM16 at toHz out (after jitter buffering, PLC and resampling). */
export interface InboundPipeline {
  readonly toHz: number;
  /** Most samples one released 20 ms frame can produce; size dst as a multiple of it. */
  readonly maxFrameOutput: number;
  /** Frames held in the jitter buffer (waiting for a gap to fill): schedule poll() while > 0. */
  readonly bufferedFrames: number;
  /** Pushes one frame and releases every frame now due, as many as fit in dst; returns samples written. */
  push(payload: Uint8Array, seq: number, timestampMs: number, nowMs: number, dst: Int16Array): number;
  /** Releases frames whose gap deadline has passed (call on a timer while frames are held); returns samples written. */
  poll(nowMs: number, dst: Int16Array): number;
  /** Releases everything held (gaps concealed), then the resampler tail; returns samples written. If dst is short, call again until it returns 0. */
  flush(dst: Int16Array): number;
  stats(): JitterStats;
  reset(): void;
  close(): void;
}

export interface OutboundPipelineOptions {
  /** Rate of the agent's PCM16 (8000 → no resampling). */
  fromHz: number;
  quality?: number;
  codec?: G711Codec;
}

/** Agent → caller: PCM16 at fromHz in any chunk size, exact 160-byte 8 kHz G.711 frames out. */
export interface OutboundPipeline {
  readonly fromHz: number;
  /** Samples (at 8 kHz) waiting for a full frame: always < 160 after push(). */
  readonly pendingSamples: number;
  /** Upper bound of the bytes push() writes for `inputSamples` of input (a multiple of 160). */
  maxOutputBytes(inputSamples: number): number;
  /** Returns bytes written: a multiple of 160. Throws DST_TOO_SMALL (nothing consumed) if dst.length < maxOutputBytes(src.length). */
  push(src: Int16Array, dst: Uint8Array): number;
  /** Bytes flush() may write (pending partial frame + resampler tail, padded to whole frames). */
  maxFlushBytes(): number;
  /** End of an utterance: drains the resampler tail, pads the last partial frame with silence; returns bytes (multiple of 160). Throws DST_TOO_SMALL if dst.length < maxFlushBytes(). */
  flush(dst: Uint8Array): number;
  /** Drops pending audio and filter state (on barge-in). */
  reset(): void;
  close(): void;
}

export interface DspBackend {
  readonly name: DspBackendName;
  decodeUlaw(src: Uint8Array, dst: Int16Array): number;
  encodeUlaw(src: Int16Array, dst: Uint8Array): number;
  decodeAlaw(src: Uint8Array, dst: Int16Array): number;
  encodeAlaw(src: Int16Array, dst: Uint8Array): number;
  createResampler(options: ResamplerOptions): Resampler;
  createJitterBuffer(options?: JitterBufferOptions): JitterBuffer;
  createInboundPipeline(options: InboundPipelineOptions): InboundPipeline;
  createOutboundPipeline(options: OutboundPipelineOptions): OutboundPipeline;
}
