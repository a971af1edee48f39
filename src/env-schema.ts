/**
 * Every environment variable the bridge reads, declared once: type, default, range and
 * the line of documentation the README's table and `.env.example` are generated from
 * (`npm run docs:env`; test/config/env-docs.test.ts fails when they drift).
 *
 * The declarations are JSON Schema built with TypeBox (the schema library of the
 * fastify ecosystem); `readEnv()` is the one reader: the same grammar for every
 * variable of a type, every problem listed, never just the first.
 *
 *   integer   decimal digits with an optional minus sign ("1e3", "0x10", "12.0" are refused)
 *   number    a decimal number ("-40", "0.5")
 *   boolean   1/0, true/false, yes/no, on/off, any case; anything else is an error, never "off"
 *   enum      one of the listed words (case-insensitive where the variable says so)
 *   url       an absolute URL with one of the listed schemes (`protocols`)
 *   string    free text, optionally matched against a pattern
 *
 * Unset and empty (or blank) are the same: the default applies. A module that reads
 * configuration calls readEnv(env, group) and adds only what a schema cannot say
 * (one variable constraining another). src/config.ts runs every module's reader at
 * start, so one start reports every problem and exits 78.
 */
import { Type, type Static, type TLiteral, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';

/** Where a variable belongs: the README groups the table by it, and each module reads its own. */
export type EnvGroup =
  | 'server'
  | 'twilio'
  | 'calls'
  | 'echo'
  | 'dsp'
  | 'logging'
  | 'lifecycle'
  | 'cluster'
  | 'store'
  | 'recording'
  | 'telemetry'
  | 'openai'
  | 'gemini'
  | 'elevenlabs'
  | 'elevenlabs-tts'
  | 'hume'
  | 'pipecat';

export const ENV_GROUP_TITLES: Readonly<Record<EnvGroup, string>> = {
  server: 'Server',
  twilio: 'Twilio',
  calls: 'Calls',
  echo: 'Echo agent',
  dsp: 'DSP',
  logging: 'Logging',
  lifecycle: 'Lifecycle and admission (docs/operations/lifecycle.md)',
  cluster: 'Several processes and instances (docs/operations/scaling.md)',
  store: 'Call records (docs/operations/call-records.md)',
  recording: 'Recording',
  telemetry: 'OpenTelemetry traces (docs/operations/observability.md)',
  openai: 'OpenAI Realtime agent (docs/agents/openai.md)',
  gemini: 'Gemini Live agent (docs/agents/gemini.md)',
  elevenlabs: 'ElevenLabs Agents (docs/agents/elevenlabs.md)',
  'elevenlabs-tts': 'ElevenLabs TTS (docs/agents/elevenlabs-tts.md)',
  hume: 'Hume EVI agent (docs/agents/hume.md)',
  pipecat: 'Pipecat agent (docs/agents/pipecat.md)',
};

/** The keywords of ours on a variable's schema (JSON Schema allows extra keywords). */
interface VarMeta {
  /** The README's table and the problem messages say what a variable is for from this. */
  description: string;
  group: EnvGroup;
  /** The default as the docs say it, when it is computed or not a literal (e.g. "the host name"). */
  defaultDoc?: string;
  /** Never quoted back in a problem; empty in `.env.example`. */
  secret?: boolean;
  /** Set by the bridge itself (the cluster primary for its workers): documented, left out of `.env.example`. */
  internal?: boolean;
  /** What values it takes, as the docs say it, where its type alone does not tell (e.g. "number in (0, 1], or `off`"). */
  valuesDoc?: string;
  /** Replaces the generic "must be …" of a problem. */
  errorMessage?: string;
  /** enum: compare lower-cased. */
  caseInsensitive?: boolean;
  /** enum: other spellings of a value. */
  aliases?: Record<string, string>;
  /** url: the accepted schemes, e.g. ['wss:', 'ws:']. */
  protocols?: string[];
  /** url: no ?query or #fragment. */
  noQuery?: boolean;
}

type Opt<T> = Partial<Omit<VarMeta, 'group'>> & { default?: T };

const integer = (group: EnvGroup, min: number, max: number, def: number | undefined, description: string, o: Opt<number> & { multipleOf?: number } = {}) =>
  Type.Integer({ group, minimum: min, maximum: max, ...(def === undefined ? {} : { default: def }), description, ...o });
const number = (group: EnvGroup, min: number, max: number, def: number, description: string, o: Opt<number> = {}) =>
  Type.Number({ group, minimum: min, maximum: max, default: def, description, ...o });
const boolean = (group: EnvGroup, def: boolean | undefined, description: string, o: Opt<boolean> = {}) =>
  Type.Boolean({ group, ...(def === undefined ? {} : { default: def }), description, ...o });
const oneOf = <const T extends readonly [string, ...string[]]>(group: EnvGroup, values: T, def: T[number] | undefined, description: string, o: Opt<string> = {}) =>
  Type.Union(values.map((v) => Type.Literal(v)) as TLiteral<T[number]>[], { group, ...(def === undefined ? {} : { default: def }), description, ...o });
const text = (group: EnvGroup, def: string | undefined, description: string, o: Opt<string> & { pattern?: string; maxLength?: number } = {}) =>
  Type.String({ group, ...(def === undefined ? {} : { default: def }), description, ...o });
const url = (group: EnvGroup, protocols: string[], def: string | undefined, description: string, o: Opt<string> = {}) =>
  Type.String({ group, protocols, ...(def === undefined ? {} : { default: def }), description, ...o });

/** Optional: no default, reads as undefined when unset. */
const opt = Type.Optional;

// Model and voice names (OpenAI), tool names and ids: shapes, not lists (the lists grow).
const NAME = '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$';

export const EnvSchema = Type.Object({
  // ── server ──────────────────────────────────────────────────────────────
  PORT: integer('server', 0, 65535, 8080, 'HTTP/WebSocket port'),
  HOST: opt(text('server', undefined, 'Listen address. Without signature checks only loopback is allowed unless `BRIDGE_ALLOW_UNSIGNED=1`', { defaultDoc: '`0.0.0.0` with `TWILIO_AUTH_TOKEN`, else `127.0.0.1`' })),
  BRIDGE_ALLOW_UNSIGNED: boolean('server', false, 'On: accept a non-loopback `HOST` without Twilio signature checks (anyone who reaches the port can start calls; warned at start and on `/readyz`)'),
  BRIDGE_PUBLIC_URL: opt(url('server', ['https:', 'http:'], undefined, 'Public base URL Twilio reaches, e.g. `https://bridge.example.com`; used for the `wss://` stream URL and signature checks', { defaultDoc: 'from each request (`X-Forwarded-Proto`/`-Host` honoured)' })),
  BRIDGE_ADMIN_TOKEN: opt(text('server', undefined, 'Bearer token for the admin routes (`POST /calls`, call commands, history)', { secret: true, defaultDoc: 'unset (admin routes off)' })),
  BRIDGE_HTTP_TIMEOUT_MS: integer('lifecycle', 1000, 300_000, 15_000, "Bound on receiving an HTTP request's headers and body; idle keep-alive connections close after 5 s; at shutdown every HTTP connection is closed"),
  BRIDGE_MAX_MESSAGE_BYTES: integer('calls', 1024, 16 * 1024 * 1024, 64 * 1024, 'Largest accepted Twilio message; larger ones are counted and dropped'),

  // ── twilio ──────────────────────────────────────────────────────────────
  TWILIO_ACCOUNT_SID: opt(text('twilio', undefined, 'REST credentials (outbound calls, hang-up)', { pattern: '^AC[0-9a-fA-F]{32}$', errorMessage: 'must be "AC" followed by 32 hex digits', secret: true })),
  TWILIO_AUTH_TOKEN: opt(text('twilio', undefined, 'REST credentials; the token also turns on signature validation', { secret: true })),
  TWILIO_VALIDATE_SIGNATURES: opt(boolean('twilio', undefined, 'Validate `X-Twilio-Signature`. Set `0` only behind a proxy that already validates', { defaultDoc: 'on when the token is set' })),
  TWILIO_FROM_NUMBER: opt(text('twilio', undefined, 'Caller ID for outbound calls (E.164)', { pattern: '^\\+[1-9]\\d{6,14}$', errorMessage: 'must be an E.164 number like +15557654321', secret: true })),
  TWILIO_API_URL: opt(url('twilio', ['https:', 'http:'], undefined, 'REST API base (tests point it at a local fake)', { defaultDoc: '`https://api.twilio.com`' })),

  // ── calls ───────────────────────────────────────────────────────────────
  BRIDGE_AGENT: oneOf('calls', ['echo', 'openai', 'gemini', 'elevenlabs', 'hume', 'pipecat'], 'echo', 'Default agent when the webhook has no `?agent=`'),
  BRIDGE_PLAYOUT_LEAD_MS: integer('calls', 20, 60_000, 2000, 'Ceiling on how far outbound audio may run ahead of real time at Twilio (from 200 on, coalesced messages of ≥ 100 ms; a lead of seconds rides out network stalls)'),
  BRIDGE_PRESTART_BUFFER_MS: integer('calls', 0, 60_000, 5000, 'Caller audio kept while the agent connects'),
  BRIDGE_START_TIMEOUT_MS: integer('calls', 100, 120_000, 10_000, "Longest wait for Twilio's `start`"),
  BRIDGE_AGENT_CONNECT_TIMEOUT_MS: integer('calls', 100, 60_000, 5000, 'Longest wait for the agent to connect'),
  BRIDGE_HANGUP_DRAIN_TIMEOUT_MS: integer('calls', 0, 120_000, 10_000, 'After the agent ends the call, longest wait for its goodbye to be heard'),
  BRIDGE_PRECONNECT_TTL_MS: integer('calls', 500, 600_000, 30_000, 'How long an agent pre-connected at the voice webhook (and its admission reservation) waits for its stream before it is closed'),
  BRIDGE_PROFILES: opt(text('calls', undefined, 'Path to the profiles file (YAML or JSON; docs/profiles.md): each call\'s agent and options come from its profile (`?profile=NAME`, else the called number, else the `"*"` default); reloaded on change and on SIGHUP; a bad file at start exits 78', { defaultDoc: 'unset (no profiles)' })),
  BRIDGE_STREAM_IDLE_MS: integer('calls', 200, 120_000, 5000, 'A started Media Stream with no message for this long is pinged; no pong within as long again → closed (`twilio-inactive`)'),

  // ── echo ────────────────────────────────────────────────────────────────
  BRIDGE_ECHO_VAD_DBFS: number('echo', -90, 0, -40, 'Echo agent / bridge VAD threshold (dBFS)'),
  BRIDGE_ECHO_SILENCE_MS: integer('echo', 100, 10_000, 600, 'Silence that ends an utterance'),
  BRIDGE_ECHO_MAX_UTTERANCE_MS: integer('echo', 1000, 120_000, 15_000, 'Longest utterance the echo agent keeps'),

  // ── dsp ─────────────────────────────────────────────────────────────────
  BRIDGE_DSP: oneOf('dsp', ['auto', 'native', 'ts'], 'auto', '`native`, `ts` or `auto` (native, falling back to ts with the reason recorded)'),
  BRIDGE_DSP_POOL: integer('dsp', 0, 16, 0, "Experimental (see the capacity benchmark): that many worker threads run every call's DSP (same backend), many calls' frames batched per task; `0` keeps it inline on the event loop"),
  BRIDGE_DSP_ADDON: opt(text('dsp', undefined, 'Path to a prebuilt addon (`index.cjs` loader or `.node` file)', { defaultDoc: 'the built addon' })),
  BRIDGE_RESAMPLER_QUALITY: integer('dsp', 0, 10, 7, 'Speex resampler quality for every call'),

  // ── logging ─────────────────────────────────────────────────────────────
  BRIDGE_LOG_LEVEL: oneOf('logging', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], 'info', 'pino level'),
  BRIDGE_LOG_PII: boolean('logging', false, 'On: log `pii` fields in clear (numbers, transcripts, digits, custom parameters); a warning line at start says so. Off: they are redacted. Any other word is a configuration error (exit 78), never silently off'),

  // ── lifecycle ───────────────────────────────────────────────────────────
  BRIDGE_DRAIN_TIMEOUT_MS: integer('lifecycle', 0, 3_600_000, 30_000, 'After SIGTERM/SIGINT, longest wait for active calls to end before the goodbye'),
  BRIDGE_MAX_CALLS: opt(integer('lifecycle', 1, 1_000_000, undefined, 'Most calls in flight per process (active streams + admitted webhooks)', { defaultDoc: 'unlimited' })),
  BRIDGE_LOAD_THRESHOLD: text('lifecycle', '0.7', 'Event-loop utilisation at which new calls are refused; `off` (or `0`, `none`) disables the gate', { valuesDoc: 'number in (0, 1], or `off`' }),
  BRIDGE_LOAD_WINDOW_MS: integer('lifecycle', 200, 60_000, 5000, 'Moving window of the load measurement'),
  BRIDGE_WEBHOOK_RATE_PER_MIN: integer('lifecycle', 0, 1_000_000, 600, 'Voice webhook requests per minute per source; `0` = no limit'),
  BRIDGE_MAX_PENDING_STREAMS: integer('lifecycle', 1, 100_000, 200, 'Media Streams sockets before their `start` (not calls yet, not counted in `BRIDGE_MAX_CALLS`): at most this many in total…'),
  BRIDGE_MAX_PENDING_PER_SOURCE: integer('lifecycle', 1, 100_000, 20, '…and from one source address (429 `BRIDGE_ERR_PENDING_STREAMS` beyond; closed at `BRIDGE_START_TIMEOUT_MS`)'),
  BRIDGE_TRUST_PROXY: text('lifecycle', 'loopback', 'Peers allowed to set `X-Forwarded-For/-Proto/-Host/-Port`: `1` (any), `0` (none), or a comma list of addresses, CIDRs and the keywords `loopback`, `linklocal`, `uniquelocal` (name a proxy on another machine explicitly)', { valuesDoc: 'boolean, or a comma list' }),

  // ── cluster ─────────────────────────────────────────────────────────────
  BRIDGE_WORKERS: text('cluster', '1', 'Like `start --workers N`: that many processes on one port, or `auto` (one per core)', { pattern: '^(auto|[1-9]|[1-9]\\d|1\\d\\d|2[0-4]\\d|25[0-6])$', errorMessage: 'must be an integer from 1 to 256, or "auto"', valuesDoc: 'integer 1–256, or `auto`' }),
  BRIDGE_GC: oneOf('cluster', ['auto', 'parallel', 'single-threaded'], 'auto', "V8's garbage collector: `single-threaded` keeps its helper threads off a CPU the event loop needs (`start` runs the bridge in a child with node's `--single-threaded-gc`; workers get it from their primary); `parallel` is node's default; `auto` picks single-threaded for a process (or worker) with at most one CPU — affinity or cgroup quota"),
  BRIDGE_INSTANCE_ID: opt(text('cluster', undefined, "This instance's name: owner of its call records and its stream routing key. Unique per instance: in Kubernetes the pod name (the default host name), on VMs the host name", { pattern: '^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$', errorMessage: "must be 1–63 letters, digits, '-' or '_', starting with a letter or digit (it is a URL path segment)", defaultDoc: 'the host name (URL-safe)' })),
  BRIDGE_INTERNAL_URL: opt(url('cluster', ['http:', 'https:'], undefined, 'Where other instances reach this one for call commands (`/calls/:sid…` forwarded to the call\'s owner). Set it when the host name does not resolve between instances (e.g. `http://$(POD_IP):8080`)', { defaultDoc: '`http://<bound address>:<port>` (the host name for a wildcard bind)' })),
  BRIDGE_WORKER_SLOT: opt(integer('cluster', 0, 255, undefined, 'Set by the primary of `start --workers N` for each worker (not for operators): its slot, 0…N-1', { internal: true })),
  BRIDGE_CLUSTER_ROUTED: opt(boolean('cluster', undefined, 'Set by the primary for its workers (not for operators): the worker takes connections handed over IPC instead of listening', { internal: true })),
  BRIDGE_CLUSTER_URL: opt(url('cluster', ['http:', 'https:'], undefined, "Set by the primary for its workers (not for operators): its listening address, which the worker reports as its own", { internal: true })),

  // ── store ───────────────────────────────────────────────────────────────
  DATABASE_URL: opt(url('store', ['postgres:', 'postgresql:'], undefined, '`postgres://…` (or `postgresql://…`) → PostgreSQL; unset → SQLite under `BRIDGE_DATA_DIR`', { secret: true, errorMessage: 'must be a postgres://user:password@host:port/database URL (unset it to use SQLite under BRIDGE_DATA_DIR)' })),
  BRIDGE_DATA_DIR: text('store', './data', 'Directory of the SQLite file and the outboxes of call records and call events (created if missing)'),
  BRIDGE_CALL_RECORDS: boolean('store', true, 'Off: record() is a no-op and nothing is created (throwaway test bridges)'),
  BRIDGE_DB_TIMEOUT_MS: integer('store', 100, 120_000, 5000, 'Bound on connecting and on each statement; an attempt past it fails and is retried'),
  BRIDGE_DB_RETRY_MAX_MS: integer('store', 10, 600_000, 30_000, "Ceiling of the writer's exponential backoff"),
  BRIDGE_HEARTBEAT_MS: integer('store', 100, 60_000, 5000, 'Process heartbeat in the call-record database; a process silent for 3 of its intervals is dead and its calls are closed as `interrupted`'),
  BRIDGE_SQLITE_DRIVER: oneOf('store', ['auto', 'better-sqlite3', 'wasm'], 'auto', '`wasm`: use the WASM SQLite driver even when better-sqlite3 is available'),

  // ── recording ───────────────────────────────────────────────────────────
  BRIDGE_RECORD: boolean('recording', false, 'On: record every call (one stereo WAV, caller left, agent right)'),
  BRIDGE_RECORD_DIR: text('recording', './data/recordings', 'Where recordings go (relative to the working directory). Created at start; if it cannot be created or written the bridge does not start (`BRIDGE_ERR_RECORDING_DIR`)', { pattern: '^[^\\u0000]*$', errorMessage: 'contains a NUL byte' }),

  // ── telemetry: the standard OpenTelemetry variables, checked by src/telemetry/config.ts when tracing is on ──
  OTEL_EXPORTER_OTLP_ENDPOINT: opt(text('telemetry', undefined, 'OpenTelemetry traces (a span per call, per turn and per tool call) over OTLP/HTTP to `<url>/v1/traces`; the SDK is loaded only when this (or the next) is set', { defaultDoc: 'unset (no traces)' })),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: opt(text('telemetry', undefined, 'The traces URL itself, used as is (wins over `OTEL_EXPORTER_OTLP_ENDPOINT`)')),
  OTEL_EXPORTER_OTLP_PROTOCOL: opt(text('telemetry', undefined, "OTLP encoding; `grpc` is refused at start (exit 78): point the endpoint at the collector's HTTP port (4318)", { defaultDoc: '`http/protobuf`', valuesDoc: '`http/protobuf`, `http/json`' })),
  OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: opt(text('telemetry', undefined, 'The same, for traces only (wins)')),
  OTEL_EXPORTER_OTLP_HEADERS: opt(text('telemetry', undefined, "Export request headers, `key=value,key2=value2`, values percent-encoded (`Authorization=Bearer%20…`), e.g. a collector's API key", { secret: true })),
  OTEL_EXPORTER_OTLP_TRACES_HEADERS: opt(text('telemetry', undefined, "The same, for traces only; they override the general ones", { secret: true })),
  OTEL_EXPORTER_OTLP_TIMEOUT: opt(text('telemetry', undefined, 'Export request timeout (ms)', { defaultDoc: '`10000`', valuesDoc: 'integer 1–600000' })),
  OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: opt(text('telemetry', undefined, 'The same, for traces only (wins)')),
  OTEL_EXPORTER_OTLP_COMPRESSION: opt(text('telemetry', undefined, 'Export request compression', { defaultDoc: 'none', valuesDoc: '`gzip`, `none`' })),
  OTEL_EXPORTER_OTLP_TRACES_COMPRESSION: opt(text('telemetry', undefined, 'The same, for traces only (wins)')),
  OTEL_SERVICE_NAME: opt(text('telemetry', undefined, "`service.name` of the spans' resource (wins over one in `OTEL_RESOURCE_ATTRIBUTES`)", { defaultDoc: '`voice-bridge`' })),
  OTEL_RESOURCE_ATTRIBUTES: opt(text('telemetry', undefined, "`key=value,…` added to the spans' resource (e.g. `deployment.environment.name=prod,k8s.pod.name=$(POD)`). Malformed: ignored whole, with a warning")),
  OTEL_TRACES_SAMPLER: opt(text('telemetry', undefined, "Which calls are traced: `always_on`, `always_off`, `traceidratio`, `parentbased_always_on`, `parentbased_always_off`, `parentbased_traceidratio`. A call sampled out costs nothing more", { defaultDoc: '`parentbased_always_on`' })),
  OTEL_TRACES_SAMPLER_ARG: opt(text('telemetry', undefined, 'The ratio of the `traceidratio` samplers', { defaultDoc: '`1`', valuesDoc: 'number 0–1' })),
  OTEL_BSP_SCHEDULE_DELAY: opt(text('telemetry', undefined, 'Span batching: delay between exports (ms)', { defaultDoc: '`5000`' })),
  OTEL_BSP_MAX_QUEUE_SIZE: opt(text('telemetry', undefined, "Span batching: queue bound (spans); beyond it spans are dropped, never buffered without bound", { defaultDoc: '`2048`' })),
  OTEL_BSP_MAX_EXPORT_BATCH_SIZE: opt(text('telemetry', undefined, 'Span batching: spans per export', { defaultDoc: '`512`' })),
  OTEL_BSP_EXPORT_TIMEOUT: opt(text('telemetry', undefined, 'Span batching: bound of one export (ms)', { defaultDoc: '`30000`' })),
  OTEL_SDK_DISABLED: opt(text('telemetry', undefined, "`true` turns traces off, whatever else is set", { defaultDoc: '`false`' })),
  OTEL_TRACES_EXPORTER: opt(text('telemetry', undefined, "`none` turns traces off; nothing but `otlp` is supported", { defaultDoc: '`otlp`' })),

  // ── openai ──────────────────────────────────────────────────────────────
  OPENAI_API_KEY: opt(text('openai', undefined, "API key, sent as `Authorization: Bearer`", { secret: true, pattern: '^\\S+$', errorMessage: 'contains whitespace', defaultDoc: 'unset (agent unavailable)' })),
  OPENAI_REALTIME_URL: url('openai', ['wss:', 'ws:'], 'wss://api.openai.com/v1/realtime', "Endpoint (`?model=` is added)"),
  OPENAI_MODEL: text('openai', 'gpt-realtime-2.1', "Realtime model (choosing and pinning one: docs/agents/openai.md, *Models*)", { pattern: NAME, errorMessage: 'not a model name' }),
  OPENAI_VOICE: text('openai', 'alloy', "Output voice (e.g. `marin`, `cedar`)", { pattern: NAME, errorMessage: 'not a voice name' }),
  OPENAI_INSTRUCTIONS: opt(text('openai', undefined, "System instructions", { maxLength: 16_000, errorMessage: 'longer than 16000 characters', secret: true, defaultDoc: 'a short phone-assistant prompt' })),
  OPENAI_TURN_DETECTION: oneOf('openai', ['server_vad', 'semantic_vad'], 'server_vad', "How the service detects the end of the caller's turn", { caseInsensitive: true }),
  OPENAI_TRANSCRIPTION_MODEL: text('openai', 'gpt-4o-mini-transcribe', "Caller transcription model; `none` turns it off", { pattern: NAME, errorMessage: 'not a model name (or "none")' }),
  OPENAI_AUDIO_FORMAT: oneOf('openai', ['pcmu', 'pcm24k'], 'pcmu', "`pcmu` (μ-law passthrough, no DSP) or `pcm24k` (PCM16 24 kHz)", {
    caseInsensitive: true,
    aliases: { ulaw: 'pcmu', g711_ulaw: 'pcmu', 'audio/pcmu': 'pcmu', pcm: 'pcm24k', pcm16: 'pcm24k', 'audio/pcm': 'pcm24k' },
  }),
  OPENAI_SESSION_MAX_MS: integer('openai', 1000, 3_600_000, 3_300_000, "Roll over to a fresh session after this long (55 min; the service caps sessions at 60 min)"),
  OPENAI_ROLLOVER_WAIT_MS: integer('openai', 0, 300_000, 30_000, "Longest wait for a quiet moment before a rollover switches anyway"),
  OPENAI_PING_INTERVAL_MS: integer('openai', 100, 120_000, 5000, "Keepalive ping period; no pong or frame for one period = dead socket"),
  OPENAI_HANDSHAKE_TIMEOUT_MS: integer('openai', 100, 120_000, 10_000, "Bound of upgrade + `session.created` + `session.updated` (reconnects; the first connect is also bounded by `BRIDGE_AGENT_CONNECT_TIMEOUT_MS`)"),
  OPENAI_RECONNECT_ATTEMPTS: integer('openai', 0, 10, 3, "New sessions tried after a transient failure"),

  // ── gemini ──────────────────────────────────────────────────────────────
  GEMINI_API_KEY: opt(text('gemini', undefined, "Gemini API key; sent only in the `x-goog-api-key` header of the WebSocket upgrade (as Google's SDKs do), never in the URL, never logged or put in an error message", { secret: true, pattern: '^\\S+$', errorMessage: 'must not contain whitespace', defaultDoc: 'unset (agent unavailable)' })),
  GEMINI_LIVE_URL: url('gemini', ['wss:', 'ws:'], 'wss://generativelanguage.googleapis.com/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent', "Endpoint (must not contain the key). `ws://` is accepted for local fakes", { defaultDoc: 'the Gemini API Live endpoint' }),
  GEMINI_MODEL: text('gemini', 'gemini-3.8-live', "Live model (with or without `models/`); choosing another: docs/agents/gemini.md, *Choosing a model*", { pattern: '^(models/)?[a-z0-9][a-z0-9.-]{0,127}$', errorMessage: 'not a model name (e.g. gemini-3.8-live)' }),
  GEMINI_VOICE: text('gemini', 'Puck', "Prebuilt voice (Puck, Charon, Kore, Fenrir, Aoede, …)", { pattern: '^[A-Za-z][A-Za-z-]{0,39}$', errorMessage: 'not a prebuilt voice name (e.g. Puck, Charon, Kore)' }),
  GEMINI_INSTRUCTIONS: opt(text('gemini', undefined, "System instruction (≤ 20 000 characters)", { maxLength: 20_000, errorMessage: 'longer than 20000 characters', secret: true, defaultDoc: 'a short phone-agent prompt' })),
  GEMINI_CONNECT_TIMEOUT_MS: integer('gemini', 100, 60_000, 5000, "Bound of one connection: upgrade + `setup` → `setupComplete` (also each reconnect attempt)"),
  GEMINI_PING_INTERVAL_MS: integer('gemini', 50, 300_000, 15_000, "WebSocket ping period (Gemini has no application-level ping)"),
  GEMINI_IDLE_TIMEOUT_MS: integer('gemini', 200, 600_000, 60_000, "Nothing received (no message, no pong) for this long → the connection is treated as dead and the session resumes on a new one. Generous on purpose: Gemini pongs have taken 8–30 s"),
  GEMINI_RESUME_BUFFER_MS: integer('gemini', 0, 60_000, 10_000, "Caller audio kept while reconnecting; beyond it the oldest is dropped (counted, reported once)"),
  GEMINI_MAX_RECONNECTS: integer('gemini', 0, 20, 3, "Failed reconnect attempts in a row before the call fails (backoff 0, 250, 500 … 2000 ms). `0` disables reconnecting"),
  GEMINI_INTERRUPT_NOTE: boolean('gemini', true, "On barge-in, tell the model in a short context note how much of its reply the caller actually heard (`0`: send nothing)"),

  // ── elevenlabs agents ───────────────────────────────────────────────────
  ELEVENLABS_AGENT_ID: opt(text('elevenlabs', undefined, "The agent to talk to (`agent_…`). Unset → the `elevenlabs` agent is unavailable", { pattern: '^[A-Za-z0-9_-]{1,128}$', errorMessage: 'must be an agent id such as agent_01j… (letters, digits, _ and -)', secret: true })),
  ELEVENLABS_API_KEY: opt(text('elevenlabs', undefined, "API key, sent only as the `xi-api-key` header. Agents: set for a **private** agent (authentication enabled): a signed URL is fetched first (≤ 5 s); unset → public agent, `?agent_id=…`. TTS: needed, with `ELEVENLABS_VOICE_ID`", { secret: true, pattern: '^[^\\s\\x00-\\x1f]+$', errorMessage: 'must not contain spaces or control characters' })),
  ELEVENLABS_CONVAI_URL: url('elevenlabs', ['wss:', 'ws:'], 'wss://api.elevenlabs.io/v1/convai/conversation', "Conversation WebSocket (e.g. a regional endpoint `wss://api.us.elevenlabs.io/…`)", { noQuery: true }),
  ELEVENLABS_API_URL: url('elevenlabs', ['https:', 'http:'], 'https://api.elevenlabs.io', "REST base for `GET /v1/convai/conversation/get-signed-url`", { noQuery: true }),
  ELEVENLABS_AUDIO_FORMAT: oneOf('elevenlabs', ['ulaw_8000', 'pcm_8000', 'pcm_16000', 'pcm_22050', 'pcm_24000', 'pcm_44100', 'pcm_48000'], 'ulaw_8000', "The format the agent is expected to use both ways: `ulaw_8000` (passthrough) or `pcm_16000` (also `pcm_8000/22050/24000/44100/48000`). If the agent announces something else, its announced raw format is used and a `BRIDGE_ERR_AGENT_AUDIO_FORMAT` warning is logged"),
  ELEVENLABS_IDLE_TIMEOUT_MS: integer('elevenlabs', 1000, 300_000, 15_000, "No data at all from the service (messages, pings, WebSocket pongs) for this long ends the call with `BRIDGE_ERR_AGENT_TIMEOUT`. The bridge pings every third of it"),
  ELEVENLABS_RESPONSE_GAP_MS: integer('elevenlabs', 50, 10_000, 400, "Silence after a reply's last audio (its text already received) that marks the reply as finished; 4× this when no text came"),
  ELEVENLABS_DTMF_MODE: oneOf('elevenlabs', ['user_message', 'contextual_update', 'off'], 'user_message', "How keypad presses reach the agent: `user_message` (the agent answers), `contextual_update` (context only), `off`"),
  ELEVENLABS_REPORT_HEARD: boolean('elevenlabs', true, "On barge-in, tell the agent (a `contextual_update`) how many ms of its reply the caller heard — and which words, when the service sends alignment"),
  ELEVENLABS_END_CALL_TOOLS: text('elevenlabs', 'end_call', "Comma-separated client-tool names that hang up the call", { pattern: '^\\s*[A-Za-z0-9_-]{1,64}\\s*(,\\s*([A-Za-z0-9_-]{1,64})?\\s*)*$', errorMessage: 'must be a comma-separated list of tool names' }),

  // ── elevenlabs tts ──────────────────────────────────────────────────────
  ELEVENLABS_VOICE_ID: opt(text('elevenlabs-tts', undefined, "Voice to speak with (a voice id from your ElevenLabs voice library). No default: the protocol reference names none, and premade voices change", { pattern: '^[A-Za-z0-9_-]{1,64}$', errorMessage: "must be 1–64 letters, digits, '_' or '-'" })),
  ELEVENLABS_TTS_URL: url('elevenlabs-tts', ['ws:', 'wss:'], 'wss://api.elevenlabs.io', "Service base URL (`ws://` or `wss://`)", { noQuery: true }),
  ELEVENLABS_TTS_MODEL: text('elevenlabs-tts', 'eleven_flash_v2_5', "`model_id`. Flash v2.5 is ElevenLabs' lowest-latency multilingual model. `eleven_v3` is reported not to work on this WebSocket (not confirmed)", { pattern: '^[A-Za-z0-9_.-]{1,64}$', errorMessage: "must be 1–64 letters, digits, '_', '.' or '-'" }),
  ELEVENLABS_TTS_CACHE_ENTRIES: integer('elevenlabs-tts', 0, 1_000_000, 256, "Cache bound: number of utterances (0 turns the cache off)"),
  ELEVENLABS_TTS_CACHE_MB: integer('elevenlabs-tts', 0, 65_536, 32, "Cache bound: MiB of audio plus keys (0 turns the cache off)"),
  ELEVENLABS_TTS_TIMEOUT_MS: integer('elevenlabs-tts', 1000, 600_000, 30_000, "Longest time one synthesis may take. `BRIDGE_AGENT_CONNECT_TIMEOUT_MS` limits the handshake"),
  ELEVENLABS_GREETING: opt(text('elevenlabs-tts', undefined, "Text spoken when a call starts. Needs the key and a voice id", { secret: true })),

  // ── hume ────────────────────────────────────────────────────────────────
  HUME_API_KEY: opt(text('hume', undefined, "API key; sent as the `X-Hume-Api-Key` header and the `api_key` query parameter (EVI accepts either). The agent is unavailable without it. Never logged", { secret: true })),
  HUME_EVI_URL: url('hume', ['ws:', 'wss:'], 'wss://api.hume.ai/v0/evi/chat', "Chat WebSocket URL (`ws://` or `wss://`); must not contain `api_key`"),
  HUME_CONFIG_ID: opt(text('hume', undefined, "EVI config (voice, prompt, timeouts, tools) to use; the account default when unset", { pattern: '^[A-Za-z0-9_-]{1,128}$', errorMessage: 'must be an id (letters, digits, - and _)' })),
  HUME_INPUT_RATE: integer('hume', 8000, 48_000, 16_000, "Rate (Hz) of the PCM16 we stream; declared to EVI as `linear16`"),
  HUME_OUTPUT_RATE: integer('hume', 8000, 48_000, 24_000, "Rate (Hz) the call's outbound path opens at; chunks at another rate retune it (docs/agents/hume.md says when to change it)"),
  HUME_KEEPALIVE_MS: integer('hume', 500, 60_000, 5000, "WebSocket ping interval; a socket silent for two intervals is treated as dead and resumed"),
  HUME_RESUME_ATTEMPTS: integer('hume', 0, 10, 3, "Reconnects by `chat_group_id` after an unexpected close (0 = none; the first at once, then after 250, 500, 1000 … ms, at most 2 s apart; each dial bounded by `BRIDGE_AGENT_CONNECT_TIMEOUT_MS`)"),

  // ── pipecat ─────────────────────────────────────────────────────────────
  PIPECAT_URL: opt(url('pipecat', ['ws:', 'wss:'], undefined, "`ws://` or `wss://` URL of the bot's WebSocket, e.g. `ws://127.0.0.1:8765`", { defaultDoc: 'unset (agent unavailable)' })),
  PIPECAT_AUTH_TOKEN: opt(text('pipecat', undefined, "Sent as `Authorization: Bearer …` on the upgrade (for a proxy or your own check; Pipecat has no token check of its own). Printable ASCII, no spaces. Never logged, never in an error message", { secret: true, pattern: '^[\\x21-\\x7e]+$', errorMessage: 'must be printable ASCII without spaces (a header value)' })),
  PIPECAT_ORIGIN: opt(text('pipecat', undefined, "Sent as the `Origin` header of the upgrade, e.g. `https://bridge.example.com` (scheme, host, optional port; no path). Needed when the bot's transport checks origins (`PIPECAT_ALLOWED_ORIGINS` or `allowed_origins`): it refuses a connection without an allowed Origin with HTTP 403, which the bridge reports as `BRIDGE_ERR_AGENT_AUTH` naming this variable")),
  PIPECAT_SAMPLE_RATE: integer('pipecat', 8000, 48_000, 16_000, "Rate of the caller audio we send. Match the pipeline's `audio_in_sample_rate`", { multipleOf: 50, errorMessage: 'must be an integer from 8000 to 48000 Hz divisible by 50 (whole 20 ms frames)' }),
  PIPECAT_OUTPUT_SAMPLE_RATE: opt(integer('pipecat', 8000, 48_000, undefined, "Rate the call's outbound path opens at for the bot's audio; frames at another rate retune it. Pipecat's default `audio_out_sample_rate` is 24000: set `24000` and the path never changes rate", { multipleOf: 50, errorMessage: 'must be an integer from 8000 to 48000 Hz divisible by 50 (whole 20 ms frames)', defaultDoc: '= `PIPECAT_SAMPLE_RATE`' })),
  PIPECAT_CONNECT_TIMEOUT_MS: integer('pipecat', 100, 60_000, 5000, "Bound of the WebSocket handshake"),
  PIPECAT_RESPONSE_GAP_MS: integer('pipecat', 40, 10_000, 350, "No bot audio for this long ends a response"),
  PIPECAT_PING_INTERVAL_MS: integer('pipecat', 100, 120_000, 5000, "WebSocket ping interval; a server silent (no pong, no frame) for a whole interval is dead"),
  PIPECAT_RECONNECT: boolean('pipecat', true, "One reconnect, to a new bot session, after an abnormal close mid-call. `0` to hang up instead"),
});

