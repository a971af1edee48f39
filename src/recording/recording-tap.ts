/**
 * One call's recording: a stereo 8 kHz PCM16 WAV, caller left, agent right, both on
 * the stream's time axis (ms since `start`; Twilio's media timestamps share it), so a
 * click the caller made at 1.00 s is sample 8000 of the left channel and agent audio
 * Twilio started playing at 2.00 s is sample 16000 of the right.
 *
 * ```text
 *          committed (on its way to disk)         now − latenessMs          now     now + lead
 *   file ───────────────┤ window (ring, fixed size) ─────────────────────────┼────────────┤
 *                       │ caller frames land at their timestamps (late ones still fit)     │
 *                       │ agent frames land at their play time; cleared(at) zeroes [at, …) │
 *                       └─ every blockMs the part older than now − latenessMs is written ──┘
 * ```
 *
 * - Memory is one fixed window per call (`windowMs`, 32 KiB per second; lateness + lead) plus a bounded
 *   write queue; a call of any length allocates nothing more per frame.
 * - Agent audio is sent up to the playout lead (BRIDGE_PLAYOUT_LEAD_MS) before it plays, and a
 *   barge-in `clear` drops what Twilio had not yet played. It therefore stays in the
 *   window until its time has passed; `cleared(atMs)` zeroes the right channel from
 *   `atMs` on, so the file holds only what the caller actually heard.
 * - Caller frames are placed by timestamp: a gap in timestamps stays zero (silence);
 *   a frame arriving more than `latenessMs` late, or a timestamp more than
 *   `maxAheadMs` ahead of the clock (hostile input), is counted and not recorded.
 * - The frame path never waits on the disk: writes go to WavWriter's queue, bounded
 *   per call and across calls; when full, the block is dropped (counted, warned once
 *   per call with BRIDGE_ERR_RECORDING_DROPPED) and left as a hole in the file, so
 *   everything after it is still at its time.
 * - Any I/O failure abandons this recording (BRIDGE_ERR_RECORDING_IO), never the call.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { WavWriter, type WavFormat } from '../audio/wav.js';
import { ULAW_DECODE } from '../dsp/ts/g711.js';
import type { CallAudioTap } from '../call/hooks.js';
import { RecordingErrorCodes } from './recording-error.js';

export const RECORDING_FORMAT: Readonly<WavFormat> = Object.freeze({ sampleRateHz: 8000, channels: 2, encoding: 'pcm16' });
const SAMPLES_PER_MS = 8;
/** Bytes per stereo sample frame (2 channels × 16 bits). */
const FRAME_BYTES_STEREO = 4;
/** WAV data can hold at most 4 GiB (RIFF sizes are u32); ~37 h of this format. */
const MAX_DATA_BYTES = 0xffffffff - 64;

export type RecordingLog = (level: 'info' | 'warn' | 'error' | 'debug', msg: string, fields?: Record<string, unknown>) => void;

/** Write-queue budget shared by all taps of one recorder. */
export interface QueueBudget {
  queuedBytes: number;
  readonly maxBytes: number;
}

export interface RecordingTapOptions {
  dir: string;
  /** File name without extension (already made safe). */
  baseName: string;
  callSid: string;
  /** Monotonic clock in ms (performance.now by default); the tap's origin is its value at construction. */
  now: () => number;
  windowMs: number;
  latenessMs: number;
  blockMs: number;
  maxAheadMs: number;
  maxQueuedBytes: number;
  budget: QueueBudget;
  log?: RecordingLog | undefined;
  /** Told once when the tap is finished (closed or failed and closed), with its stats. */
  onDone?: (stats: RecordingTapStats, path: string | undefined) => void;
}

export interface RecordingTapStats {
  callerFrames: number;
  agentFrames: number;
  /** Agent samples removed by `cleared` (scheduled, never played). */
  clearedSamples: number;
  clears: number;
  /** Caller/agent samples that arrived for a time already written (too late to place). */
  lateSamples: number;
  /** Frames with a timestamp that is not a time of this call (negative, NaN, far ahead of the clock). */
  rejectedFrames: number;
  /** Times the window overflowed and was written early (timestamps running ahead of the clock). */
  forcedCommits: number;
  /** Bytes of the file that were dropped because the write queue was full (zeros in the file). */
  droppedBytes: number;
  /** Bytes handed to the disk and written. */
  writtenBytes: number;
  /** Length of the recording so far (ms of the file's timeline). */
  durationMs: number;
  state: 'recording' | 'failed' | 'closed';
}

