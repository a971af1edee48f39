/**
 * Inbound and outbound frame pipelines for the TS backend — the same design as
 * native/dsp-core/src/pipeline.rs (see the diagram there): the inbound one releases
 * frames only while dst has room for a whole resampled frame (the rest stays in the
 * jitter buffer); the outbound one checks dst against a state-independent bound
 * before touching state, resamples in fixed blocks, and emits exact 160-byte frames.
 */
import { BridgeError, ErrorCodes } from '../../errors.js';
import {
  FrameKind,
  type G711Codec,
  type InboundPipeline,
  type InboundPipelineOptions,
  type JitterStats,
  type OutboundPipeline,
  type OutboundPipelineOptions,
  type Resampler,
} from '../backend.js';
import { encodeAlaw, encodeUlaw } from './g711.js';
import { TsJitterBuffer } from './jitter-buffer.js';
import { createWasmResampler } from './wasm-resampler.js';

const FRAME = 160;
const RATE_8K = 8000;
const OUT_BLOCK = 1920;

function checkCodec(codec: unknown): G711Codec {
  if (codec !== 'ulaw' && codec !== 'alaw') {
    throw new BridgeError(ErrorCodes.DSP_ARGUMENT, "codec must be 'ulaw' or 'alaw'");
  }
  return codec;
}

function checkQuality(q: unknown): number {
  if (typeof q !== 'number' || !Number.isInteger(q) || q < 0 || q > 10) {
    throw new BridgeError(ErrorCodes.DSP_QUALITY, 'resampler quality must be an integer from 0 to 10');
  }
  return q;
}

function closedError(): BridgeError {
  return new BridgeError(ErrorCodes.DSP_CLOSED, 'used after close()');
}

function tooSmall(have: number, need: number): BridgeError {
  return new BridgeError(ErrorCodes.DSP_DST_TOO_SMALL, `destination holds ${have}, needs at least ${need}`);
}

export class TsInboundPipeline implements InboundPipeline {
  readonly toHz: number;
  readonly maxFrameOutput: number;
  #jb: TsJitterBuffer | null;
  #rs: Resampler | null;
  #pcm = new Int16Array(FRAME);
  #tailPending = false;

  constructor(o: InboundPipelineOptions) {
    const quality = checkQuality(o.quality ?? 7);
    const codec = checkCodec(o.codec ?? 'ulaw');
    this.toHz = o.toHz;
    this.#rs = o.toHz === RATE_8K ? null : createWasmResampler({ fromHz: RATE_8K, toHz: o.toHz, quality });
    try {
      this.#jb = new TsJitterBuffer({ ...(o.jitter ?? {}), codec });
    } catch (e) {
      this.#rs?.close();
      throw e;
    }
    this.maxFrameOutput = this.#rs ? this.#rs.maxOutput(FRAME) : FRAME;
  }

  #get(): TsJitterBuffer {
    if (!this.#jb) throw closedError();
    return this.#jb;
  }

  get bufferedFrames(): number {
    return this.#get().bufferedFrames;
  }

  push(payload: Uint8Array, seq: number, timestampMs: number, nowMs: number, dst: Int16Array): number {
    const jb = this.#get();
    if (dst.length < this.maxFrameOutput) throw tooSmall(dst.length, this.maxFrameOutput);
    jb.push(payload, seq, timestampMs, nowMs);
    this.#tailPending = true;
    return this.#release(jb, dst, nowMs);
  }

  poll(nowMs: number, dst: Int16Array): number {
    const jb = this.#get();
    if (dst.length < this.maxFrameOutput) throw tooSmall(dst.length, this.maxFrameOutput);
    return this.#release(jb, dst, nowMs);
  }

  flush(dst: Int16Array): number {
    const jb = this.#get();
    if (dst.length < this.maxFrameOutput) throw tooSmall(dst.length, this.maxFrameOutput);
    let written = this.#release(jb, dst, null);
    if (jb.bufferedFrames === 0 && this.#tailPending) {
      const rs = this.#rs;
      if (rs) {
        const need = rs.outputLatency + 1;
        if (dst.length - written >= need) {
          written += rs.flush(dst.subarray(written));
          this.#tailPending = false;
        }
      } else {
        this.#tailPending = false;
      }
    }
    return written;
  }

