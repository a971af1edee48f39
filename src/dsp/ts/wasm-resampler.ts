/**
 * Resampler over the WASM libspeexdsp that ships inside the npm package
 * `speex-resampler` 3.0.1 (geekuillaume/node-speex-resampler `scripts/build_emscripten.sh`:
 * emscripten, float build, no SIMD, ALLOW_MEMORY_GROWTH, 20 MB initial heap).
 *
 * Why not the package's own `SpeexResampler.processChunk`:
 *  - it never calls `speex_resampler_destroy` (declared, never called) nor frees
 *    its malloc'd I/O and length buffers, so every instance leaks WASM heap for
 *    the life of the process;
 *  - every call allocates: `HEAPU8.slice()` copies the output into a new
 *    ArrayBuffer and `Buffer.from` wraps it;
 *  - it sizes the output buffer as ceil(bytes·out/in) *bytes* and ignores how
 *    much input Speex actually consumed, so a call that yields more samples
 *    than that bound silently drops input (8k→11.025k fed 1 sample at a time:
 *    8000 samples out instead of 11025, measured).
 *
 * This wrapper calls the module's exports directly. Per instance it makes
 * exactly two allocations in the WASM heap: the Speex state (inside
 * `speex_resampler_init`) and ONE block holding [in_len, out_len, input
 * scratch, output scratch]. The block is sized for the first chunk, grown only
 * when a larger chunk arrives, and capped (chunks beyond the cap are processed
 * in slices), so per-instance heap use is bounded. `close()` frees both; a
 * FinalizationRegistry frees them for instances that were never closed, but
 * that is only a safety net: GC timing is unbounded, and the WASM heap never
 * shrinks, so close() is the contract.
 *
 * Streaming semantics mirror libspeexdsp's plain `speex_resampler_process_int`
 * (the native backend does the same): the filter pre-delay is kept —
 * `speex_resampler_skip_zeros` is neither exported by this build nor called by
 * the package — so a fresh 8k→24k state turns 160 samples into 480, the first
 * ~outputLatency of which are the filter's build-up.
 *
 * The build exports only init, destroy, process_interleaved_int, get_rate,
 * strerror, malloc and free: there is no `reset_mem` and no latency getter.
 * So reset() destroys and re-creates the state (identical to a fresh
 * instance, including the `started` flag; ~14 µs at Q7), and the latencies are computed with
 * Speex's own formulas from `filt_len` (resample.c `update_filter`,
 * `speex_resampler_get_input_latency`/`get_output_latency`; xiph/speexdsp `libspeexdsp/resample.c`).
 * process_interleaved_int with one channel is process_int with stride 1.
 *
 * Memory growth replaces the heap's ArrayBuffer (and detaches the old one), so
 * heap views are read from the module after anything that can grow memory
 * (malloc, speex_resampler_init); the one cached view (output scratch) is
 * checked against the module's current buffer before each use.
 *
 * Call wasmReady() once at startup; before it resolves createWasmResampler()
 * throws BRIDGE_ERR_DSP_UNAVAILABLE. Loading the package also installs
 * process-wide error listeners; see loadPackage().
 */
import { createRequire } from 'node:module';
import { BridgeError, ErrorCodes } from '../../errors.js';
import type { Resampler, ResamplerOptions } from '../backend.js';

/** The parts of the emscripten module we use (names as exported by speex_wasm.js). */
interface SpeexWasmModule {
  HEAP16: Int16Array;
  HEAPU8: Uint8Array;
  HEAP32: Int32Array;
  _malloc(bytes: number): number;
  _free(ptr: number): void;
  _speex_resampler_init(channels: number, inRate: number, outRate: number, quality: number, errPtr: number): number;
  _speex_resampler_destroy(statePtr: number): void;
  _speex_resampler_process_interleaved_int(
    statePtr: number,
    inPtr: number,
    inLenPtr: number,
    outPtr: number,
    outLenPtr: number,
  ): number;
}

interface SpeexResamplerPackage {
  initPromise: Promise<unknown>;
}

// The package is CommonJS with an `exports.default`; require() gives the same
// object under Node and under vitest, whatever their ESM interop does.
const requireCjs = createRequire(import.meta.url);

/**
 * Loading the package runs its emscripten glue, which (Node branch of the
 * generated speex_wasm.js) adds two process-wide listeners:
 *   process.on('uncaughtException', ex => { throw ex })  -> exit code 7 instead of 1,
 *     and no application handler can keep the process alive;
 *   process.on('unhandledRejection', abort)              -> ANY unhandled rejection
 *     anywhere aborts the WASM module (every later Speex call fails) and then
 *     exits the process via the listener above.
 * A library must not own process-level error policy, so the listeners the
 * require() added are removed again. This only works when this module is the
 * first to load the package (the project's rule: one place per third-party
 * package).
 */