/** The typed values of every variable: the default where unset (or invalid), undefined where there is none. */
export type EnvValues = Static<typeof EnvSchema>;
export type EnvName = keyof EnvValues;
export type RawEnv = Readonly<Record<string, string | undefined>>;

type VarSchema = TSchema & VarMeta & Record<string, unknown>;

export const ENV_NAMES = Object.keys(EnvSchema.properties) as EnvName[];

/** The declaration of one variable. */
export function envVar(name: EnvName): VarSchema {
  return EnvSchema.properties[name] as unknown as VarSchema;
}

/** The names of a group's variables, in declaration order. */
export function envGroup(...groups: EnvGroup[]): EnvName[] {
  return ENV_NAMES.filter((n) => groups.includes(envVar(n).group));
}

/** A raw value as the bridge sees it: trimmed; empty or blank means unset. */
export function rawValue(env: RawEnv, name: string): string | undefined {
  const v = env[name]?.trim();
  return v === undefined || v === '' ? undefined : v;
}

const TRUE = new Set(['1', 'true', 'yes', 'on']);
const FALSE = new Set(['0', 'false', 'no', 'off']);
export const BOOLEAN_WORDS = '1/0, true/false, yes/no or on/off';

/** The one boolean grammar (case-insensitive); undefined when the text is none of the words. */
export function parseBoolean(text: string): boolean | undefined {
  const v = text.trim().toLowerCase();
  return TRUE.has(v) ? true : FALSE.has(v) ? false : undefined;
}

