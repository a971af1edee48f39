/**
 * EnergyVad: a frame-based energy voice-activity detector for PCM16 mono at any
 * rate. The echo agent uses it on caller audio, and the bridge uses it to raise
 * barge-in for agents without a VAD of their own (AgentSession.hasVad = false).
 *
 * A frame is "voiced" when its RMS level (dBFS, see frameDbfs) is
 *   - at or above the absolute threshold `thresholdDbfs`, AND
 *   - at least `minSnrDb` above the adaptive noise floor.
 *
 * The noise floor is the minimum frame level over the previous `noiseWindowMs`
 * (minimum statistics): it falls at once when the line gets quieter and rises only
 * after a louder level has lasted a whole window. Speech always has quieter gaps
 * between syllables and words within a second, so the floor stays under speech;
 * stationary line noise (hum, hiss) becomes the floor within one window and then
 * stops counting as voiced. Until a window of history exists, the unseen part of
 * it counts as `initialNoiseFloorDbfs` (−100: only the absolute threshold applies),
 * so a caller who speaks the moment the stream starts is still heard.
 *
 * ```text
 *            voiced run ≥ startMs                 unvoiced run ≥ silenceMs
 *   silence ─────────────────────► speaking ─────────────────────────────► silence
 *           returns 'speechStart'            returns 'speechEnd'
 *           speechStartSample = first        speechEndSample = end of the last
 *           sample of the voiced run         voiced frame (the hangover is not speech)
 * ```
 *
 * Durations are whole frames of `frameMs` (20 ms: one Twilio frame) and time is
 * counted in samples. process() takes one frame, normally of `frameSamples`; a
 * frame of another length (a resampler's output can be a sample longer or shorter)
 * is classified as it is and advances the clock by its own length, so a call is
 * never broken by an odd frame. process() allocates nothing: the level history is
 * a preallocated ring (one entry per frame, so it spans noiseWindowMs of 20 ms frames).
 */
import { BridgeError, ErrorCodes } from '../errors.js';

/** What process() reports for a frame. 'speech' / 'silence' are the steady states. */
export type VadState = 'silence' | 'speechStart' | 'speech' | 'speechEnd';

export interface EnergyVadOptions {
  /** Sample rate of the PCM16 frames; sampleRateHz × frameMs / 1000 must be a whole number. */
  readonly sampleRateHz: number;
  /** Frame duration; default 20 ms. Every frame passed to process() has exactly this many samples. */
  readonly frameMs?: number;
  /** Absolute threshold; default −40 dBFS (Config.echo.vadThresholdDbfs). */
  readonly thresholdDbfs?: number;
  /** How far above the noise floor a voiced frame must be; default 10 dB. */
  readonly minSnrDb?: number;
  /** Voiced time that starts speech; default 60 ms (rounded up to whole frames). */
  readonly startMs?: number;
  /** Unvoiced time that ends speech (hangover); default 600 ms (Config.echo.silenceMs). */
  readonly silenceMs?: number;
  /** Window of the minimum-statistics noise floor; default 1000 ms. */
  readonly noiseWindowMs?: number;
  /** Floor assumed for the part of the window not yet seen; default −100 dBFS. */
  readonly initialNoiseFloorDbfs?: number;
}

/** Level reported for digital silence (log of zero). */
export const DBFS_FLOOR = -100;

/**
 * RMS level of PCM16 samples in dBFS: 20·log10(rms / 32768), floored at −100 for
 * digital silence. (A full-scale square wave is 0 dBFS, a full-scale sine −3.01 dBFS.)
 */
export function frameDbfs(frame: Int16Array, start = 0, end = frame.length): number {
  const n = end - start;
  if (n <= 0) return DBFS_FLOOR;
  let sum = 0;
  for (let i = start; i < end; i++) {
    const x = frame[i]!;
    sum += x * x;
  }
  if (sum === 0) return DBFS_FLOOR;
  // 10·log10(mean square / 32768²)
  const db = 10 * Math.log10(sum / n) - 90.30899869919435;
  return db < DBFS_FLOOR ? DBFS_FLOOR : db;
}

export class EnergyVad {
  readonly sampleRateHz: number;
  readonly frameMs: number;
  readonly frameSamples: number;
  readonly thresholdDbfs: number;
  readonly minSnrDb: number;
  /** startMs and silenceMs rounded up to whole frames. */
  readonly startFrames: number;
  readonly silenceFrames: number;
  readonly #startSamples: number;
  readonly #silenceSamples: number;
  readonly initialNoiseFloorDbfs: number;

  /** Levels of the last noiseWindow frames (ring). */
  readonly #history: Float64Array;
  #historyPos = 0;
  #speaking = false;
  /** Samples in the current voiced run (before speech) / unvoiced run (in speech). */
  #voicedRun = 0;
  #unvoicedRun = 0;
  #runStartSample = 0;
  #lastVoicedEndSample = 0;
  #speechStartSample = -1;
  #speechEndSample = -1;
  #samples = 0;
  /**
   * [last frame level, noise floor]: doubles kept in a typed array, because V8 boxes a
   * double stored in an object field (a heap allocation per frame, measured ~8 B/frame).
   */
  readonly #levels = new Float64Array(2);