function loadPackage(): SpeexResamplerPackage {
  const uncaught = new Set(process.listeners('uncaughtException'));
  const unhandled = new Set(process.listeners('unhandledRejection'));
  const mod = requireCjs('speex-resampler') as { default?: SpeexResamplerPackage } & SpeexResamplerPackage;
  for (const l of process.listeners('uncaughtException')) if (!uncaught.has(l)) process.removeListener('uncaughtException', l);
  for (const l of process.listeners('unhandledRejection')) if (!unhandled.has(l)) process.removeListener('unhandledRejection', l);
  return mod.default ?? mod;
}

let speex: SpeexWasmModule | undefined;
let readyPromise: Promise<void> | undefined;

/**
 * Resolves once the WASM module is instantiated. Await it once at startup;
 * createWasmResampler() throws before that.
 */
export function wasmReady(): Promise<void> {
  readyPromise ??= loadPackage().initPromise.then((m) => {
    speex = m as SpeexWasmModule;
  });
  return readyPromise;
}

function speexModule(): SpeexWasmModule {
  if (speex === undefined) {
    throw new BridgeError(
      ErrorCodes.DSP_UNAVAILABLE,
      'the speex-resampler WASM module is not initialised yet: await wasmReady() before createWasmResampler()',
    );
  }
  return speex;
}

/** Current size of the WASM linear memory in bytes (it only ever grows). For leak tests and diagnostics. */
export function wasmHeapBytes(): number {
  return speexModule().HEAPU8.byteLength;
}

let liveAllocations = 0;
/** Number of resamplers whose WASM memory is still allocated (not closed, not finalized). */
export function wasmLiveResamplers(): number {
  return liveAllocations;
}

/** What an instance owns in the WASM heap; shared with the FinalizationRegistry (it must not reference the instance). */
interface WasmAllocation {
  /** SpeexResamplerState*, 0 once freed. */
  state: number;
  /** [u32 in_len][u32 out_len][i16 in × inCap][i16 out × outCap], 0 if not allocated yet. */
  block: number;
  /** Counted in wasmLiveResamplers() until freed. */
  live: boolean;
}

function freeAllocation(a: WasmAllocation): void {
  const m = speex;
  if (m === undefined) return;
  if (a.state !== 0) {
    m._speex_resampler_destroy(a.state);
    a.state = 0;
  }
  if (a.block !== 0) {
    m._free(a.block);
    a.block = 0;
  }
  if (a.live) {
    a.live = false;
    liveAllocations--;
  }
}

const finalizer = new FinalizationRegistry<WasmAllocation>(freeAllocation);

const MIN_RATE_HZ = 1000;
const MAX_RATE_HZ = 192000;
const DEFAULT_QUALITY = 7;
/** resample.c quality_map[].base_length. */
const BASE_LENGTH = [8, 16, 32, 48, 64, 80, 96, 128, 160, 192, 256] as const;
/** Largest input slice per WASM call (samples): bounds the scratch block. */
const MAX_SLICE_IN = 8192;
/** Largest output per WASM call (samples): bounds the scratch block at high up-ratios. */
const MAX_SLICE_OUT = 16384;
/** Header of the scratch block: in_len and out_len (u32 each). */
const HEADER_BYTES = 8;

function gcd(a: number, b: number): number {
  while (b !== 0) {
    const t = a % b;
    a = b;
    b = t;
  }
  return a;
}

function checkRate(name: string, hz: unknown): number {
  if (typeof hz !== 'number' || !Number.isInteger(hz) || hz < MIN_RATE_HZ || hz > MAX_RATE_HZ) {
    throw new BridgeError(ErrorCodes.DSP_RATE, `${name} must be an integer in ${MIN_RATE_HZ}..${MAX_RATE_HZ} Hz, got ${String(hz)}`);
  }
  return hz;
}

function checkInt16(name: string, a: unknown): Int16Array {
  if (!(a instanceof Int16Array)) {
    throw new BridgeError(ErrorCodes.DSP_ARGUMENT, `${name} must be an Int16Array`);
  }
  return a;
}

/**
 * Speex `filt_len` for a reduced ratio num/den (resample.c update_filter):
 * base length when upsampling; base·num/den (integer) rounded up to a multiple
 * of 8 when downsampling.
 */