/** The one integer grammar: decimal digits with an optional minus sign. */
export function parseInteger(text: string): number | undefined {
  return /^-?\d+$/.test(text.trim()) ? Number(text.trim()) : undefined;
}

function parseNumber(text: string): number | undefined {
  return /^[-+]?(\d+\.?\d*|\.\d+)$/.test(text) ? Number(text) : undefined;
}

function enumValues(s: VarSchema): string[] {
  return ((s as unknown as { anyOf: { const: string }[] }).anyOf ?? []).map((x) => x.const);
}

/** The generic "must be …" of a variable, from its declaration. */
export function expectation(name: EnvName): string {
  const s = envVar(name);
  if (s.errorMessage) return s.errorMessage;
  const min = s['minimum'] as number | undefined;
  const max = s['maximum'] as number | undefined;
  switch (s.type) {
    case 'integer':
      return `must be an integer from ${min} to ${max}`;
    case 'number':
      return `must be a number from ${min} to ${max}`;
    case 'boolean':
      return `must be ${BOOLEAN_WORDS}`;
    case 'string':
      if (s.protocols) return `must be an absolute ${(s.protocols ?? []).map((p) => `${p}//`).join(' or ')} URL${s.noQuery ? ' without a query' : ''}`;
      return s['pattern'] ? `must match ${s['pattern'] as string}` : 'must be text';
    default:
      return `must be one of ${enumValues(s).join(', ')}`;
  }
}

