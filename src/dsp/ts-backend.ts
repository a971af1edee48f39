/**
 * The `ts` DSP backend: pure-TypeScript G.711, jitter buffer and PLC; resampling
 * through the speex-resampler WASM package (wrapped so close() frees its memory).
 * Used where the native addon does not build; runs the same contract tests.
 */
import type {
  DspBackend,
  InboundPipeline,
  InboundPipelineOptions,
  JitterBuffer,
  JitterBufferOptions,
  OutboundPipeline,
  OutboundPipelineOptions,
  Resampler,
  ResamplerOptions,
} from './backend.js';
import { decodeAlaw, decodeUlaw, encodeAlaw, encodeUlaw } from './ts/g711.js';
import { TsJitterBuffer } from './ts/jitter-buffer.js';
import { TsInboundPipeline, TsOutboundPipeline } from './ts/pipelines.js';
import { createWasmResampler, wasmReady } from './ts/wasm-resampler.js';

export class TsDspBackend implements DspBackend {
  readonly name = 'ts' as const;
  decodeUlaw = decodeUlaw;
  encodeUlaw = encodeUlaw;
  decodeAlaw = decodeAlaw;
  encodeAlaw = encodeAlaw;
  createResampler(o: ResamplerOptions): Resampler {
    return createWasmResampler(o);
  }
  createJitterBuffer(o: JitterBufferOptions = {}): JitterBuffer {
    return new TsJitterBuffer(o);
  }
  createInboundPipeline(o: InboundPipelineOptions): InboundPipeline {
    return new TsInboundPipeline(o);
  }
  createOutboundPipeline(o: OutboundPipelineOptions): OutboundPipeline {
    return new TsOutboundPipeline(o);
  }
}

/** The ts backend once its WASM module is initialised. */
export async function createTsBackend(): Promise<TsDspBackend> {
  await wasmReady();
  return new TsDspBackend();
}
