/**
 * Tests listen to one kind of agent event at a time: `on(session, 'audio', (a) => …)`
 * over AgentSession.onEvent, with the event typed by its kind.
 */
import type { AgentEvent, AgentEventType, AgentSession } from '../../src/agents/agent.js';

export type EventOf<T extends AgentEventType> = Extract<AgentEvent, { type: T }>;

export function on<T extends AgentEventType>(session: AgentSession, type: T, listener: (event: EventOf<T>) => void): () => void {
  return session.onEvent((e) => {
    if (e.type === type) listener(e as EventOf<T>);
  });
}

/** The next event of a kind (rejects after `timeoutMs`). */
export function next<T extends AgentEventType>(session: AgentSession, type: T, timeoutMs = 10_000): Promise<EventOf<T>> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      off();
      reject(new Error(`no '${type}' event within ${timeoutMs} ms`));
    }, timeoutMs);
    const off = on(session, type, (e) => {
      clearTimeout(t);
      off();
      resolve(e);
    });
  });
}

/** Resolves once `cond()` holds, polling every 10 ms; rejects with `what` after `ms` (a bound, not a timing). */
export async function until(cond: () => boolean, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
