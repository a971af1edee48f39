/** The benches' agent: takes the call's audio and does nothing with it (no socket), so a bench times the bridge's side alone. */
import { AgentSession, type AudioFormat } from '../src/agents/agent.js';

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