function speexFilterLength(quality: number, num: number, den: number): number {
  const base = BASE_LENGTH[quality]!;
  if (num <= den) return base;
  const scaled = Math.floor(base / den) * num + Math.floor(((base % den) * num) / den);
  return ((scaled - 1) & ~7) + 8;
}

class WasmResampler implements Resampler {
  readonly fromHz: number;
  readonly toHz: number;
  readonly quality: number;
  readonly inputLatency: number;
  readonly outputLatency: number;

  /** Reduced ratio: in = num·k, out = den·k. */
  private readonly num: number;
  private readonly den: number;
  private readonly identity: boolean;
  private readonly sliceIn: number;
  private readonly mem: WasmAllocation = { state: 0, block: 0, live: false };
  /** Capacities of the scratch block, in samples. */
  private inCap = 0;
  private outCap = 0;
  /** View of the output scratch (see run()). */
  private outView: Int16Array | null = null;
  private closed = false;

  constructor(options: ResamplerOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new BridgeError(ErrorCodes.DSP_ARGUMENT, 'resampler options must be an object { fromHz, toHz, quality? }');
    }
    this.fromHz = checkRate('fromHz', options.fromHz);
    this.toHz = checkRate('toHz', options.toHz);
    const q = options.quality ?? DEFAULT_QUALITY;
    if (typeof q !== 'number' || !Number.isInteger(q) || q < 0 || q > 10) {
      throw new BridgeError(ErrorCodes.DSP_QUALITY, `quality must be an integer in 0..10, got ${String(q)}`);
    }
    this.quality = q;
    const m = speexModule();

    const g = gcd(this.fromHz, this.toHz);
    this.num = this.fromHz / g;
    this.den = this.toHz / g;
    this.identity = this.fromHz === this.toHz;
    this.sliceIn = Math.max(1, Math.min(MAX_SLICE_IN, Math.floor((MAX_SLICE_OUT * this.num) / this.den)));

    if (this.identity) {
      this.inputLatency = 0;
      this.outputLatency = 0;
      return;
    }
    const half = speexFilterLength(q, this.num, this.den) / 2;
    this.inputLatency = half;
    this.outputLatency = Math.floor((half * this.den + (this.num >> 1)) / this.num);

