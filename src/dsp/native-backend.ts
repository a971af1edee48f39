/**
 * The `native` DSP backend: a thin adapter over the Rust addon (native/dsp-node).
 * No algorithms here — argument defaults, error translation, close() bookkeeping.
 * This is the only module that loads the addon.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BridgeError, ErrorCodes, type ErrorCode } from '../errors.js';
import { rawValue } from '../env-schema.js';
import type {
  DspBackend,
  FrameKind,
  InboundPipeline,
  InboundPipelineOptions,
  JitterBuffer,
  JitterBufferOptions,
  JitterStats,
  OutboundPipeline,
  OutboundPipelineOptions,
  PushResult,
  Resampler,
  ResamplerOptions,
} from './backend.js';

/** Shape of the addon's exports (generated typings live in native/dsp-node/index.d.cts). */
interface Addon {
  decodeUlaw(src: Uint8Array, dst: Int16Array): number;
  encodeUlaw(src: Int16Array, dst: Uint8Array): number;
  decodeAlaw(src: Uint8Array, dst: Int16Array): number;
  encodeAlaw(src: Int16Array, dst: Uint8Array): number;
  simdLevel(): string;
  NativeResampler: new (fromHz: number, toHz: number, quality: number) => AddonResampler;
  NativeJitterBuffer: new (options?: JitterBufferOptions) => AddonJitter;
  NativeInboundPipeline: new (toHz: number, quality: number, codec: string, jitter?: JitterBufferOptions) => AddonInbound;
  NativeOutboundPipeline: new (fromHz: number, quality: number, codec: string) => AddonOutbound;
}
interface AddonResampler {
  readonly inputLatency: number;
  readonly outputLatency: number;
  maxOutput(n: number): number;
  process(src: Int16Array, dst: Int16Array): number;
  flush(dst: Int16Array): number;
  reset(): void;
  close(): void;
}
interface AddonJitter {
  push(payload: Uint8Array, seq: number, timestampMs: number, nowMs: number): number;
  pop(nowMs: number, dst: Int16Array): number;
  popForced(dst: Int16Array): number;
  stats(): JitterStats;
  reset(): void;
  close(): void;
}
interface AddonInbound {
  readonly maxFrameOutput: number;
  readonly bufferedFrames: number;
  push(payload: Uint8Array, seq: number, timestampMs: number, nowMs: number, dst: Int16Array): number;
  poll(nowMs: number, dst: Int16Array): number;
  flush(dst: Int16Array): number;
  stats(): JitterStats;
  reset(): void;
  close(): void;
}
interface AddonOutbound {
  readonly pendingSamples: number;
  maxOutputBytes(n: number): number;
  maxFlushBytes(): number;
  push(src: Int16Array, dst: Uint8Array): number;
  flush(dst: Uint8Array): number;
  reset(): void;
  close(): void;
}

const KNOWN_CODES = new Set<string>(Object.values(ErrorCodes));

/** Turns an addon error ("BRIDGE_ERR_X: text", or napi's own InvalidArg for a wrong typed array) into a BridgeError. */
function translate(e: unknown): never {
  if (e instanceof BridgeError) throw e;
  const message = e instanceof Error ? e.message : String(e);
  const m = /^(BRIDGE_ERR_[A-Z0-9_]+): (.*)$/s.exec(message);
  if (m && KNOWN_CODES.has(m[1]!)) throw new BridgeError(m[1] as ErrorCode, m[2]!, { cause: e });
  throw new BridgeError(ErrorCodes.DSP_ARGUMENT, message, { cause: e });
}

function call<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    translate(e);
  }
}

/** Locates and loads the addon; throws with the reason when it is missing or broken. */
export function loadAddon(): Addon {
  const here = dirname(fileURLToPath(import.meta.url));
  // src/dsp → ../../native/dsp-node ; dist/dsp → ../../native/dsp-node.
  // BRIDGE_DSP_ADDON points at a prebuilt addon (its index.cjs loader or the .node file).
  const loader = rawValue(process.env, 'BRIDGE_DSP_ADDON') ?? join(here, '..', '..', 'native', 'dsp-node', 'index.cjs');
  if (!existsSync(loader)) {
    throw new Error(`native addon not built (${loader} missing; run "npm run build:native" with cargo installed)`);
  }
  const require = createRequire(import.meta.url);
  return require(loader) as Addon;
}

