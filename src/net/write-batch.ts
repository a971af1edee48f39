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
 * write leaves after at most the rest of the current I/O batch (microseconds to a few ms
 * at hundreds of calls).
 *
 * Order is kept per socket (cork/uncork only delays); `end()` uncorks a socket, so a
 * closing one loses nothing; a destroyed one drops its buffer as it would anyway.
 */
export interface Corkable {
  cork(): void;
  uncork(): void;
}

const held: WriteHold[] = [];
let scheduled = false;

function releaseAll(): void {
  scheduled = false;
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
