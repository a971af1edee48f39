/**
 * An SSE stream kept open: when it drops (network, a server restart) it is opened again
 * after a backoff — 1 s, doubling to 15 s, back to 1 s once a connection delivered
 * something. `stop(err)` may end it for good (e.g. a 404 for a call feed).
 */
import { ApiError, readSse } from './api';

export interface KeepOptions {
  path: string;
  onEvent: (name: string, data: unknown) => void;
  onOpen?: () => void;
  /** Shown to the user: null when connected, else why not and when the next try is. */
  onStatus?: (message: string | null, error: ApiError | Error | null) => void;
  /** Return true to stop retrying after this error (the view handles it). */
  giveUp?: (error: ApiError | Error) => boolean;
  /** The server ended the stream cleanly: return true to stop (else reconnect). */
  onEnd?: () => boolean;
}

export const MIN_BACKOFF_MS = 1000;
export const MAX_BACKOFF_MS = 15_000;

export function keepStreaming(o: KeepOptions): () => void {
  const ctl = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let backoff = MIN_BACKOFF_MS;

  const connect = async () => {
    let got = false;
    try {
      await readSse(
        o.path,
        {
          onOpen: () => {
            o.onStatus?.(null, null);
            o.onOpen?.();
          },
          onEvent: (name, data) => {
            if (!got) {
              got = true;
              backoff = MIN_BACKOFF_MS;
            }
            o.onEvent(name, data);
          },
        },
        ctl.signal,
      );
      if (ctl.signal.aborted) return;
      if (o.onEnd?.()) return;
      retry(null);
    } catch (e) {
      if (ctl.signal.aborted) return;
      const err = e instanceof Error ? e : new Error(String(e));
      if (err instanceof ApiError && err.status === 401) return; // the app goes back to the login form
      if (o.giveUp?.(err)) return;
      retry(err);
    }
  };

  const retry = (err: Error | null) => {
    const wait = backoff;
    backoff = Math.min(MAX_BACKOFF_MS, backoff * 2);
    const why = err ? (err instanceof ApiError ? `${err.detail} (HTTP ${err.status})` : 'the bridge cannot be reached') : 'the stream ended';
    o.onStatus?.(`Disconnected: ${why}. Retrying in ${Math.round(wait / 1000)} s…`, err);
    timer = setTimeout(() => void connect(), wait);
  };

  void connect();
  return () => {
    ctl.abort();
    if (timer !== undefined) clearTimeout(timer);
  };
}
