/** voice-bridge doctor against a fake Twilio REST API and a running bridge. */
import { describe, expect, it } from 'vitest';
import { runDoctor } from '../src/doctor.js';
import { startFakeTwilioRest } from './fakes/twilio-rest.js';
import { withBridge } from './bridge/helpers.js';

describe('voice-bridge doctor', () => {
  it('passes a good configuration: credentials, DSP, the echo agent and the public URL', async () => {
    const rest = await startFakeTwilioRest();
    try {
      await withBridge({}, async (bridge) => {
        const checks = await runDoctor({ env: { TWILIO_ACCOUNT_SID: rest.accountSid, TWILIO_AUTH_TOKEN: rest.authToken, TWILIO_API_URL: rest.url, BRIDGE_PUBLIC_URL: bridge.url } });
        expect(checks.filter((c) => !c.ok)).toEqual([]);
        expect(checks.map((c) => c.name)).toEqual(['configuration', 'DSP backend', 'Twilio credentials', 'agent echo', 'public URL']);
      });
    } finally {
      await rest.close();
    }
  });

  it('says what is wrong and how to fix it', async () => {
    const rest = await startFakeTwilioRest();
    try {
      const checks = await runDoctor({ env: { TWILIO_ACCOUNT_SID: rest.accountSid, TWILIO_AUTH_TOKEN: 'wrong-token', TWILIO_API_URL: rest.url, BRIDGE_PUBLIC_URL: 'http://127.0.0.1:9' }, timeoutMs: 2000 });
      const bad = Object.fromEntries(checks.filter((c) => !c.ok).map((c) => [c.name, c]));
      expect(Object.keys(bad).sort()).toEqual(['Twilio credentials', 'public URL']);
      expect(bad['Twilio credentials']!.fix).toMatch(/TWILIO_AUTH_TOKEN/);
      expect(bad['public URL']!.detail).toMatch(/unreachable/);
      const config = await runDoctor({ env: { PORT: 'eighty', BRIDGE_AGENT: 'nosuch' } });
      expect(config).toHaveLength(1);
      expect(config[0]!.ok).toBe(false);
      expect(config[0]!.detail).toMatch(/PORT/);
      expect(config[0]!.detail).toMatch(/BRIDGE_AGENT/);
    } finally {
      await rest.close();
    }
  });
});
