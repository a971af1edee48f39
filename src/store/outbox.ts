/**
 * The durable local outbox between record() and the database.
 *
 *   record() ──append()──► memory queue ──(next turn: one write + fdatasync per batch)──► outbox.jsonl
 *                                                                                          │ [committed | durable]
 *                       database ◄──upsert── writer ◄──readBatch() (from the committed offset)┘
 *
 * append() is synchronous and O(1): it only queues the object. Serialising and
 * writing happen on the next event-loop turn in one batch, off the caller's path;
 * the data is durable once the batch's fdatasync returns (a process killed before
 * that loses at most that batch — milliseconds of records). The writer reads the
 * file from the committed offset, so memory holds only records not yet written,
 * however long the database is away. When everything written has been committed,
 * the file is truncated. A restart replays the whole file: upserts by CallSid make
 * a replay of records already in the database harmless.
 *
 * Each process owns its outbox (design: no two processes ever append to or truncate
 * one file): `outbox.jsonl` for a single process, `outbox-w<slot>.jsonl` for worker
 * <slot> of `--workers N`, each guarded by `<name>.lock` holding the owner's pid.
 * A lock whose process is gone is taken over (a restart replays its predecessor's
 * file); a lock held by a live process makes the newcomer use a file of its own.
 * At start, outboxes that nobody owns any more (fewer workers than last time, a
 * process that used a file of its own) are adopted: their records are moved into
 * this process's outbox, durably, and the orphan is deleted.
 */
