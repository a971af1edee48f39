/**
 * The built-in `echo` agent: no keys, no network. It listens with EnergyVad, keeps
 * the caller's utterance, and when the caller stops it plays the utterance back,
 * the way a real AI service answers: in chunks, in bursts faster than real time,
 * tagged with a responseId, then `responseDone`. It is the default agent so the
 * quick start works on a fresh machine, and it exercises the call core's paths:
 * PCM16 at 8/16/24/48 kHz (DSP runs) or μ-law 8 kHz (identity pipeline, no DSP).
 *
 * ```text
 *                 speechStart                       speechEnd (or no input for silenceMs)
 *   listening ──────────────────► caller speaking ──────────────────────────────► responding
 *       ▲     (interruption if a response is           caller transcript,            │ every chunkIntervalMs:
 *       │      being emitted or may still be           utterance copied out          │ 'audio' chunk of chunkMs
 *       │      playing at the caller)                                                │ (first: agent transcript)
 *       └──────── 'responseDone' ◄───────────────────────────────────────────────────┘
 *       └──────── interrupt({ heardMs }) / caller speechStart: emission stops, no responseDone
 * ```
 *
 * Clock: caller audio arrives in real time (Twilio sends a frame every 20 ms even in
 * silence), so "may the reply still be playing?" is measured on the caller-sample
 * clock — playback started when the first chunk went out and lasts as long as the
 * audio emitted so far, plus `playoutSlackMs` for the bridge's playout lead and
 * jitter. No wall clock is read, which also lets tests drive time by feeding frames.
 *
 * Memory is fixed at construction: a ring of the last maxUtteranceMs + hangover of
 * caller audio (raw, in inputFormat, so μ-law replays bit-exact) and one response
 * buffer of maxUtteranceMs. A longer monologue keeps its last maxUtteranceMs.
 * sendAudio allocates nothing per frame; only emitted chunks (which listeners keep)
 * and events are allocated.
 *
 * Events caused by caller audio or DTMF (interruption, caller transcript, end) are
 * emitted on a microtask, never re-entrantly inside sendAudio()/sendDtmf(), like a
 * network agent whose events come from socket callbacks.
 */
import { AgentSession, ULAW_8K, pcm16, type AgentFactory, type AudioFormat } from '../agent.js';
import type { Config } from '../../config.js';
import { BridgeError, ErrorCodes } from '../../errors.js';
import { EnergyVad } from '../../audio/vad.js';
import { ULAW_DECODE } from '../../dsp/ts/g711.js';

export interface EchoAgentOptions {
  /** inputFormat = outputFormat; default PCM16 at 8000 Hz. */
  readonly format?: AudioFormat;
  /** EnergyVad absolute threshold (Config.echo.vadThresholdDbfs); default −40 dBFS. */
  readonly vadThresholdDbfs?: number;
  /** Silence that ends an utterance (Config.echo.silenceMs); default 600 ms. */
  readonly silenceMs?: number;
  /** Longest utterance kept; a longer one keeps its last part (Config.echo.maxUtteranceMs); default 15 000 ms. */
  readonly maxUtteranceMs?: number;
  /** Audio per emitted chunk; default 100 ms. */
  readonly chunkMs?: number;
  /** Time between chunks; default 20 ms (so 5× faster than real time with 100 ms chunks). */
  readonly chunkIntervalMs?: number;
  /** Added to the estimated playout end when deciding whether caller speech is a barge-in; default 500 ms. */
  readonly playoutSlackMs?: number;
}

/** Rates the `rate` agent parameter may pick (whole 20 ms frames, within the DSP's range). */
const MIN_RATE_HZ = 8000;
const MAX_RATE_HZ = 48_000;
/** Digits kept for `digits` (bounded: a caller can press keys all day). */
const MAX_DIGITS = 64;

/**
 * The echo agent's format from its agent parameters: `format` ('pcm16' default, or
 * 'ulaw' for 8 kHz μ-law passthrough) and `rate` (PCM16 rate, default '8000').
 */
export function echoFormatFromParameters(parameters: Readonly<Record<string, string>>): AudioFormat {
  const format = (parameters['format'] ?? 'pcm16').trim().toLowerCase();
  const rateText = parameters['rate']?.trim();
  if (format === 'ulaw' || format === 'mulaw' || format === 'g711_ulaw') {
    if (rateText !== undefined && rateText !== '8000') {
      throw new BridgeError(ErrorCodes.DSP_ARGUMENT, `echo agent: format=ulaw is 8000 Hz only, not rate=${rateText}`);
    }
    return ULAW_8K;
  }
  if (format !== 'pcm16') throw new BridgeError(ErrorCodes.DSP_ARGUMENT, `echo agent: format=${JSON.stringify(format)} must be pcm16 or ulaw`);
  if (rateText === undefined) return pcm16(8000);
  const rate = /^\d+$/.test(rateText) ? Number(rateText) : NaN;
  if (!Number.isInteger(rate) || rate < MIN_RATE_HZ || rate > MAX_RATE_HZ || rate % 50 !== 0) {
    throw new BridgeError(ErrorCodes.DSP_RATE, `echo agent: rate=${JSON.stringify(rateText)} must be an integer from ${MIN_RATE_HZ} to ${MAX_RATE_HZ} Hz divisible by 50 (whole 20 ms frames)`);
  }
  return pcm16(rate);
}

