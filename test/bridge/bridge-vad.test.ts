/**
 * For agents without their own VAD, the bridge's energy VAD detects the caller
 * talking over the agent and does the barge-in itself; and an agent that ends the
 * call without REST credentials gets its goodbye heard, then the stream is closed.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AgentSession, pcm16, type AgentFactory, type AudioFormat } from '../../src/agents/agent.js';
import { runSimulatedCall } from '../../src/sim/simulator.js';
import { startFakeTwilioRest } from '../fakes/twilio-rest.js';
import { expectHeardAtClear, getJson, ulawClip, withBridge } from './helpers.js';

/** A provider without VAD that talks for `talkMs` as soon as it connects (a 300 Hz hum), then optionally ends the call. */
class Talker extends AgentSession {
  readonly inputFormat: AudioFormat = pcm16(16000);
  readonly outputFormat: AudioFormat = pcm16(16000);
  readonly hasVad = false;
  interrupts: { heardMs: number }[] = [];
  #timer: NodeJS.Timeout | undefined;
  constructor(private readonly o: { talkMs: number; endAfter?: boolean }) {
    super();
  }
  async connect(): Promise<void> {
    // Emit the whole reply in 200 ms chunks, faster than real time, like a real service.
    let sent = 0;
    this.#timer = setInterval(() => {
      if (sent >= this.o.talkMs) {
        clearInterval(this.#timer);
        this.emitEvent({ type: 'responseDone', responseId: 't1' });
        if (this.o.endAfter) this.emitEvent({ type: 'end', reason: 'goodbye said' });
        return;
      }
      const chunk = new Int16Array(3200);
      for (let i = 0; i < chunk.length; i++) chunk[i] = Math.round(4000 * Math.sin((2 * Math.PI * 300 * (sent * 16 + i)) / 16000));
      this.emitEvent({ type: 'audio', data: chunk, sampleRateHz: this.outputFormat.sampleRateHz, responseId: 't1' });
      sent += 200;
    }, 20);
  }
  sendAudio(): void {}
  interrupt(info: { heardMs: number }): void {
    this.interrupts.push(info);
    clearInterval(this.#timer);
  }
  sendDtmf(): void {}
  async close(reason: string): Promise<void> {
    clearInterval(this.#timer);
    this.emitEvent({ type: 'closed', reason });
  }
}

function talkerFactory(name: string, o: ConstructorParameters<typeof Talker>[0]): AgentFactory & { sessions: Talker[] } {
  const sessions: Talker[] = [];
  return { name, available: true, sessions, create: () => (sessions.push(new Talker(o)), sessions.at(-1)!) };
}

describe("the bridge's own VAD", () => {
  it('detects the caller talking over an agent without VAD: clear, stale audio dropped, heardMs from marks', async () => {
    const talker = talkerFactory('talker', { talkMs: 6000 });
    const speech = await ulawClip('caller-barge-in.8k-ulaw.wav');
    const silence = new Uint8Array(8000 * 2).fill(0xff); // the caller is silent for 2 s, then talks over the agent
    await withBridge(
      {},
      async (bridge, held) => {
        const r = await runSimulatedCall({ url: bridge.streamUrl, audio: silence, bargeInAtMs: 1500, bargeInAudio: speech, customParameters: { agent: 'talker' }, tailMs: 500, timeoutMs: 20_000 });
        expect(r.outcome).toBe('completed');
        expect(r.clears.length).toBe(1);
        expect(r.bargeIn!.reactionMs!).toBeLessThan(250 + held.slackMs());
        const clear = r.clears[0]!;
        const heardMs = talker.sessions[0]!.interrupts[0]!.heardMs;
        expect(talker.sessions[0]!.interrupts).toEqual([{ heardMs }]);
        expectHeardAtClear(heardMs, r.marks, clear.atMs);
        const rec = await getJson(`${bridge.url}/calls/${r.callSid}`);
        expect(rec.body.bargeIns).toBe(1);
        expect(rec.body.lastHeardMs).toBe(heardMs);
        // Nothing of the interrupted reply after the clear.
        expect(r.heardSegments.every((s) => s.startMs < clear.atMs)).toBe(true);
      },
      { extraAgents: [talker] },
    );
  });

  it('an agent that ends the call without REST credentials: the goodbye is heard, then the stream closes', async () => {
    const bye = talkerFactory('bye', { talkMs: 1000, endAfter: true });
    const silence = new Uint8Array(8000).fill(0xff);
    await withBridge(
      {},
      async (bridge) => {
        const r = await runSimulatedCall({ url: bridge.streamUrl, audio: silence, customParameters: { agent: 'bye' }, tailMs: 5000, timeoutMs: 20_000 });
        expect(r.outcome).toBe('server-closed');
        expect(r.close!.reason).toBe('agent-ended:goodbye said');
        expect(r.unplayedBytes).toBe(0);
        const heardMs = r.heardSegments.reduce((n, s) => n + s.endMs - s.startMs, 0);
        expect(heardMs).toBeGreaterThanOrEqual(1000);
        expect(r.marks.every((m) => m.echoedAtMs !== null && !m.viaClear)).toBe(true);
      },
      { extraAgents: [bye] },
    );
  });
});

describe('voice-bridge call', () => {
  it('places an outbound call through the Twilio REST API', async () => {
    const rest = await startFakeTwilioRest();
    try {
      const root = join(import.meta.dirname, '..', '..');
      const env = { ...process.env, TWILIO_ACCOUNT_SID: rest.accountSid, TWILIO_AUTH_TOKEN: rest.authToken, TWILIO_API_URL: rest.url, TWILIO_FROM_NUMBER: '+15557654321', BRIDGE_PUBLIC_URL: 'https://bridge.example.com' };
      // Async: the fake REST server runs in this process and must keep serving.
      const cli = (args: string[]) =>
        new Promise<{ code: number; stdout: string }>((resolve) => {
          execFile(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], { cwd: root, env, timeout: 30_000 }, (err, stdout) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout }));
        });
      const ok = await cli(['call', '+15551234567', '--agent', 'echo']);
      expect(ok.code).toBe(0);
      expect(ok.stdout).toMatch(/calling \+15551234567 with the echo agent: CA[0-9a-f]{32}/);
      const created = rest.requests.filter((q) => q.path.endsWith('/Calls.json'));
      expect(created.length).toBe(1);
      expect(created[0]!.form.Twiml).toContain('wss://bridge.example.com/twilio/stream');
      expect((await cli(['call', '5551234'])).code).toBe(2);
    } finally {
      await rest.close();
    }
  });
});
