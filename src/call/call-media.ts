/**
 * What a streaming call owns for its audio, created when the agent connects and closed
 * once, when the call leaves the states that carry it (streaming, a goodbye draining):
 *
 * ```text
 *   caller μ-law ─► caller() ─► InboundPath.push ─► PCM ─► VAD ─► toAgent      (μ-law agent: no DSP)
 *   agent audio  ─► agent()  ─► OutboundPath.push ─► μ-law frames ─► Playout    (μ-law agent: as is)
 * ```
 *
 * Inline (the default) every call returns its output and this object hands it on at once.
 * With the DSP worker pool (BRIDGE_DSP_POOL) the same work goes through the pool's batched
 * interface and its results arrive a batch later; the response of each outbound operation
 * in flight is remembered, so every frame reaches Playout under the response it belongs to.
 */
import type { AudioFormat } from '../agents/agent.js';
import type { DspBackend, JitterStats } from '../dsp/backend.js';
import { InboundPath, OutboundPath } from '../dsp/frame-paths.js';
import type { DspPool, PoolCall, PoolInbound, PoolOutbound } from '../dsp/pool/dsp-pool.js';
import { EnergyVad } from '../audio/vad.js';
import type { Playout } from './playout.js';

const FRAME_BYTES = 160;

export interface CallMediaOptions {
  dsp: DspBackend;
  /** BRIDGE_DSP_POOL mode: the paths run on this worker pool. */
  pool?: DspPool;
  quality: number;
  /** What the agent takes and what it sends. */
  agentIn: AudioFormat;
  agentOut: AudioFormat;
  /** The bridge's own VAD, for agents without one (barge-in). */
  vad?: { thresholdDbfs: number; silenceMs: number };
  playout: Playout;
  /** Caller audio in the agent's input format. */
  toAgent(audio: Int16Array | Uint8Array): void;
  /** The bridge's VAD heard the caller start or stop. */
  onSpeech(ev: 'speechStart' | 'speechEnd'): void;
  /** The pool lost this call's worker. */
  onPoolFailure(reason: string): void;
  /** Caller frames may be held for a gap: poll() must run on the clock (`needsPoll`). */
  onHeld?(): void;
}

export class CallMedia {
  readonly #o: CallMediaOptions;
  #inbound: InboundPath | undefined;
  #outbound: OutboundPath | undefined;
  #poolCall: PoolCall | undefined;
  #poolIn: PoolInbound | undefined;
  #poolOut: PoolOutbound | undefined;
  /** The response each pool outbound operation in flight belongs to (results come back in order). */
  #poolOutIds: (string | undefined)[] = [];
  /** The rate the outbound path takes now (agent audio says its own; a change retunes the path). */
  #outboundHz = 0;
  readonly #vad: EnergyVad | undefined;
  readonly #vadScratch = new Int16Array(FRAME_BYTES);
  #finalJitter: JitterStats | null = null;
  #closed = false;

