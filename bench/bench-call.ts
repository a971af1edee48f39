/** What the in-process benches (session, cold-path) build a call from: an agent with no socket, and Twilio's messages. */
import { AgentSession, type AudioFormat } from '../src/agents/agent.js';

/** The benches' agent: takes the call's audio and does nothing with it (no socket), so a bench times the bridge's side alone. */

export class SinkAgent extends AgentSession {
  samples = 0;
  readonly hasVad = true;
  constructor(
    readonly inputFormat: AudioFormat,
    readonly outputFormat: AudioFormat,
  ) {
    super();
  }
  async connect(): Promise<void> {}
  sendAudio(d: Int16Array | Uint8Array): void {
    this.samples += d.length;
  }
  interrupt(): void {}
  sendDtmf(): void {}
  async close(): Promise<void> {}
}

/** 160 bytes of μ-law (a fixed ramp), base64 as in a Twilio media message. */
export const FRAME_B64 = Buffer.from(Array.from({ length: 160 }, (_, i) => (i * 7) & 0xff)).toString('base64');

/** Twilio's `start` for a stream, as the session takes it. */
export function startText(streamSid: string, callSid: string): string {
  return JSON.stringify({ event: 'start', sequenceNumber: '1', streamSid, start: { streamSid, callSid, accountSid: 'AC' + '0'.repeat(32), tracks: ['inbound'], customParameters: {}, mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 } } });
}

/** Twilio's `media` message for frame `chunk` (numbers as strings, as Twilio sends them). */
export function mediaText(streamSid: string, chunk: number): string {
  return `{"event":"media","sequenceNumber":"${chunk + 1}","media":{"track":"inbound","chunk":"${chunk}","timestamp":"${(chunk - 1) * 20}","payload":"${FRAME_B64}"},"streamSid":"${streamSid}"}`;
}
