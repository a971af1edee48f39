/** What a user's receiver imports from the package entry to check our signature. */
import { describe, expect, it } from 'vitest';
import { EVENT_TYPES, SIGNATURE_HEADER, signBody, verifySignature } from '../../src/index.js';

describe('the package entry', () => {
  it('exports signBody / verifySignature, the header name and the event types', () => {
    const body = '{"id":"1"}';
    expect(verifySignature('s', body, signBody('s', body)).ok).toBe(true);
    expect(SIGNATURE_HEADER).toBe('X-Voice-Bridge-Signature');
    expect(EVENT_TYPES).toEqual(['call.started', 'call.ended', 'tool.called', 'call.transferred']);
  });
});
