/**
 * At-least-once, signed delivery of call events to each profile's `events.url`
 * (docs/events.md), through a durable outbox file of its own in the data dir.
 *
 * ```text
 *  enqueue(event)      sync, O(1), never throws (call start/end, tool calls; never per frame)
 *    └─► memory queue ─► next turn: `add` line appended + fdatasync   <dir>/events-outbox[-w<slot>].jsonl
 *                            └─► pending ─► POST events.url, signed (X-Voice-Bridge-Signature)
 *                                  2xx ─────────────► `done` line; delivered
 *                                  else ────────────► retry: ~firstRetryMs, doubling, ≤ maxRetryMs, jittered
 *                                  older than maxAgeMs, or the profile lost its events.url ─► dropped (`done`, counted, logged)
 *  close()             timers stopped, requests in flight aborted: what is pending stays in the file
 *  start() (next run)  the file is read back (a torn or corrupt line skipped, counted), compacted to
 *                      the pending events, orphaned outboxes of dead processes adopted, delivery resumes
 * ```
 *
 * The file is append-only between compactions: an `add` line per event and a `done` line
 * when it is delivered or dropped; when nothing is pending it is emptied, and it is
 * rewritten (temp file + rename) once `done` lines outnumber what is pending. Each
 * process owns its file (a `.lock` beside it, the call-record outbox's lock,
 * src/store/outbox.ts); a worker of `--workers N` uses `events-outbox-w<slot>`.
 *
 * Any non-2xx answer is a failed attempt and is retried until the maximum age — 4xx
 * included: a receiver that refuses us is most often misconfigured for a while (a
 * rotated secret, a route not yet deployed), and dropping on it would lose events the
 * user wants once it is fixed (docs/events.md says so).
 */
import { EventEmitter } from 'node:events';
import { mkdir, open, readdir, readFile, rename, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCodes } from '../errors.js';
import { releaseLock, takeLock } from '../store/outbox.js';
import { postSigned } from '../tools/post-signed.js';
import { isBridgeEvent, type BridgeEvent } from './event.js';

export const EVENTS_OUTBOX_NAME = 'events-outbox';
export const DEFAULT_FIRST_RETRY_MS = 5_000;
export const DEFAULT_MAX_RETRY_MS = 60_000;
export const DEFAULT_EVENT_MAX_AGE_MS = 24 * 60 * 60 * 1000;
export const DEFAULT_ATTEMPT_TIMEOUT_MS = 10_000;
export const DEFAULT_MAX_IN_FLIGHT = 4;
export const DEFAULT_MAX_PENDING = 10_000;
export const DEFAULT_MAX_PENDING_BYTES = 64 * 1024 * 1024;
/** A receiver's reply is read up to this and ignored (only its status counts). */
const MAX_REPLY_BYTES = 64 * 1024;
const WRITE_BATCH = 64;
/** `done` lines in the file beyond which (and beyond the pending count) it is rewritten. */
const COMPACT_AFTER_DONE = 1024;
/** Corrupt lines logged one by one at start; the rest only counted. */
const MAX_CORRUPT_LOGS = 10;

export interface EventTarget {
  url: string;
  /** The profile's `secret`; without one the event goes unsigned. */
  secret?: string | undefined;
}

export type DropReason = 'expired' | 'no-target' | 'queue-full' | 'unserialisable';
export const DROP_REASONS: readonly DropReason[] = ['expired', 'no-target', 'queue-full', 'unserialisable'];

export interface EventDelivererOptions {
  /** The data dir (BRIDGE_DATA_DIR). */
  dir: string;
  /** A worker of `--workers N`: its file is `events-outbox-w<slot>.jsonl`. */
  workerSlot?: number | undefined;
  /** Where a profile's events go, asked at every attempt (so a reloaded profile takes effect); undefined: it has none. */
  target: (profile: string) => EventTarget | undefined;
  log?: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
  /** The first retry comes after half to all of this (default 5 s). */
  firstRetryMs?: number;
  /** The longest wait between two attempts (default 60 s); jitter keeps it between half and all of it. */
  maxRetryMs?: number;
  /** Undelivered events older than this are dropped (default 24 h). */
  maxAgeMs?: number;
  /** One attempt's bound, reply included (default 10 s). */
  attemptTimeoutMs?: number;
  maxInFlight?: number;
  /** Events waiting (in memory and on disk) beyond which new ones are dropped (default 10 000). */
  maxPending?: number;
  maxPendingBytes?: number;
  /** Wall clock in ms (tests). */
  now?: () => number;
  /** [0, 1) (tests). */
  random?: () => number;
}

