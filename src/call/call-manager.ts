/**
 * The calls of this process: creates a CallSession per Media Streams socket, keeps
 * them by CallSid while they live, remembers recent ended ones for GET /calls/:sid,
 * records Twilio status callbacks, and closes everything on shutdown.
 */
import { EventEmitter } from 'node:events';
import type { WebSocket } from 'ws';
import type { AgentRegistry } from '../agents/registry.js';
import type { Config } from '../config.js';
import type { DspBackend } from '../dsp/backend.js';
import type { FramePaths } from '../dsp/frame-paths.js';
import { CallSession, type CallSummary, type OpenedAgent } from './call-session.js';
import { BridgeError, ErrorCodes } from '../errors.js';
import { FrameClock } from './frame-clock.js';
import { TwilioInputCodes } from '../twilio/messages.js';
import type { CallAudioTap, CallObserver } from './hooks.js';

export interface StatusEvent {
  at: string;
  params: Record<string, string>;
}

export interface CallManagerDeps {
  config: Config;
  dsp: DspBackend;
  /** Where calls' pipelines run (default: inline on `dsp`; the DSP pool with BRIDGE_DSP_POOL). */
  paths?: FramePaths;
  agents: AgentRegistry;
  clock?: FrameClock;
  endCallViaRest?: (callSid: string) => Promise<boolean>;
  apologizeViaRest?: (callSid: string) => Promise<boolean>;
  apologyPrompt?: Uint8Array;
  /** Spoken when a call's agent is connected (e.g. an ElevenLabs TTS greeting); cached by the TTS service. */
  greeting?: (signal: AbortSignal) => Promise<Uint8Array | undefined>;
  observer?: CallObserver;
  tapFor?: (info: { callSid: string; streamSid: string }) => CallAudioTap | undefined;
  log?: (level: 'info' | 'warn' | 'error' | 'debug', msg: string, fields?: Record<string, unknown>) => void;
}

const RECENT_ENDED = 200;
/** How long an agent pre-connected at the voice webhook waits for its stream. */
const PREPARED_TTL_MS = 30_000;
const MAX_PREPARED = 500;

function paramsKey(agent: string, parameters: Record<string, string>): string {
  return JSON.stringify([agent, Object.entries(parameters).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))]);
}
const FLOOD_RATE_PER_S = 250;
const FLOOD_BURST = 1000;
/** Messages dropped for flooding before the call is ended. */
const FLOOD_CLOSE_AFTER = 10_000;
const STATUS_PER_CALL = 50;

/** A finished call as it should be persisted: the session's summary plus what the webhook knew. */
export interface CallRecord extends CallSummary {
  /** Caller and callee numbers from the voice webhook (PII: log only under `pii`). */
  from: string | null;
  to: string | null;
  status: StatusEvent[];
}

export interface CallManagerEvents {
  /** A stream started (Twilio `start`). */
  callStarted: [{ callSid: string; streamSid: string; agent: string | null }];
  /** A call ended: the record to persist. */
  callEnded: [CallRecord];
}

export class CallManager extends EventEmitter<CallManagerEvents> {
  readonly clock: FrameClock;
  readonly #d: CallManagerDeps;
  readonly #sessions = new Set<CallSession>();
  readonly #ended = new Map<string, CallSummary>();
  readonly #status = new Map<string, StatusEvent[]>();
  #shuttingDown = false;

  constructor(deps: CallManagerDeps) {
    super();
    this.#d = deps;
    this.clock = deps.clock ?? new FrameClock({ onError: (e) => deps.log?.('error', 'frame clock subscriber threw', { error: String(e) }) });
  }

  get activeCount(): number {
    return this.#sessions.size;
  }

  readonly #prepared = new Map<string, { opened: OpenedAgent; parametersKey: string; timer: NodeJS.Timeout }>();