  /** Opens the paths the agent's formats need. Throws (having released what it opened) when the DSP refuses them. */
  constructor(o: CallMediaOptions) {
    this.#o = o;
    const pcmIn = o.agentIn.encoding === 'pcm16';
    const pcmOut = o.agentOut.encoding === 'pcm16';
    try {
      if (o.pool && (pcmIn || pcmOut)) {
        const call = (this.#poolCall = o.pool.openCall(o.onPoolFailure));
        if (pcmIn) this.#poolIn = call.openInbound({ toHz: o.agentIn.sampleRateHz, quality: o.quality }, this.#toAgent, () => this.#o.onHeld?.());
        if (pcmOut) this.#poolOut = call.openOutbound({ fromHz: o.agentOut.sampleRateHz, quality: o.quality }, this.#fromPool);
      } else {
        if (pcmIn) this.#inbound = new InboundPath(o.dsp, { toHz: o.agentIn.sampleRateHz, quality: o.quality });
        if (pcmOut) this.#outbound = new OutboundPath(o.dsp, { fromHz: o.agentOut.sampleRateHz, quality: o.quality });
      }
    } catch (e) {
      this.close();
      throw e;
    }
    if (pcmOut) this.#outboundHz = o.agentOut.sampleRateHz;
    this.#vad = o.vad ? new EnergyVad({ sampleRateHz: o.agentIn.sampleRateHz, thresholdDbfs: o.vad.thresholdDbfs, silenceMs: o.vad.silenceMs }) : undefined;
  }

  /** One caller frame (160 bytes of μ-law; may be a reused buffer: not kept). */
  caller(frame: Uint8Array, chunk: number, timestampMs: number, nowMs: number): void {
    const inbound = this.#inbound;
    if (inbound) {
      const pcm = inbound.push(frame, chunk, timestampMs, nowMs);
      // Asked before the PCM is handed on: the agent may end the call (and close this) synchronously.
      const held = inbound.mayHold;
      if (pcm.length > 0) this.#toAgent(pcm);
      if (held) this.#o.onHeld?.();
    } else if (this.#poolIn) {
      this.#poolIn.push(frame, chunk, timestampMs, nowMs); // its PCM (and whether it holds a frame) comes back a batch later
    } else if (!this.#closed) {
      // μ-law passthrough: no DSP.
      if (this.#vad) {
        this.#o.dsp.decodeUlaw(frame, this.#vadScratch);
        this.#runVad(this.#vadScratch);
      }
      this.#o.toAgent(frame);
    }
  }

  /** Whether poll() has work: the jitter buffer may hold frames (pool mode: the worker's last result said it holds some). */
  get needsPoll(): boolean {
    if (this.#inbound) return this.#inbound.mayHold;
    return this.#poolIn !== undefined && this.#poolIn.bufferedFrames > 0;
  }

  /** On the clock while `needsPoll`: frames the jitter buffer held for a gap are released on their deadline. */
  poll(nowMs: number): void {
    if (this.#inbound) {
      const pcm = this.#inbound.poll(nowMs);
      if (pcm.length > 0) this.#toAgent(pcm);
    } else if (this.#poolIn && this.#poolIn.bufferedFrames > 0) {
      this.#poolIn.poll(nowMs);
    }
  }

  #toAgent = (pcm: Int16Array): void => {
    if (this.#closed) return;
    if (this.#vad) this.#runVad(pcm);
    this.#o.toAgent(pcm);
  };

  #runVad(pcm: Int16Array): void {
    const ev = this.#vad!.process(pcm);
    if (ev === 'speechStart' || ev === 'speechEnd') this.#o.onSpeech(ev);
  }

  /**
   * Agent audio at its own rate into Playout, under its response: the path follows a change
   * of rate. Throws when the DSP refuses the new rate: the chunk is dropped and the path
   * stays at the old rate.
   */
  agent(data: Int16Array | Uint8Array, sampleRateHz: number, responseId: string | undefined): void {
    if (this.#closed) return;
    const playout = this.#o.playout;
    if ((this.#outbound || this.#poolOut) && sampleRateHz !== this.#outboundHz) this.#retune(sampleRateHz);
    if (this.#outbound) {
      playout.enqueue(this.#outbound.push(data as Int16Array), responseId);
    } else if (this.#poolOut) {
      this.#poolOut.push(data as Int16Array); // its frames reach #fromPool a batch later
      this.#poolOutIds.push(responseId);
    } else {
      playout.enqueue(data as Uint8Array, responseId);
    }
  }

  /** The agent's audio changes rate: what came at the old rate goes out (flushed), the path continues at the new one. */
  #retune(fromHz: number): void {
    const playout = this.#o.playout;
    const old = this.#outbound;
    if (old) {
      const next = new OutboundPath(this.#o.dsp, { fromHz, quality: this.#o.quality }); // first: a refused rate leaves the old path
      playout.enqueue(old.flush(), playout.currentResponseId);
      old.close();
      this.#outbound = next;
    } else {
      this.#poolOut!.retune(fromHz);
      this.#poolOutIds.push(playout.currentResponseId); // the old rate's tail
    }
    this.#outboundHz = fromHz;
  }

  /** Pool mode: frames of one outbound operation, in order, a batch after it went in. */
  #fromPool = (ulaw: Uint8Array, offset: number, bytes: number): void => {
    const responseId = this.#poolOutIds.shift();
    if (bytes > 0 && !this.#closed) this.#o.playout.enqueue(ulaw.subarray(offset, offset + bytes), responseId);
  };

  /**
   * The response's audio is all in: the outbound path's tail (resampler, partial frame)
   * goes to Playout, which then finishes the response. Resolves once it has — at once
   * inline, after the pool's last batch in pool mode.
   */
  finishResponse(): Promise<void> {
    const playout = this.#o.playout;
    const poolOut = this.#poolOut;
    if (poolOut) {
      poolOut.flush();
      this.#poolOutIds.push(playout.currentResponseId);
      return new Promise((resolve) =>
        poolOut.whenIdle(() => {
          playout.endResponse();
          resolve();
        }),
      );
    }
    if (this.#outbound) playout.enqueue(this.#outbound.flush(), playout.currentResponseId);
    playout.endResponse();
    return Promise.resolve();
  }

  /** Barge-in, or an agent that failed: audio still in the outbound path is dropped with Playout's queue. */
  resetOutbound(): void {
    this.#outbound?.reset();
    if (this.#poolOut) {
      this.#poolOutIds = [];
      this.#poolOut.reset();
    }
  }

  /** The jitter buffer's counters (the last ones once closed; null for a μ-law agent). */
  jitter(): JitterStats | null {
    if (this.#closed) return this.#finalJitter;
    return (this.#inbound ?? this.#poolIn)?.stats() ?? null;
  }

  /** Releases the paths (idempotent); jitter() keeps answering with their last counters. */
  close(): void {
    if (this.#closed) return;
    this.#finalJitter = this.jitter();
    this.#closed = true;
    this.#inbound?.close();
    this.#outbound?.close();
    this.#poolCall?.close();
    this.#inbound = undefined;
    this.#outbound = undefined;
    this.#poolIn = undefined;
    this.#poolOut = undefined;
    this.#poolCall = undefined;
    this.#poolOutIds = [];
  }
}
