#!/usr/bin/env node
/**
 * voice-bridge CLI:
 *   voice-bridge start [--workers N]        run the bridge (echo agent when no keys are set); N processes on one port
 *   voice-bridge simulate --wav in.wav …    act as Twilio and call a running bridge
 *   voice-bridge call +15551234567 [--agent echo]   place an outbound call through Twilio
 *   voice-bridge doctor                     check configuration, credentials, agents, public URL
 *   voice-bridge profiles check FILE        validate a profiles file (docs/profiles.md)
 *   voice-bridge say|hangup|transfer CALLSID …   a live call, through a running bridge's admin API
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startCommand } from './cluster.js';
import { doctorCommand } from './doctor.js';
import { ttsCommand, TTS_USAGE } from './tts-command.js';
import { callsCommand, CALLS_USAGE } from './store/calls-command.js';
import { simulateCommand, SIMULATE_USAGE } from './sim/simulate-command.js';
import { profilesCommand, PROFILES_USAGE } from './profiles/profiles-command.js';
import { callAdminCommand, HANGUP_USAGE, SAY_USAGE, TRANSFER_USAGE } from './call-admin-command.js';
import { loadConfig, ConfigError, EX_CONFIG } from './config.js';
import { applyEnvFiles, EnvFileError, takeEnvFileOption } from './env-file.js';
import { TwilioRest } from './twilio/rest.js';
import { mintOutboundStreamToken, streamTokenKey } from './twilio/stream-token.js';
import { outboundStreamTwiml } from './twilio/stream-twiml.js';
import { packageVersion } from './version.js';


interface Command {
  summary: string;
  /** Full usage text for `voice-bridge <cmd> --help`. */
  usage: string;
  run(argv: string[]): Promise<number>;
}

const COMMANDS: Record<string, Command> = {
  start: {
    summary: 'run the bridge (the echo agent when no keys are set)',
    usage: `usage: voice-bridge start [--workers N|auto]

Runs the bridge on HOST:PORT (default 127.0.0.1:8080; 0.0.0.0 when TWILIO_AUTH_TOKEN is set).
  -w, --workers N|auto   N processes on one port (or one per core); a stream reaches the
                         process that answered its call's webhook. Default: BRIDGE_WORKERS or 1.
      --env-file PATH    read KEY=value lines into the environment first (the real
                         environment wins; any command takes it; .env.example lists all)
  -h, --help             this text
Configuration comes from the environment (README: Environment variables).`,
    run: startCommand,
  },
  simulate: { summary: 'act as Twilio and call a running bridge with a WAV file', usage: SIMULATE_USAGE, run: (a) => simulateCommand(a) },
  call: {
    summary: 'place an outbound call through Twilio to an agent',
    usage: `usage: voice-bridge call +15551234567 [--agent NAME | --profile NAME] [--machine-detection] [--url https://public.host]

Places a call from TWILIO_FROM_NUMBER whose audio streams to this bridge's agent.
      --agent NAME          the agent (default BRIDGE_AGENT, else echo)
      --profile NAME        a profile of BRIDGE_PROFILES on the bridge: its agent, options,
                            greeting and tools answer the call (docs/profiles.md)
      --machine-detection   Twilio's answering machine detection; the agent is told
                            whether a person or a machine answered
      --url URL             the bridge's public URL (default BRIDGE_PUBLIC_URL)
  -h, --help         this text
Needs TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_FROM_NUMBER.`,
    run: (a) => callCommand(a),
  },
  doctor: {
    summary: 'check configuration, credentials, agents and the public URL',
    usage: `usage: voice-bridge doctor [--offline]

Checks the environment, the DSP backend, Twilio credentials, every configured agent and
whether BRIDGE_PUBLIC_URL is a public HTTPS URL that reaches this bridge. Exit 0 when
nothing failed (warnings allowed), 1 otherwise.
      --offline   do not reach BRIDGE_PUBLIC_URL (the bridge need not be running)
  -h, --help      this text`,
    run: (a) => doctorCommand(a),
  },
  tts: { summary: 'speak a text with ElevenLabs TTS into a WAV file', usage: TTS_USAGE, run: (a) => ttsCommand(a) },
  calls: { summary: 'list call records, or show one', usage: CALLS_USAGE, run: (a) => callsCommand(a) },
  profiles: { summary: 'check a profiles file (profiles check FILE)', usage: PROFILES_USAGE, run: (a) => profilesCommand(a) },
  say: { summary: 'speak a text into a live call (a running bridge, admin token)', usage: SAY_USAGE, run: (a) => callAdminCommand('say', a) },
  hangup: { summary: 'end a live call (a running bridge, admin token)', usage: HANGUP_USAGE, run: (a) => callAdminCommand('hangup', a) },
  transfer: { summary: 'transfer a live call to a number (a running bridge, admin token)', usage: TRANSFER_USAGE, run: (a) => callAdminCommand('transfer', a) },
};