export class RecordingTap implements CallAudioTap {
  readonly #o: RecordingTapOptions;
  readonly #origin: number;
  /** Interleaved L/R window; absolute sample frame p lives at ring[(p % cap) * 2 + channel]. */
  readonly #ring: Int16Array;
  readonly #cap: number;
  readonly #latenessSamples: number;
  readonly #blockSamples: number;
  readonly #maxAheadMs: number;
  /** Sample frames before this are on their way to the file (written, queued, or dropped as a hole). */
  #committed = 0;
  #callerEnd = 0;
  #agentEnd = 0;
  #state: 'recording' | 'failed' | 'closed' = 'recording';
  #writer: WavWriter | undefined;
  #path: string | undefined;
  readonly #opening: Promise<WavWriter | undefined>;
  /** File operations registered before the file was open, still to run in order. */
  #deferred = 0;
  #queuedBytes = 0;
  #closing: Promise<string | undefined> | undefined;
  #warnedDrop = false;
  #stats = { callerFrames: 0, agentFrames: 0, clearedSamples: 0, clears: 0, lateSamples: 0, rejectedFrames: 0, forcedCommits: 0, droppedBytes: 0, writtenBytes: 0 };

  constructor(options: RecordingTapOptions) {
    this.#o = options;
    this.#origin = options.now();
    this.#cap = Math.round(options.windowMs * SAMPLES_PER_MS);
    this.#ring = new Int16Array(this.#cap * 2);
    this.#latenessSamples = Math.round(options.latenessMs * SAMPLES_PER_MS);
    this.#blockSamples = Math.round(options.blockMs * SAMPLES_PER_MS);
    this.#maxAheadMs = options.maxAheadMs;
    this.#opening = this.#open();
  }

  /** Where the file is (known once it is open; undefined if it could not be). */
  get path(): string | undefined {
    return this.#path;
  }

