/**
 * The bridge's HTTP API as the console uses it: every request carries the admin token
 * in the Authorization header (never in a URL); errors are RFC 9457 problem bodies,
 * thrown as ApiError with their `detail` and stable `code`.
 */
import { SseParser } from './sse';

export const TOKEN_KEY = 'voice-bridge.console.token';

export function getToken(): string | null {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function setToken(token: string | null): void {
  try {
    if (token === null) sessionStorage.removeItem(TOKEN_KEY);
    else sessionStorage.setItem(TOKEN_KEY, token);
  } catch {
    /* storage disabled: the session ends with the page */
  }
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string | null,
    readonly detail: string,
  ) {
    super(detail);
    this.name = 'ApiError';
  }
}

/** Called when the bridge refuses the stored token (401): the app goes back to the login form. */
let onUnauthorized: (() => void) | undefined;
export function setUnauthorizedHandler(fn: () => void): void {
  onUnauthorized = fn;
}

async function problemOf(res: Response): Promise<ApiError> {
  let code: string | null = null;
  let detail = `HTTP ${res.status}`;
  try {
    const body = (await res.json()) as { code?: unknown; detail?: unknown; title?: unknown };
    if (typeof body.code === 'string') code = body.code;
    if (typeof body.detail === 'string' && body.detail) detail = body.detail;
    else if (typeof body.title === 'string' && body.title) detail = body.title;
  } catch {
    /* not JSON: keep the status line */
  }
  return new ApiError(res.status, code, detail);
}

export interface RequestOptions {
  method?: 'GET' | 'POST';
  body?: unknown;
  signal?: AbortSignal;
  /** Use this token instead of the stored one (the login check). */
  token?: string;
  accept?: string;
}

export async function request(path: string, o: RequestOptions = {}): Promise<Response> {
  const token = o.token ?? getToken() ?? '';
  const headers: Record<string, string> = { authorization: `Bearer ${token}`, accept: o.accept ?? 'application/json' };
  if (o.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, {
    method: o.method ?? 'GET',
    headers,
    body: o.body === undefined ? undefined : JSON.stringify(o.body),
    signal: o.signal,
    cache: 'no-store',
    credentials: 'omit',
  });
  if (!res.ok) {
    const err = await problemOf(res);
    if (err.status === 401 && o.token === undefined) onUnauthorized?.();
    throw err;
  }
  return res;
}

export async function getJson<T>(path: string, o: RequestOptions = {}): Promise<T> {
  return (await (await request(path, o)).json()) as T;
}

export async function postJson<T>(path: string, body: unknown, signal?: AbortSignal): Promise<T> {
  const res = await request(path, { method: 'POST', body, signal });
  return (await res.json().catch(() => ({}))) as T;
}

export async function getBlob(path: string, signal?: AbortSignal): Promise<Blob> {
  return (await request(path, { signal, accept: '*/*' })).blob();
}

export interface SseHandlers {
  /** The stream is open (2xx, headers in). */
  onOpen?: () => void;
  onEvent: (name: string, data: unknown) => void;
}

/**
 * One SSE connection read with fetch + ReadableStream (EventSource cannot send the header).
 * Resolves when the server ends the stream; rejects with ApiError on a refusal, or with
 * the network error; an abort resolves quietly.
 */
export async function readSse(path: string, h: SseHandlers, signal: AbortSignal): Promise<void> {
  let res: Response;
  try {
    res = await request(path, { signal, accept: 'text/event-stream' });
  } catch (e) {
    if (signal.aborted) return;
    throw e;
  }
  if (!res.body) throw new ApiError(res.status, null, 'the stream has no body');
  h.onOpen?.();
  const parser = new SseParser();
  const reader = res.body.getReader();
  const dispatch = (events: ReturnType<SseParser['push']>) => {
    for (const ev of events) {
      let data: unknown;
      try {
        data = JSON.parse(ev.data);
      } catch {
        continue; // not JSON: not ours
      }
      h.onEvent(ev.event, data);
    }
  };
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      dispatch(parser.pushBytes(value));
    }
    dispatch(parser.end());
  } catch (e) {
    if (signal.aborted) return;
    throw e;
  } finally {
    reader.releaseLock();
  }
}

/** Encodes a path segment (a CallSid comes from the hash, so it is not trusted). */
export const seg = (s: string): string => encodeURIComponent(s);