    this.initState(m);
    this.mem.live = true;
    liveAllocations++;
    finalizer.register(this, this.mem, this);
  }

  private initState(m: SpeexWasmModule): void {
    // Use the scratch block's header as the error slot if it exists; else a temporary.
    const errPtr = this.mem.block !== 0 ? this.mem.block : m._malloc(4);
    if (errPtr === 0) throw new BridgeError(ErrorCodes.DSP_UNAVAILABLE, 'WASM heap exhausted (malloc failed)');
    const state = m._speex_resampler_init(1, this.fromHz, this.toHz, this.quality, errPtr);
    const err = m.HEAP32[errPtr >> 2]!; // re-read: init may have grown memory
    if (errPtr !== this.mem.block) m._free(errPtr);
    if (state === 0 || err !== 0) {
      if (state !== 0) m._speex_resampler_destroy(state);
      throw new BridgeError(ErrorCodes.DSP_UNAVAILABLE, `speex_resampler_init failed (error ${err})`);
    }
    this.mem.state = state;
  }

  private assertOpen(): void {
    if (this.closed) throw new BridgeError(ErrorCodes.DSP_CLOSED, 'resampler used after close()');
  }

  maxOutput(inputSamples: number): number {
    this.assertOpen();
    if (!Number.isInteger(inputSamples) || inputSamples < 0) {
      throw new BridgeError(ErrorCodes.DSP_ARGUMENT, `inputSamples must be a non-negative integer, got ${String(inputSamples)}`);
    }
    return this.bound(inputSamples);
  }

  /**
   * Speex emits an output sample for every position p0 + k·num/den below the
   * input length, with 0 <= p0 (the carried-over read position), so
   * ceil(n·den/num) bounds the output for any state; a fresh state reaches it.
   */
  private bound(n: number): number {
    return this.identity ? n : Math.ceil((n * this.den) / this.num);
  }

  /** Grows the scratch block (never shrinks) so one call can take `nIn` samples in. */
  private ensureScratch(m: SpeexWasmModule, nIn: number): void {
    const nOut = this.bound(nIn);
    if (nIn <= this.inCap && nOut <= this.outCap) return;
    // At least one 20 ms frame, so a stream of frames allocates once.
    const inCap = Math.min(this.sliceIn, Math.max(nIn, this.inCap, Math.ceil(this.fromHz / 50)));
    const outCap = this.bound(inCap);
    const block = m._malloc(HEADER_BYTES + 2 * (inCap + outCap));
    if (block === 0) throw new BridgeError(ErrorCodes.DSP_UNAVAILABLE, 'WASM heap exhausted (malloc failed)');
    if (this.mem.block !== 0) m._free(this.mem.block);
    this.mem.block = block;
    this.inCap = inCap;
    this.outCap = outCap;
  }

  process(src: Int16Array, dst: Int16Array): number {
    this.assertOpen();
    checkInt16('src', src);
    checkInt16('dst', dst);
    const n = src.length;
    const need = this.bound(n);
    if (dst.length < need) {
      throw new BridgeError(ErrorCodes.DSP_DST_TOO_SMALL, `destination holds ${dst.length} samples, needs ${need} for ${n} input samples`);
    }
    if (this.identity) {
      dst.set(src);
      return n;
    }
    if (n === 0) return 0;
    const m = speex!;
    this.ensureScratch(m, Math.min(n, this.sliceIn));
    let written = 0;
    for (let off = 0; off < n; off += this.sliceIn) {
      const len = Math.min(this.sliceIn, n - off);
      written += this.run(m, off === 0 && len === n ? src : src.subarray(off, off + len), len, dst, written);
    }
    return written;
  }

  /** One WASM call: `len` samples of `src` (or zeros if src is null) in, output appended to dst at `at`. */
  private run(m: SpeexWasmModule, src: Int16Array | null, len: number, dst: Int16Array, at: number): number {
    const block = this.mem.block;
    const inPtr = block + HEADER_BYTES;
    const outPtr = inPtr + 2 * this.inCap;
    // No malloc between here and the copy-out; process_int does not allocate either,
    // but the views are still read from the module at each use (growth replaces them).
    let heap32 = m.HEAP32;
    heap32[block >> 2] = len;
    heap32[(block >> 2) + 1] = this.outCap;
    if (src === null) m.HEAP16.fill(0, inPtr >> 1, (inPtr >> 1) + len);
    else m.HEAP16.set(src, inPtr >> 1);
    const err = m._speex_resampler_process_interleaved_int(this.mem.state, inPtr, block, outPtr, block + 4);
    heap32 = m.HEAP32;
    const consumed = heap32[block >> 2]!;
    const out = heap32[(block >> 2) + 1]!;
    if (err !== 0 || consumed !== len) {
      // Cannot happen with outCap >= bound(len); if it does, the stream is corrupt.
      throw new Error(`speex_resampler_process_int: error ${err}, consumed ${consumed} of ${len}`);
    }
    // Copy out through a view of the output scratch, cached until the block moves or
    // memory grows (growth detaches the old buffer): a whole-view set() allocates
    // nothing, and a set() is ~3x faster than an element loop for a 480-sample frame.
    let view = this.outView;
    if (view === null || view.buffer !== m.HEAP16.buffer || view.byteOffset !== outPtr) {
      view = this.outView = new Int16Array(m.HEAP16.buffer, outPtr, this.outCap);
    }
    dst.set(out === this.outCap ? view : view.subarray(0, out), at);
    return out;
  }

  flush(dst: Int16Array): number {
    this.assertOpen();
    checkInt16('dst', dst);
    if (this.identity) return 0;
    // Contract (backend.ts): dst must hold outputLatency + 1 samples; the tail is
    // at most bound(inputLatency) <= outputLatency + 1.
    const need = this.outputLatency + 1;
    if (dst.length < need) {
      throw new BridgeError(ErrorCodes.DSP_DST_TOO_SMALL, `flush needs ${need} samples of destination, got ${dst.length}`);
    }
    const m = speex!;
    this.ensureScratch(m, this.inputLatency);
    const written = this.run(m, null, this.inputLatency, dst, 0);
    this.resetState(m);
    return written;
  }

  reset(): void {
    this.assertOpen();
    if (this.identity) return;
    this.resetState(speex!);
  }

  /** No speex_resampler_reset_mem in this build: destroy and re-create (exactly a fresh state). */
  private resetState(m: SpeexWasmModule): void {
    m._speex_resampler_destroy(this.mem.state);
    this.mem.state = 0;
    try {
      this.initState(m);
    } catch (e) {
      // Without a state the instance is unusable: release the rest and mark it closed.
      this.close();
      throw e;
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.identity) return;
    finalizer.unregister(this);
    freeAllocation(this.mem);
  }
}

/** Creates a Speex resampler over the WASM module. Await wasmReady() first. */
export function createWasmResampler(options: ResamplerOptions): Resampler {
  return new WasmResampler(options);
}