/** Parses one variable's text by its declaration; undefined when it does not fit. */
function convert(s: VarSchema, text: string): unknown {
  switch (s.type) {
    case 'integer':
      return parseInteger(text);
    case 'number':
      return parseNumber(text);
    case 'boolean':
      return parseBoolean(text);
    case 'string':
      if (s.protocols) {
        try {
          const u = new URL(text);
          if (!(s.protocols ?? []).includes(u.protocol)) return undefined;
          if (s.noQuery && (u.search !== '' || u.hash !== '')) return undefined;
          if ((u.protocol === 'postgres:' || u.protocol === 'postgresql:') && !u.hostname && !u.searchParams.get('host')) return undefined;
        } catch {
          return undefined;
        }
      }
      return text;
    default: {
      // An enum (a union of literals).
      const key = s.caseInsensitive ? text.toLowerCase() : text;
      const v = s.aliases?.[key] ?? key;
      return enumValues(s).includes(v) ? v : undefined;
    }
  }
}

export interface EnvReading {
  /** Every variable's value (the default where unset or invalid). */
  readonly values: EnvValues;
  /** One line per bad variable of the groups read, in declaration order. */
  readonly problems: string[];
}

/**
 * Reads the environment by the schema: every variable's value, and a problem for each
 * bad one among `groups` (all groups when none are given). The one reader every module
 * uses: one grammar per type, one message per kind of mistake.
 */
export function readEnv(env: RawEnv, ...groups: EnvGroup[]): EnvReading {
  const values: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const name of ENV_NAMES) {
    const s = envVar(name);
    const text = rawValue(env, name);
    const fallback = s.default === undefined ? undefined : Value.Clone(s.default);
    if (text === undefined) {
      values[name] = fallback;
      continue;
    }
    const v = convert(s, text);
    // Ranges, patterns, lengths and multiples are the schema's own keywords.
    const ok = v !== undefined && Value.Check(s, v);
    values[name] = ok ? v : fallback;
    if (!ok && (groups.length === 0 || groups.includes(s.group))) {
      problems.push(s.secret ? `${name}: ${expectation(name)}` : `${name}=${JSON.stringify(text)}: ${expectation(name)}`);
    }
  }
  return { values: values as EnvValues, problems };
}

/** A variable's declared default, typed (for modules that show or reuse it). */
export function envDefault<N extends EnvName>(name: N): Exclude<EnvValues[N], undefined> {
  const d = envVar(name).default;
  if (d === undefined) throw new Error(`${name} has no default`);
  return d as Exclude<EnvValues[N], undefined>;
}