  constructor(options: EnergyVadOptions) {
    const rate = options.sampleRateHz;
    const frameMs = options.frameMs ?? 20;
    if (!Number.isInteger(rate) || rate < 1000 || rate > 192_000) {
      throw new BridgeError(ErrorCodes.DSP_RATE, `EnergyVad: sample rate ${rate} Hz is not an integer from 1000 to 192000`);
    }
    const frameSamples = (rate * frameMs) / 1000;
    if (!Number.isInteger(frameSamples) || frameSamples < 1) {
      throw new BridgeError(ErrorCodes.DSP_ARGUMENT, `EnergyVad: ${frameMs} ms at ${rate} Hz is not a whole number of samples`);
    }
    const ms = (name: string, v: number | undefined, def: number, min: number): number => {
      const x = v ?? def;
      if (!Number.isFinite(x) || x < min) throw new BridgeError(ErrorCodes.DSP_ARGUMENT, `EnergyVad: ${name}=${x} must be a number ≥ ${min}`);
      return x;
    };
    this.sampleRateHz = rate;
    this.frameMs = frameMs;
    this.frameSamples = frameSamples;
    this.thresholdDbfs = ms('thresholdDbfs', options.thresholdDbfs, -40, -200);
    this.minSnrDb = ms('minSnrDb', options.minSnrDb, 10, 0);
    this.startFrames = Math.max(1, Math.ceil(ms('startMs', options.startMs, 60, 0) / frameMs));
    this.silenceFrames = Math.max(1, Math.ceil(ms('silenceMs', options.silenceMs, 600, 0) / frameMs));
    this.#startSamples = this.startFrames * frameSamples;
    this.#silenceSamples = this.silenceFrames * frameSamples;
    const windowFrames = Math.max(1, Math.ceil(ms('noiseWindowMs', options.noiseWindowMs, 1000, 0) / frameMs));
    this.initialNoiseFloorDbfs = ms('initialNoiseFloorDbfs', options.initialNoiseFloorDbfs, DBFS_FLOOR, -200);
    this.#history = new Float64Array(windowFrames);
    this.reset();
  }

  /** Whether the detector is in speech (between 'speechStart' and 'speechEnd'). */
  get speaking(): boolean {
    return this.#speaking;
  }
  /** Level of the last frame processed. */
  get levelDbfs(): number {
    return this.#levels[0]!;
  }
  /** Noise floor the last frame was judged against. */
  get noiseFloorDbfs(): number {
    return this.#levels[1]!;
  }
  /** Samples processed since construction / reset(): the detector's clock. */
  get samplesProcessed(): number {
    return this.#samples;
  }
  /** First sample of the current / last speech (the start of its voiced run); −1 before any. */
  get speechStartSample(): number {
    return this.#speechStartSample;
  }
  /** End (exclusive) of the last voiced frame of the last ended speech; −1 before any. */
  get speechEndSample(): number {
    return this.#speechEndSample;
  }

  /**
   * Classifies one frame of PCM16 (normally `frameSamples` long; see the header for
   * other lengths). An empty frame changes nothing and reports the steady state.
   */
  process(frame: Int16Array): VadState {
    const len = frame.length;
    if (len === 0) return this.#speaking ? 'speech' : 'silence';
    const level = frameDbfs(frame);
    // Floor from the previous window only: the frame under test does not lower its own bar.
    const h = this.#history;
    let floor = h[0]!;
    for (let i = 1; i < h.length; i++) if (h[i]! < floor) floor = h[i]!;
    h[this.#historyPos] = level;
    this.#historyPos = this.#historyPos + 1 === h.length ? 0 : this.#historyPos + 1;
    this.#levels[0] = level;
    this.#levels[1] = floor;

    const frameStart = this.#samples;
    this.#samples += len;
    const voiced = level >= this.thresholdDbfs && level >= floor + this.minSnrDb;

    if (!this.#speaking) {
      if (!voiced) {
        this.#voicedRun = 0;
        return 'silence';
      }
      if (this.#voicedRun === 0) this.#runStartSample = frameStart;
      this.#voicedRun += len;
      if (this.#voicedRun < this.#startSamples) return 'silence';
      this.#speaking = true;
      this.#voicedRun = 0;
      this.#unvoicedRun = 0;
      this.#speechStartSample = this.#runStartSample;
      this.#lastVoicedEndSample = this.#samples;
      return 'speechStart';
    }
    if (voiced) {
      this.#unvoicedRun = 0;
      this.#lastVoicedEndSample = this.#samples;
      return 'speech';
    }
    this.#unvoicedRun += len;
    if (this.#unvoicedRun < this.#silenceSamples) return 'speech';
    return this.#endSpeech();
  }

  /**
   * Ends speech now, e.g. when caller audio stopped arriving (a server VAD that
   * never sees silence never ends the turn:
   * twilio-samples/speech-assistant-openai-realtime-api-python#6). Returns
   * 'speechEnd' if speaking, else 'silence'.
   */
  end(): VadState {
    return this.#speaking ? this.#endSpeech() : 'silence';
  }

  /** Forgets all history and the clock (a new stream). */
  reset(): void {
    this.#history.fill(this.initialNoiseFloorDbfs);
    this.#historyPos = 0;
    this.#speaking = false;
    this.#voicedRun = 0;
    this.#unvoicedRun = 0;
    this.#runStartSample = 0;
    this.#lastVoicedEndSample = 0;
    this.#speechStartSample = -1;
    this.#speechEndSample = -1;
    this.#samples = 0;
    this.#levels[0] = DBFS_FLOOR;
    this.#levels[1] = this.initialNoiseFloorDbfs;
  }

  #endSpeech(): VadState {
    this.#speaking = false;
    this.#unvoicedRun = 0;
    this.#voicedRun = 0;
    this.#speechEndSample = this.#lastVoicedEndSample;
    return 'speechEnd';
  }
}
