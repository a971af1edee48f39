/**
 * The bridge's own deliverer (src/main.ts): with a profiles file, events left pending in
 * the data dir by a previous run are delivered at start, signed with the profile's
 * secret — a bridge restarted in between still delivers.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createEvent, type BridgeEvent } from '../../src/events/event.js';
import { startBridge } from '../../src/main.js';
import { verifySignature } from '../../src/tools/signature.js';
import { json, startReceiver, type Receiver } from '../tools/receiver.js';

let dir: string | undefined;
let receiver: Receiver | undefined;
afterEach(async () => {
  await receiver?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('the bridge delivers call events', () => {
  it('pending events of a previous run are delivered at start, signed with the profile’s secret', async () => {
    dir = await mkdtemp(join(tmpdir(), 'vb-bridge-events-'));
    receiver = await startReceiver((_q, res) => json(res, 200, {}));
    const profiles = join(dir, 'profiles.yaml');
    await writeFile(profiles, ['profiles:', '  - name: support', '    match: { to: "*" }', '    agent: echo', `    events: { url: "${receiver.url}" }`, '    secret: ${EVENTS_TEST_SECRET}', ''].join('\n'));
    const dataDir = join(dir, 'data');
    await mkdir(dataDir);
    const ev = createEvent('call.ended', { callSid: 'CA1', profile: 'support', data: { endReason: 'caller-hangup' } });
    await writeFile(join(dataDir, 'events-outbox.jsonl'), `${JSON.stringify({ v: 1, op: 'add', event: ev })}\n`);
    const bridge = await startBridge(
      { BRIDGE_LOG_LEVEL: 'silent', BRIDGE_DSP: 'auto', BRIDGE_DSP_POOL: '0', BRIDGE_DATA_DIR: dataDir, BRIDGE_LOAD_THRESHOLD: 'off', BRIDGE_CALL_RECORDS: '0', BRIDGE_PROFILES: profiles, EVENTS_TEST_SECRET: 'from-env' },
      { port: 0, host: '127.0.0.1' },
    );
    try {
      await receiver.waitFor(1);
      const [req] = receiver.requests;
      expect((JSON.parse(req!.raw) as BridgeEvent).id).toBe(ev.id);
      expect(verifySignature('from-env', req!.raw, req!.headers['x-voice-bridge-signature'] as string).ok).toBe(true);
      const text = await (await fetch(`${bridge.url}/metrics`)).text();
      expect(text).toMatch(/^voice_bridge_events_pending \d+$/m);
    } finally {
      await bridge.close();
    }
  });
});
