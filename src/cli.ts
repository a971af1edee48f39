#!/usr/bin/env node
/**
 * voice-bridge CLI:
 *   voice-bridge start [--workers N]        run the bridge (echo agent when no keys are set); N processes on one port
 *   voice-bridge simulate --wav in.wav …    act as Twilio and call a running bridge
 *   voice-bridge call +15551234567 [--agent echo]   place an outbound call through Twilio
 *   voice-bridge doctor                     check configuration, credentials, agents, public URL
 */
import { parseArgs } from 'node:util';
import { startCommand } from './cluster.js';
import { doctorCommand } from './doctor.js';
import { ttsCommand } from './tts-command.js';
import { callsCommand } from './store/calls-command.js';
import { simulateCommand } from './sim/simulate-command.js';
import { loadConfig, ConfigError } from './config.js';
import { TwilioRest } from './twilio/rest.js';
import { mintOutboundStreamToken, streamTokenKey } from './twilio/stream-token.js';
import { outboundStreamTwiml } from './twilio/stream-twiml.js';

const USAGE = `usage:
  voice-bridge start [--workers N|auto]
  voice-bridge simulate --wav in.wav [--url ws://127.0.0.1:8080/twilio/stream] [--out heard.wav] [--fast] [--barge-in-at 2.5] [--dtmf 1@3.0]
  voice-bridge call +15551234567 [--agent echo]
  voice-bridge doctor [--offline]
  voice-bridge tts "text" --out hello.wav [--voice ID]
  voice-bridge calls [--limit N] [--before CURSOR] [--json] [CallSid]`;

async function callCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { agent: { type: 'string' }, url: { type: 'string' } } });
  const to = positionals[0];
  if (!to || !/^\+[1-9]\d{6,14}$/.test(to)) {
    console.error('voice-bridge call: give the number to call in E.164 form, e.g. +15551234567');
    return 2;
  }
  let config;
  try {
    config = loadConfig();
  } catch (e) {
    console.error((e as ConfigError).message);
    return 78;
  }
  const { accountSid, authToken, fromNumber, apiUrl } = config.twilio;
  const base = values.url ?? config.publicUrl;
  if (!accountSid || !authToken || !fromNumber || !base) {
    console.error('voice-bridge call needs TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_FROM_NUMBER and BRIDGE_PUBLIC_URL (or --url)');
    return 78;
  }
  const agent = values.agent ?? config.defaultAgent;
  const rest = new TwilioRest({ accountSid, authToken, apiUrl });
  const streamToken = config.twilio.validateSignatures ? mintOutboundStreamToken(streamTokenKey(authToken)) : undefined;
  const twiml = outboundStreamTwiml({ baseUrl: base, agent, from: fromNumber, to, streamToken });
  try {
    const call = await rest.createCall({ to, from: fromNumber, twiml, statusCallback: `${base}/twilio/status` });
    console.log(`calling ${to} with the ${agent} agent: ${call.sid} (${call.status})`);
    return 0;
  } catch (e) {
    const err = e as { code?: string; message?: string };
    console.error(`call failed: ${err.code ?? ''} ${err.message ?? String(e)}`);
    return 1;
  }
}

async function run(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'start':
    case undefined:
      return startCommand(rest);
    case 'simulate':
      return simulateCommand(rest);
    case 'call':
      return callCommand(rest);
    case 'doctor':
      return doctorCommand(rest);
    case 'tts':
      return ttsCommand(rest);
    case 'calls':
      return callsCommand(rest);
    case 'help':
    case '--help':
    case '-h':
      console.log(USAGE);
      return 0;
    default:
      console.error(`unknown command "${cmd}"\n${USAGE}`);
      return 2;
  }
}

run(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