  get stats(): RecordingTapStats {
    return { ...this.#stats, durationMs: Math.max(this.#committed, this.#callerEnd, this.#agentEnd) / SAMPLES_PER_MS, state: this.#state };
  }

  /** Bytes queued for the disk and not yet written. */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  // ── the frame path: synchronous, O(frame), no allocation ───────────────────

  caller(ulaw: Uint8Array, timestampMs: number): void {
    if (this.#state !== 'recording') return;
    this.#stats.callerFrames++;
    const nowMs = this.#o.now() - this.#origin;
    if (!(timestampMs >= 0) || timestampMs > nowMs + this.#maxAheadMs) {
      this.#stats.rejectedFrames++;
      return;
    }
    const pos = Math.round(timestampMs * SAMPLES_PER_MS);
    const end = this.#put(0, ulaw, pos);
    if (end > this.#callerEnd) this.#callerEnd = end;
    this.#maybeCommit(nowMs);
  }

  agent(ulaw: Uint8Array, playAtMs: number): void {
    if (this.#state !== 'recording') return;
    this.#stats.agentFrames += Math.ceil(ulaw.length / 160);
    const nowMs = this.#o.now() - this.#origin;
    if (!(playAtMs >= 0) || playAtMs > nowMs + this.#maxAheadMs) {
      this.#stats.rejectedFrames++;
      return;
    }
    const pos = Math.round(playAtMs * SAMPLES_PER_MS);
    const end = this.#put(1, ulaw, pos);
    if (end > this.#agentEnd) this.#agentEnd = end;
    this.#maybeCommit(nowMs);
  }

  cleared(atMs: number): void {
    if (this.#state !== 'recording') return;
    this.#stats.clears++;
    let from = Math.round(atMs * SAMPLES_PER_MS);
    if (!(from >= this.#committed)) from = this.#committed; // already on its way to disk (only after a forced commit)
    const to = Math.min(this.#agentEnd, this.#committed + this.#cap);
    if (to <= from) return;
    const ring = this.#ring;
    const wrap = this.#cap * 2;
    let j = (from % this.#cap) * 2 + 1;
    for (let p = from; p < to; p++) {
      ring[j] = 0;
      j += 2;
      if (j >= wrap) j -= wrap;
    }
    this.#stats.clearedSamples += to - from;
    this.#agentEnd = from;
  }

  /** Decodes `ulaw` into one channel at sample frame `pos`; returns the end position. */
  #put(channel: 0 | 1, ulaw: Uint8Array, pos: number): number {
    let first = 0;
    let n = ulaw.length;
    if (pos < this.#committed) {
      const late = Math.min(n, this.#committed - pos);
      this.#stats.lateSamples += late;
      first = late;
      pos += late;
      n -= late;
      if (n === 0) return pos;
    }
    if (n > this.#cap) {
      // Cannot happen with Twilio-sized frames; keep the newest audio that fits.
      this.#stats.lateSamples += n - this.#cap;
      first += n - this.#cap;
      pos += n - this.#cap;
      n = this.#cap;
    }
    if (pos + n > this.#committed + this.#cap) {
      // Timestamps ran ahead of the clock (e.g. a burst after a stall): write out the oldest part early.
      this.#stats.forcedCommits++;
      this.#commitTo(pos + n - this.#cap);
    }
    const ring = this.#ring;
    const wrap = this.#cap * 2;
    let j = (pos % this.#cap) * 2 + channel;
    for (let i = first, last = first + n; i < last; i++) {
      ring[j] = ULAW_DECODE[ulaw[i]!]!;
      j += 2;
      if (j >= wrap) j -= wrap;
    }
    return pos + n;
  }

  #maybeCommit(nowMs: number): void {
    // Before now − lateness: agent audio there has played (it can no longer be cleared)
    // and caller frames for it have arrived (or are too late to wait for).
    const horizon = Math.floor(nowMs * SAMPLES_PER_MS) - this.#latenessSamples;
    if (horizon - this.#committed >= this.#blockSamples) this.#commitTo(horizon);
  }

  /** Hands sample frames [committed, target) to the file and clears them from the window. */
  #commitTo(target: number): void {
    if (target <= this.#committed) return;
    const inWindowEnd = Math.min(target, this.#committed + this.#cap);
    const wrap = this.#cap;
    while (this.#committed < inWindowEnd) {
      const at = this.#committed % wrap;
      const n = Math.min(inWindowEnd - this.#committed, wrap - at);
      const piece = this.#ring.subarray(at * 2, (at + n) * 2);
      this.#emit(piece);
      piece.fill(0);
      this.#committed += n;
    }
    if (target > this.#committed) {
      // Beyond the window nothing was ever written: plain silence, left as a hole.
      this.#skip((target - this.#committed) * FRAME_BYTES_STEREO);
      this.#committed = target;
    }
  }

  #emit(samples: Int16Array): void {
    if (this.#state === 'failed') return;
    const bytes = samples.length * 2;
    const budget = this.#o.budget;
    if (this.#queuedBytes + bytes > this.#o.maxQueuedBytes || budget.queuedBytes + bytes > budget.maxBytes) {
      this.#stats.droppedBytes += bytes;
      if (!this.#warnedDrop) {
        this.#warnedDrop = true;
        this.#o.log?.('warn', 'recording: the disk is not keeping up, dropping recording data (the call is unaffected)', {
          code: RecordingErrorCodes.DROPPED,
          callSid: this.#o.callSid,
          queuedBytes: this.#queuedBytes,
          recorderQueuedBytes: budget.queuedBytes,
        });
      }
      this.#skip(bytes);
      return;
    }
    if (this.#tooLong(bytes)) return;
    this.#queuedBytes += bytes;
    budget.queuedBytes += bytes;
    const release = () => {
      this.#queuedBytes -= bytes;
      budget.queuedBytes -= bytes;
    };
    const w = this.#writer;
    let written: Promise<void>;
    if (w && this.#deferred === 0) {
      written = w.write(samples); // copies synchronously: the window is reused at once
    } else {
      const copy = samples.slice();
      this.#deferred++;
      written = this.#opening.then((opened) => {
        this.#deferred--;
        return opened?.write(copy);
      });
    }
    written.then(
      () => {
        release();
        this.#stats.writtenBytes += bytes;
      },
      (e: unknown) => {
        release();
        this.#fail('write', e);
      },
    );
  }

  #skip(bytes: number): void {
    if (this.#state === 'failed' || this.#tooLong(bytes)) return;
    const w = this.#writer;
    if (w && this.#deferred === 0) {
      w.skip(bytes);
      return;
    }
    this.#deferred++;
    void this.#opening.then((opened) => {
      this.#deferred--;
      opened?.skip(bytes);
    });
  }

  #bytesSoFar = 0;
  /** The RIFF 4 GiB limit (~37 h): stop there, keep what was recorded. */
  #tooLong(bytes: number): boolean {
    if (this.#bytesSoFar + bytes > MAX_DATA_BYTES) {
      if (this.#state === 'recording') {
        this.#state = 'closed';
        this.#o.log?.('warn', 'recording reached the WAV size limit (4 GiB); the rest of the call is not recorded', { callSid: this.#o.callSid });
      }
      return true;
    }
    this.#bytesSoFar += bytes;
    return false;
  }

  // ── the file ─────────────────────────────────────────────────────────────

  async #open(): Promise<WavWriter | undefined> {
    // Exclusive: a second stream of the same call gets its own file instead of replacing the first.
    for (let n = 1; n <= 100; n++) {
      const path = join(this.#o.dir, n === 1 ? `${this.#o.baseName}.wav` : `${this.#o.baseName}-${n}.wav`);
      try {
        const w = await WavWriter.open(path, RECORDING_FORMAT, { exclusive: true });
        this.#path = path;
        if (this.#state === 'failed') {
          await w.close().catch(() => undefined);
          return undefined;
        }
        this.#writer = w;
        this.#o.log?.('debug', 'recording started', { callSid: this.#o.callSid, path });
        return w;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST') continue;
        this.#fail('open', e);
        return undefined;
      }
    }
    this.#fail('open', new Error(`100 recordings named ${this.#o.baseName}*.wav already exist`));
    return undefined;
  }

  #fail(what: 'open' | 'write' | 'close', e: unknown): void {
    if (this.#state === 'failed') return;
    this.#state = 'failed';
    this.#o.log?.('warn', `recording abandoned: could not ${what} the file (the call is unaffected)`, {
      code: RecordingErrorCodes.IO,
      callSid: this.#o.callSid,
      path: this.#path,
      error: e instanceof Error ? e.message : String(e),
    });
  }

  /** Writes what the window still holds (the agent's tail included), patches the header; resolves to the file. */
  close(): Promise<string | undefined> {
    this.#closing ??= this.#finish();
    return this.#closing;
  }

  async #finish(): Promise<string | undefined> {
    if (this.#state === 'recording') {
      this.#commitTo(Math.max(this.#callerEnd, this.#agentEnd));
      this.#state = 'closed';
    }
    const w = await this.#opening;
    let path: string | undefined;
    if (w) {
      try {
        await w.close();
        path = this.#state === 'failed' ? undefined : this.#path;
      } catch (e) {
        this.#fail('close', e);
      }
    }
    // An abandoned recording is caller audio that no record points at: delete it.
    if (this.#state === 'failed' && this.#path !== undefined) {
      await rm(this.#path, { force: true }).catch((e: unknown) =>
        this.#o.log?.('warn', 'could not delete an abandoned recording', { code: RecordingErrorCodes.IO, callSid: this.#o.callSid, path: this.#path, err: e }),
      );
    }
    const stats = this.stats;
    if (stats.droppedBytes > 0) {
      this.#o.log?.('warn', 'recording finished with dropped data', {
        code: RecordingErrorCodes.DROPPED,
        callSid: this.#o.callSid,
        path,
        droppedMs: stats.droppedBytes / FRAME_BYTES_STEREO / SAMPLES_PER_MS,
      });
    }
    this.#o.onDone?.(stats, path);
    return path;
  }
}
