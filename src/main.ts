/**
 * Process entry for `voice-bridge start` / `npm start`: config (validated once),
 * DSP backend, agents, calls, HTTP server; SIGTERM/SIGINT stop taking calls,
 * close the active ones and exit 0.
 */
import pino from 'pino';
import { loadConfig, ConfigError, type Config } from './config.js';
import { loadDsp, dspLoadInfo } from './dsp/load.js';
import { createAgentRegistry } from './agents/registry.js';
import { CallManager } from './call/call-manager.js';
import { buildApp } from './server/app.js';
import { TwilioRestClient } from './twilio/rest.js';

export interface RunningBridge {
  url: string;
  config: Config;
  close(): Promise<void>;
}

export async function startBridge(env: Record<string, string | undefined> = process.env, overrides: { port?: number; host?: string } = {}): Promise<RunningBridge> {
  const config = { ...loadConfig(env), ...overrides } as Config;
  const logger = pino({ level: config.logLevel, redact: { paths: ['pii', '*.pii'], censor: '[redacted]' } });
  const dsp = await loadDsp({ backend: config.dsp });
  const info = dspLoadInfo();
  logger.info({ dsp: info }, info?.fallbackReason ? `DSP backend: ts (fallback: ${info.fallbackReason})` : `DSP backend: ${dsp.name}`);
  const agents = createAgentRegistry(config);
  const rest =
    config.twilio.accountSid && config.twilio.authToken
      ? new TwilioRestClient({ accountSid: config.twilio.accountSid, authToken: config.twilio.authToken, baseUrl: config.twilio.apiUrl })
      : undefined;
  const calls = new CallManager({
    config,
    dsp,
    agents,
    endCallViaRest: rest
      ? async (callSid) => {
          await rest.endCall(callSid);
          return true;
        }
      : undefined,
    log: (level, msg, fields) => logger[level](fields ?? {}, msg),
  });
  const app = await buildApp({ config, calls, agents, dspInfo: dspLoadInfo, rest, logger: false });
  const address = await app.listen({ port: config.port, host: config.host });
  logger.info({ address, agents: agents.available() }, 'voice-bridge listening');
  let closing: Promise<void> | undefined;
  return {
    url: address,
    config,
    close() {
      closing ??= (async () => {
        app.draining = true;
        await calls.shutdown('shutting-down');
        await app.close();
      })();
      return closing;
    },
  };
}

export async function main(env: Record<string, string | undefined> = process.env): Promise<number> {
  let bridge: RunningBridge;
  try {
    bridge = await startBridge(env);
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(e.message);
      return 78; // EX_CONFIG
    }
    console.error(`voice-bridge failed to start: ${(e as Error).message}`);
    return 1;
  }
  console.log(`voice-bridge listening on ${bridge.url} — point your Twilio number's voice webhook at <public URL>/twilio/voice`);
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      void bridge.close().then(resolve);
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
  return 0;
}
