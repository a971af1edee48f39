/**
 * The calls of this process: creates a CallSession per Media Streams socket, keeps
 * them by CallSid while they live, remembers recent ended ones for GET /calls/:sid,
 * records Twilio status callbacks, and closes everything on shutdown.
 */
import { anySignal } from '../any-signal.js';
import { declareTools } from '../tools/declarations.js';
import { appToolsFor, declareAppTools, type AppTool } from '../tools/app-tools.js';
import type { ToolResult } from '../tools/run-tool.js';
import { EventEmitter } from 'node:events';
import type { WebSocket } from 'ws';
import type { AgentRegistry } from '../agents/registry.js';
import type { Config } from '../config.js';
import type { DspBackend } from '../dsp/backend.js';
import type { DspPool } from '../dsp/pool/dsp-pool.js';
import { CallSession, type CallSummary, type OpenedAgent } from './call-session.js';
import { BridgeError, ErrorCodes } from '../errors.js';
import { FrameClock } from './frame-clock.js';
import { isSid } from '../twilio/messages.js';
import { StreamGuard } from '../twilio/stream-guard.js';
import type { CallAudioTap, CallObserver, CallTrace, CallTraceInfo } from './hooks.js';
import { STREAM_TOKEN_PARAM, StreamTokenGuard } from '../twilio/stream-token.js';
import { IDENTITY_PARAMS, PROFILE_PARAM } from '../twilio/stream-twiml.js';
import type { Profile } from '../profiles/schema.js';
import { profileAgentParameters } from '../profiles/profile-options.js';
import { callerDataErr } from '../log.js';

export interface StatusEvent {
  at: string;
  params: Record<string, string>;
}

export interface CallManagerDeps {
  config: Config;
  dsp: DspBackend;
  /** BRIDGE_DSP_POOL mode: calls' DSP runs on this worker pool instead of inline on `dsp`. */
  pool?: DspPool;
  agents: AgentRegistry;
  clock?: FrameClock;
  endCallViaRest?: (callSid: string) => Promise<boolean>;
  apologizeViaRest?: (callSid: string) => Promise<boolean>;
  /** transfer_call: redirects the live call to <Dial> through the REST API (absent: no REST credentials). */
  transferViaRest?: (callSid: string, to: string, callerId: string | null) => Promise<void>;
  /** Tools of the embedding app (StartOptions.tools), offered to profile calls beside the profile's. */
  appTools?: readonly AppTool[];
  /** Every tool call's result (metrics, the tool.called event). */
  onToolResult?: (r: ToolResult, call: { callSid: string; profile: string }) => void;
  apologyPrompt?: Uint8Array;
  /** Spoken when a call's agent is connected (e.g. an ElevenLabs TTS greeting); cached by the TTS service. */
  greeting?: (signal: AbortSignal) => Promise<Uint8Array | undefined>;
  observer?: CallObserver;
  tapFor?: (info: { callSid: string; streamSid: string }) => CallAudioTap | undefined;
  /** A trace per call when tracing is on (src/telemetry): created at `start`, with the call's agent and numbers. */
  traceFor?: (info: CallTraceInfo) => CallTrace | undefined;
  log?: (level: 'info' | 'warn' | 'error' | 'debug', msg: string, fields?: Record<string, unknown>) => void;
  /** How long a pre-connected agent waits for its stream (BRIDGE_PRECONNECT_TTL_MS). */
  preconnectTtlMs?: number;
  /**
   * A started stream with no message from Twilio for this long is pinged; with no pong
   * within as long again it is closed ('twilio-inactive'). Default 5000 (BRIDGE_STREAM_IDLE_MS).
   */
  streamIdleMs?: number;
  /**
   * The profiles in force (BRIDGE_PROFILES): a stream whose `profile` parameter names one
   * gets that profile's agent and options, looked up when its agent is opened — the call
   * keeps that snapshot whatever reloads come after.
   */
  profiles?: { byName(name: string): Profile | undefined };
}

/** One Twilio socket's guard (flood, size, send backlog, liveness), its liveness checked by the manager's one watchdog timer (no timer per call). */
interface Liveness {
  ws: WebSocket;
  guard: StreamGuard;
}

const RECENT_ENDED = 200;
/** How long an agent pre-connected at the voice webhook waits for its stream (default of BRIDGE_PRECONNECT_TTL_MS). */
export const DEFAULT_PRECONNECT_TTL_MS = 30_000;
const MAX_PREPARED = 500;

/** Stream `<Parameter>`s the bridge sets itself: never passed to the agent as options. */
const NOT_AGENT_OPTIONS = new Set<string>(['agent', PROFILE_PARAM, IDENTITY_PARAMS.from, IDENTITY_PARAMS.to, STREAM_TOKEN_PARAM]);

