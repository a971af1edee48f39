/**
 * The media fast path (src/twilio/messages.ts) reads Twilio's media message by scanning, not
 * JSON.parse. It must never judge a message differently from the general path: for each text,
 * the same text with a space after its opening brace — the same JSON, which the fast path does
 * not take — must parse to the same result, for Twilio's own message and for 20,000 seeded
 * mutations of it (characters changed, inserted, deleted; numbers out of range; escapes).
 */
import { describe, expect, it } from 'vitest';
import { fastMedia, parseTwilioMessage } from '../../src/twilio/messages.js';
import { rng } from '../helpers/rng.js';

const SID = 'MZ18ad3ab5a668481ce02b83e7395059f0';
const PAYLOAD = Buffer.alloc(160, 0x7f).toString('base64');
const twilioMedia = (seq: string, track: string, chunk: string, ts: string, payload: string, sid = SID) =>
  `{"event":"media","sequenceNumber":"${seq}","media":{"track":"${track}","chunk":"${chunk}","timestamp":"${ts}","payload":"${payload}"},"streamSid":"${sid}"}`;
/** The same JSON, off the fast path. */
const general = (text: string) => parseTwilioMessage(`{ ${text.slice(1)}`);

describe('Twilio media fast path', () => {
  it("reads Twilio's media message exactly as the general path does", () => {
    const text = twilioMedia('3', 'inbound', '1', '5', PAYLOAD);
    const r = parseTwilioMessage(text);
    expect(r).toEqual({ ok: true, message: { event: 'media', sequenceNumber: 3, streamSid: SID, track: 'inbound', chunk: 1, timestampMs: 5, payload: PAYLOAD } });
    expect(r).toEqual(general(text));
    expect(fastMedia(text)).toEqual(r); // taken by the fast path
    expect(fastMedia(`{ ${text.slice(1)}`)).toBeUndefined(); // and the spaced copy is not
  });

  it('edge values: the same verdict as the general path', () => {
    const cases = [
      twilioMedia('4294967295', 'inbound', '0', '0007', PAYLOAD), // the largest u32, leading zeros
      twilioMedia('4294967296', 'inbound', '1', '5', PAYLOAD), // one past it
      twilioMedia('12345678901', 'inbound', '1', '5', PAYLOAD), // 11 digits
      twilioMedia('', 'inbound', '1', '5', PAYLOAD), // empty number
      twilioMedia('1', '', '1', '5', PAYLOAD), // empty track
      twilioMedia('1', 'in\\u0062ound', '1', '5', PAYLOAD), // an escape
      twilioMedia('1', 'inbound', '1', '5', ''), // empty payload
      twilioMedia('1', 'inbound', '1', '5', PAYLOAD, ''), // empty streamSid
      twilioMedia('1', 'inbound', '1', '5', PAYLOAD, 'M'.repeat(257)), // a streamSid too long
      twilioMedia('1', 'inbound', '-1', '5', PAYLOAD),
      twilioMedia('1', 'inbound', '1', '5', PAYLOAD) + ' ',
      twilioMedia('1', 'inbound', '1', '5', PAYLOAD).slice(0, -1),
      twilioMedia('1', 'inbound', '1', '5', PAYLOAD).replace('"},"streamSid"', '","x":1},"streamSid"'),
    ];
    for (const text of cases) expect(parseTwilioMessage(text), text).toEqual(general(text));
  });

  it('20,000 seeded mutations: the same verdict and message as the general path', () => {
    const seed = Number(process.env.FUZZ_SEED ?? 0x5eed);
    const next = rng(seed);
    const base = twilioMedia('12', 'inbound', '11', '220', PAYLOAD);
    const alphabet = '"{}[]:,\\0123456789azAZ+/= \u00e9';
    let fast = 0;
    for (let n = 0; n < 20_000; n++) {
      let text = base;
      for (let k = 1 + Math.floor(next() * 3); k > 0; k--) {
        const at = 1 + Math.floor(next() * (text.length - 1)); // the opening brace stays
        const ch = alphabet[Math.floor(next() * alphabet.length)]!;
        const op = next();
        text = op < 0.4 ? text.slice(0, at) + ch + text.slice(at + 1) : op < 0.7 ? text.slice(0, at) + ch + text.slice(at) : text.slice(0, at) + text.slice(at + 1);
      }
      const r = parseTwilioMessage(text);
      expect(r, `seed ${seed} #${n}: ${text}`).toEqual(general(text));
      if (fastMedia(text)) fast++;
    }
    // Many mutations stay exact media messages (payload or number changes): the fast path was exercised.
    expect(fast).toBeGreaterThan(1000);
  });
});
