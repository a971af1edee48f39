/**
 * The `<Connect><Stream>` TwiML of an outbound call (POST /calls and `voice-bridge call`),
 * and the stream `<Parameter>`s the bridge sets itself.
 */
import twilio from 'twilio';
import { STREAM_TOKEN_PARAM } from './stream-token.js';

/**
 * Stream `<Parameter>`s carrying the call's From and To, so that whichever process
 * receives the stream has what the call record needs. Never passed to the agent.
 */
export const IDENTITY_PARAMS = { from: 'vb_from', to: 'vb_to' } as const;
/** The stream <Parameter> naming the call's profile (docs/profiles.md): its agent and options are looked up by name where the stream lands. */
export const PROFILE_PARAM = 'profile';

/**
 * TwiML that connects an outbound call to the bridge at `baseUrl` (https://…), with its
 * agent — or its profile, whose agent and options are looked up where the stream lands —
 * its numbers and its stream token.
 */
export function outboundStreamTwiml(o: { baseUrl: string; agent: string; profile?: string; from: string; to: string; streamToken?: string }): string {
  const response = new twilio.twiml.VoiceResponse();
  const stream = response.connect().stream({ url: `${o.baseUrl.replace(/^http/, 'ws')}/twilio/stream`, statusCallback: `${o.baseUrl}/twilio/status` });
  if (o.profile !== undefined) stream.parameter({ name: PROFILE_PARAM, value: o.profile });
  else stream.parameter({ name: 'agent', value: o.agent });
  stream.parameter({ name: IDENTITY_PARAMS.from, value: o.from });
  stream.parameter({ name: IDENTITY_PARAMS.to, value: o.to });
  // The bridge checks signatures: the stream must bring the token a webhook would have issued (src/twilio/stream-token.ts).
  if (o.streamToken) stream.parameter({ name: STREAM_TOKEN_PARAM, value: o.streamToken });
  return response.toString();
}

/**
 * transfer_call's TwiML: `<Dial>` to a phone number, or `<Dial><Sip>` to a SIP URI; the
 * caller ID is the number the caller called (Twilio accepts it on the same account).
 */
export function transferTwiml(to: string, callerId: string | null): string {
  const r = new twilio.twiml.VoiceResponse();
  const dial = r.dial(callerId ? { callerId } : {});
  if (/^sips?:/i.test(to)) dial.sip(to);
  else dial.number(to);
  return r.toString();
}
