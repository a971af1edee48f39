/**
 * `voice-bridge call` (a real CLI process against the fake Twilio REST API): the TwiML
 * it creates the call with brings the outbound stream token (the bridge checks
 * signatures, so a stream without one would be refused), and the call's From/To.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkStreamToken, streamTokenKey } from '../../src/twilio/stream-token.js';
import { startFakeTwilioRest } from '../fakes/twilio-rest.js';

const repoRoot = join(import.meta.dirname, '..', '..');

describe('voice-bridge call', () => {
  it('creates the call with a <Stream> that carries a valid outbound stream token and the numbers', async () => {
    const rest = await startFakeTwilioRest();
    try {
      const p = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'src', 'cli.ts'), 'call', '+15557654321', '--agent', 'echo'], {
        cwd: repoRoot,
        env: { PATH: process.env.PATH ?? '', TWILIO_ACCOUNT_SID: rest.accountSid, TWILIO_AUTH_TOKEN: rest.authToken, TWILIO_API_URL: rest.url, TWILIO_FROM_NUMBER: '+15551230000', BRIDGE_PUBLIC_URL: 'https://bridge.example.com' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      p.stdout.on('data', (d: Buffer) => (out += d.toString()));
      p.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const code = await new Promise<number | null>((r) => p.once('exit', r));
      expect(code, out).toBe(0);
      const created = rest.requests.filter((q) => q.method === 'POST' && q.path.endsWith('/Calls.json'));
      expect(created).toHaveLength(1);
      const twiml = created[0]!.form.Twiml!;
      expect(twiml).toContain('<Stream url="wss://bridge.example.com/twilio/stream"');
      expect(twiml).toContain('<Parameter name="vb_from" value="+15551230000"/>');
      expect(twiml).toContain('<Parameter name="vb_to" value="+15557654321"/>');
      const token = /<Parameter name="vb_token" value="([^"]+)"\/>/.exec(twiml)?.[1];
      // Bound to a nonce (the CallSid is not known yet): valid for the call Twilio creates, whatever its SID.
      expect(checkStreamToken(streamTokenKey(rest.authToken), token, 'CA' + '4'.repeat(32))).toBeUndefined();
    } finally {
      await rest.close();
    }
  });
});
