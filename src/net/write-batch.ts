/**
 * Socket writes made while the event loop works through one batch of I/O leave together,
 * at the end of that batch (the check phase: `setImmediate`), instead of one by one as
 * each message is handled.
 *
 * Why: every write to a loopback or LAN peer that is asleep in `epoll_wait` wakes it, and
 * waking a process on another CPU is the costliest part of a small write (an IPI; on a VM a
 * VM exit). Under load the bridge handles several sockets per turn of the event loop; with
 * the writes of a turn back to back, the peer is woken by the first and finds the rest
 * already queued. Each socket still makes one `writev` per turn (the same syscalls), and
 * nothing waits for a timer: a pending immediate makes the loop poll without blocking, so a
 * write leaves after at most the rest of the current I/O batch. A saturated loop can take
 * hundreds of ready sockets in one batch (~20 µs each under load), so a batch is also cut
 * at MAX_HELD sockets: the writes held so far leave at once, which bounds the wait at about
 * half a millisecond while keeping nearly all of the saving (a peer woken by the first of
 * 32 back-to-back writes is still awake for the rest).
 *
 * Order is kept per socket (cork/uncork only delays); `end()` uncorks a socket, so a
 * closing one loses nothing; a destroyed one drops its buffer as it would anyway.
 */
export interface Corkable {
  cork(): void;
  uncork(): void;
}

/** The TCP socket under a ws WebSocket (ws keeps it as `_socket` once connected); undefined for anything else. */
export function corkableUnder(ws: unknown): Corkable | undefined {
  const tcp = (ws as { _socket?: { cork?: unknown; uncork?: unknown } | null } | null)?._socket;
  return tcp && typeof tcp.cork === 'function' && typeof tcp.uncork === 'function' ? (tcp as Corkable) : undefined;
}

/** Sockets held in one batch before the batch's writes leave without waiting for its end. */
export const MAX_HELD = 32;

const held: WriteHold[] = [];
let scheduled = false;

function releaseAll(): void {
  scheduled = false;
  releaseHeld();
}

function releaseHeld(): void {
  // Take the list first: a hold made while these are released goes into the next batch.
  const batch = held.splice(0);
  for (const h of batch) {
    try {
      h.release();
    } catch {
      // Never one socket's failure for the others: each is released (a stream reports its own write errors).
    }
  }
}

/** One socket's hold: `hold()` before a write; the batch's end uncorks it. */
export class WriteHold {
  #tcp: Corkable | undefined;
  #held = false;

  /** `tcp` may be given later (a client socket has none until it connects). */
  constructor(tcp?: Corkable) {
    this.#tcp = tcp;
  }

  set socket(tcp: Corkable | undefined) {
    this.#tcp = tcp;
  }

  /** Writes from now until the end of this I/O batch leave together. */
  hold(): void {
    if (this.#held || this.#tcp === undefined) return;
    if (held.length >= MAX_HELD) releaseHeld(); // the immediate stays scheduled for what follows
    this.#held = true;
    this.#tcp.cork();
    held.push(this);
    if (!scheduled) {
      scheduled = true;
      setImmediate(releaseAll);
    }
  }

  release(): void {
    if (!this.#held) return;
    this.#held = false;
    this.#tcp?.uncork();
  }
}