export interface EventDeliveryStats {
  /** Events accepted and not yet delivered or dropped. */
  pending: number;
  delivered: number;
  failedAttempts: number;
  dropped: Record<DropReason, number>;
  /** Lines of the outbox file that were not events (skipped). */
  corruptLines: number;
  writeFailures: number;
}

interface Entry {
  event: BridgeEvent;
  /** The event's JSON text: what is signed and sent, the same bytes every attempt. */
  body: string;
  createdMs: number;
  attempts: number;
  nextAt: number;
  inFlight: boolean;
}

/** Events: 'delivered' (event), 'attemptFailed' (event, reason), 'dropped' (event, reason). */
export class EventDeliverer extends EventEmitter {
  readonly #o: Required<Omit<EventDelivererOptions, 'workerSlot' | 'log'>> & Pick<EventDelivererOptions, 'log'>;
  readonly #baseName: string;
  #name: string;
  #lockName: string | undefined;
  #fh: FileHandle | undefined;
  #started = false;
  #stopping = false;
  #closed = false;
  /** Accepted, not yet in the file. */
  #unwritten: BridgeEvent[] = [];
  /** In the file, not yet delivered or dropped (insertion order). */
  readonly #pending = new Map<string, Entry>();
  #pendingBytes = 0;
  #dones: string[] = [];
  #linesDone = 0;
  #io: Promise<void> = Promise.resolve();
  #writeScheduled = false;
  #writeRetry: NodeJS.Timeout | undefined;
  #writeRetryMs = 100;
  #writeFailing = false;
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Infinity;
  #inFlight = 0;
  readonly #requests = new Set<Promise<void>>();
  readonly #abort = new AbortController();
  readonly #stats: EventDeliveryStats = { pending: 0, delivered: 0, failedAttempts: 0, dropped: { expired: 0, 'no-target': 0, 'queue-full': 0, unserialisable: 0 }, corruptLines: 0, writeFailures: 0 };

