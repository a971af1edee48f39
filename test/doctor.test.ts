/** voice-bridge doctor against a fake Twilio REST API and a running bridge. */
import { describe, expect, it } from 'vitest';
import { runDoctor, unreachableByTwilio } from '../src/doctor.js';
import { startFakeTwilioRest } from './fakes/twilio-rest.js';
import { withBridge } from './bridge/helpers.js';

describe('voice-bridge doctor', () => {
  it('passes a good configuration: credentials, DSP, the echo agent and a public https URL that reaches the bridge', async () => {
    const rest = await startFakeTwilioRest();
    try {
      await withBridge({}, async (bridge) => {
        // The bridge is on 127.0.0.1: it is reached, and doctor still says Twilio could not reach that address.
        const reached = await runDoctor({ env: { TWILIO_ACCOUNT_SID: rest.accountSid, TWILIO_AUTH_TOKEN: rest.authToken, TWILIO_API_URL: rest.url, BRIDGE_PUBLIC_URL: bridge.url } });
        expect(reached.map((c) => c.name)).toEqual(['configuration', 'DSP backend', 'Twilio credentials', 'agent echo', 'public URL', 'public URL reaches this bridge']);
        expect(reached.filter((c) => !c.ok).map((c) => [c.name, c.detail])).toEqual([['public URL', expect.stringMatching(/Twilio cannot reach it .*http:\/\//)]]);
        // A public https:// URL, not reached (--offline): every check passes.
        const offline = await runDoctor({ env: { TWILIO_ACCOUNT_SID: rest.accountSid, TWILIO_AUTH_TOKEN: rest.authToken, TWILIO_API_URL: rest.url, BRIDGE_PUBLIC_URL: 'https://voice.example.com' }, skipPublicUrl: true });
        expect(offline.filter((c) => !c.ok)).toEqual([]);
        expect(offline.map((c) => c.name)).toEqual(['configuration', 'DSP backend', 'Twilio credentials', 'agent echo', 'public URL']);
      });
    } finally {
      await rest.close();
    }
  });

  it('out of the box (no keys, no public URL) it passes with a warning: the local echo setup is not an error', async () => {
    const checks = await runDoctor({ env: {} });
    expect(checks.filter((c) => !c.ok)).toEqual([]);
    expect(checks.filter((c) => c.warn).map((c) => c.name)).toEqual(['public URL']);
  });

  it('a public URL Twilio cannot reach is a failure, whatever answers there', () => {
    for (const u of ['http://voice.example.com', 'https://127.0.0.1:8080', 'https://localhost', 'https://10.1.2.3', 'https://192.168.0.7', 'https://172.20.0.1', 'https://169.254.1.1', 'https://[::1]:8443', 'https://[fd00::1]', 'https://bridge', 'https://voice.local', 'not a url']) {
      expect(unreachableByTwilio(u), u).toBeDefined();
    }
    for (const u of ['https://voice.example.com', 'https://203.0.113.9:8443', 'https://[2001:db8::1]', 'https://abc.ngrok-free.app']) expect(unreachableByTwilio(u), u).toBeUndefined();
  });

  it('says what is wrong and how to fix it', async () => {
    const rest = await startFakeTwilioRest();
    try {
      const checks = await runDoctor({ env: { TWILIO_ACCOUNT_SID: rest.accountSid, TWILIO_AUTH_TOKEN: 'wrong-token', TWILIO_API_URL: rest.url, BRIDGE_PUBLIC_URL: 'http://127.0.0.1:9' }, timeoutMs: 2000 });
      const bad = Object.fromEntries(checks.filter((c) => !c.ok).map((c) => [c.name, c]));
      expect(Object.keys(bad).sort()).toEqual(['Twilio credentials', 'public URL', 'public URL reaches this bridge']);
      expect(bad['Twilio credentials']!.fix).toMatch(/TWILIO_AUTH_TOKEN/);
      expect(bad['public URL reaches this bridge']!.detail).toMatch(/unreachable/);
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
