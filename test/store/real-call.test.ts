/**
 * A real call's record, end to end without the (not yet wired) main.ts: the bridge's
 * own CallManager and fastify app on 127.0.0.1:0, the echo agent, the simulator in
 * Twilio's role; `callEnded` → store.record(); the record read back through
 * GET /calls/history on the same app and through `voice-bridge calls`.
 */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { loadDsp, dspLoadInfo } from '../../src/dsp/load.js';
import { createAgentRegistry } from '../../src/agents/registry.js';
import { CallManager, type CallRecord } from '../../src/call/call-manager.js';
import { buildApp } from '../../src/server/app.js';
import { runSimulatedCall } from '../../src/sim/simulator.js';
import { openCallStore } from '../../src/store/call-store.js';
import { callsCommand } from '../../src/store/calls-command.js';
import { ulawClip } from '../bridge/helpers.js';
import { tempDir } from './helpers.js';

describe('a real call is persisted', () => {
  it('echo call → callEnded → SQLite → GET /calls/history and voice-bridge calls', async () => {
    const tmp = tempDir();
    const env = { BRIDGE_DATA_DIR: tmp.dir, BRIDGE_ADMIN_TOKEN: 'adm', BRIDGE_LOG_LEVEL: 'silent', BRIDGE_DSP: process.env.BRIDGE_DSP ?? 'auto' };
    const config = loadConfig(env);
    const store = await openCallStore(config);
    const calls = new CallManager({ config, dsp: await loadDsp({ backend: config.dsp }), agents: createAgentRegistry(config) });
    const ended: CallRecord[] = [];
    calls.on('callEnded', (r) => {
      ended.push(r);
      store.record(r);
    });
    // The store gives the app its history routes, behind the bridge's own admin check.
    const app = await buildApp({ config, calls, agents: createAgentRegistry(config), dspInfo: dspLoadInfo, store });
    const base = await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const callSid = `CA${'ab'.repeat(16)}`;
      const hook = await fetch(`${base}/twilio/voice`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ CallSid: callSid, From: '+15550001111', To: '+15550002222' }) });
      expect(hook.status).toBe(200);
      const clip = await ulawClip('caller-barge-in.8k-ulaw.wav');
      const r = await runSimulatedCall({ url: `${base.replace(/^http/, 'ws')}/twilio/stream`, audio: clip, callSid, customParameters: { agent: 'echo' }, tailMs: 3500, timeoutMs: 20_000 });
      expect(r.outcome).toBe('completed');
      await expect.poll(() => ended.length, { timeout: 10_000, interval: 20 }).toBe(1);
      expect(await store.flush(10_000)).toBe(true);

      const res = await fetch(`${base}/calls/history/${callSid}`, { headers: { authorization: 'Bearer adm' } });
      expect(res.status).toBe(200);
      const stored = (await res.json()) as Record<string, any>;
      const { recordState, ...endRecord } = JSON.parse(JSON.stringify(ended[0]));
      expect(recordState).toBe('completed');
      expect(stored).toEqual({ ...endRecord, recordState: 'completed', ownerInstance: expect.any(String), ownerWorker: -1, recordedAt: expect.any(String) });
      expect(stored).toMatchObject({ callSid, streamSid: r.streamSid, agent: 'echo', from: '+15550001111', to: '+15550002222', endReason: 'twilio-stop', framesIn: r.framesSent });
      expect(stored.transcripts.map((t: { role: string }) => t.role)).toEqual(['caller', 'agent']);
      expect(stored.timeToFirstAgentAudioMs).toBeGreaterThan(0);

      expect((await fetch(`${base}/calls/history`)).status).toBe(401);
      const page = (await (await fetch(`${base}/calls/history`, { headers: { authorization: "Bearer adm" } })).json()) as { calls: { callSid: string }[] };
      expect(page.calls.map((c: { callSid: string }) => c.callSid)).toEqual([callSid]);
      // The bridge's own /calls/:callSid still answers for the live registry (static /calls/history wins only its own path).
      expect((await fetch(`${base}/calls/${callSid}`, { headers: { authorization: "Bearer adm" } })).status).toBe(200); // admin-only once a token is set

      const out: string[] = [];
      expect(await callsCommand(['--limit', '5'], env, { out: (t) => void out.push(t), err: () => undefined })).toBe(0);
      expect(out.join('')).toMatch(new RegExp(`${callSid}\\s+echo\\s+\\d+s\\s+twilio-stop\\s+${r.framesSent}/`));
    } finally {
      await calls.shutdown();
      await app.close();
      await store.close();
      tmp.remove();
    }
  });
});

