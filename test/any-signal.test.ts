import { getEventListeners } from 'node:events';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { anySignal } from '../src/any-signal.js';

/** gc() to show a timeout source survives collection (vitest does not pass --expose-gc). */
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const aborted = (s: AbortSignal): Promise<void> => new Promise((r) => (s.aborted ? r() : s.addEventListener('abort', () => r(), { once: true })));

describe('anySignal', () => {
  it('a timeout source nothing else references still fires after a GC (AbortSignal.any loses it on Node 20)', async () => {
    const held = new AbortController();
    const both = anySignal([AbortSignal.timeout(50), held.signal]);
    gc();
    await new Promise((r) => setImmediate(r));
    gc();
    await aborted(both); // with AbortSignal.any on Node 20.20 this never settles
    expect((both.reason as Error).name).toBe('TimeoutError');
    expect(held.signal.aborted).toBe(false);
  });

  it('aborts with the reason of the first source to abort, and lets go of the others', async () => {
    const a = new AbortController();
    const b = new AbortController();
    const both = anySignal([a.signal, b.signal]);
    expect(both.aborted).toBe(false);
    expect(getEventListeners(a.signal, 'abort')).toHaveLength(1);
    b.abort(new Error('call ended'));
    await aborted(both);
    expect((both.reason as Error).message).toBe('call ended');
    // no listener left on the source that did not abort (a session's lifetime signal outlives many of these)
    expect(getEventListeners(a.signal, 'abort')).toHaveLength(0);
    a.abort(new Error('later'));
    expect((both.reason as Error).message).toBe('call ended');
  });

  it('is aborted at once, with no listener left behind, when a source already is', () => {
    const live = new AbortController();
    const both = anySignal([live.signal, AbortSignal.abort(new Error('too late'))]);
    expect(both.aborted).toBe(true);
    expect((both.reason as Error).message).toBe('too late');
    expect(getEventListeners(live.signal, 'abort')).toHaveLength(0);
  });
});