  /** Creates the agent session and starts connecting it, with the connect timeout. */
  #open(name: string, callSid: string, parameters: Record<string, string>): OpenedAgent {
    const factory = this.#d.agents.get(name);
    if (!factory.available) throw new BridgeError(ErrorCodes.AGENT_CONFIG, `agent "${name}" is not configured`);
    const session = factory.create({ callSid, parameters });
    const timeoutMs = this.#d.config.agentConnectTimeoutMs;
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(new BridgeError(ErrorCodes.AGENT_TIMEOUT, `agent "${name}" did not connect within ${timeoutMs} ms`)), timeoutMs);
    const ready = session.connect(ac.signal).then(
      () => clearTimeout(timer),
      (e: unknown) => {
        clearTimeout(timer);
        if (ac.signal.aborted && ac.signal.reason instanceof BridgeError) throw ac.signal.reason;
        if (e instanceof BridgeError) throw e;
        throw new BridgeError(ErrorCodes.AGENT_CONNECT, `agent "${name}" failed to connect: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
      },
    );
    ready.catch(() => undefined); // observed by whoever adopts it; never an unhandled rejection
    return { name, session, ready, preconnected: false };
  }

  /**
   * Voice webhook: connect the call's agent now, keyed by CallSid, so the caller's first
   * turn never waits for a provider handshake. Adopted when the stream's `start` names
   * the same CallSid, agent and options; closed if no stream comes within PREPARED_TTL_MS.
   */
  /** The voice webhook's From/To for a CallSid, kept until its call ends (bounded). */
  readonly #parties = new Map<string, { from: string | null; to: string | null }>();

  rememberParties(callSid: string, from: string | undefined, to: string | undefined): void {
    this.#parties.set(callSid, { from: from ?? null, to: to ?? null });
    if (this.#parties.size > MAX_PREPARED * 4) this.#parties.delete(this.#parties.keys().next().value!);
  }

  prepare(callSid: string, agentName: string, parameters: Record<string, string>): void {
    if (this.#shuttingDown || this.#prepared.has(callSid) || this.#prepared.size >= MAX_PREPARED) return;
    let opened: OpenedAgent;
    try {
      opened = this.#open(agentName, callSid, parameters);
    } catch (e) {
      this.#d.log?.('warn', 'could not pre-connect agent', { callSid, agent: agentName, error: (e as Error).message });
      return;
    }
    const timer = setTimeout(() => {
      if (this.#prepared.get(callSid)?.opened === opened) {
        this.#prepared.delete(callSid);
        void opened.session.close('stream never started');
      }
    }, PREPARED_TTL_MS);
    this.#prepared.set(callSid, { opened: { ...opened, preconnected: true }, parametersKey: paramsKey(agentName, parameters), timer });
  }

  #openAgent = (callSid: string, parameters: Record<string, string>): OpenedAgent => {
    const { agent, ...options } = parameters;
    const name = agent ?? this.#d.config.defaultAgent;
    const prepared = this.#prepared.get(callSid);
    if (prepared) {
      this.#prepared.delete(callSid);
      clearTimeout(prepared.timer);
      if (prepared.parametersKey === paramsKey(name, options)) return prepared.opened;
      void prepared.opened.session.close('stream asked for another agent');
    }
    return this.#open(name, callSid, options);
  };

  /** Takes ownership of an accepted Media Streams socket. */
  attach(ws: WebSocket): CallSession {
    const session = new CallSession(ws, {
      config: this.#d.config,
      dsp: this.#d.dsp,
      paths: this.#d.paths,
      clock: this.clock,
      openAgent: this.#openAgent,
      endCallViaRest: this.#d.endCallViaRest,
      apologizeViaRest: this.#d.apologizeViaRest,
      apologyPrompt: this.#d.apologyPrompt,
      observer: this.#d.observer,
      tapFor: this.#d.tapFor,
      log: this.#d.log,
    });
    this.#sessions.add(session);
    // Flood guard: a token bucket per socket. Twilio sends ~50 messages/s per call
    // (one media frame per 20 ms, plus marks/DTMF); allow 5× that sustained with a
    // burst of 1,000, drop and count the excess, and end a call that keeps flooding.
    let tokens = FLOOD_BURST;
    let last = FrameClock.now();
    let dropped = 0;
    const maxBytes = this.#d.config.maxMessageBytes;
    ws.on('message', (data, isBinary) => {
      const now = FrameClock.now();
      tokens = Math.min(FLOOD_BURST, tokens + ((now - last) / 1000) * FLOOD_RATE_PER_S);
      last = now;
      if (tokens < 1) {
        session.reportBadInput(TwilioInputCodes.FLOOD, 'message rate far above Twilio\'s');
        if (++dropped >= FLOOD_CLOSE_AFTER) void session.close('twilio-flood');
        return;
      }
      tokens -= 1;
      const size = Array.isArray(data) ? data.reduce((n, b) => n + b.length, 0) : (data as Buffer | ArrayBuffer).byteLength;
      if (size > maxBytes) {
        session.reportBadInput(TwilioInputCodes.TOO_LARGE, `${size} bytes > BRIDGE_MAX_MESSAGE_BYTES ${maxBytes}`);
        return;
      }
      if (isBinary) session.onBinary();
      else session.onText(Array.isArray(data) ? Buffer.concat(data).toString() : data.toString());
    });
    ws.on('close', () => void session.close('twilio-socket-closed'));
    ws.on('error', (e) => {
      this.#d.log?.('warn', 'Twilio socket error', { error: e.message });
      void session.close('twilio-socket-error');
    });
    session.once('started', (m) => this.emit('callStarted', { callSid: m.callSid, streamSid: m.streamSid, agent: m.customParameters.agent ?? this.#d.config.defaultAgent }));
    session.once('closed', () => {
      this.#sessions.delete(session);
      const s = session.summary();
      if (s.callSid) {
        this.#ended.set(s.callSid, s);
        if (this.#ended.size > RECENT_ENDED) this.#ended.delete(this.#ended.keys().next().value!);
        const parties = this.#parties.get(s.callSid);
        this.#parties.delete(s.callSid);
        this.emit('callEnded', { ...s, from: parties?.from ?? null, to: parties?.to ?? null, status: this.#status.get(s.callSid) ?? [] });
      }
    });
    if (this.#d.greeting) {
      const greeting = this.#d.greeting;
      session.on('state', (next) => {
        if (next !== 'streaming') return;
        const ac = new AbortController();
        session.once('closed', () => ac.abort());
        greeting(AbortSignal.any([ac.signal, AbortSignal.timeout(15_000)])).then(
          (audio) => {
            if (audio) session.say(audio, 'greeting');
          },
          (e: unknown) => this.#d.log?.('warn', 'greeting failed', { callSid: session.callSid, error: (e as Error).message }),
        );
      });
    }
    if (this.#shuttingDown) void session.close('shutting-down');
    return session;
  }

  list(): CallSummary[] {
    return [...this.#sessions].map((s) => s.summary());
  }

  get(callSid: string): (CallSummary & { status: StatusEvent[] }) | undefined {
    for (const s of this.#sessions) if (s.callSid === callSid) return { ...s.summary(), status: this.#status.get(callSid) ?? [] };
    const ended = this.#ended.get(callSid);
    return ended ? { ...ended, status: this.#status.get(callSid) ?? [] } : undefined;
  }

  session(callSid: string): CallSession | undefined {
    for (const s of this.#sessions) if (s.callSid === callSid) return s;
    return undefined;
  }

  recordStatus(params: Record<string, string>): void {
    const sid = params.CallSid;
    if (!sid) return;
    const list = this.#status.get(sid) ?? [];
    list.push({ at: new Date().toISOString(), params });
    if (list.length > STATUS_PER_CALL) list.shift();
    this.#status.set(sid, list);
    if (this.#status.size > RECENT_ENDED * 2) this.#status.delete(this.#status.keys().next().value!);
  }

  async shutdown(reason = 'shutting-down'): Promise<void> {
    this.#shuttingDown = true;
    for (const [sid, p] of this.#prepared) {
      clearTimeout(p.timer);
      void p.opened.session.close(reason);
      this.#prepared.delete(sid);
    }
    await Promise.all([...this.#sessions].map((s) => s.close(reason)));
  }
}
