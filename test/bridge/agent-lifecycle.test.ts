/**
 * Around every agent: connected as early as the voice webhook (keyed by CallSid), so
 * the caller's first turn never waits for the provider's handshake; and when the
 * agent can't be reached or fails for good, the caller hears an apology and the call
 * ends cleanly with the reason recorded — through Twilio's REST API (<Say>) when
 * credentials are set, else through the bundled prompt.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AgentSession, pcm16, type AgentFactory, type AudioFormat } from '../../src/agents/agent.js';
import { BridgeError, ErrorCodes } from '../../src/errors.js';
import { parseWav } from '../../src/audio/wav.js';
import { runSimulatedCall } from '../../src/sim/simulator.js';
import { startFakeTwilioRest } from '../fakes/twilio-rest.js';
import { getJson, ulawClip, withBridge } from './helpers.js';

/** A fake provider: connects after `connectMs` (or fails), optionally dies mid-call. */
class FakeProvider extends AgentSession {
  readonly inputFormat: AudioFormat = pcm16(16000);
  readonly outputFormat: AudioFormat = pcm16(16000);
  readonly hasVad = true;
  connectStartedAt = 0;
  connected = false;
  /** Caller audio this provider could not deliver (with `dropAfterChunks`): what the record must show. */
  droppedMs = 0;
  #chunks = 0;
  constructor(private readonly o: { connectMs: number; failConnect?: boolean; dieAfterMs?: number; closeAfterMs?: number; closeReason?: string; dropAfterChunks?: number }) {
    super();
  }
  async connect(signal: AbortSignal): Promise<void> {
    this.connectStartedAt = Date.now();
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => (this.o.failConnect ? reject(new BridgeError(ErrorCodes.AGENT_CONNECT, 'connection refused')) : resolve()), this.o.connectMs);
      signal.addEventListener('abort', () => {
        clearTimeout(t);
        reject(signal.reason);
      });
    });
    this.connected = true;
    if (this.o.closeAfterMs !== undefined) setTimeout(() => this.emitEvent({ type: 'closed', reason: this.o.closeReason ?? 'closed' }), this.o.closeAfterMs);
    if (this.o.dieAfterMs !== undefined) {
      setTimeout(() => this.emitEvent({ type: 'error', error: new BridgeError(ErrorCodes.AGENT_CLOSED, 'provider went away'), fatal: true }), this.o.dieAfterMs);
    }
  }
  sendAudio(data: Int16Array | Uint8Array): void {
    // As an adapter whose service stopped reading: everything past the first chunks is dropped.
    if (this.o.dropAfterChunks !== undefined && ++this.#chunks > this.o.dropAfterChunks) {
      const ms = (data.length * 1000) / this.inputFormat.sampleRateHz;
      this.droppedMs += ms;
      this.noteCallerAudioDropped(ms);
    }
  }
  interrupt(): void {}
  sendDtmf(): void {}
  async close(reason: string): Promise<void> {
    this.emitEvent({ type: 'closed', reason });
  }
}

function providerFactory(name: string, o: ConstructorParameters<typeof FakeProvider>[0]): AgentFactory & { sessions: FakeProvider[] } {
  const sessions: FakeProvider[] = [];
  return {
    name,
    available: true,
    sessions,
    create: () => {
      const s = new FakeProvider(o);
      sessions.push(s);
      return s;
    },
  };
}

const CALL_SID = 'CA' + 'e'.repeat(32);
const prompt = parseWav(new Uint8Array(readFileSync(join(import.meta.dirname, '..', '..', 'assets', 'prompts', 'apology.8k-ulaw.wav')))).data as Uint8Array;

