/**
 * Outbound playout for one call: agent audio → exact 160-byte μ-law frames → Twilio,
 * paced by the shared frame clock, with a lead over real time bounded by a ceiling
 * (BRIDGE_PLAYOUT_LEAD_MS: 2 s by default) and, from a 200 ms lead on,
 * sent in coalesced messages.
 *
 * ```text
 *  μ-law frames ──► frame queue ──(on arrival, and each tick: whole messages of ≥ COALESCE_MS, up to `leadMs` ahead)──► media msg + mark
 *                                                                                              │
 *  Twilio echoes the mark when that audio has played ─► the response's acknowledged position
 *  barge-in: queue dropped, `clear` sent, marks still pending are echoed by Twilio and ignored,
 *            the response's late audio is dropped, the agent is told heardMs: the last acknowledged
 *            position plus the time since that acknowledgement, never past the audio Twilio can
 *            have played by now (sent − still buffered)
 * ```
 *
 * Why a lead of seconds: Twilio buffers what it is sent and plays it in real time; `clear`
 * empties that buffer at once and marks say what was heard, so a long lead costs nothing
 * at a barge-in (the heard position never comes from how much was sent) — while a thin
 * one (it was 80 ms) turns any stall of the WAN path to Twilio longer than that into an
 * audible gap. 2 s rides out the stalls seen on real links (a retransmission timeout is
 * 200 ms–1 s) and bounds the audio a barge-in throws away. Agents stream faster than
 * real time, so audio is there to send in messages of at least COALESCE_MS: ~10 media
 * messages per second of agent audio instead of 50. Less goes out only at a response's
 * end or when Twilio's buffer is about to run dry (an agent at real-time pace). A lead
 * under 200 ms turns coalescing off.
 *
 * Marks: one mark per message would double the messages each way (a mark out, its echo
 * back) for little — Twilio plays in order and in real time, so an acknowledged point
 * plus the clock places the caller in the audio. A message carries a mark when it starts
 * a response, when MARK_MAX_GAP_MS of audio went out since the last mark, and when it
 * ends a finished response (or a lone mark follows the response's last audio), so
 * `drained()` — everything of a finished response echoed — stays exact. `active`
 * (is anything playing, for barge-in) is true while audio is queued, a mark is
 * outstanding, or our model of Twilio's buffer says audio is still playing (plus a
 * margin for the network). Without a clock (`now`) every message carries a mark.
 *
 * Twilio plays audio in the order received, in real time, from when it arrives
 * (Twilio's Media Streams docs: "clear" empties the buffer). `bufferedUntilMs` estimates
 * when Twilio's buffer runs dry: each frame sent extends it by 20 ms from
 * max(now, bufferedUntil), and it is kept at most `leadMs` ahead. Audio is sent when it
 * arrives (if Twilio's buffer has room) and topped up on each tick, whole 160-byte
 * frames only, concatenated into messages of COALESCE_MS … MAX_MESSAGE_MS.
 *
 * Playout handles μ-law only: whole 160-byte frames (or bytes, padded at a response's end),
 * marks, the heard position and `clear`. Agent PCM is turned into frames before it gets
 * here (the session drives the outbound path, dsp/frame-paths.ts), and the session calls
 * endResponse() once the response's last frames are in.
 */
import { buildClear, buildMark, buildMedia } from '../twilio/messages.js';

const FRAME_BYTES = 160;
const FRAME_MS = 20;
/**
 * Smallest media message while Twilio's buffer is comfortably ahead: audio waits until this
 * much has gathered (agents stream faster than real time, so it is usually there already).
 * Less goes out only at a response's end, or when Twilio's buffer is about to run dry.
 */
export const COALESCE_MS = 100;
/** Twilio's buffer this close to running dry: send whatever is queued, however little. */
const LOW_WATER_MS = 40;
/** Largest media message (a mark follows each): bounds a message's size and the heard position's step. */
const MAX_MESSAGE_MS = 1000;
/** Longest stretch of audio sent without a mark (bounds how far the heard estimate extrapolates). */
export const MARK_MAX_GAP_MS = 100;
/** `active` stays true this long past the modelled end of Twilio's buffer (its playback starts a network trip later). */
const ACTIVE_MARGIN_MS = 100;