class NativeResamplerAdapter implements Resampler {
  readonly inputLatency: number;
  readonly outputLatency: number;
  readonly quality: number;
  #r: AddonResampler;
  constructor(addon: Addon, readonly fromHz: number, readonly toHz: number, quality: number) {
    this.quality = quality;
    this.#r = call(() => new addon.NativeResampler(fromHz, toHz, quality));
    this.inputLatency = this.#r.inputLatency;
    this.outputLatency = this.#r.outputLatency;
  }
  maxOutput(n: number): number {
    return call(() => this.#r.maxOutput(n));
  }
  process(src: Int16Array, dst: Int16Array): number {
    try {
      return this.#r.process(src, dst);
    } catch (e) {
      translate(e);
    }
  }
  flush(dst: Int16Array): number {
    return call(() => this.#r.flush(dst));
  }
  reset(): void {
    call(() => this.#r.reset());
  }
  close(): void {
    this.#r.close();
  }
}

class NativeJitterAdapter implements JitterBuffer {
  #j: AddonJitter;
  constructor(addon: Addon, options: JitterBufferOptions) {
    this.#j = call(() => new addon.NativeJitterBuffer(options));
  }
  push(payload: Uint8Array, seq: number, timestampMs: number, nowMs: number): PushResult {
    try {
      return this.#j.push(payload, seq, timestampMs, nowMs) as PushResult;
    } catch (e) {
      translate(e);
    }
  }
  pop(nowMs: number, dst: Int16Array): FrameKind {
    try {
      return this.#j.pop(nowMs, dst) as FrameKind;
    } catch (e) {
      translate(e);
    }
  }
  popForced(dst: Int16Array): FrameKind {
    return call(() => this.#j.popForced(dst) as FrameKind);
  }
  stats(): JitterStats {
    return call(() => this.#j.stats());
  }
  reset(): void {
    call(() => this.#j.reset());
  }
  close(): void {
    this.#j.close();
  }
}

class NativeInboundAdapter implements InboundPipeline {
  readonly maxFrameOutput: number;
  #p: AddonInbound;
  constructor(addon: Addon, readonly toHz: number, quality: number, codec: string, jitter: JitterBufferOptions) {
    this.#p = call(() => new addon.NativeInboundPipeline(toHz, quality, codec, jitter));
    this.maxFrameOutput = this.#p.maxFrameOutput;
  }
  // Read on every tick of every call: no closure (as push).
  get bufferedFrames(): number {
    try {
      return this.#p.bufferedFrames;
    } catch (e) {
      translate(e);
    }
  }
  push(payload: Uint8Array, seq: number, timestampMs: number, nowMs: number, dst: Int16Array): number {
    try {
      return this.#p.push(payload, seq, timestampMs, nowMs, dst);
    } catch (e) {
      translate(e);
    }
  }
  poll(nowMs: number, dst: Int16Array): number {
    return call(() => this.#p.poll(nowMs, dst));
  }
  flush(dst: Int16Array): number {
    return call(() => this.#p.flush(dst));
  }
  stats(): JitterStats {
    return call(() => this.#p.stats());
  }
  reset(): void {
    call(() => this.#p.reset());
  }
  close(): void {
    this.#p.close();
  }
}

class NativeOutboundAdapter implements OutboundPipeline {
  #p: AddonOutbound;
  constructor(addon: Addon, readonly fromHz: number, quality: number, codec: string) {
    this.#p = call(() => new addon.NativeOutboundPipeline(fromHz, quality, codec));
  }
  get pendingSamples(): number {
    return call(() => this.#p.pendingSamples);
  }
  maxOutputBytes(n: number): number {
    try {
      return this.#p.maxOutputBytes(n);
    } catch (e) {
      translate(e);
    }
  }
  maxFlushBytes(): number {
    return call(() => this.#p.maxFlushBytes());
  }
  push(src: Int16Array, dst: Uint8Array): number {
    try {
      return this.#p.push(src, dst);
    } catch (e) {
      translate(e);
    }
  }
  flush(dst: Uint8Array): number {
    return call(() => this.#p.flush(dst));
  }
  reset(): void {
    call(() => this.#p.reset());
  }
  close(): void {
    this.#p.close();
  }
}

export class NativeDspBackend implements DspBackend {
  readonly name = 'native' as const;
  /** The resampler kernel chosen for this CPU at run time ('avx2+fma', 'sse2', 'scalar', ...). */
  readonly simd: string;
  readonly #a: Addon;

  constructor(addon: Addon = loadAddon()) {
    this.#a = addon;
    this.simd = addon.simdLevel();
  }
  decodeUlaw(src: Uint8Array, dst: Int16Array): number {
    try {
      return this.#a.decodeUlaw(src, dst);
    } catch (e) {
      translate(e);
    }
  }
  encodeUlaw(src: Int16Array, dst: Uint8Array): number {
    try {
      return this.#a.encodeUlaw(src, dst);
    } catch (e) {
      translate(e);
    }
  }
  decodeAlaw(src: Uint8Array, dst: Int16Array): number {
    try {
      return this.#a.decodeAlaw(src, dst);
    } catch (e) {
      translate(e);
    }
  }
  encodeAlaw(src: Int16Array, dst: Uint8Array): number {
    try {
      return this.#a.encodeAlaw(src, dst);
    } catch (e) {
      translate(e);
    }
  }
  createResampler(o: ResamplerOptions): Resampler {
    return new NativeResamplerAdapter(this.#a, o.fromHz, o.toHz, o.quality ?? 7);
  }
  createJitterBuffer(o: JitterBufferOptions = {}): JitterBuffer {
    return new NativeJitterAdapter(this.#a, o);
  }
  createInboundPipeline(o: InboundPipelineOptions): InboundPipeline {
    return new NativeInboundAdapter(this.#a, o.toHz, o.quality ?? 7, o.codec ?? 'ulaw', o.jitter ?? {});
  }
  createOutboundPipeline(o: OutboundPipelineOptions): OutboundPipeline {
    return new NativeOutboundAdapter(this.#a, o.fromHz, o.quality ?? 7, o.codec ?? 'ulaw');
  }
}