  constructor(options: EventDelivererOptions) {
    super();
    this.#o = {
      dir: options.dir,
      target: options.target,
      log: options.log,
      firstRetryMs: options.firstRetryMs ?? DEFAULT_FIRST_RETRY_MS,
      maxRetryMs: options.maxRetryMs ?? DEFAULT_MAX_RETRY_MS,
      maxAgeMs: options.maxAgeMs ?? DEFAULT_EVENT_MAX_AGE_MS,
      attemptTimeoutMs: options.attemptTimeoutMs ?? DEFAULT_ATTEMPT_TIMEOUT_MS,
      maxInFlight: options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT,
      maxPending: options.maxPending ?? DEFAULT_MAX_PENDING,
      maxPendingBytes: options.maxPendingBytes ?? DEFAULT_MAX_PENDING_BYTES,
      now: options.now ?? Date.now,
      random: options.random ?? Math.random,
    };
    this.#baseName = options.workerSlot !== undefined && options.workerSlot >= 0 ? `${EVENTS_OUTBOX_NAME}-w${options.workerSlot}` : EVENTS_OUTBOX_NAME;
    this.#name = this.#baseName;
  }

  /** The outbox file (known once started). */
  get path(): string {
    return join(this.#o.dir, `${this.#name}.jsonl`);
  }

  stats(): EventDeliveryStats {
    return { ...this.#stats, dropped: { ...this.#stats.dropped }, pending: this.#unwritten.length + this.#pending.size };
  }

  /**
   * Opens (taking its lock) and reads back the outbox, adopts the outboxes of processes
   * that are gone, and starts delivering. Never throws: a file that cannot be opened is
   * logged (BRIDGE_ERR_EVENTS_OUTBOX) and events then wait in memory while it is retried.
   */
  async start(): Promise<void> {
    if (this.#started || this.#closed) return;
    this.#started = true;
    this.#io = this.#io.then(() => this.#open()).catch(this.#ioFailed);
    await this.#io;
    this.#schedulePump();
    this.#kick();
  }

  /**
   * Accepts an event for delivery: synchronous, O(1), never throws, never blocks. False
   * when it is not taken (closed, the queue is full, or its profile has no events URL).
   */
  enqueue(event: BridgeEvent): boolean {
    try {
      if (this.#closed || this.#stopping) return false;
      if (this.#o.target(event.profile) === undefined) return false;
      if (this.#unwritten.length + this.#pending.size >= this.#o.maxPending) {
        this.#drop(event, 'queue-full');
        return false;
      }
      this.#unwritten.push(event);
      this.#schedulePump();
      return true;
    } catch {
      return false;
    }
  }

  /** Waits (bounded) until nothing is pending; true when so. For a shutdown that may wait a little. */
  async flush(timeoutMs: number): Promise<boolean> {
    const deadline = this.#o.now() + timeoutMs;
    while (this.#unwritten.length + this.#pending.size > 0 && !this.#closed) {
      const left = deadline - this.#o.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, Math.min(left, 50));
        const self = this;
        function done() {
          clearTimeout(t);
          self.off('delivered', done);
          self.off('dropped', done);
          resolve();
        }
        this.once('delivered', done);
        this.once('dropped', done);
      });
    }
    return this.#unwritten.length + this.#pending.size === 0;
  }

  /**
   * Stops delivering: timers cleared, requests in flight aborted (those events stay
   * pending), accepted events made durable, the file closed and its lock released.
   * Returns how many events wait in the file for the next start.
   */
  async close(): Promise<number> {
    if (this.#closed) return this.#pending.size;
    this.#stopping = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#abort.abort();
    await Promise.allSettled([...this.#requests]);
    clearTimeout(this.#writeRetry);
    this.#writeRetry = undefined;
    // One last write of what was accepted (and of `done` lines), in the I/O chain.
    if (this.#fh !== undefined) {
      this.#io = this.#io.then(() => this.#writeQueued()).catch(this.#ioFailed);
      await this.#io;
    }
    this.#closed = true;
    const lost = this.#unwritten.length;
    if (lost > 0) this.#o.log?.('error', 'events not written to the outbox at close: lost', { code: ErrorCodes.EVENTS_OUTBOX, events: lost });
    await this.#fh?.close().catch(() => undefined);
    this.#fh = undefined;
    // A stand-in file (`-p<pid>`: the usual one was locked) left empty would only wait to be adopted.
    if (this.#name !== this.#baseName && this.#pending.size === 0 && lost === 0) await rm(this.path, { force: true }).catch(() => undefined);
    if (this.#lockName !== undefined) await releaseLock(this.#o.dir, this.#lockName);
    return this.#pending.size;
  }

  // ── the file ────────────────────────────────────────────────────────────────

  async #open(): Promise<void> {
    const dir = this.#o.dir;
    try {
      await mkdir(dir, { recursive: true });
      let own = this.#baseName;
      if (!(await takeLock(dir, own))) {
        own = `${this.#baseName}-p${process.pid}`;
        if (!(await takeLock(dir, own))) throw new Error(`events outbox ${own} is locked by another live process`);
      }
      this.#name = own;
      this.#lockName = own;
      const mine = await this.#readFile(own);
      const adopted: string[] = [];
      for (const f of await readdir(dir)) {
        const m = /^(events-outbox(?:-[A-Za-z0-9_.]+)?)\.jsonl$/.exec(f);
        if (!m || m[1] === own) continue;
        const other = m[1]!;
        if (!(await takeLock(dir, other))) continue; // a live process owns it
        try {
          const theirs = await this.#readFile(other);
          for (const e of theirs) if (!mine.some((x) => x.id === e.id)) mine.push(e);
          adopted.push(other);
          this.#o.log?.('info', 'adopting an orphaned events outbox (its process is gone)', { file: `${other}.jsonl`, events: theirs.length });
        } catch (e) {
          await releaseLock(dir, other);
          this.#o.log?.('warn', 'could not read an orphaned events outbox; left as it is', { code: ErrorCodes.EVENTS_OUTBOX, file: `${other}.jsonl`, err: e });
        }
      }
      // Compacted: only what is pending, durable before any orphan goes.
      const entries: Entry[] = [];
      for (const event of mine) {
        const body = JSON.stringify(event);
        entries.push(this.#entry(event, body));
      }
      await this.#rewrite(entries);
      for (const other of adopted) {
        await rm(join(dir, `${other}.jsonl`), { force: true });
        await releaseLock(dir, other);
      }
      for (const e of entries) {
        this.#pending.set(e.event.id, e);
        this.#pendingBytes += e.body.length;
      }
      if (entries.length > 0) this.#o.log?.('info', 'events from a previous run are pending; delivering', { events: entries.length, path: this.path });
      this.#kick(); // also after an open that had failed at start and is retried
    } catch (e) {
      if (this.#lockName !== undefined) await releaseLock(dir, this.#lockName);
      this.#lockName = undefined;
      this.#name = this.#baseName;
      await this.#fh?.close().catch(() => undefined);
      this.#fh = undefined;
      this.#stats.writeFailures++;
      this.#o.log?.('error', 'cannot open the events outbox; events wait in memory and the open is retried', { code: ErrorCodes.EVENTS_OUTBOX, dir, err: e });
      this.#retryWriteLater();
    }
  }

  /** The pending events of `<name>.jsonl` (missing: none). A torn last line is ignored; corrupt lines are skipped, counted and logged. */
  async #readFile(name: string): Promise<BridgeEvent[]> {
    let text: string;
    try {
      text = await readFile(join(this.#o.dir, `${name}.jsonl`), 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    const lines = text.split('\n');
    const torn = lines.pop(); // '' when the file ends in a newline
    if (torn) this.#o.log?.('warn', 'events outbox ended in a torn line (a crash mid-write); ignored', { file: `${name}.jsonl`, bytes: Buffer.byteLength(torn) });
    const adds = new Map<string, BridgeEvent>();
    const done = new Set<string>();
    let corrupt = 0;
    lines.forEach((line, i) => {
      let rec: { v?: unknown; op?: unknown; event?: unknown; id?: unknown } | undefined;
      try {
        rec = JSON.parse(line) as typeof rec;
      } catch {
        rec = undefined;
      }
      if (rec?.v === 1 && rec.op === 'add' && isBridgeEvent(rec.event)) {
        if (!adds.has(rec.event.id)) adds.set(rec.event.id, rec.event);
      } else if (rec?.v === 1 && rec.op === 'done' && typeof rec.id === 'string') done.add(rec.id);
      else {
        corrupt++;
        if (this.#stats.corruptLines + corrupt <= MAX_CORRUPT_LOGS) {
          this.#o.log?.('warn', 'events outbox: a line that is not an event; skipped', { code: ErrorCodes.EVENTS_OUTBOX_CORRUPT, file: `${name}.jsonl`, line: i + 1, bytes: Buffer.byteLength(line) });
        }
      }
    });
    this.#stats.corruptLines += corrupt;
    return [...adds.values()].filter((e) => !done.has(e.id));
  }

  /** Replaces the file with `add` lines of `entries` (temp file, fdatasync, rename), and reopens it for appending. */
  async #rewrite(entries: readonly Entry[]): Promise<void> {
    const tmp = `${this.path}.tmp`;
    const fh = await open(tmp, 'w');
    try {
      for (let i = 0; i < entries.length; i += WRITE_BATCH) await fh.write(entries.slice(i, i + WRITE_BATCH).map((e) => addLine(e.body)).join(''));
      await fh.datasync();
    } finally {
      await fh.close();
    }
    await rename(tmp, this.path);
    await this.#fh?.close().catch(() => undefined);
    this.#fh = await open(this.path, 'a');
    this.#linesDone = 0;
  }

  #schedulePump(): void {
    if (this.#writeScheduled || this.#writeRetry !== undefined || !this.#started || this.#closed) return;
    this.#writeScheduled = true;
    setImmediate(() => {
      this.#writeScheduled = false;
      this.#io = this.#io
        .then(() => (this.#fh === undefined ? this.#open() : undefined))
        .then(() => this.#writeQueued())
        .catch(this.#ioFailed);
    });
  }

  async #writeQueued(): Promise<void> {
    while (this.#fh !== undefined && (this.#unwritten.length > 0 || this.#dones.length > 0)) {
      const events = this.#unwritten.slice(0, WRITE_BATCH);
      const doneIds = this.#dones.slice();
      const entries: Entry[] = [];
      let text = '';
      for (const event of events) {
        let body: string | undefined;
        try {
          body = JSON.stringify(event);
        } catch {
          body = undefined;
        }
        if (body === undefined) {
          this.#drop(event, 'unserialisable');
          continue;
        }
        if (this.#pendingBytes + body.length > this.#o.maxPendingBytes) {
          this.#drop(event, 'queue-full');
          continue;
        }
        entries.push(this.#entry(event, body));
        text += addLine(body);
      }
      for (const id of doneIds) text += `${JSON.stringify({ v: 1, op: 'done', id })}\n`;
      try {
        if (text.length > 0) {
          await this.#fh.write(text);
          await this.#fh.datasync();
        }
      } catch (e) {
        this.#stats.writeFailures++;
        if (!this.#writeFailing) this.#o.log?.('error', 'events outbox write failed (disk full? permissions?); events wait in memory, retrying', { code: ErrorCodes.EVENTS_OUTBOX, path: this.path, err: e });
        this.#writeFailing = true;
        // Nothing taken off the queues: the same lines are written again (a partial line is dropped at the next start).
        this.#retryWriteLater();
        return;
      }
      if (this.#writeFailing) this.#o.log?.('info', 'events outbox writable again', { path: this.path });
      this.#writeFailing = false;
      this.#writeRetryMs = 100;
      this.#unwritten.splice(0, events.length);
      // Only what was written: ids added during the write wait for the next round.
      this.#dones.splice(0, doneIds.length);
      this.#linesDone += doneIds.length;
      for (const e of entries) {
        this.#pending.set(e.event.id, e);
        this.#pendingBytes += e.body.length;
      }
      if (entries.length > 0) this.#kick();
    }
    if (this.#fh === undefined) return;
    // Nothing pending: empty the file. Many `done` lines: keep only what is pending.
    try {
      if (this.#pending.size === 0 && this.#unwritten.length === 0) {
        await this.#fh.truncate(0);
        this.#linesDone = 0;
      } else if (this.#linesDone >= COMPACT_AFTER_DONE && this.#linesDone > this.#pending.size) {
        await this.#rewrite([...this.#pending.values()]);
      }
    } catch (e) {
      this.#o.log?.('warn', 'events outbox compaction failed; the file stays longer than needed', { code: ErrorCodes.EVENTS_OUTBOX, path: this.path, err: e });
    }
  }

  #retryWriteLater(): void {
    if (this.#stopping || this.#closed || this.#writeRetry !== undefined) return;
    this.#writeRetry = setTimeout(() => {
      this.#writeRetry = undefined;
      this.#schedulePump();
    }, this.#writeRetryMs);
    this.#writeRetry.unref();
    this.#writeRetryMs = Math.min(this.#writeRetryMs * 2, 5000);
  }

  #entry(event: BridgeEvent, body: string): Entry {
    const created = Date.parse(event.createdAt);
    return { event, body, createdMs: Number.isFinite(created) ? created : this.#o.now(), attempts: 0, nextAt: 0, inFlight: false };
  }

  /** Forgets an event for good (a `done` line when it was in the file), counted and logged with its code. */
  #drop(event: BridgeEvent, reason: DropReason): void {
    this.#stats.dropped[reason]++;
    const e = this.#pending.get(event.id);
    if (e) {
      this.#pending.delete(event.id);
      this.#pendingBytes -= e.body.length;
      this.#dones.push(event.id);
      this.#schedulePump();
    }
    const n = this.#stats.dropped[reason];
    // A full queue drops many in a row: the first and then every thousandth.
    if (reason !== 'queue-full' || n === 1 || n % 1000 === 0) {
      this.#o.log?.('warn', `event dropped undelivered (${reason})`, { code: ErrorCodes.EVENTS_EXPIRED, reason, id: event.id, type: event.type, profile: event.profile, callSid: event.callSid, attempts: e?.attempts ?? 0, droppedSoFar: n });
    }
    this.#tell('dropped', event, reason);
  }

  // ── delivery ────────────────────────────────────────────────────────────────

  /** Starts every due attempt (up to maxInFlight) and sets the timer for the next one. */
  #kick = (): void => {
    if (!this.#started || this.#stopping) return;
    const now = this.#o.now();
    let next = Infinity;
    for (const e of [...this.#pending.values()]) {
      if (e.inFlight) continue;
      if (now - e.createdMs > this.#o.maxAgeMs) {
        this.#drop(e.event, 'expired');
        continue;
      }
      if (e.nextAt > now) next = Math.min(next, e.nextAt);
      else if (this.#inFlight < this.#o.maxInFlight) this.#attempt(e);
    }
    if (next === Infinity || next >= this.#timerAt) return;
    clearTimeout(this.#timer);
    this.#timerAt = next;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#timerAt = Infinity;
      this.#kick();
    }, Math.max(0, next - now));
    this.#timer.unref();
  };

  #attempt(e: Entry): void {
    const target = this.#o.target(e.event.profile);
    if (target === undefined) {
      this.#drop(e.event, 'no-target');
      return;
    }
    e.inFlight = true;
    this.#inFlight++;
    const p = postSigned(target.url, e.body, { secret: target.secret, timeoutMs: this.#o.attemptTimeoutMs, maxResponseBytes: MAX_REPLY_BYTES, signal: this.#abort.signal }).then((o) => {
      e.inFlight = false;
      this.#inFlight--;
      this.#requests.delete(p);
      if (this.#stopping || !this.#pending.has(e.event.id)) return;
      const status = o.kind === 'response' || o.kind === 'too-large' ? o.status : undefined;
      if (status !== undefined && status >= 200 && status <= 299) {
        this.#pending.delete(e.event.id);
        this.#pendingBytes -= e.body.length;
        this.#dones.push(e.event.id);
        this.#stats.delivered++;
        this.#schedulePump();
        this.#tell('delivered', e.event);
      } else {
        e.attempts++;
        this.#stats.failedAttempts++;
        const why = status !== undefined ? `HTTP ${status}` : o.kind === 'network' ? o.message : o.kind;
        e.nextAt = this.#o.now() + this.#backoffMs(e.attempts);
        // The first failure and then every tenth: a receiver that is down a long while must not flood the log.
        if (e.attempts === 1 || e.attempts % 10 === 0) {
          this.#o.log?.('warn', 'event delivery failed; will retry', { code: ErrorCodes.EVENTS_DELIVERY, id: e.event.id, type: e.event.type, profile: e.event.profile, attempts: e.attempts, reason: why, retryInMs: e.nextAt - this.#o.now() });
        }
        this.#tell('attemptFailed', e.event, why);
      }
      this.#kick();
    }).catch((err: unknown) => {
      // Only a listener's or the logger's own bug can land here; the event stays pending.
      this.#o.log?.('error', 'event delivery bookkeeping failed', { code: ErrorCodes.EVENTS_DELIVERY, id: e.event.id, err });
    });
    this.#requests.add(p);
  }

  /** Emits without letting a listener's throw reach the delivery or I/O paths. */
  #tell(name: 'delivered' | 'dropped' | 'attemptFailed', ...args: unknown[]): void {
    try {
      this.emit(name, ...args);
    } catch (err) {
      this.#o.log?.('error', `an '${name}' listener threw`, { err });
    }
  }

  /** The I/O chain never stays rejected: a bug is logged and the next write goes on. */
  #ioFailed = (err: unknown): void => {
    this.#o.log?.('error', 'events outbox I/O failed unexpectedly', { code: ErrorCodes.EVENTS_OUTBOX, err });
  };

  #backoffMs(failures: number): number {
    return retryDelayMs(failures, this.#o, this.#o.random());
  }
}

/**
 * The wait before attempt n+1 after n ≥ 1 failures: firstRetryMs·2^(n−1), capped at
 * maxRetryMs, times a jitter in [0.5, 1] (`random` in [0, 1)) so that events failed
 * together do not retry together. Defaults: 2.5–5 s, 5–10 s, 10–20 s, 20–40 s, then 30–60 s.
 */
export function retryDelayMs(failures: number, schedule: { firstRetryMs?: number; maxRetryMs?: number } = {}, random: number = Math.random()): number {
  const first = schedule.firstRetryMs ?? DEFAULT_FIRST_RETRY_MS;
  const max = schedule.maxRetryMs ?? DEFAULT_MAX_RETRY_MS;
  const base = Math.min(max, first * 2 ** Math.min(Math.max(failures, 1) - 1, 30));
  return Math.round(base * (0.5 + 0.5 * Math.min(Math.max(random, 0), 1)));
}

function addLine(body: string): string {
  return `{"v":1,"op":"add","event":${body}}\n`;
}

/** A profile's events target: its `events.url`, signed with its `secret`; undefined when it has no `events`. */
export function profileEventTarget(profile: { events?: { url: string } | undefined; secret?: string | undefined } | undefined): EventTarget | undefined {
  return profile?.events ? { url: profile.events.url, secret: profile.secret } : undefined;
}