  #release(jb: TsJitterBuffer, dst: Int16Array, nowMs: number | null): number {
    let written = 0;
    const pcm = this.#pcm;
    while (dst.length - written >= this.maxFrameOutput) {
      const kind = nowMs === null ? jb.popForced(pcm) : jb.pop(nowMs, pcm);
      if (kind === FrameKind.None) break;
      if (this.#rs) {
        written += this.#rs.process(pcm, dst.subarray(written));
      } else {
        dst.set(pcm, written);
        written += FRAME;
      }
    }
    return written;
  }

  stats(): JitterStats {
    return this.#get().stats();
  }

  reset(): void {
    this.#get().reset();
    this.#rs?.reset();
    this.#tailPending = false;
  }

  close(): void {
    this.#jb?.close();
    this.#jb = null;
    this.#rs?.close();
    this.#rs = null;
  }
}

export class TsOutboundPipeline implements OutboundPipeline {
  readonly fromHz: number;
  #rs: Resampler | null;
  #encode: (src: Int16Array, dst: Uint8Array) => number;
  /** 8 kHz PCM: `pending` samples waiting for a full frame, then room for one block's output. */
  #acc: Int16Array;
  #pending = 0;
  #closed = false;
  #blockMax: number;

  constructor(o: OutboundPipelineOptions) {
    const quality = checkQuality(o.quality ?? 7);
    const codec = checkCodec(o.codec ?? 'ulaw');
    this.fromHz = o.fromHz;
    this.#encode = codec === 'ulaw' ? encodeUlaw : encodeAlaw;
    this.#rs = o.fromHz === RATE_8K ? null : createWasmResampler({ fromHz: o.fromHz, toHz: RATE_8K, quality });
    this.#blockMax = this.#rs ? this.#rs.maxOutput(OUT_BLOCK) : OUT_BLOCK;
    const tail = this.#rs ? this.#rs.outputLatency + 1 : 0;
    this.#acc = new Int16Array(FRAME + Math.max(this.#blockMax, tail));
  }

  #check(): void {
    if (this.#closed) throw closedError();
  }

  get pendingSamples(): number {
    this.#check();
    return this.#pending;
  }

  maxOutputBytes(inputSamples: number): number {
    this.#check();
    const full = Math.floor(inputSamples / OUT_BLOCK);
    const rest = inputSamples % OUT_BLOCK;
    let samples = FRAME - 1 + full * this.#blockMax;
    if (rest > 0) samples += this.#rs ? this.#rs.maxOutput(rest) : rest;
    return Math.floor(samples / FRAME) * FRAME;
  }

  maxFlushBytes(): number {
    this.#check();
    const tail = this.#rs ? this.#rs.outputLatency + 1 : 0;
    return Math.ceil((FRAME - 1 + tail) / FRAME) * FRAME;
  }

  push(src: Int16Array, dst: Uint8Array): number {
    this.#check();
    if (!(src instanceof Int16Array)) throw new BridgeError(ErrorCodes.DSP_ARGUMENT, 'src must be an Int16Array');
    const need = this.maxOutputBytes(src.length);
    if (dst.length < need) throw tooSmall(dst.length, need);
    let written = 0;
    for (let off = 0; off < src.length; off += OUT_BLOCK) {
      const block = src.subarray(off, Math.min(off + OUT_BLOCK, src.length));
      if (this.#rs) {
        this.#pending += this.#rs.process(block, this.#acc.subarray(this.#pending));
      } else {
        this.#acc.set(block, this.#pending);
        this.#pending += block.length;
      }
      written += this.#emit(dst.subarray(written));
    }
    return written;
  }

  #emit(dst: Uint8Array): number {
    const bytes = Math.floor(this.#pending / FRAME) * FRAME;
    if (bytes > 0) {
      this.#encode(this.#acc.subarray(0, bytes), dst);
      this.#acc.copyWithin(0, bytes, this.#pending);
      this.#pending -= bytes;
    }
    return bytes;
  }

  flush(dst: Uint8Array): number {
    this.#check();
    const need = this.maxFlushBytes();
    if (dst.length < need) throw tooSmall(dst.length, need);
    if (this.#rs) this.#pending += this.#rs.flush(this.#acc.subarray(this.#pending));
    let written = this.#emit(dst);
    if (this.#pending > 0) {
      this.#acc.fill(0, this.#pending, FRAME);
      this.#encode(this.#acc.subarray(0, FRAME), dst.subarray(written));
      written += FRAME;
      this.#pending = 0;
    }
    return written;
  }

  reset(): void {
    this.#check();
    this.#pending = 0;
    this.#rs?.reset();
  }

  close(): void {
    this.#closed = true;
    this.#rs?.close();
    this.#rs = null;
  }
}