export interface PlayoutStats {
  framesQueued: number;
  framesSent: number;
  messagesSent: number;
  marksSent: number;
  marksAcked: number;
  /** Frames of audio dropped by barge-in (never played). */
  framesCleared: number;
  /** Agent audio chunks dropped because they belonged to an interrupted response. */
  staleChunksDropped: number;
  /** Ticks where audio was queued but Twilio's buffer had already run dry (an audible gap). */
  underruns: number;
  bargeIns: number;
  queuedMs: number;
}

interface PendingMark {
  name: string;
  responseSeq: number;
  /** Position in the response (ms of its audio) at the end of the message the mark follows. */
  endMs: number;
}

export interface PlayoutOptions {
  streamSid: string;
  /** Sends one text message to Twilio. */
  send: (text: string) => void;
  leadMs: number;
  /** Longest audio the queue holds (Twilio itself discards > 10 min, error 31931). */
  maxQueueMs?: number;
  /** Sees each batch of frames sent, with the clock time Twilio starts playing it (recordings). */
  onSent?: (ulaw: Uint8Array, playAtMs: number) => void;
  /**
   * The frame clock's time. When given, audio that arrives while Twilio's buffer has
   * room is sent at once instead of at the next 20 ms tick (which would add 0–20 ms,
   * 10 ms on average, to every agent frame of an agent that streams at real time).
   */
  now?: () => number;
  /**
   * Frames were queued that the clock must send (they did not all fit at once): the
   * session ticks this playout only from then until the queue is empty (`hasQueued`).
   */
  onQueued?: () => void;
}

export class Playout {
  #o: PlayoutOptions;
  readonly #leadMs: number;
  /** Ring of μ-law frames waiting to be sent. */
  #queue: Uint8Array;
  #qHead = 0;
  #qLen = 0; // bytes
  #partial = new Uint8Array(FRAME_BYTES);
  #partialLen = 0;
  #bufferedUntilMs = 0;
  #firstQueuedAtMs = -1;
  /** The agent said the current response is complete (responseDone). */
  #responseEnded = false;
  /** Audio gathered before a stretch starts: half the lead (40 ms by default). */
  readonly #startBufferMs: number;
  #responseSeq = 0;
  #responseId: string | undefined;
  #responseSentMs = 0;
  #responseHeardMs = 0;
  #pendingMarks: PendingMark[] = [];
  #ignoredMarks = new Set<string>();
  readonly #droppedResponses: string[] = [];
  #markSeq = 0;
  #lastAckAt = 0;
  /** Audio of the current response sent since the last mark (ms). */
  #unmarkedMs = 0;
  /** Whether a mark of the current response has been echoed (heardMs is then anchored). */
  #ackedInResponse = false;
  #stats: PlayoutStats = { framesQueued: 0, framesSent: 0, messagesSent: 0, marksSent: 0, marksAcked: 0, framesCleared: 0, staleChunksDropped: 0, underruns: 0, bargeIns: 0, queuedMs: 0 };
  /** Resolvers waiting for everything sent to have been heard. */
  #drainWaiters: (() => void)[] = [];

  constructor(options: PlayoutOptions) {
    this.#o = options;
    this.#leadMs = options.leadMs;
    this.#startBufferMs = Math.min(60, Math.max(20, Math.round(options.leadMs / 2 / FRAME_MS) * FRAME_MS));
    // A lead under two messages' worth leaves no room to coalesce: frames go out as they fit.
    this.#minFrames = options.leadMs >= 2 * COALESCE_MS ? COALESCE_MS / FRAME_MS : 1;
    const maxFrames = Math.ceil((options.maxQueueMs ?? 10 * 60_000) / FRAME_MS);
    this.#queue = new Uint8Array(Math.min(maxFrames, 3000) * FRAME_BYTES);
    this.#maxQueueBytes = maxFrames * FRAME_BYTES;
  }
  readonly #maxQueueBytes: number;
  /** Smallest message while Twilio's buffer is comfortably ahead (whole frames). */
  readonly #minFrames: number;

  /** Frames sent so far (read every tick: no stats object built). */
  get framesSent(): number {
    return this.#stats.framesSent;
  }