import { open, appendFile, mkdir, readdir, readFile, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { OutboxEntry } from './record-row.js';
import { pidAlive } from './pid-alive.js';

/** Records held in memory while the outbox file cannot be written (disk full…); beyond it the oldest are dropped and counted. */
const MAX_QUEUED = 50_000;
const READ_CHUNK = 256 * 1024;
const WRITE_BATCH = 64;
const NL = 0x0a;

export interface OutboxBatch {
  entries: OutboxEntry[];
  /** Lines that do not parse as an entry (moved to the rejected file by the caller). */
  bad: string[];
  /** File offset just past the batch: pass to commit(). */
  endBytes: number;
  lines: number;
}

export class Outbox {
  readonly path: string;
  readonly rejectedPath: string;
  readonly #fh: FileHandle;
  #queue: OutboxEntry[] = [];
  #scheduled = false;
  /** Entries taken from the queue by the write in progress. */
  #inFlight = 0;
  #io: Promise<void> = Promise.resolve();
  #durableBytes: number;
  #durableLines: number;
  #committedBytes = 0;
  #committedLines = 0;
  #retryTimer: NodeJS.Timeout | undefined;
  #retryMs = 100;
  #closed = false;
  /** Called after each batch becomes durable. */
  onDurable: () => void = () => undefined;
  readonly counters = { writeFailures: 0, dropped: 0, tornBytesDiscarded: 0, lastError: null as string | null };

  private constructor(path: string, rejectedPath: string, fh: FileHandle, bytes: number, lines: number) {
    this.path = path;
    this.rejectedPath = rejectedPath;
    this.#fh = fh;
    this.#durableBytes = bytes;
    this.#durableLines = lines;
  }

  /**
   * Opens the outbox this process owns: `<dir>/<name>.jsonl` when its lock is free or
   * stale, else `<name>-p<pid>.jsonl`. Then adopts orphaned outboxes of the same dir.
   */
  static async openOwned(dir: string, name = 'outbox'): Promise<{ outbox: Outbox; adopted: { file: string; records: number }[] }> {
    await mkdir(dir, { recursive: true });
    let own = name;
    if (!(await takeLock(dir, own))) {
      own = `${name}-p${process.pid}`;
      if (!(await takeLock(dir, own))) throw new Error(`outbox ${own} is locked by another live process`);
    }
    let outbox: Outbox;
    try {
      outbox = await Outbox.open(dir, own);
    } catch (e) {
      await releaseLock(dir, own);
      throw e;
    }
    outbox.#lockName = own;
    const adopted: { file: string; records: number }[] = [];
    for (const f of await readdir(dir)) {
      const m = /^(outbox[A-Za-z0-9_.-]*)\.jsonl$/.exec(f);
      if (!m || m[1] === own || m[1]!.endsWith('-rejected')) continue;
      const other = m[1]!;
      if (!(await takeLock(dir, other))) continue; // a live process owns it
      try {
        const orphan = await Outbox.open(dir, other);
        let records = 0;
        for (let b = await orphan.readBatch(1000); b; b = await orphan.readBatch(1000)) {
          for (const e of b.entries) outbox.append(e);
          for (const line of b.bad) await outbox.reject(line, `not a call-record outbox entry (adopted from ${other}.jsonl)`);
          records += b.entries.length;
          orphan.commit(b);
        }
        // Durable in our outbox before the orphan goes: a crash in between only replays twice (upserts are idempotent).
        if (!(await outbox.sync())) throw new Error('could not make the adopted records durable');
        await orphan.#fh.close();
        await rm(join(dir, `${other}.jsonl`), { force: true });
        if (records > 0) adopted.push({ file: `${other}.jsonl`, records });
      } catch (e) {
        outbox.counters.lastError = `could not adopt ${other}.jsonl: ${(e as Error).message}`;
      } finally {
        await releaseLock(dir, other);
      }
    }
    return { outbox, adopted };
  }

  #lockName: string | undefined;
  #dir = '';

  /** Opens (creating) `<dir>/<name>.jsonl`, drops a torn last line left by a crash, counts what waits. */
  static async open(dir: string, name = 'outbox'): Promise<Outbox> {
    await mkdir(dir, { recursive: true });
    const path = join(dir, `${name}.jsonl`);
    const fh = await open(path, 'a+');
    try {
      const size = (await fh.stat()).size;
      let lines = 0;
      let lastNl = -1;
      const buf = Buffer.allocUnsafe(READ_CHUNK);
      for (let pos = 0; pos < size; ) {
        const { bytesRead } = await fh.read(buf, 0, Math.min(READ_CHUNK, size - pos), pos);
        if (bytesRead === 0) break;
        for (let i = buf.indexOf(NL, 0); i !== -1 && i < bytesRead; i = buf.indexOf(NL, i + 1)) {
          lines++;
          lastNl = pos + i;
        }
        pos += bytesRead;
      }
      const good = lastNl + 1;
      const ob = new Outbox(path, join(dir, `${name}-rejected.jsonl`), fh, good, lines);
      ob.#dir = dir;
      if (good < size) {
        // A write cut short by a crash; its fdatasync never returned, so nothing acknowledged is lost.
        await fh.truncate(good);
        ob.counters.tornBytesDiscarded = size - good;
      }
      return ob;
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  /** Synchronous and O(1): queues the entry; the write happens on the next turn. */
  append(entry: OutboxEntry): void {
    if (this.#closed) {
      this.counters.dropped++;
      return;
    }
    if (this.#queue.length >= MAX_QUEUED) {
      this.#queue.shift();
      this.counters.dropped++;
    }
    this.#queue.push(entry);
    if (!this.#scheduled && this.#retryTimer === undefined) {
      this.#scheduled = true;
      setImmediate(this.#pump);
    }
  }

  #pump = (): void => {
    this.#scheduled = false;
    this.#io = this.#io.then(() => this.#writeQueued());
  };

  async #writeQueued(): Promise<void> {
    // At most WRITE_BATCH records per write: serialising is synchronous (~15 µs a
    // record), so a burst of thousands is spread over many turns, never one long block.
    while (this.#queue.length > 0) {
      const batch = this.#queue.length <= WRITE_BATCH ? this.#queue : this.#queue.slice(0, WRITE_BATCH);
      this.#queue = batch === this.#queue ? [] : this.#queue.slice(WRITE_BATCH);
      this.#inFlight = batch.length;
      let ok: boolean;
      try {
        ok = await this.#writeBatch(batch);
      } finally {
        this.#inFlight = 0;
      }
      if (!ok) return;
    }
  }

  /** False when the write failed (the batch is back at the head of the queue and a retry is scheduled). */
  async #writeBatch(batch: OutboxEntry[]): Promise<boolean> {
    const parts: string[] = [];
    for (const e of batch) {
      try {
        parts.push(JSON.stringify(e));
      } catch (err) {
        // Not serialisable (cannot happen for a CallRecord); keep the reason, drop the entry.
        this.counters.dropped++;
        this.counters.lastError = `unserialisable record ${e.record?.callSid}: ${(err as Error).message}`;
      }
    }
    if (parts.length === 0) return true;
    const buf = Buffer.from(`${parts.join('\n')}\n`, 'utf8');
    try {
      for (let off = 0; off < buf.length; ) {
        const { bytesWritten } = await this.#fh.write(buf, off, buf.length - off, null);
        off += bytesWritten;
      }
      await this.#fh.datasync();
      this.#durableBytes += buf.length;
      this.#durableLines += parts.length;
      this.#retryMs = 100;
      this.onDurable();
      return true;
    } catch (err) {
      this.counters.writeFailures++;
      this.counters.lastError = `outbox write failed: ${(err as Error).message}`;
      this.#queue = batch.concat(this.#queue);
      try {
        await this.#fh.truncate(this.#durableBytes); // drop a partial line
      } catch {
        // the next successful open() drops it
      }
      if (!this.#closed) {
        this.#retryTimer = setTimeout(() => {
          this.#retryTimer = undefined;
          this.#pump();
        }, this.#retryMs);
        this.#retryTimer.unref();
        this.#retryMs = Math.min(this.#retryMs * 2, 5000);
      }
      return false;
    }
  }

  /** Records accepted but not yet in the database (memory queue + durable, uncommitted lines). */
  get depth(): number {
    return this.#queue.length + this.#inFlight + (this.#durableLines - this.#committedLines);
  }
  /** Records accepted but not yet durable on disk. */
  get queued(): number {
    return this.#queue.length + this.#inFlight;
  }
  get bytes(): number {
    return this.#durableBytes;
  }
  get uncommittedBytes(): number {
    return this.#durableBytes - this.#committedBytes;
  }

  /** Writes what is queued now (no waiting for the next turn); resolves when that write settled. */
  async sync(): Promise<boolean> {
    if (this.#retryTimer !== undefined) {
      clearTimeout(this.#retryTimer);
      this.#retryTimer = undefined;
    }
    if (this.#queue.length > 0) this.#pump();
    await this.#io;
    return this.#queue.length === 0;
  }

  /** Reads up to `max` durable, uncommitted entries from the committed offset. */
  async readBatch(max: number): Promise<OutboxBatch | undefined> {
    const start = this.#committedBytes;
    const avail = this.#durableBytes - start;
    if (avail <= 0) return undefined;
    let len = Math.min(avail, READ_CHUNK);
    let buf = Buffer.allocUnsafe(len);
    let lastNl = -1;
    for (;;) {
      let got = 0;
      while (got < len) {
        const { bytesRead } = await this.#fh.read(buf, got, len - got, start + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      lastNl = buf.lastIndexOf(NL, got - 1);
      if (lastNl !== -1 || len >= avail) break;
      // One record longer than the chunk: read more.
      len = Math.min(avail, len * 4);
      buf = Buffer.allocUnsafe(len);
    }
    if (lastNl === -1) return undefined; // cannot happen: durable bytes always end in a newline
    const entries: OutboxEntry[] = [];
    const bad: string[] = [];
    let pos = 0;
    let lines = 0;
    while (pos <= lastNl && lines < max) {
      const nl = buf.indexOf(NL, pos);
      const line = buf.toString('utf8', pos, nl);
      pos = nl + 1;
      lines++;
      try {
        const e = JSON.parse(line) as OutboxEntry;
        if (e && e.v === 1 && typeof e.recordedAt === 'string' && e.record && typeof e.record.callSid === 'string' && typeof e.record.startedAt === 'string') entries.push(e);
        else bad.push(line);
      } catch {
        bad.push(line);
      }
    }
    return { entries, bad, endBytes: start + pos, lines };
  }

  /** Marks a batch as in the database; once everything is, empties the file. */
  commit(batch: OutboxBatch): void {
    this.#committedBytes = batch.endBytes;
    this.#committedLines += batch.lines;
    if (this.#committedBytes === this.#durableBytes && this.#queue.length === 0) {
      this.#io = this.#io.then(async () => {
        // Re-checked in the I/O chain: a write queued meanwhile keeps the file.
        if (this.#committedBytes !== this.#durableBytes || this.#closed) return;
        try {
          await this.#fh.truncate(0);
          this.#durableBytes = this.#committedBytes = 0;
          this.#durableLines = this.#committedLines = 0;
        } catch (err) {
          this.counters.lastError = `outbox truncate failed: ${(err as Error).message}`;
        }
      });
    }
  }

  /** Keeps a record the database refused for good, with the reason, for an operator to look at. */
  async reject(line: string, reason: string): Promise<void> {
    await appendFile(this.rejectedPath, `${JSON.stringify({ at: new Date().toISOString(), reason, line })}\n`);
  }

  /** Writes what is queued (bounded by the caller), then closes the file. Returns records not made durable. */
  async close(): Promise<number> {
    await this.sync();
    this.#closed = true;
    if (this.#retryTimer !== undefined) clearTimeout(this.#retryTimer);
    await this.#io;
    const lost = this.#queue.length;
    await this.#fh.close();
    if (this.#lockName !== undefined) await releaseLock(this.#dir, this.#lockName);
    return lost;
  }
}

/**
 * A process's start time in clock ticks since boot (/proc/<pid>/stat, field 22), so
 * a lock is tied to one process and not just a pid: containers restart with the same
 * small pids. Undefined where /proc is not available (then liveness alone decides).
 */
async function procStart(pid: number | 'self'): Promise<string | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

async function holderAlive(pid: number, start: unknown): Promise<boolean> {
  if (!pidAlive(pid)) return false;
  if (typeof start !== 'string') return true;
  const now = await procStart(pid);
  return now === undefined || now === start;
}

/** A lock file without readable content is only broken when older than this (its writer may be filling it). */
const UNREADABLE_LOCK_STALE_MS = 10_000;

/** Locks this process holds (another store of this process must not share a file). */
const heldHere = new Set<string>();

/**
 * `<name>.lock` = {pid, host}. Taken when absent, or held by a process of this host
 * that is gone (or by this very process). Another host's lock is never broken (a
 * data dir shared over the network is not supported: each host keeps its own).
 */
export async function takeLock(dir: string, name: string): Promise<boolean> {
  const path = join(dir, `${name}.lock`);
  if (heldHere.has(path)) return false;
  const mine = JSON.stringify({ pid: process.pid, host: hostname(), start: await procStart('self') });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(path, mine, { flag: 'wx' });
      heldHere.add(path);
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let holder: { pid?: unknown; host?: unknown; start?: unknown } = {};
    try {
      holder = JSON.parse(await readFile(path, 'utf8')) as typeof holder;
    } catch {
      // Empty or torn: its writer is between creating and filling it — or died there. Only
      // an old one is stale (a newcomer must never break a lock that is being taken).
      try {
        if (Date.now() - (await stat(path)).mtimeMs < UNREADABLE_LOCK_STALE_MS) return false;
      } catch {
        continue; // gone meanwhile: try to take it
      }
    }
    const pid = typeof holder.pid === 'number' ? holder.pid : undefined;
    if (holder.host !== undefined && holder.host !== hostname()) return false;
    if (pid !== undefined && (await holderAlive(pid, holder.start))) return false;
    await rm(path, { force: true }); // stale: its owner is gone; retake (wx settles a race with another newcomer)
  }
  return false;
}

export async function releaseLock(dir: string, name: string): Promise<void> {
  const path = join(dir, `${name}.lock`);
  heldHere.delete(path);
  await rm(path, { force: true }).catch(() => undefined);
}
