/**
 * docs/events.md shows receivers a hand-written signature check: it must accept what the
 * bridge signs and refuse a tampered body, like the exported verifySignature.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { transformSync } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { signBody } from '../../src/tools/signature.js';

const doc = readFileSync(join(import.meta.dirname, '..', '..', 'docs', 'events.md'), 'utf8');

describe('docs/events.md', () => {
  it('its hand-written check verifies our signature and refuses a tampered body', () => {
    const block = /Without the package[\s\S]*?```ts\n([\s\S]*?)```/.exec(doc)?.[1];
    expect(block).toBeDefined();
    const js = transformSync(block!.replace(/^import .*$/m, ''), { loader: 'ts' }).code;
    const verify = new Function('createHmac', 'timingSafeEqual', 'Buffer', `${js}\nreturn verify;`)(createHmac, timingSafeEqual, Buffer) as (s: string, raw: Buffer, h?: string) => boolean;
    const raw = Buffer.from('{"id":"1","type":"call.started"}');
    const header = signBody('sec', raw);
    expect(verify('sec', raw, header)).toBe(true);
    expect(verify('sec', Buffer.from('{"id":"2","type":"call.started"}'), header)).toBe(false);
    expect(verify('other', raw, header)).toBe(false);
    expect(verify('sec', raw, signBody('sec', raw, Math.floor(Date.now() / 1000) - 3600))).toBe(false);
    expect(verify('sec', raw, undefined)).toBe(false);
  });
});
