/**
 * TtsCache: a least-recently-used cache of synthesized audio, bounded by entry
 * count AND by total bytes, so a bridge that speaks the same greeting or
 * prompt on every call pays for one synthesis, and a flood of distinct texts
 * cannot grow memory past `maxBytes`.
 *
 * An entry's size is its audio bytes plus its key (2 bytes per UTF-16 code
 * unit): the key holds the whole text, so it is real memory too. An entry
 * larger than `maxBytes` on its own is not stored. A Map keeps insertion order,
 * so LRU is "delete and re-insert on hit, evict from the front".
 *
 * Stored arrays are never handed out: `get` returns a copy, `set` stores one, so
 * a caller that mutates its audio cannot corrupt what the next call hears.
 */
import type { VoiceSettings } from './protocol.js';

export interface TtsCacheStats {
  readonly entries: number;
  readonly bytes: number;
  readonly hits: number;
  readonly misses: number;
  readonly evictions: number;
}

/** The cache key: everything that changes the audio (text as sent, voice, model, every voice setting). */
export function ttsCacheKey(text: string, voiceId: string, modelId: string, s: VoiceSettings): string {
  // Fixed field order: two equal settings objects always give the same key.
  return JSON.stringify([text, voiceId, modelId, s.stability, s.similarityBoost, s.style, s.useSpeakerBoost, s.speed ?? null]);
}

export class TtsCache {
  readonly maxEntries: number;
  readonly maxBytes: number;
  readonly #map = new Map<string, Uint8Array>();
  #bytes = 0;
  #hits = 0;
  #misses = 0;
  #evictions = 0;

  /** `maxEntries` or `maxBytes` of 0 disables the cache. */
  constructor(opts: { maxEntries: number; maxBytes: number }) {
    if (!Number.isInteger(opts.maxEntries) || opts.maxEntries < 0) throw new RangeError(`TtsCache: maxEntries ${opts.maxEntries} must be a non-negative integer`);
    if (!Number.isInteger(opts.maxBytes) || opts.maxBytes < 0) throw new RangeError(`TtsCache: maxBytes ${opts.maxBytes} must be a non-negative integer`);
    this.maxEntries = opts.maxEntries;
    this.maxBytes = opts.maxBytes;
  }

  static entrySize(key: string, audio: Uint8Array): number {
    return audio.byteLength + key.length * 2;
  }

  /** A copy of the cached audio (and the entry becomes most recent), or undefined. */
  get(key: string): Uint8Array | undefined {
    const hit = this.#map.get(key);
    if (hit === undefined) {
      this.#misses++;
      return undefined;
    }
    this.#hits++;
    this.#map.delete(key);
    this.#map.set(key, hit);
    return hit.slice();
  }

  has(key: string): boolean {
    return this.#map.has(key);
  }

  /** Stores a copy; evicts least-recently-used entries until both bounds hold. Returns whether it was stored. */
  set(key: string, audio: Uint8Array): boolean {
    const size = TtsCache.entrySize(key, audio);
    const old = this.#map.get(key);
    if (old !== undefined) {
      this.#map.delete(key);
      this.#bytes -= TtsCache.entrySize(key, old);
    }
    if (this.maxEntries === 0 || size > this.maxBytes) return false;
    this.#map.set(key, audio.slice());
    this.#bytes += size;
    for (const [k, v] of this.#map) {
      if (this.#map.size <= this.maxEntries && this.#bytes <= this.maxBytes) break;
      this.#map.delete(k);
      this.#bytes -= TtsCache.entrySize(k, v);
      this.#evictions++;
    }
    return true;
  }

  clear(): void {
    this.#map.clear();
    this.#bytes = 0;
  }

  /** Keys from least to most recently used (for tests and diagnostics). */
  keys(): string[] {
    return [...this.#map.keys()];
  }

  stats(): TtsCacheStats {
    return { entries: this.#map.size, bytes: this.#bytes, hits: this.#hits, misses: this.#misses, evictions: this.#evictions };
  }
}
