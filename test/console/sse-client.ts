/** A Server-Sent Events reader for tests: fetch with the admin token, events kept in order, waits on events (never on time). */
export interface SseEvent {
  event: string;
  data: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export interface SseClient {
  readonly status: number;
  readonly events: SseEvent[];
  /** Resolves with the first event (already received or to come) that `pred` accepts; rejects if the stream ends first. */
  next(pred: (e: SseEvent) => boolean, label: string): Promise<SseEvent>;
  readonly ended: Promise<void>;
  close(): void;
}

export async function openSse(url: string, token: string | undefined): Promise<SseClient> {
  const ac = new AbortController();
  const res = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {}, signal: ac.signal });
  const events: SseEvent[] = [];
  const waiters = new Set<{ pred: (e: SseEvent) => boolean; resolve: (e: SseEvent) => void; reject: (e: Error) => void; label: string }>();
  let done = false;
  const ended = (async () => {
    if (!res.ok || !res.body) return;
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    try {
      for (;;) {
        const { value, done: end } = await reader.read();
        if (end) break;
        buf += value;
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          let event = 'message';
          const data: string[] = [];
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) continue;
            if (line.startsWith('event: ')) event = line.slice(7);
            else if (line.startsWith('data: ')) data.push(line.slice(6));
          }
          if (data.length === 0) continue;
          const e = { event, data: JSON.parse(data.join('\n')) };
          events.push(e);
          for (const w of waiters) {
            if (w.pred(e)) {
              waiters.delete(w);
              w.resolve(e);
            }
          }
        }
      }
    } catch {
      /* aborted */
    } finally {
      done = true;
      for (const w of waiters) w.reject(new Error(`the event stream ended before: ${w.label}`));
      waiters.clear();
    }
  })();
  return {
    status: res.status,
    events,
    next(pred, label) {
      const found = events.find(pred);
      if (found) return Promise.resolve(found);
      if (done) return Promise.reject(new Error(`the event stream ended before: ${label}`));
      return new Promise((resolve, reject) => waiters.add({ pred, resolve, reject, label }));
    },
    ended,
    close: () => ac.abort(),
  };
}