/** The agent a stream gets: its name, its options, and the profile they come from (if any). */
interface AgentChoice {
  name: string;
  options: Record<string, string>;
  profile?: string;
}

/** What became of a pre-connect: adopted by its stream, a stream with nothing prepared here, expired unclaimed, or not attempted. */
export type PreconnectOutcome = 'adopted' | 'missed' | 'expired' | 'refused';

function paramsKey(agent: string, parameters: Record<string, string>, profile: string | undefined): string {
  return JSON.stringify([agent, profile ?? null, Object.entries(parameters).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))]);
}
const STATUS_PER_CALL = 50;

/** A finished call as it should be persisted: the session's summary plus what the webhook knew. */
export interface CallRecord extends CallSummary {
  /** Caller and callee numbers from the voice webhook (PII: log only under `pii`). */
  from: string | null;
  to: string | null;
  status: StatusEvent[];
  /** 'in-progress': written when the stream starts; 'completed': at its end (absent in records from before: completed). */
  recordState?: 'in-progress' | 'completed';
  /** The profile that answered (docs/profiles.md); absent: none (the environment-based behaviour). */
  profile?: string | null;
}

/** What the agent is told of Twilio's AnsweredBy (human, machine_start, machine_end_beep/silence/other, fax, unknown). */
export function answeredByNote(answeredBy: string): string {
  if (answeredBy === 'human') return 'A person answered this outbound call.';
  if (answeredBy.startsWith('machine_end')) return 'An answering machine answered this outbound call and its greeting has ended: leave a short message now, then end the call.';
  if (answeredBy.startsWith('machine')) return 'An answering machine or voicemail answered this outbound call: wait for its greeting to end, leave a short message, then end the call.';
  if (answeredBy === 'fax') return 'A fax machine answered this outbound call: end the call.';
  return 'It is not known whether a person or a machine answered this outbound call.';
}

/** `{ profile }` when the stream names one (a record without one has no `profile` key, as before profiles). */
const profileOf = (parameters: Record<string, string> | undefined): { profile?: string } => {
  const name = parameters?.[PROFILE_PARAM];
  return name === undefined ? {} : { profile: name };
};