const seconds = (samples: number, rateHz: number) => (samples / rateHz).toFixed(2);

export class EchoAgentSession extends AgentSession {
  readonly inputFormat: AudioFormat;
  readonly outputFormat: AudioFormat;
  readonly hasVad = true;

  readonly #rateHz: number;
  readonly #ulaw: boolean;
  readonly #vad: EnergyVad;
  readonly #silenceMs: number;
  readonly #chunkSamples: number;
  readonly #chunkIntervalMs: number;
  readonly #slackSamples: number;
  readonly #maxSamples: number;

  // The pcm16 and μ-law lanes have their own concretely typed buffers and copy loops
  // (the other lane's are empty): element accesses stay monomorphic for V8, which
  // keeps the per-frame path allocation-free even when one process runs both kinds.
  /** Partial input frame for pcm16; also the frame the VAD sees (decoded μ-law goes here too). */
  readonly #pcmFrame: Int16Array;
  /** Partial input frame for μ-law (raw codes). */
  readonly #ulawFrame: Uint8Array;
  #frameLen = 0;
  /** Recent caller audio (raw, inputFormat), indexed by caller sample number modulo its length. */
  readonly #ringPcm: Int16Array;
  readonly #ringUlaw: Uint8Array;
  /** The utterance being replayed. */
  readonly #response: Int16Array | Uint8Array;
  #responseLen = 0;
  #responsePos = 0;
  #responseId: string | undefined;
  #emitTimer: NodeJS.Timeout | undefined;
  /** Caller sample at which the reply's playback started; −1 before its first chunk. */
  #playStartSample = -1;
  /** Caller sample until which emitted audio may still be playing (with slack). */
  #playingUntilSample = 0;
  /** Fires when caller audio stops arriving mid-utterance (twilio-samples/speech-assistant-openai-realtime-api-python#6). */
  #inactivityTimer: NodeJS.Timeout | undefined;

  #utterances = 0;
  #digits = '';
  #lastHeardMs: number | undefined;
  #endRequested = false;
  #closed = false;
  #pending: Array<() => void> = [];
  #flushScheduled = false;

  constructor(options: EchoAgentOptions = {}) {
    super();
    const format = options.format ?? pcm16(8000);
    this.inputFormat = format;
    this.outputFormat = format;
    this.#rateHz = format.sampleRateHz;
    this.#ulaw = format.encoding === 'ulaw';
    this.#silenceMs = options.silenceMs ?? 600;
    this.#vad = new EnergyVad({ sampleRateHz: this.#rateHz, thresholdDbfs: options.vadThresholdDbfs ?? -40, silenceMs: this.#silenceMs });
    const frame = this.#vad.frameSamples;
    const perMs = this.#rateHz / 1000;
    this.#chunkSamples = Math.max(1, Math.round((options.chunkMs ?? 100) * perMs));
    this.#chunkIntervalMs = Math.max(1, options.chunkIntervalMs ?? 20);
    this.#slackSamples = Math.round((options.playoutSlackMs ?? 500) * perMs);
    this.#maxSamples = Math.max(frame, Math.floor((options.maxUtteranceMs ?? 15_000) * perMs));
    // The ring also holds the hangover written after the last voiced frame, so that
    // the last maxSamples of speech are still there when speechEnd is reported.
    const ringSamples = this.#maxSamples + this.#vad.silenceFrames * frame + frame;
    this.#pcmFrame = new Int16Array(frame);
    this.#ulawFrame = new Uint8Array(this.#ulaw ? frame : 0);
    this.#ringPcm = new Int16Array(this.#ulaw ? 0 : ringSamples);
    this.#ringUlaw = new Uint8Array(this.#ulaw ? ringSamples : 0);
    this.#response = this.#ulaw ? new Uint8Array(this.#maxSamples) : new Int16Array(this.#maxSamples);
  }