describe('agent lifecycle around the call', () => {
  it('an agent that closes with a long non-ASCII reason: Twilio\'s socket is still closed, the reason cut to 123 UTF-8 bytes without splitting a character', async () => {
    // 60 × "é" = 120 bytes and 40 × "語" = 120 bytes: with the prefix, far over RFC 6455's 123 bytes.
    const reason = `${'é'.repeat(60)}${'語'.repeat(40)}`;
    const rude = providerFactory('rude', { connectMs: 10, closeAfterMs: 300, closeReason: reason });
    const clip = await ulawClip('caller-barge-in.8k-ulaw.wav');
    await withBridge(
      {},
      async (bridge) => {
        const r = await runSimulatedCall({ url: bridge.streamUrl, audio: clip, customParameters: { agent: 'rude' }, tailMs: 15_000, timeoutMs: 30_000 });
        expect(r.outcome).toBe('server-closed'); // before: ws.close threw, the socket stayed open until the caller gave up
        const got = r.close!.reason;
        expect(Buffer.byteLength(got, 'utf8')).toBeLessThanOrEqual(123);
        expect(got.startsWith('agent-closed:éé')).toBe(true);
        expect(got).not.toContain('\ufffd'); // no character cut in half
        const rec = await getJson(`${bridge.url}/calls/${r.callSid}`);
        expect(rec.body.endReason).toBe(`agent-closed:${reason}`); // the record keeps it whole
      },
      { extraAgents: [rude] },
    );
  });

  it("caller audio the agent could not deliver is in the call's record (callerAudioDroppedMs), and 0 when none was lost", async () => {
    const deaf = providerFactory('deaf', { connectMs: 10, dropAfterChunks: 10 });
    const fine = providerFactory('fine', { connectMs: 10 });
    const clip = (await ulawClip('caller-barge-in.8k-ulaw.wav')).subarray(0, 16_000); // 2 s
    await withBridge(
      {},
      async (bridge) => {
        const r = await runSimulatedCall({ url: bridge.streamUrl, audio: clip, customParameters: { agent: 'deaf' }, tailMs: 200, timeoutMs: 20_000 });
        expect(r.outcome).toBe('completed');
        const dropped = deaf.sessions[0]!.droppedMs;
        expect(dropped).toBeGreaterThanOrEqual(1000); // 2 s of caller audio, all but the first 10 chunks
        const rec = await getJson(`${bridge.url}/calls/${r.callSid}`);
        expect(rec.body.callerAudioDroppedMs).toBe(Math.round(dropped));
        const ok = await runSimulatedCall({ url: bridge.streamUrl, audio: clip.subarray(0, 4000), customParameters: { agent: 'fine' }, fast: true, tailMs: 200, timeoutMs: 20_000 });
        expect((await getJson(`${bridge.url}/calls/${ok.callSid}`)).body.callerAudioDroppedMs).toBe(0);
      },
      { extraAgents: [deaf, fine] },
    );
  });

  it('the agent connects at the voice webhook: when the stream starts it is already ready', async () => {
    const slow = providerFactory('slow', { connectMs: 600 });
    const clip = (await ulawClip('caller-barge-in.8k-ulaw.wav')).subarray(0, 4000);
    await withBridge(
      {},
      async (bridge) => {
        const hook = await fetch(`${bridge.url}/twilio/voice?agent=slow&voice=calm`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `CallSid=${CALL_SID}` });
        expect(hook.status).toBe(200);
        expect(slow.sessions.length).toBe(1); // connecting already
        // Twilio fetching TwiML and dialling the stream takes longer than the handshake (waited for, not slept: a loaded machine)
        while (!slow.sessions[0]!.connected) await new Promise((r) => setTimeout(r, 20));
        const r = await runSimulatedCall({ url: bridge.streamUrl, callSid: CALL_SID, audio: clip, customParameters: { agent: 'slow', voice: 'calm' }, fast: true, tailMs: 200, timeoutMs: 10_000 });
        expect(r.outcome).toBe('completed');
        expect(slow.sessions.length).toBe(1); // adopted, not a second connection
        const rec = await getJson(`${bridge.url}/calls/${CALL_SID}`);
        expect(rec.body, JSON.stringify(rec.body).slice(0, 600)).toMatchObject({ agentPreconnected: true });
        expect(rec.body.agentReadyMs).toBeLessThan(50);

        // Without the webhook, the same agent costs the caller its whole handshake.
        const cold = await runSimulatedCall({ url: bridge.streamUrl, audio: clip, customParameters: { agent: 'slow' }, fast: true, tailMs: 1500, timeoutMs: 10_000 });
        const coldRec = await getJson(`${bridge.url}/calls/${cold.callSid}`);
        expect(coldRec.body.agentPreconnected).toBe(false);
        expect(coldRec.body.agentReadyMs).toBeGreaterThanOrEqual(550);
      },
      { extraAgents: [slow] },
    );
  });

  it('an agent that cannot be reached: the caller hears the bundled apology, then the call ends with the reason', async () => {
    const down = providerFactory('down', { connectMs: 50, failConnect: true });
    const clip = (await ulawClip('caller-barge-in.8k-ulaw.wav')).subarray(0, 4000);
    await withBridge(
      {},
      async (bridge) => {
        const r = await runSimulatedCall({ url: bridge.streamUrl, audio: clip, customParameters: { agent: 'down' }, tailMs: 9000, timeoutMs: 20_000 });
        expect(r.outcome).toBe('server-closed');
        expect(r.close!.reason).toBe('agent-connect-failed:BRIDGE_ERR_AGENT_CONNECT');
        // Heard: the whole prompt, nothing else, and the socket closed only after it played.
        const heard = Buffer.concat(r.heardSegments.map((s) => r.heard.subarray(Math.round(s.startMs * 8), Math.round(s.endMs * 8))));
        expect(heard.length).toBe(Math.ceil(prompt.length / 160) * 160);
        expect(Buffer.from(heard.subarray(0, prompt.length)).equals(Buffer.from(prompt))).toBe(true);
        expect(r.unplayedBytes).toBe(0);
        const rec = await getJson(`${bridge.url}/calls/${r.callSid}`);
        expect(rec.body).toMatchObject({ state: 'closed', apology: 'prompt', endReason: 'agent-connect-failed:BRIDGE_ERR_AGENT_CONNECT' });
      },
      { extraAgents: [down] },
    );
  });

  it('an agent that fails for good mid-call: with REST credentials the call is redirected to a <Say> apology', async () => {
    const rest = await startFakeTwilioRest();
    const dying = providerFactory('dying', { connectMs: 10, dieAfterMs: 500 });
    const clip = await ulawClip('caller-barge-in.8k-ulaw.wav');
    try {
      await withBridge(
        { TWILIO_ACCOUNT_SID: rest.accountSid, TWILIO_AUTH_TOKEN: rest.authToken, TWILIO_API_URL: rest.url },
        async (bridge) => {
          const r = await runSimulatedCall({ url: bridge.streamUrl, authToken: rest.authToken, audio: clip, customParameters: { agent: 'dying' }, tailMs: 2000, timeoutMs: 20_000 });
          expect(r.outcome).toBe('server-closed');
          expect(r.close!.reason).toBe('agent-error:BRIDGE_ERR_AGENT_CLOSED');
          const updates = rest.requests.filter((q) => q.method === 'POST' && q.path.endsWith(`/Calls/${r.callSid}.json`));
          expect(updates.length).toBe(1);
          expect(updates[0]!.form.Twiml).toMatch(/<Say>Sorry, .*<\/Say><Hangup\/>/);
          const rec = await getJson(`${bridge.url}/calls/${r.callSid}`);
          expect(rec.body).toMatchObject({ apology: 'rest-say', endReason: 'agent-error:BRIDGE_ERR_AGENT_CLOSED' });
        },
        { extraAgents: [dying] },
      );
    } finally {
      await rest.close();
    }
  });
});
