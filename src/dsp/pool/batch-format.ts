/**
 * The wire format of one DSP pool batch, shared by the main thread (dsp-pool.ts) and
 * the worker (dsp-pool-worker.ts). A batch is a run of records in a SharedArrayBuffer;
 * only the buffers and a few numbers cross postMessage (no per-frame structured clone).
 *
 * ```text
 *  record = header (32 bytes) + payload (payloadBytes, padded to 8)
 *  header, as Int32 words:  [0] op  [1] callId  [2] a  [3] b  [4] c  [5] payloadBytes  [6..7] float64 nowMs
 *
 *  request ops (main → worker)            a          b             c       payload
 *   OPEN_IN    create inbound pipeline   toHz       quality       codec   —
 *   OPEN_OUT   create outbound pipeline  fromHz     quality       codec   —
 *   IN_PUSH    one caller frame          seq (u32)  timestamp(u32) —      160 bytes G.711
 *   IN_POLL    release due frames        —          —             —       —            (nowMs)
 *   OUT_PUSH   agent PCM                 epoch      —             —       PCM16
 *   OUT_FLUSH  end of response           epoch      —             —       —
 *   OUT_RESET  barge-in                  epoch      —             —       —
 *   CLOSE      free the call's state     —          —             —       —
 *
 *  response records (worker → main), in request order
 *   R_IN       after IN_PUSH / IN_POLL   bufferedFrames                   PCM16 for the agent (may be empty)
 *   R_OUT      after OUT_PUSH / FLUSH    epoch                            whole μ-law frames (may be empty)
 *   R_STATS    once per batch per call with inbound ops                   JitterStats as 10 float64
 *   R_ERROR    an op failed (the call's DSP is unusable)                  UTF-8 message
 * ```
 */
import type { JitterStats } from '../backend.js';

export const Op = { OpenIn: 1, OpenOut: 2, InPush: 3, InPoll: 4, OutPush: 5, OutFlush: 6, OutReset: 7, Close: 8 } as const;
export const Res = { In: 1, Out: 2, Stats: 3, Error: 4 } as const;

export const HEADER_BYTES = 32;
/** Int32 word indexes in a header. */
export const W_OP = 0;
export const W_CALL = 1;
export const W_A = 2;
export const W_B = 3;
export const W_C = 4;
export const W_LEN = 5;
/** Float64 index of nowMs, relative to the header's first float64 word. */
export const F_NOW = 3;

export const CODEC_ULAW = 0;
export const CODEC_ALAW = 1;

export function align8(n: number): number {
  return (n + 7) & ~7;
}

/** The task posted to a worker: the lane's buffers and where the records end. */
export interface BatchTask {
  req: SharedArrayBuffer;
  reqBytes: number;
  res: SharedArrayBuffer;
}

export interface BatchResult {
  resBytes: number;
  /** A larger response buffer the worker had to allocate (the main thread keeps it). */
  res?: SharedArrayBuffer;
  /** Calls whose pipelines live in this worker after the batch. */
  liveCalls: number;
}

export const STATS_FIELDS = ['framesIn', 'framesOut', 'duplicate', 'late', 'lost', 'concealed', 'resyncs', 'bufferedFrames', 'currentDelayMs', 'targetDelayMs'] as const satisfies readonly (keyof JitterStats)[];
export const STATS_BYTES = STATS_FIELDS.length * 8;

export function emptyStats(): JitterStats {
  return { framesIn: 0, framesOut: 0, duplicate: 0, late: 0, lost: 0, concealed: 0, resyncs: 0, bufferedFrames: 0, currentDelayMs: 0, targetDelayMs: 0 };
}
