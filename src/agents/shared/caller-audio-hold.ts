/**
 * CallerAudioHold: what the caller says while an adapter has no socket to say it to
 * (connecting, resuming, rolling over), kept in order and delivered once the new
 * session is up — so every sample reaches the service once, in order, or is counted
 * as dropped. Audio is bounded by maxMs (the oldest goes first); other input (DTMF
 * text, notes) is kept in its place, bounded by count.
 */
interface Entry<T> {
  readonly item: T;
  /** Audio length in ms; undefined for other input. */
  readonly ms: number | undefined;
}

export class CallerAudioHold<T> {
  readonly #maxMs: number;
  readonly #maxOther: number;
  #entries: Entry<T>[] = [];
  #ms = 0;
  #others = 0;
  #droppedMs = 0;

  constructor(o: { maxMs: number; maxOther?: number }) {
    this.#maxMs = o.maxMs;
    this.#maxOther = o.maxOther ?? 32;
  }

  /** Audio held now (ms). */
  get heldMs(): number {
    return this.#ms;
  }
  get size(): number {
    return this.#entries.length;
  }
  /** Audio dropped over the bound since this hold was made (ms). */
  get droppedMs(): number {
    return this.#droppedMs;
  }

  /** Keeps audio; returns the ms of older audio dropped to make room (0 when none). */
  audio(item: T, ms: number): number {
    this.#entries.push({ item, ms });
    this.#ms += ms;
    let dropped = 0;
    while (this.#ms > this.#maxMs) {
      const i = this.#entries.findIndex((e) => e.ms !== undefined);
      // The newest audio is always kept, whatever its length.
      if (i < 0 || i === this.#entries.length - 1) break;
      const [old] = this.#entries.splice(i, 1);
      this.#ms -= old!.ms!;
      dropped += old!.ms!;
    }
    this.#droppedMs += dropped;
    return dropped;
  }

  /** Keeps other input in its place; false (not kept) once maxOther are held. */
  other(item: T): boolean {
    if (this.#others >= this.#maxOther) return false;
    this.#others++;
    this.#entries.push({ item, ms: undefined });
    return true;
  }

  /** Everything held, in order; the hold is empty afterwards. */
  take(): { item: T; ms: number | undefined }[] {
    const out = this.#entries;
    this.clear();
    return out;
  }

  clear(): void {
    this.#entries = [];
    this.#ms = 0;
    this.#others = 0;
  }
}
