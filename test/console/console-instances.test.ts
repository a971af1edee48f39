/**
 * The console across instances: two bridges sharing one call-record database (as two
 * instances behind a balancer do). A page on instance B lists the call instance A carries
 * (from the store's live rows, within the 1 s refresh) and follows its feed, which B
 * forwards from A as it comes; B's hang-up reaches the call on A.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runSimulatedCall } from '../../src/sim/simulator.js';
import { callSid as newCallSid } from '../lifecycle/child-bridge.js';
import { withBridge } from '../bridge/helpers.js';
import { openSse } from './sse-client.js';

const TOKEN = 'console-instances-token';

describe('call console across instances', () => {
  it("instance B lists A's call, forwards its feed from A, and its hang-up ends the call on A", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'vb-shared-'));
    const env = { BRIDGE_ADMIN_TOKEN: TOKEN, BRIDGE_DATA_DIR: dataDir };
    await withBridge({ ...env, BRIDGE_INSTANCE_ID: 'a' }, (a) =>
      withBridge({ ...env, BRIDGE_INSTANCE_ID: 'b' }, async (b) => {
        const live = await openSse(`${b.url}/console/api/live`, TOKEN);
        const sid = newCallSid();
        const call = runSimulatedCall({ url: a.streamUrl, callSid: sid, customParameters: { vb_from: '+15551230042', vb_to: '+15557650000' }, audio: new Uint8Array(16000).fill(0xff), tailMs: 60_000, timeoutMs: 90_000 });
        const listed = await live.next((e) => e.event === 'calls' && e.data.calls.some((c: { callSid: string }) => c.callSid === sid), "A's call on B's list");
        expect(listed.data.calls.find((c: { callSid: string }) => c.callSid === sid)).toMatchObject({ instance: 'a', local: false, from: '+•••••••••42', callerAudioDroppedMs: null }); // not in A's live row: not known on B

        const feed = await openSse(`${b.url}/console/api/calls/${sid}/feed`, TOKEN);
        expect(feed.status).toBe(200);
        const head = await feed.next((e) => e.event === 'call', 'the call, from A');
        expect(head.data.call).toMatchObject({ callSid: sid, instance: 'a', local: true, callerAudioDroppedMs: 0 }); // A's own figure
        await feed.next((e) => e.event === 'levels' && e.data.caller !== null, 'a caller level, from A');

        const r = await fetch(`${b.url}/calls/${sid}/hangup`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
        expect(r.status).toBe(202);
        expect(r.headers.get('x-voice-bridge-owner')).toBe('a');
        const ended = await feed.next((e) => e.event === 'ended', 'the end, from A');
        expect(ended.data).toMatchObject({ endReason: 'hangup-requested', callerAudioDroppedMs: 0 });
        expect((await call).outcome).toBe('server-closed');
        live.close();
      }),
    );
  });
});