function overview(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((k) => k.length));
  return `voice-bridge ${packageVersion()}: Twilio Media Streams ⇄ real-time AI voice agents

usage: voice-bridge <command> [options]      (no command: start)

${Object.entries(COMMANDS)
    .map(([k, c]) => `  ${k.padEnd(width)}  ${c.summary}`)
    .join('\n')}

voice-bridge <command> --help   a command's options
voice-bridge --version          the version
--env-file PATH                 (any command) read KEY=value lines into the environment
                                first; variables already set win`;
}

async function callCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { agent: { type: 'string' }, profile: { type: 'string' }, 'machine-detection': { type: 'boolean' }, url: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
  if (values.agent !== undefined && values.profile !== undefined) {
    console.error('voice-bridge call: give --agent or --profile, not both (the profile names its agent)');
    return 2;
  }
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
    return EX_CONFIG;
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
  // A profile is looked up by name where the stream lands (the bridge's BRIDGE_PROFILES).
  const twiml = outboundStreamTwiml({ baseUrl: base, agent, ...(values.profile !== undefined ? { profile: values.profile } : {}), from: fromNumber, to, streamToken });
  const machineDetection = values['machine-detection'] ? { mode: 'Enable' as const, amdStatusCallback: `${base}/twilio/amd` } : undefined;
  try {
    const call = await rest.createCall({ to, from: fromNumber, twiml, statusCallback: `${base}/twilio/status`, ...(machineDetection ? { machineDetection } : {}) });
    console.log(`calling ${to} with ${values.profile !== undefined ? `profile ${values.profile}` : `the ${agent} agent`}: ${call.sid} (${call.status})`);
    return 0;
  } catch (e) {
    const err = e as { code?: string; message?: string };
    console.error(`call failed: ${err.code ?? ''} ${err.message ?? String(e)}`);
    return 1;
  }
}

const isHelp = (a: string) => a === '--help' || a === '-h';
const isVersion = (a: string) => a === '--version' || a === '-V';

export async function run(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined || first.startsWith('-')) {
    if (first !== undefined && isVersion(first)) {
      console.log(packageVersion());
      return 0;
    }
    if (first !== undefined && isHelp(first)) {
      console.log(overview());
      return 0;
    }
    // No command (or only options): start, as before.
    return runCommand('start', COMMANDS.start!, argv);
  }
  if (first === 'help') {
    const c = rest[0] === undefined ? undefined : COMMANDS[rest[0]];
    console.log(c ? c.usage : overview());
    return 0;
  }
  const cmd = Object.hasOwn(COMMANDS, first) ? COMMANDS[first] : undefined;
  if (!cmd) {
    console.error(`voice-bridge: unknown command "${first}"\n\n${overview()}`);
    return 2;
  }
  return runCommand(first, cmd, rest);
}

async function runCommand(name: string, cmd: Command, allArgs: string[]): Promise<number> {
  // --help and --version mean the same to every command, before its own parsing.
  if (allArgs.some(isHelp)) {
    console.log(cmd.usage);
    return 0;
  }
  // --env-file too: the file's variables are in the environment before the command reads it.
  let argv: string[];
  try {
    const taken = takeEnvFileOption(allArgs);
    argv = taken.argv;
    applyEnvFiles(taken.paths);
  } catch (e) {
    if (!(e instanceof EnvFileError)) throw e;
    console.error(`voice-bridge ${name}: ${e.message}`);
    return EX_CONFIG;
  }
  if (argv.some(isVersion)) {
    console.log(packageVersion());
    return 0;
  }
  try {
    return await cmd.run(argv);
  } catch (e) {
    // node:util parseArgs: an unknown option, a missing value, a stray positional — a usage error.
    const code = (e as { code?: string }).code;
    if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) {
      console.error(`voice-bridge ${name}: ${(e as Error).message}\n\n${cmd.usage}`);
      return 2;
    }
    throw e;
  }
}

// Run when executed (node dist/cli.js, tsx src/cli.ts, the npm bin link), not when imported.
const invokedAs = process.argv[1] ? realpathOrSelf(process.argv[1]) : '';
if (invokedAs === realpathOrSelf(fileURLToPath(import.meta.url))) {
  run(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      console.error(`voice-bridge: ${e instanceof Error ? e.message : String(e)}`);
      if (process.env.BRIDGE_LOG_LEVEL === 'debug' && e instanceof Error) console.error(e.stack);
      process.exit(1);
    },
  );
}

function realpathOrSelf(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return p;
  }
}
