/**
 * The inline frame paths (dsp/frame-paths.ts) behind the pool's batched interface: each
 * result goes to the sink at once instead of a batch later. It is the reference the pool
 * is checked against (test/dsp/pool.test.ts: identical output) and measured against
 * (bench/pool.bench.ts) — calls themselves use the inline paths directly.
 */
import type { DspBackend, InboundPipelineOptions, OutboundPipelineOptions } from '../backend.js';
import { InboundPath, OutboundPath } from '../frame-paths.js';
import type { PoolInboundSink, PoolOutboundSink } from './dsp-pool.js';

export interface BatchedInbound {
  push(payload: Uint8Array, seq: number, timestampMs: number, nowMs: number): void;
  poll(nowMs: number): void;
  readonly bufferedFrames: number;
}

export interface BatchedOutbound {
  push(pcm: Int16Array): void;
  flush(): void;
  reset(): void;
}

/** What the pool's openCall() returns, as far as its users drive it. */
export interface BatchedCall {
  openInbound(o: InboundPipelineOptions, sink: PoolInboundSink): BatchedInbound;
  openOutbound(o: OutboundPipelineOptions, sink: PoolOutboundSink): BatchedOutbound;
  close(): void;
}

export interface BatchedPaths {
  openCall(onFailed: (reason: string) => void): BatchedCall;
}

/** Inline DSP with the pool's shape: PCM to the sink only when some was released (as the pool does), frames always. */
export function inlineReference(dsp: DspBackend): BatchedPaths {
  return {
    openCall: () => {
      const open: { close(): void }[] = [];
      return {
        openInbound(o, sink) {
          const p = new InboundPath(dsp, o);
          open.push(p);
          const give = (pcm: Int16Array): void => {
            if (pcm.length > 0) sink(pcm);
          };
          return {
            push: (payload, seq, ts, now) => give(p.push(payload, seq, ts, now)),
            poll: (now) => give(p.poll(now)),
            get bufferedFrames() {
              return p.bufferedFrames;
            },
          };
        },
        openOutbound(o, sink) {
          const p = new OutboundPath(dsp, o);
          open.push(p);
          const give = (ulaw: Uint8Array): void => sink(ulaw, 0, ulaw.length);
          return { push: (pcm) => give(p.push(pcm)), flush: () => give(p.flush()), reset: () => p.reset() };
        },
        close: () => open.forEach((p) => p.close()),
      };
    },
  };
}
