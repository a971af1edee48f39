/**
 * DTMF from the caller, for agents that take it as text: one validation and one
 * batching rule (digits pressed within debounceMs are one message — a PIN is one
 * turn, not four), flushed early on '#' or when maxDigits are pending.
 */

const KEY = /^[0-9*#A-D]$/;

/** A keypad key as one upper-case character, or undefined when it is not one (0-9, *, #, A-D). */
export function dtmfKey(digit: unknown): string | undefined {
  if (typeof digit !== 'string') return undefined;
  const d = digit.trim().toUpperCase();
  return KEY.test(d) ? d : undefined;
}

export class DtmfBatcher {
  readonly #debounceMs: number;
  readonly #maxDigits: number;
  readonly #flushOnHash: boolean;
  readonly #onDigits: (digits: string[]) => void;
  #digits: string[] = [];
  #timer: NodeJS.Timeout | undefined;

  constructor(o: { debounceMs: number; maxDigits: number; flushOnHash?: boolean; onDigits: (digits: string[]) => void }) {
    this.#debounceMs = o.debounceMs;
    this.#maxDigits = o.maxDigits;
    this.#flushOnHash = o.flushOnHash ?? false;
    this.#onDigits = o.onDigits;
  }

  /** Adds a key (already checked with dtmfKey); the batch goes out debounceMs after the last one. */
  push(key: string): void {
    this.#digits.push(key);
    if (this.#digits.length >= this.#maxDigits || (this.#flushOnHash && key === '#')) {
      this.flush();
      return;
    }
    if (this.#timer) this.#timer.refresh();
    else this.#timer = setTimeout(() => this.flush(), this.#debounceMs);
  }

  flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    const digits = this.#digits;
    this.#digits = [];
    if (digits.length > 0) this.#onDigits(digits);
  }

  /** Drops pending digits and the timer. */
  clear(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#digits = [];
  }
}
