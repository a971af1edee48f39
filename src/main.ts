/**
 * Process entry for `voice-bridge start` / `npm start`: config (validated once),
 * DSP backend, agents, calls, HTTP server; SIGTERM/SIGINT stop taking calls,
 * close the active ones and exit 0.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readWav } from './audio/wav.js';
import { loadConfig, ConfigError, type Config } from './config.js';
import { loadDsp, dspLoadInfo } from './dsp/load.js';
import { createAgentRegistry } from './agents/registry.js';
import type { AgentFactory } from './agents/agent.js';
import { CallManager } from './call/call-manager.js';
import { buildApp } from './server/app.js';
import { TwilioRest } from './twilio/rest.js';
import { createTtsService } from './agents/elevenlabs/tts/service.js';
import { createRecorder } from './recording/recorder.js';
import { openCallStore } from './store/call-store.js';
import { createMetrics, registerMetricsRoute, registerWorkerMetricsResponder } from './metrics/index.js';
import { callLogger, createLogger, logFields } from './log.js';

export interface RunningBridge {
  /** http://host:port */
  url: string;
  /** ws://host:port/twilio/stream */
  streamUrl: string;
  config: Config;
  close(): Promise<void>;
}

const APOLOGY_TWIML = `<?xml version="1.0" encoding="UTF-8"?><Response><Say>Sorry, we can't continue this call right now. Please try again later. Goodbye.</Say><Hangup/></Response>`;

/** The bundled apology prompt (assets/prompts), played when REST is not configured. */
async function loadApologyPrompt(): Promise<Uint8Array | undefined> {
  try {
    const here = dirname(fileURLToPath(import.meta.url));
    const w = await readWav(join(here, '..', 'assets', 'prompts', 'apology.8k-ulaw.wav'));
    return w.encoding === 'ulaw' && w.sampleRateHz === 8000 ? (w.data as Uint8Array) : undefined;
  } catch {
    return undefined;
  }
}

export interface StartOptions {
  port?: number;
  host?: string;
  /** Extra agents (e.g. a local fake of a provider) registered beside the built-in ones. */
  extraAgents?: AgentFactory[];
}

export async function startBridge(env: Record<string, string | undefined> = process.env, options: StartOptions = {}): Promise<RunningBridge> {
  const { extraAgents = [], ...overrides } = options;
  const config = { ...loadConfig(env), ...Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)) } as Config;
  const logger = createLogger(config);
  const dsp = await loadDsp({ backend: config.dsp });
  const info = dspLoadInfo();
  logger.info({ dsp: info }, info?.fallbackReason ? `DSP backend: ts (fallback: ${info.fallbackReason})` : `DSP backend: ${dsp.name}`);
  const agents = createAgentRegistry(config);
  for (const f of extraAgents) agents.register(f);
  const rest =
    config.twilio.accountSid && config.twilio.authToken
      ? new TwilioRest({ accountSid: config.twilio.accountSid, authToken: config.twilio.authToken, apiUrl: config.twilio.apiUrl })
      : undefined;
  const store = await openCallStore(config, { log: (level, msg, fields) => logger[level](fields ?? {}, msg) });
  const recorder = createRecorder(config, { log: (level, msg, fields) => logger[level](fields ?? {}, msg) });
  if (recorder.enabled) logger.info({ dir: recorder.dir }, 'recording every call (BRIDGE_RECORD=1)');
  const tts = createTtsService(config);
  if (tts) logger.info({ voiceId: tts.voiceId, model: tts.modelId, greeting: tts.greeting !== undefined }, 'ElevenLabs TTS on');
  const metrics = createMetrics({ dspInfo: dspLoadInfo, knownAgents: () => agents.names() });
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
    apologizeViaRest: rest
      ? async (callSid) => {
          await rest.updateCallTwiml(callSid, APOLOGY_TWIML);
          return true;
        }
      : undefined,
    apologyPrompt: await loadApologyPrompt(),
    greeting: tts?.greeting ? (signal) => tts.speak(tts.greeting!, signal) : undefined,
    tapFor: recorder.enabled ? recorder.tapFor : undefined,
    observer: metrics.observer,
    log: (level, msg, fields) => logger[level](fields ?? {}, msg),
  });
  calls.on('callStarted', metrics.onCallStarted);
  calls.on('callEnded', metrics.onCallEnded);
  calls.on('callEnded', (r) => store.record(r));
  calls.on('callEnded', (r) => callLogger(logger, r).info(logFields(r), 'call ended'));
  metrics.setActiveCalls(() => calls.activeCount);
  const app = await buildApp({ config, calls, agents, dspInfo: dspLoadInfo, rest, tts, store, logger: false });
  registerMetricsRoute(app, metrics);
  registerWorkerMetricsResponder(metrics);
  const address = await app.listen({ port: config.port, host: config.host });
  logger.info({ address, agents: agents.available() }, 'voice-bridge listening');
  let closing: Promise<void> | undefined;
  return {
    url: address,
    streamUrl: `${address.replace(/^http/, 'ws')}/twilio/stream`,
    config,
    close() {
      closing ??= (async () => {
        app.draining = true;
        await calls.shutdown('shutting-down');
        await app.close();
        await store.flush(5000);
        await store.close();
        tts?.close();
        metrics.close();
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