export interface CallManagerEvents {
  /** A stream started (Twilio `start`), with the call's in-progress record. */
  callStarted: [{ callSid: string; streamSid: string; agent: string | null; record: CallRecord }];
  /** A call ended: the record to persist. */
  callEnded: [CallRecord];
  /** A pre-connect's fate (counted as voice_bridge_preconnect_total{outcome}). */
  preconnect: [{ callSid: string; outcome: PreconnectOutcome }];
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
    this.clock = deps.clock ?? new FrameClock({ onError: (e) => deps.log?.('error', 'frame clock subscriber threw', { err: e }) });
    this.#idleMs = deps.streamIdleMs ?? 5000;
    const { authToken, validateSignatures } = deps.config.twilio;
    this.streamTokens = validateSignatures && authToken ? new StreamTokenGuard(authToken) : undefined;
  }

  /** With signature checks on: mints the webhook's stream tokens and admits each `start` by its token. */
  readonly streamTokens: StreamTokenGuard | undefined;

  readonly #idleMs: number;
  readonly #liveness = new Map<CallSession, Liveness>();
  #watchdog: NodeJS.Timeout | undefined;

  /**
   * Twilio sends a media message every 20 ms while a stream lives, so a started stream
   * that goes quiet is broken or half-open (a dead NAT, a crashed peer): after
   * streamIdleMs without a message it gets a WebSocket ping, and without a pong (or any
   * message) within streamIdleMs more it is closed, its slot freed, the reason recorded.
   */
  #checkLiveness = (): void => {
    const now = FrameClock.now();
    for (const [session, { ws, guard: l }] of this.#liveness) {
      if (l.backlogged(ws.bufferedAmount, now)) {
        this.#d.log?.('warn', 'Twilio stream not reading what the bridge sends: closing it', { callSid: session.callSid, bufferedBytes: ws.bufferedAmount });
        this.#liveness.delete(session);
        void session.close('twilio-backpressure');
        continue;
      }
      if (session.callSid === undefined) continue; // before `start`: the start timeout applies
      if (l.pingedAt !== undefined) {
        if (now - l.pingedAt >= this.#idleMs) {
          this.#d.log?.('warn', 'Twilio stream silent and not answering pings: closing it', { callSid: session.callSid, silentMs: Math.round(now - l.lastMessageAt) });
          this.#liveness.delete(session);
          void session.close('twilio-inactive');
        }
      } else if (now - l.lastMessageAt >= this.#idleMs) {
        l.pingedAt = now;
        try {
          ws.ping();
        } catch {
          // closing already
        }
      }
    }
  };

  /** Streams past their `start` (what BRIDGE_MAX_CALLS counts); sockets before `start` are not calls yet. */
  get startedCount(): number {
    return this.#started;
  }
  #started = 0;

  get activeCount(): number {
    return this.#sessions.size;
  }

  readonly #prepared = new Map<string, { opened: OpenedAgent; parametersKey: string; timer: NodeJS.Timeout }>();

  /** Creates the agent session and starts connecting it, with the connect timeout. */
  #open(name: string, callSid: string, parameters: Record<string, string>, profile?: string): OpenedAgent {
    const factory = this.#d.agents.get(name);
    if (!factory.available) throw new BridgeError(ErrorCodes.AGENT_CONFIG, `agent "${name}" is not configured`);
    // The profile as loaded now: the call keeps this snapshot (its tools, secret) whatever reloads come.
    const snapshot = profile === undefined ? undefined : this.#d.profiles?.byName(profile);
    const appTools = snapshot ? appToolsFor(this.#d.appTools ?? [], snapshot.name, (snapshot.tools ?? []).map((t) => ('builtin' in t ? t.builtin : t.name))) : [];
    const tools = snapshot ? [...declareTools(snapshot.tools), ...declareAppTools(appTools)] : [];
    const session = factory.create(
      profile === undefined ? { callSid, parameters } : { callSid, parameters, profile, ...(tools.length > 0 ? { tools } : {}), ...(snapshot?.greeting !== undefined ? { greeting: snapshot.greeting } : {}) },
    );
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
    return { name, session, ready, preconnected: false, ...(snapshot ? { profile: snapshot, appTools } : {}) };
  }

  /** The voice webhook's From/To for a CallSid, kept until its call ends (bounded). */
  readonly #parties = new Map<string, { from: string | null; to: string | null }>();

  rememberParties(callSid: string, from: string | undefined, to: string | undefined): void {
    this.#parties.set(callSid, { from: from ?? null, to: to ?? null });
    if (this.#parties.size > MAX_PREPARED * 4) this.#parties.delete(this.#parties.keys().next().value!);
  }

  /**
   * Voice webhook: connect the call's agent now, keyed by CallSid, so the caller's first
   * turn never waits for a provider handshake. Adopted when the stream's `start` names
   * the same CallSid, agent and options; closed if no stream comes within the
   * pre-connect TTL (BRIDGE_PRECONNECT_TTL_MS) — the stream may have gone to another process.
   */
  prepare(callSid: string, agentName: string, parameters: Record<string, string>, profile?: string): void {
    if (this.#shuttingDown || this.#prepared.has(callSid) || this.#prepared.size >= MAX_PREPARED) {
      this.emit('preconnect', { callSid, outcome: 'refused' });
      return;
    }
    let opened: OpenedAgent;
    try {
      opened = this.#open(agentName, callSid, parameters, profile);
    } catch (e) {
      // The message may quote the call's options (caller data): only under `pii`.
      this.#d.log?.('warn', 'could not pre-connect agent', { callSid, agent: agentName, code: (e as { code?: string }).code ?? null, ...callerDataErr(e) });
      this.emit('preconnect', { callSid, outcome: 'refused' });
      return;
    }
    const entry = { opened: { ...opened, preconnected: true }, parametersKey: paramsKey(agentName, parameters, profile), timer: undefined as unknown as NodeJS.Timeout };
    entry.timer = setTimeout(() => {
      // The very entry stored above: a later prepare() for the same CallSid is another entry.
      if (this.#prepared.get(callSid) !== entry) return;
      this.#prepared.delete(callSid);
      void opened.session.close('stream never started');
      this.emit('preconnect', { callSid, outcome: 'expired' });
    }, this.#d.preconnectTtlMs ?? DEFAULT_PRECONNECT_TTL_MS);
    entry.timer.unref();
    this.#prepared.set(callSid, entry);
  }

  /**
   * The agent and options a stream asks for: its profile's, looked up by name now (a
   * profile named but not loaded here is refused, never replaced), else its `agent`
   * parameter and the other parameters as they came.
   */
  #agentFor(parameters: Record<string, string>): AgentChoice {
    const profileName = parameters[PROFILE_PARAM];
    if (profileName !== undefined) {
      const profile = this.#d.profiles?.byName(profileName);
      if (!profile) {
        throw new BridgeError(ErrorCodes.PROFILE_UNKNOWN, this.#d.profiles ? `profile "${profileName.slice(0, 64)}" is not in the profiles file loaded here` : `the stream names profile "${profileName.slice(0, 64)}" but no profiles file is loaded here (BRIDGE_PROFILES)`);
      }
      return { name: profile.agent, options: profileAgentParameters(profile), profile: profile.name };
    }
    const options: Record<string, string> = {};
    for (const [k, v] of Object.entries(parameters)) if (!NOT_AGENT_OPTIONS.has(k)) options[k] = v;
    return { name: parameters.agent ?? this.#d.config.defaultAgent, options };
  }

  /** The agent a stream's parameters name, for records and metrics (its profile's agent, if that is loaded). */
  #agentNameOf(parameters: Record<string, string>): string {
    const profileName = parameters[PROFILE_PARAM];
    if (profileName !== undefined) return this.#d.profiles?.byName(profileName)?.agent ?? parameters.agent ?? this.#d.config.defaultAgent;
    return parameters.agent ?? this.#d.config.defaultAgent;
  }

  #openAgent = (callSid: string, parameters: Record<string, string>): OpenedAgent => {
    const prepared = this.#prepared.get(callSid);
    let wanted: AgentChoice;
    try {
      wanted = this.#agentFor(parameters);
    } catch (e) {
      if (prepared) {
        this.#prepared.delete(callSid);
        clearTimeout(prepared.timer);
        void prepared.opened.session.close('stream named an unknown profile');
      }
      throw e;
    }
    const { name, options, profile } = wanted;
    if (prepared) {
      this.#prepared.delete(callSid);
      clearTimeout(prepared.timer);
      // The profile as it is now: one reloaded between the webhook and the stream gives the new one.
      if (prepared.parametersKey === paramsKey(name, options, profile)) {
        this.emit('preconnect', { callSid, outcome: 'adopted' });
        return prepared.opened;
      }
      void prepared.opened.session.close('stream asked for another agent');
    }
    this.emit('preconnect', { callSid, outcome: 'missed' });
    return this.#open(name, callSid, options, profile);
  };

  /** From/To of a call: the stream's own parameters (set by the webhook), else what this process's webhook saw. */
  #partiesOf(s: Pick<CallSummary, 'callSid' | 'customParameters'>): { from: string | null; to: string | null } {
    const p = s.customParameters ?? {};
    const local = s.callSid ? this.#parties.get(s.callSid) : undefined;
    return { from: p[IDENTITY_PARAMS.from] ?? local?.from ?? null, to: p[IDENTITY_PARAMS.to] ?? local?.to ?? null };
  }

  /** A session's trace, with what the manager knows: the agent asked for and the webhook's numbers. */
  #traceFor = (info: { callSid: string; streamSid: string; startedAtMs: number; customParameters: Record<string, string> }): CallTrace | undefined =>
    this.#d.traceFor?.({ callSid: info.callSid, streamSid: info.streamSid, startedAtMs: info.startedAtMs, agent: this.#agentNameOf(info.customParameters), ...this.#partiesOf(info) });

  /** Takes ownership of an accepted Media Streams socket. */
  attach(ws: WebSocket): CallSession {
    const session = new CallSession(ws, {
      config: this.#d.config,
      dsp: this.#d.dsp,
      pool: this.#d.pool,
      clock: this.clock,
      openAgent: this.#openAgent,
      admitStart: this.streamTokens ? (m) => {
        const problem = this.streamTokens!.admit(m.customParameters[STREAM_TOKEN_PARAM], m.callSid);
        return problem === undefined ? undefined : `stream-token-${problem}`;
      } : undefined,
      endCallViaRest: this.#d.endCallViaRest,
      transferViaRest: this.#d.transferViaRest,
      onToolResult: this.#d.onToolResult,
      apologizeViaRest: this.#d.apologizeViaRest,
      apologyPrompt: this.#d.apologyPrompt,
      observer: this.#d.observer,
      tapFor: this.#d.tapFor,
      traceFor: this.#d.traceFor ? this.#traceFor : undefined,
      log: this.#d.log,
    });
    this.#sessions.add(session);
    // The Twilio leg's guards (flood, size, send backlog, liveness): src/twilio/stream-guard.ts.
    const guard = new StreamGuard(this.#d.config.maxMessageBytes, FrameClock.now());
    this.#liveness.set(session, { ws, guard });
    if (this.#watchdog === undefined) {
      this.#watchdog = setInterval(this.#checkLiveness, Math.max(50, Math.min(1000, this.#idleMs / 4)));
      this.#watchdog.unref();
    }
    ws.on('pong', () => guard.heard(FrameClock.now()));
    ws.on('message', (data, isBinary) => {
      const a = guard.admit(data, isBinary, FrameClock.now());
      if (a.kind === 'text') session.onText(a.text);
      else if (a.kind === 'binary') session.onBinary();
      else {
        session.reportBadInput(a.code, a.detail);
        if (a.close) void session.close(a.close);
      }
    });
    ws.on('close', () => void session.close('twilio-socket-closed'));
    ws.on('error', (e) => {
      this.#d.log?.('warn', 'Twilio socket error', { callSid: session.callSid, err: e });
      void session.close('twilio-socket-error');
    });
    session.once('started', (m) => {
      this.#started++;
      const early = this.#earlyNotes.get(m.callSid);
      if (early !== undefined) {
        this.#earlyNotes.delete(m.callSid);
        session.noteToAgent(early);
      }
      session.once('closed', () => this.#started--);
      const s = session.summary();
      const agent = this.#agentNameOf(m.customParameters);
      // Emitted before the agent is opened: the agent the stream asks for (the summary has none yet).
      const record: CallRecord = { ...s, agent: s.agent ?? agent, ...this.#partiesOf(s), status: [], recordState: 'in-progress', ...profileOf(m.customParameters) };
      this.emit('callStarted', { callSid: m.callSid, streamSid: m.streamSid, agent, record });
    });
    session.once('closed', () => {
      this.#sessions.delete(session);
      this.#liveness.delete(session);
      if (this.#liveness.size === 0 && this.#watchdog !== undefined) {
        clearInterval(this.#watchdog);
        this.#watchdog = undefined;
      }
      const s = session.summary();
      if (s.callSid) {
        this.#ended.set(s.callSid, s);
        if (this.#ended.size > RECENT_ENDED) this.#ended.delete(this.#ended.keys().next().value!);
        const parties = this.#partiesOf(s);
        this.#parties.delete(s.callSid);
        this.emit('callEnded', { ...s, ...parties, status: this.#status.get(s.callSid) ?? [], recordState: 'completed', ...profileOf(s.customParameters) });
      }
    });
    if (this.#d.greeting) {
      const greeting = this.#d.greeting;
      session.on('state', (next) => {
        if (next !== 'streaming') return;
        const ac = new AbortController();
        session.once('closed', () => ac.abort());
        greeting(anySignal([ac.signal, AbortSignal.timeout(15_000)])).then(
          (audio) => {
            if (audio) session.say(audio, 'greeting');
          },
          (e: unknown) => this.#d.log?.('warn', 'greeting failed', { callSid: session.callSid, err: e }),
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

  /** The live, started calls: each session with its numbers and profile (what its record carries). */
  live(): { session: CallSession; from: string | null; to: string | null; profile: string | null }[] {
    const out = [];
    for (const session of this.#sessions) {
      if (session.callSid === undefined) continue;
      const s = { callSid: session.callSid, customParameters: session.customParameters };
      out.push({ session, ...this.#partiesOf(s), profile: profileOf(s.customParameters).profile ?? null });
    }
    return out;
  }

  session(callSid: string): CallSession | undefined {
    for (const s of this.#sessions) if (s.callSid === callSid) return s;
    return undefined;
  }

  /**
   * Twilio's asynchronous answering-machine detection for an outbound call (`AnsweredBy`):
   * the call's agent is told who answered, as context (no reply is asked for). A result
   * that comes before the call's stream started is kept (bounded) and told at its start.
   * Returns whether the call is on this process (or may still start here).
   */
  answeredBy(callSid: string, answeredBy: string): boolean {
    if (!isSid('CA', callSid)) return false;
    const text = answeredByNote(answeredBy);
    const session = this.session(callSid);
    if (session) {
      session.noteToAgent(text);
      return true;
    }
    this.#earlyNotes.set(callSid, text);
    if (this.#earlyNotes.size > MAX_PREPARED) this.#earlyNotes.delete(this.#earlyNotes.keys().next().value!);
    return false;
  }
  readonly #earlyNotes = new Map<string, string>();

  recordStatus(params: Record<string, string>): void {
    const sid = params.CallSid;
    if (!sid || !isSid('CA', sid)) return;
    // Bounded in bytes too: at most 40 fields of at most 256 characters each.
    const kept: Record<string, string> = {};
    let n = 0;
    for (const [k, v] of Object.entries(params)) {
      if (++n > 40) break;
      kept[k.slice(0, 64)] = v.slice(0, 256);
    }
    const list = this.#status.get(sid) ?? [];
    list.push({ at: new Date().toISOString(), params: kept });
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
