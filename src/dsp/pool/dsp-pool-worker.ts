/**
 * A DSP pool worker thread (piscina). It owns the pipelines of the calls pinned to
 * its lane, keyed by call id, and runs one batch per task: every record in order,
 * results written to the response buffer in the same order (format: batch-format.ts).
 * The backend is the one the main thread loaded (workerData.backend), through loadDsp.
 *
 * A failing operation never fails the batch: it answers R_ERROR for that call and
 * frees the call's pipelines. Only a malformed batch throws (the pool then fails the
 * lane's calls, as for a crash).
 */
import { workerData } from 'node:worker_threads';
import type { InboundPipeline, OutboundPipeline } from '../backend.js';
import { INBOUND_DST_FRAMES } from '../frame-paths.js';
import { loadDsp } from '../load.js';
import {
  CODEC_ALAW,
  F_NOW,
  HEADER_BYTES,
  Op,
  Res,
  STATS_BYTES,
  STATS_FIELDS,
  W_A,
  W_B,
  W_C,
  W_CALL,
  W_LEN,
  W_OP,
  align8,
  type BatchResult,
  type BatchTask,
} from './batch-format.js';

interface CallState {
  in?: InboundPipeline;
  inMax: number;
  out?: OutboundPipeline;
}

const backend = (workerData as { backend?: 'native' | 'ts' } | undefined)?.backend ?? 'ts';
const dsp = await loadDsp({ backend });
const calls = new Map<number, CallState>();
const touched = new Set<number>();

let res = new SharedArrayBuffer(8);
let resU8 = new Uint8Array(res);
let resI32 = new Int32Array(res);
let resF64 = new Float64Array(res);
let off = 0;
let grown: SharedArrayBuffer | undefined;

function bindRes(sab: SharedArrayBuffer): void {
  res = sab;
  resU8 = new Uint8Array(sab);
  resI32 = new Int32Array(sab);
  resF64 = new Float64Array(sab);
}

/** Room for `bytes` more at `off`; a larger buffer replaces the lane's (rare). */
function ensure(bytes: number): void {
  if (off + bytes <= res.byteLength) return;
  const next = new SharedArrayBuffer(align8(Math.max(res.byteLength * 2, off + bytes * 4)));
  new Uint8Array(next).set(resU8.subarray(0, off));
  bindRes(next);
  grown = next;
}

function header(op: number, callId: number, a: number, payloadBytes: number): void {
  const w = off >> 2;
  resI32[w + W_OP] = op;
  resI32[w + W_CALL] = callId;
  resI32[w + W_A] = a;
  resI32[w + W_B] = 0;
  resI32[w + W_C] = 0;
  resI32[w + W_LEN] = payloadBytes;
  off += HEADER_BYTES + align8(payloadBytes);
}

function writeError(callId: number, e: unknown): void {
  const msg = Buffer.from((e instanceof Error ? e.message : String(e)).slice(0, 200));
  ensure(HEADER_BYTES + align8(msg.length));
  resU8.set(msg, off + HEADER_BYTES);
  header(Res.Error, callId, 0, msg.length);
}

function free(callId: number): void {
  const s = calls.get(callId);
  if (!s) return;
  calls.delete(callId);
  try {
    s.in?.close();
  } catch {
    /* already closed */
  }
  try {
    s.out?.close();
  } catch {
    /* already closed */
  }
}

function unknown(callId: number): Error {
  return new Error(`no DSP state for call ${callId} in this worker (restarted?)`);
}

function runBatch(task: BatchTask): BatchResult {
  if (task.res !== res) bindRes(task.res);
  grown = undefined;
  off = 0;
  touched.clear();
  const req = task.req;
  const end = task.reqBytes;
  if (!(req instanceof SharedArrayBuffer) || !Number.isInteger(end) || end < 0 || end > req.byteLength) throw new Error('malformed DSP batch');
  const i32 = new Int32Array(req);
  const f64 = new Float64Array(req);
  let p = 0;
  while (p < end) {
    const w = p >> 2;
    const op = i32[w + W_OP]!;
    const callId = i32[w + W_CALL]!;
    const len = i32[w + W_LEN]!;
    const body = p + HEADER_BYTES;
    const next = body + align8(len);
    if (len < 0 || next > end || op < Op.OpenIn || op > Op.Close) throw new Error(`malformed DSP batch record at ${p}`);
    try {
      switch (op) {
        case Op.OpenIn:
        case Op.OpenOut: {
          let s = calls.get(callId);
          if (!s) calls.set(callId, (s = { inMax: 0 }));
          const codec = i32[w + W_C] === CODEC_ALAW ? 'alaw' : 'ulaw';
          if (op === Op.OpenIn) {
            if (s.in) throw new Error('inbound pipeline already open');
            s.in = dsp.createInboundPipeline({ toHz: i32[w + W_A]!, quality: i32[w + W_B]!, codec });
            s.inMax = s.in.maxFrameOutput * INBOUND_DST_FRAMES;
          } else {
            // Opened again: the agent's audio changed rate (retune; its flush came first).
            const next = dsp.createOutboundPipeline({ fromHz: i32[w + W_A]!, quality: i32[w + W_B]!, codec });
            s.out?.close();
            s.out = next;
          }
          break;
        }
        case Op.InPush:
        case Op.InPoll: {
          const s = calls.get(callId);
          if (!s?.in) throw unknown(callId);
          ensure(HEADER_BYTES + s.inMax * 2);
          const dst = new Int16Array(res, off + HEADER_BYTES, s.inMax);
          const now = f64[(p >> 3) + F_NOW]!;
          const n = op === Op.InPush ? s.in.push(new Uint8Array(req, body, len), i32[w + W_A]! >>> 0, i32[w + W_B]! >>> 0, now, dst) : s.in.poll(now, dst);
          header(Res.In, callId, s.in.bufferedFrames, n * 2);
          touched.add(callId);
          break;
        }
        case Op.OutPush:
        case Op.OutFlush: {
          const s = calls.get(callId);
          if (!s?.out) throw unknown(callId);
          const pcm = op === Op.OutPush ? new Int16Array(req, body, len >> 1) : undefined;
          const cap = pcm ? s.out.maxOutputBytes(pcm.length) : s.out.maxFlushBytes();
          ensure(HEADER_BYTES + cap);
          const dst = new Uint8Array(res, off + HEADER_BYTES, cap);
          const n = pcm ? s.out.push(pcm, dst) : s.out.flush(dst);
          header(Res.Out, callId, i32[w + W_A]!, n);
          break;
        }
        case Op.OutReset: {
          const s = calls.get(callId);
          if (!s?.out) throw unknown(callId);
          s.out.reset();
          break;
        }
        case Op.Close:
          free(callId);
          touched.delete(callId);
          break;
      }
    } catch (e) {
      // This call's DSP is unusable: free it and say why; the batch goes on.
      free(callId);
      touched.delete(callId);
      writeError(callId, e);
    }
    p = next;
  }
  for (const callId of touched) {
    const s = calls.get(callId);
    if (!s?.in) continue;
    const st = s.in.stats();
    ensure(HEADER_BYTES + STATS_BYTES);
    const f = (off + HEADER_BYTES) >> 3;
    for (let i = 0; i < STATS_FIELDS.length; i++) resF64[f + i] = st[STATS_FIELDS[i]!];
    header(Res.Stats, callId, 0, STATS_BYTES);
  }
  return grown ? { resBytes: off, res: grown, liveCalls: calls.size } : { resBytes: off, liveCalls: calls.size };
}

export default runBatch;