  /** DTMF digits pressed so far, except '#' (the last 64). */
  get digits(): string {
    return this.#digits;
  }
  /** heardMs of the last interrupt() from the bridge. */
  get lastHeardMs(): number | undefined {
    return this.#lastHeardMs;
  }
  /** Caller utterances detected so far. */
  get utterances(): number {
    return this.#utterances;
  }
  /** Whether a response is being emitted now. */
  get responding(): boolean {
    return this.#emitTimer !== undefined;
  }
  get closed(): boolean {
    return this.#closed;
  }

  connect(signal: AbortSignal): Promise<void> {
    if (signal.aborted) {
      const e = new Error('echo agent: connect aborted', { cause: signal.reason });
      e.name = 'AbortError';
      return Promise.reject(e);
    }
    if (this.#closed) return Promise.reject(new Error('echo agent: session is closed'));
    return Promise.resolve();
  }

  sendAudio(data: Int16Array | Uint8Array): void {
    if (this.#closed) return;
    // No closures in this per-frame path: a closure capturing `this` makes V8 allocate a
    // context on every call (measured: ~40 B per frame).
    if (this.#ulaw) {
      if (data instanceof Uint8Array) this.#pushUlaw(data);
      else this.#rejectAudio();
    } else if (data instanceof Int16Array) this.#pushPcm(data);
    else this.#rejectAudio();
  }

  interrupt(info: { heardMs: number }): void {
    if (this.#closed) return;
    this.#lastHeardMs = info.heardMs;
    this.#stopResponse();
    // The bridge has cleared playback: nothing of ours is playing any more.
    this.#playingUntilSample = 0;
  }

  sendDtmf(digit: string): void {
    if (this.#closed) return;
    if (digit === '#') {
      if (this.#endRequested) return;
      this.#endRequested = true;
      this.#queue(() => this.emitEvent({ type: 'end', reason: 'caller pressed #' }));
      return;
    }
    if (!/^[0-9*A-Da-d]$/.test(digit)) return;
    this.#digits = (this.#digits + digit.toUpperCase()).slice(-MAX_DIGITS);
  }

  close(reason: string): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    this.#stopResponse();
    if (this.#inactivityTimer !== undefined) clearTimeout(this.#inactivityTimer);
    this.#inactivityTimer = undefined;
    this.#pending.length = 0;
    this.emitEvent({ type: 'closed', reason });
    return Promise.resolve();
  }

  // --- caller side -------------------------------------------------------------

  #pushPcm(data: Int16Array): void {
    const frame = this.#pcmFrame;
    const ring = this.#ringPcm;
    let i = 0;
    while (i < data.length) {
      let n = frame.length - this.#frameLen;
      if (n > data.length - i) n = data.length - i;
      for (let k = 0; k < n; k++) frame[this.#frameLen + k] = data[i + k]!;
      this.#frameLen += n;
      i += n;
      if (this.#frameLen === frame.length) {
        this.#frameLen = 0;
        let w = this.#vad.samplesProcessed % ring.length;
        for (let k = 0; k < frame.length; k++) {
          ring[w] = frame[k]!;
          if (++w === ring.length) w = 0;
        }
        this.#classify();
        if (this.#closed) return;
      }
    }
  }

  #pushUlaw(data: Uint8Array): void {
    const frame = this.#ulawFrame;
    const ring = this.#ringUlaw;
    let i = 0;
    while (i < data.length) {
      let n = frame.length - this.#frameLen;
      if (n > data.length - i) n = data.length - i;
      for (let k = 0; k < n; k++) frame[this.#frameLen + k] = data[i + k]!;
      this.#frameLen += n;
      i += n;
      if (this.#frameLen === frame.length) {
        this.#frameLen = 0;
        const pcm = this.#pcmFrame;
        let w = this.#vad.samplesProcessed % ring.length;
        for (let k = 0; k < frame.length; k++) {
          const code = frame[k]!;
          ring[w] = code;
          if (++w === ring.length) w = 0;
          pcm[k] = ULAW_DECODE[code]!;
        }
        this.#classify();
        if (this.#closed) return;
      }
    }
  }

  /** Runs the VAD on #pcmFrame (already written to the ring). */
  #classify(): void {
    switch (this.#vad.process(this.#pcmFrame)) {
      case 'speechStart':
        this.#onSpeechStart();
        break;
      case 'speech':
        this.#inactivityTimer?.refresh();
        break;
      case 'speechEnd':
        this.#onSpeechEnd();
        break;
      case 'silence':
        break;
    }
  }

  #onSpeechStart(): void {
    // Barge-in (pipecat-ai/pipecat#366): the caller talks over a reply that is being emitted
    // or that the caller may still be hearing.
    const bargeIn = this.#emitTimer !== undefined || this.#vad.samplesProcessed < this.#playingUntilSample;
    this.#stopResponse();
    this.#playingUntilSample = 0;
    if (bargeIn) this.#queue(() => this.emitEvent({ type: 'interruption' }));
    if (this.#inactivityTimer === undefined) this.#inactivityTimer = setTimeout(this.#onInactive, this.#silenceMs);
    else this.#inactivityTimer.refresh();
  }

  /** No caller audio for silenceMs while the caller was speaking: end the turn anyway. */
  readonly #onInactive = (): void => {
    this.#inactivityTimer = undefined;
    if (this.#closed) return;
    this.#frameLen = 0; // a stale partial frame would be glued to the next audio
    if (this.#vad.end() === 'speechEnd') this.#respond();
  };

  #onSpeechEnd(): void {
    if (this.#inactivityTimer !== undefined) clearTimeout(this.#inactivityTimer);
    this.#inactivityTimer = undefined;
    this.#respond();
  }

  // --- agent side --------------------------------------------------------------

  /** Copies the utterance the VAD just ended out of the ring and starts replaying it. */
  #respond(): void {
    this.#stopResponse();
    const end = this.#vad.speechEndSample;
    const total = end - this.#vad.speechStartSample;
    const kept = Math.min(total, this.#maxSamples);
    const ring = this.#ulaw ? this.#ringUlaw : this.#ringPcm;
    const from = (end - kept) % ring.length;
    const firstPart = Math.min(kept, ring.length - from);
    this.#response.set(ring.subarray(from, from + firstPart), 0);
    if (firstPart < kept) this.#response.set(ring.subarray(0, kept - firstPart), firstPart);

    const n = ++this.#utterances;
    const rate = this.#rateHz;
    const callerText = kept < total ? `[utterance ${n}: ${seconds(total, rate)} s, last ${seconds(kept, rate)} s kept]` : `[utterance ${n}: ${seconds(total, rate)} s]`;
    this.#queue(() => this.emitEvent({ type: 'transcript', role: 'caller', text: callerText, final: true }));

    this.#responseId = `echo-${n}`;
    this.#responseLen = kept;
    this.#responsePos = 0;
    this.#playStartSample = -1;
    this.#emitTimer = setInterval(this.#emitChunk, this.#chunkIntervalMs);
  }

  readonly #emitChunk = (): void => {
    const responseId = this.#responseId;
    if (this.#closed || this.#emitTimer === undefined || responseId === undefined) return;
    if (this.#responsePos === 0) {
      this.#playStartSample = this.#vad.samplesProcessed;
      this.emitEvent({ type: 'transcript', role: 'agent', text: `[echo ${responseId.slice(5)}: ${seconds(this.#responseLen, this.#rateHz)} s]`, final: true });
      if (this.#responseId !== responseId || this.#emitTimer === undefined) return; // a listener interrupted or closed
    }
    const start = this.#responsePos;
    const end = Math.min(start + this.#chunkSamples, this.#responseLen);
    this.#responsePos = end;
    this.#playingUntilSample = this.#playStartSample + end + this.#slackSamples;
    const done = end >= this.#responseLen;
    if (done) this.#stopResponse();
    this.emitEvent({ type: 'audio', data: this.#response.slice(start, end), sampleRateHz: this.outputFormat.sampleRateHz, responseId });
    if (done && !this.#closed) this.emitEvent({ type: 'responseDone', responseId });
  };

  /** Stops emitting the current response (no responseDone: it did not finish). */
  #stopResponse(): void {
    if (this.#emitTimer !== undefined) clearInterval(this.#emitTimer);
    this.#emitTimer = undefined;
  }

  // --- events --------------------------------------------------------------------

  #queue(event: () => void): void {
    this.#pending.push(event);
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      queueMicrotask(this.#flush);
    }
  }

  readonly #flush = (): void => {
    this.#flushScheduled = false;
    const events = this.#pending;
    this.#pending = [];
    for (const event of events) {
      if (this.#closed) return;
      event();
    }
  };

  /** Audio of the wrong type: a non-fatal error. */
  #rejectAudio(): void {
    const error = new BridgeError(ErrorCodes.DSP_ARGUMENT, `echo agent: expected ${this.#ulaw ? 'Uint8Array (μ-law)' : 'Int16Array (PCM16)'} audio`);
    this.#queue(() => this.reportError(error, false));
  }
}

export function createEchoAgentFactory(config: Config): AgentFactory {
  const { vadThresholdDbfs, silenceMs, maxUtteranceMs } = config.echo;
  return Object.freeze({
    name: 'echo',
    available: true,
    create: (ctx) => new EchoAgentSession({ format: echoFormatFromParameters(ctx.parameters), vadThresholdDbfs, silenceMs, maxUtteranceMs }),
  } satisfies AgentFactory);
}