  get stats(): PlayoutStats {
    return { ...this.#stats, queuedMs: (this.#qLen / FRAME_BYTES) * FRAME_MS };
  }

  /** Ms of the current response that the caller has heard (from acknowledged marks). */
  get heardMs(): number {
    return this.#responseHeardMs;
  }

  /** Whether agent audio is queued or still playing at Twilio (a mark outstanding, or by the buffer model). */
  get active(): boolean {
    if (this.#markActive) return true;
    const now = this.#o.now?.();
    return now !== undefined && this.#bufferedUntilMs > 0 && now < this.#bufferedUntilMs + ACTIVE_MARGIN_MS;
  }

  /** Audio queued or a mark not yet echoed (what `drained()` waits for). */
  get #markActive(): boolean {
    return this.#qLen > 0 || this.#partialLen > 0 || this.#pendingMarks.length > 0;
  }

  get currentResponseId(): string | undefined {
    return this.#responseId;
  }

  /** Whether frames wait to be sent: tick() has work only then. */
  get hasQueued(): boolean {
    return this.#qLen > 0;
  }

  /** Audio just arrived: send what fits now rather than at the next tick; the clock takes the rest. */
  #sendNow(): void {
    if (this.#qLen === 0) return;
    if (this.#o.now) this.tick(this.#o.now());
    if (this.#qLen > 0) this.#o.onQueued?.();
  }

  /**
   * 8 kHz μ-law audio of a response (an agent's frames, a prompt, TTS): whole frames or any
   * bytes (a partial frame waits for the next bytes, or is padded at endResponse()).
   * Audio of a response interrupted by a barge-in is dropped.
   */
  enqueue(ulaw: Uint8Array, responseId: string | undefined): void {
    if (responseId !== undefined && this.#droppedResponses.includes(responseId)) {
      this.#stats.staleChunksDropped++;
      return;
    }
    if (responseId !== this.#responseId && (responseId !== undefined || this.#responseId !== undefined)) {
      this.#startResponse(responseId);
    }
    this.#queueUlaw(ulaw);
    this.#sendNow();
  }

  /** End of a response (all its audio is enqueued): the last partial frame is padded and everything goes out. */
  endResponse(): void {
    this.#responseEnded = true;
    this.#padPartial();
    this.#sendNow();
    this.#markEnd();
  }

  /** The response is complete and all of it has gone out unmarked: a lone mark after it, for drained(). */
  #markEnd(): void {
    if (this.#qLen === 0 && this.#partialLen === 0 && this.#unmarkedMs > 0) this.#sendMark();
  }

  /** μ-law bytes (passthrough agents, prompts) that did not fill a frame: pad with silence. */
  #padPartial(): void {
    if (this.#partialLen > 0) {
      this.#partial.fill(0xff, this.#partialLen);
      this.#queueFrames(this.#partial, FRAME_BYTES);
      this.#partialLen = 0;
    }
  }

  #startResponse(responseId: string | undefined): void {
    this.#responseSeq++;
    this.#responseEnded = false;
    this.#responseId = responseId;
    this.#responseSentMs = 0;
    this.#responseHeardMs = 0;
    this.#unmarkedMs = 0;
    this.#ackedInResponse = false;
  }

  #queueUlaw(bytes: Uint8Array): void {
    let off = 0;
    if (this.#partialLen > 0) {
      const take = Math.min(FRAME_BYTES - this.#partialLen, bytes.length);
      this.#partial.set(bytes.subarray(0, take), this.#partialLen);
      this.#partialLen += take;
      off = take;
      if (this.#partialLen === FRAME_BYTES) {
        this.#queueFrames(this.#partial, FRAME_BYTES);
        this.#partialLen = 0;
      }
    }
    const whole = Math.floor((bytes.length - off) / FRAME_BYTES) * FRAME_BYTES;
    if (whole > 0) this.#queueFrames(bytes.subarray(off, off + whole), whole);
    off += whole;
    if (off < bytes.length) {
      this.#partial.set(bytes.subarray(off), 0);
      this.#partialLen = bytes.length - off;
    }
  }

  #queueFrames(src: Uint8Array, n: number, from = 0): void {
    if (n === 0) return;
    if (this.#qLen + n > this.#queue.length) this.#grow(this.#qLen + n);
    const cap = this.#queue.length;
    let tail = (this.#qHead + this.#qLen) % cap;
    let off = 0;
    while (off < n) {
      const k = Math.min(n - off, cap - tail);
      this.#queue.set(src.subarray(from + off, from + off + k), tail);
      off += k;
      tail = (tail + k) % cap;
    }
    this.#qLen += n;
    this.#stats.framesQueued += n / FRAME_BYTES;
  }

  #grow(need: number): void {
    if (need > this.#maxQueueBytes) {
      // Beyond the cap the oldest audio is dropped, as Twilio would (31931); counted.
      const drop = need - this.#maxQueueBytes;
      this.#qHead = (this.#qHead + drop) % this.#queue.length;
      this.#qLen -= drop;
      this.#stats.framesCleared += drop / FRAME_BYTES;
      need = this.#maxQueueBytes;
      if (need <= this.#queue.length) return;
    }
    const next = new Uint8Array(Math.min(this.#maxQueueBytes, Math.max(need, this.#queue.length * 2)));
    for (let i = 0; i < this.#qLen; i++) next[i] = this.#queue[(this.#qHead + i) % this.#queue.length]!;
    this.#queue = next;
    this.#qHead = 0;
  }

  /**
   * Called by the shared clock while frames are queued (`hasQueued`; a call on an empty
   * queue does nothing but forget when the queue last started filling): sends what keeps
   * Twilio's buffer `leadMs` ahead of now.
   */
  tick(nowMs: number): void {
    if (this.#qLen === 0) {
      this.#firstQueuedAtMs = -1;
      return;
    }
    // Start of a stretch (Twilio's buffer is empty): hold the first frames until a
    // little audio has gathered (or that much time has passed). An agent that streams
    // at exactly real-time pace would otherwise give Twilio 20 ms at a time and every
    // bit of network jitter would be an audible gap; agents that send faster than real
    // time are not delayed (their audio is already queued).
    if (this.#bufferedUntilMs <= nowMs) {
      if (this.#firstQueuedAtMs < 0) this.#firstQueuedAtMs = nowMs;
      const queuedMs = (this.#qLen / FRAME_BYTES) * FRAME_MS;
      if (queuedMs < this.#startBufferMs && nowMs - this.#firstQueuedAtMs < this.#startBufferMs) return;
    }
    this.#firstQueuedAtMs = -1;
    if (this.#bufferedUntilMs < nowMs) {
      // An underrun is Twilio running dry in the middle of a response whose audio was
      // still coming (not the pause before the next reply, which the caller hears as a turn).
      if (this.#responseSentMs > 0 && !this.#responseEnded && this.#bufferedUntilMs > 0 && this.#bufferedUntilMs < nowMs - FRAME_MS) this.#stats.underruns++;
      this.#bufferedUntilMs = nowMs;
    }
    // Whole messages while there is room under the lead ceiling: at least COALESCE_MS each
    // unless the response ends here or Twilio's buffer is about to run dry.
    for (;;) {
      const room = Math.floor((nowMs + this.#leadMs - this.#bufferedUntilMs) / FRAME_MS);
      const queued = this.#qLen / FRAME_BYTES;
      if (room <= 0 || queued === 0) return;
      const frames = Math.min(room, queued, MAX_MESSAGE_MS / FRAME_MS);
      if (frames < this.#minFrames) {
        const endsHere = this.#responseEnded && this.#partialLen === 0 && frames === queued;
        if (!endsHere && this.#bufferedUntilMs - nowMs > LOW_WATER_MS) return;
      }
      this.#sendFrames(frames);
    }
  }

  /** One media message of the next `frames` queued frames, and a mark when one is due. */
  #sendFrames(frames: number): void {
    const bytes = frames * FRAME_BYTES;
    // Base64 of whole frames straight from the ring (two pieces when it wraps).
    const cap = this.#queue.length;
    let payload: string;
    if (this.#qHead + bytes <= cap) {
      payload = Buffer.from(this.#queue.buffer, this.#queue.byteOffset + this.#qHead, bytes).toString('base64');
    } else {
      const first = cap - this.#qHead;
      const tmp = Buffer.allocUnsafe(bytes);
      tmp.set(this.#queue.subarray(this.#qHead, cap), 0);
      tmp.set(this.#queue.subarray(0, bytes - first), first);
      payload = tmp.toString('base64');
    }
    if (this.#o.onSent) {
      const at = this.#bufferedUntilMs;
      const view = this.#qHead + bytes <= cap ? this.#queue.subarray(this.#qHead, this.#qHead + bytes) : Buffer.from(payload, 'base64');
      this.#o.onSent(view, at);
    }
    const startsResponse = this.#responseSentMs === 0;
    this.#qHead = (this.#qHead + bytes) % cap;
    this.#qLen -= bytes;
    this.#bufferedUntilMs += frames * FRAME_MS;
    this.#responseSentMs += frames * FRAME_MS;
    this.#unmarkedMs += frames * FRAME_MS;
    this.#o.send(buildMedia(this.#o.streamSid, payload));
    this.#stats.framesSent += frames;
    this.#stats.messagesSent++;
    const endsResponse = this.#responseEnded && this.#qLen === 0 && this.#partialLen === 0;
    if (!this.#o.now || startsResponse || this.#unmarkedMs >= MARK_MAX_GAP_MS || endsResponse) this.#sendMark();
  }

  #sendMark(): void {
    const name = `r${this.#responseSeq}.${this.#responseSentMs}.${++this.#markSeq}`;
    this.#pendingMarks.push({ name, responseSeq: this.#responseSeq, endMs: this.#responseSentMs });
    this.#o.send(buildMark(this.#o.streamSid, name));
    this.#unmarkedMs = 0;
    this.#stats.messagesSent++;
    this.#stats.marksSent++;
  }

  /** Twilio echoed a mark: its audio has played (or was cleared, for marks we stopped waiting for). */
  onMark(name: string, nowMs: number): boolean {
    if (this.#ignoredMarks.delete(name)) return true;
    const i = this.#pendingMarks.findIndex((m) => m.name === name);
    if (i < 0) return false;
    // Marks come back in order; any earlier ones are implied played.
    const m = this.#pendingMarks[i]!;
    this.#pendingMarks.splice(0, i + 1);
    this.#stats.marksAcked += i + 1;
    this.#lastAckAt = nowMs;
    if (m.responseSeq === this.#responseSeq) {
      this.#responseHeardMs = m.endMs;
      this.#ackedInResponse = true;
    }
    if (!this.#markActive) this.#resolveDrain();
    return true;
  }

  /**
   * Barge-in: drop queued audio, send `clear`, ignore the marks Twilio will echo for
   * the cleared audio, drop late audio of the interrupted response. Returns how much
   * of the response the caller heard (acknowledged marks).
   */
  bargeIn(): { heardMs: number; responseId: string | undefined; cleared: boolean } {
    const heardMs = this.#heardEstimate();
    const responseId = this.#responseId;
    const wasActive = this.active;
    this.discardUnsent();
    if (wasActive) {
      this.#o.send(buildClear(this.#o.streamSid));
      this.#stats.messagesSent++;
      for (const m of this.#pendingMarks) this.#ignoredMarks.add(m.name);
      if (this.#ignoredMarks.size > 4096) this.#ignoredMarks.clear();
      this.#stats.bargeIns++;
    }
    this.#pendingMarks = [];
    this.#bufferedUntilMs = 0;
    this.#startResponse(undefined);
    this.#resolveDrain();
    return { heardMs, responseId, cleared: wasActive };
  }

  /**
   * Drops the audio not yet sent to Twilio (queued frames, a partial frame)
   * and any later audio of the current response; what Twilio already has plays on (no
   * `clear`). For an agent that failed mid-reply: the caller hears what had reached
   * Twilio — with a lead of seconds usually the whole reply — then whatever comes next.
   */
  discardUnsent(): void {
    this.#stats.framesCleared += this.#qLen / FRAME_BYTES;
    this.#qLen = 0;
    this.#qHead = 0;
    this.#partialLen = 0;
    if (this.#responseId !== undefined) {
      this.#droppedResponses.push(this.#responseId);
      if (this.#droppedResponses.length > 32) this.#droppedResponses.shift();
    }
  }

  /**
   * How much of the current response the caller has heard, in ms: the last echoed
   * mark's position plus the time since its echo (Twilio plays on in real time), but
   * never past what Twilio can have played by now — the audio sent minus what our model
   * of its buffer says is still queued. Without an echo in this response yet: 0.
   */
  #heardEstimate(): number {
    const acked = this.#responseHeardMs;
    const now = this.#o.now?.();
    if (!this.#ackedInResponse || now === undefined) return acked;
    const playable = this.#responseSentMs - Math.max(0, this.#bufferedUntilMs - now);
    return Math.round(Math.max(acked, Math.min(acked + (now - this.#lastAckAt), playable)));
  }

  /** Resolves when all audio queued so far has been acknowledged as played (or at once if idle). */
  drained(): Promise<void> {
    if (!this.#markActive) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  #resolveDrain(): void {
    const w = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const r of w) r();
  }

  get lastAckAtMs(): number {
    return this.#lastAckAt;
  }

  close(): void {
    this.#qLen = 0;
    this.#pendingMarks = [];
    this.#resolveDrain();
  }
}
