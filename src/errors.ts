/**
 * The one table of stable error codes. Every code the bridge emits — in a thrown
 * error, a log line, an end reason or an HTTP problem body — is declared here once,
 * with its HTTP status where it has one, a category that says whether retrying can
 * help, a one-line meaning and how to fix it. Other modules import their codes from
 * `ErrorCodes`; docs/errors.md is generated from this table (`npx tsx
 * scripts/error-docs.ts --write`) and test/errors.test.ts fails when either drifts.
 *
 * Keys are the code without its `BRIDGE_ERR_` prefix. A code never changes once
 * released: outside checks (alerts, dashboards, scripts) match on it.
 */
export type ErrorCategory = 'invalid-input' | 'state' | 'unavailable' | 'internal';

export interface ErrorSpec {
  readonly code: string;
  /** The HTTP status the bridge answers with this code, where it has one. */
  readonly status?: number;
  readonly category: ErrorCategory;
  /** The part of the bridge that emits it (a heading in docs/errors.md). */
  readonly area: string;
  /** One line: what happened. Also the `title` of an HTTP problem body. */
  readonly meaning: string;
  /** What the operator can do about it ('—' when nothing: a peer's bug, counted and survived). */
  readonly fix: string;
}

export const ERROR_TABLE = {
  // DSP core (src/dsp, native/dsp-node: the addon throws "BRIDGE_ERR_X: text").
  DSP_RATE: { code: 'BRIDGE_ERR_DSP_RATE', category: 'invalid-input', area: 'DSP', meaning: 'A sample rate that is not an integer from 1000 to 192000 Hz.', fix: 'Use a supported rate.' },
  DSP_QUALITY: { code: 'BRIDGE_ERR_DSP_QUALITY', category: 'invalid-input', area: 'DSP', meaning: 'A resampler quality that is not an integer from 0 to 10.', fix: 'Use 0–10 (7 is the default).' },
  DSP_DST_TOO_SMALL: { code: 'BRIDGE_ERR_DSP_DST_TOO_SMALL', category: 'invalid-input', area: 'DSP', meaning: 'A caller-supplied destination buffer cannot hold the output; nothing was consumed.', fix: 'Size it with `maxOutput()` / `maxOutputBytes()` / `maxFrameOutput`.' },
  DSP_FRAME_SIZE: { code: 'BRIDGE_ERR_DSP_FRAME_SIZE', category: 'invalid-input', area: 'DSP', meaning: 'A frame, payload or byte length of the wrong size (odd PCM byte length, a G.711 frame that is not 160 bytes).', fix: 'Send whole 20 ms frames.' },
  DSP_ARGUMENT: { code: 'BRIDGE_ERR_DSP_ARGUMENT', category: 'invalid-input', area: 'DSP', meaning: 'Any other invalid DSP argument (wrong typed-array type, bad option).', fix: 'Pass `Int16Array` PCM / `Uint8Array` G.711.' },
  DSP_CLOSED: { code: 'BRIDGE_ERR_DSP_CLOSED', category: 'state', area: 'DSP', meaning: 'A resampler, jitter buffer or pipeline used after `close()`.', fix: 'Create a new one.' },
  DSP_UNAVAILABLE: { code: 'BRIDGE_ERR_DSP_UNAVAILABLE', category: 'unavailable', area: 'DSP', meaning: 'The requested DSP backend could not be loaded (`BRIDGE_DSP=native` without a working addon).', fix: 'Install cargo and run `npm run build:native`, or use `BRIDGE_DSP=auto`.' },

  // Configuration.
  CONFIG: { code: 'BRIDGE_ERR_CONFIG', category: 'invalid-input', area: 'Configuration', meaning: 'Invalid environment configuration (every problem is listed at once; exit 78).', fix: 'Fix the listed variables.' },
  PROFILES: { code: 'BRIDGE_ERR_PROFILES', category: 'invalid-input', area: 'Configuration', meaning: 'A profiles file (`BRIDGE_PROFILES`, `voice-bridge profiles check`) that cannot be read or is invalid (every problem is listed at once with its path; exit 78).', fix: 'Fix the listed entries; docs/profiles.md describes the format.' },
  PROFILE_UNKNOWN: { code: 'BRIDGE_ERR_PROFILE_UNKNOWN', status: 400, category: 'invalid-input', area: 'Configuration', meaning: 'The profile named (`?profile=NAME` on the voice webhook, or a stream\'s `profile` parameter) is not in the profiles file now loaded (or no `BRIDGE_PROFILES` is set); never replaced by another profile — a caller hears a polite refusal.', fix: 'Fix the name in the webhook URL, or add the profile; `voice-bridge profiles check` lists the names.' },

  // AI agents (src/agents).
  AGENT_UNKNOWN: { code: 'BRIDGE_ERR_AGENT_UNKNOWN', status: 400, category: 'invalid-input', area: 'Agents', meaning: 'The agent named (`?agent=`, `POST /calls`) does not exist or is not available; a caller hears a polite refusal.', fix: 'Use one of the agents listed on `/readyz`.' },
  AGENT_CONFIG: { code: 'BRIDGE_ERR_AGENT_CONFIG', category: 'invalid-input', area: 'Agents', meaning: 'A bad agent option on the webhook or in the environment, or an agent that is not configured.', fix: "Set the agent's variables; see its page under docs/agents/." },
  AGENT_CONNECT: { code: 'BRIDGE_ERR_AGENT_CONNECT', category: 'unavailable', area: 'Agents', meaning: "The agent's service could not be reached or refused the connection.", fix: 'Check the service and the network; retried where the protocol resumes.' },
  AGENT_AUTH: { code: 'BRIDGE_ERR_AGENT_AUTH', category: 'invalid-input', area: 'Agents', meaning: 'The service rejected our credentials (401/403, close 1008, an auth error event).', fix: "Check the agent's API key." },
  AGENT_TIMEOUT: { code: 'BRIDGE_ERR_AGENT_TIMEOUT', category: 'unavailable', area: 'Agents', meaning: 'A bounded wait on the service ran out (connect, handshake, a socket that stopped answering).', fix: 'Check the service; raise `BRIDGE_AGENT_CONNECT_TIMEOUT_MS`.' },
  AGENT_PROTOCOL: { code: 'BRIDGE_ERR_AGENT_PROTOCOL', category: 'invalid-input', area: 'Agents', meaning: 'A malformed, unknown or out-of-order message from the service (counted; the call goes on when it can).', fix: '— (service bug or version drift)' },
  AGENT_AUDIO_FORMAT: { code: 'BRIDGE_ERR_AGENT_AUDIO_FORMAT', category: 'invalid-input', area: 'Agents', meaning: 'Audio from the service in a format or rate we did not ask for, or undecodable (never played to the caller).', fix: "Check the agent's audio settings." },
  AGENT_SERVICE: { code: 'BRIDGE_ERR_AGENT_SERVICE', category: 'unavailable', area: 'Agents', meaning: 'The service reported an error of its own (an `error` event, close 1011…).', fix: "See the service's status page." },
  AGENT_CLOSED: { code: 'BRIDGE_ERR_AGENT_CLOSED', category: 'unavailable', area: 'Agents', meaning: 'The service closed the session for good mid-call.', fix: "See the service's status page and session limits." },
  AGENT_RATE_LIMIT: { code: 'BRIDGE_ERR_AGENT_RATE_LIMIT', category: 'unavailable', area: 'Agents', meaning: 'The service throttled us (429, quota or resource exhausted).', fix: "Check the account's quotas." },

  // Twilio Media Streams input (src/twilio/messages.ts): counted, never fatal to the call.
  TWILIO_JSON: { code: 'BRIDGE_ERR_TWILIO_JSON', category: 'invalid-input', area: 'Twilio Media Streams input', meaning: 'A Twilio message that is not JSON (counted, dropped; the call goes on).', fix: '— (sender bug)' },
  TWILIO_UNKNOWN_EVENT: { code: 'BRIDGE_ERR_TWILIO_UNKNOWN_EVENT', category: 'invalid-input', area: 'Twilio Media Streams input', meaning: 'A message with an unknown `event` (counted, dropped).', fix: '—' },
  TWILIO_INVALID_MESSAGE: { code: 'BRIDGE_ERR_TWILIO_INVALID_MESSAGE', category: 'invalid-input', area: 'Twilio Media Streams input', meaning: 'A known event with missing or malformed fields.', fix: '—' },
  TWILIO_BINARY_FRAME: { code: 'BRIDGE_ERR_TWILIO_BINARY_FRAME', category: 'invalid-input', area: 'Twilio Media Streams input', meaning: 'A binary WebSocket frame (Twilio sends text only).', fix: '—' },
  TWILIO_MESSAGE_TOO_LARGE: { code: 'BRIDGE_ERR_TWILIO_MESSAGE_TOO_LARGE', category: 'invalid-input', area: 'Twilio Media Streams input', meaning: 'A message over `BRIDGE_MAX_MESSAGE_BYTES` (dropped).', fix: '—' },
  TWILIO_PAYLOAD: { code: 'BRIDGE_ERR_TWILIO_PAYLOAD', category: 'invalid-input', area: 'Twilio Media Streams input', meaning: '`media.payload` that is not base64 of 160 bytes.', fix: '—' },
  TWILIO_STREAM_SID: { code: 'BRIDGE_ERR_TWILIO_STREAM_SID', category: 'invalid-input', area: 'Twilio Media Streams input', meaning: "A missing `streamSid`, or one that is not this call's.", fix: '—' },
  TWILIO_MEDIA_BEFORE_START: { code: 'BRIDGE_ERR_TWILIO_MEDIA_BEFORE_START', category: 'state', area: 'Twilio Media Streams input', meaning: '`media` before `start` (kept, bounded, until `start`).', fix: '—' },
  TWILIO_FLOOD: { code: 'BRIDGE_ERR_TWILIO_FLOOD', category: 'invalid-input', area: 'Twilio Media Streams input', meaning: "Messages far above Twilio's 50 a second per call (the excess is dropped).", fix: '—' },

  // Twilio webhooks and REST API.
  TWILIO_SIGNATURE: { code: 'BRIDGE_ERR_TWILIO_SIGNATURE', status: 403, category: 'invalid-input', area: 'Twilio webhooks and REST', meaning: 'A missing or wrong `X-Twilio-Signature` on a webhook or the Media Streams upgrade.', fix: 'Check `TWILIO_AUTH_TOKEN` and `BRIDGE_PUBLIC_URL` (it must match the URL Twilio calls).' },
  TWILIO_NOT_CONFIGURED: { code: 'BRIDGE_ERR_TWILIO_NOT_CONFIGURED', status: 503, category: 'invalid-input', area: 'Twilio webhooks and REST', meaning: '`POST /calls` without Twilio credentials or a caller ID.', fix: 'Set `TWILIO_ACCOUNT_SID`, `TWILIO_AUTH_TOKEN` and `TWILIO_FROM_NUMBER`.' },
  TWILIO_REST: { code: 'BRIDGE_ERR_TWILIO_REST', status: 502, category: 'unavailable', area: 'Twilio webhooks and REST', meaning: "Twilio's REST API answered with an error (4xx other than auth/not-found, or 5xx); `twilioCode` has Twilio's number.", fix: "Look up Twilio's error code." },
  TWILIO_AUTH: { code: 'BRIDGE_ERR_TWILIO_AUTH', status: 502, category: 'invalid-input', area: 'Twilio webhooks and REST', meaning: 'The REST API refused our credentials (401/403, Twilio code 20003).', fix: 'Check `TWILIO_ACCOUNT_SID` / `TWILIO_AUTH_TOKEN` (or the API key).' },
  TWILIO_NOT_FOUND: { code: 'BRIDGE_ERR_TWILIO_NOT_FOUND', status: 502, category: 'invalid-input', area: 'Twilio webhooks and REST', meaning: 'The REST API answered 404 for something other than an already-ended call (e.g. a wrong account SID).', fix: 'Check the account SID and the call SID.' },
  TWILIO_TIMEOUT: { code: 'BRIDGE_ERR_TWILIO_TIMEOUT', status: 502, category: 'unavailable', area: 'Twilio webhooks and REST', meaning: 'The REST API did not answer in time.', fix: "Check Twilio's status and the network; `TWILIO_API_URL`." },
  TWILIO_NETWORK: { code: 'BRIDGE_ERR_TWILIO_NETWORK', status: 502, category: 'unavailable', area: 'Twilio webhooks and REST', meaning: 'The REST API could not be reached (refused, DNS, TLS) or the request was aborted.', fix: 'Check the network and `TWILIO_API_URL`.' },
  TWILIO_BAD_RESPONSE: { code: 'BRIDGE_ERR_TWILIO_BAD_RESPONSE', status: 502, category: 'unavailable', area: 'Twilio webhooks and REST', meaning: 'A REST reply that is not the JSON Twilio sends.', fix: 'Check `TWILIO_API_URL` (a proxy answering in its place?).' },
  WEBHOOK_OPTION_TOO_LONG: { code: 'BRIDGE_ERR_WEBHOOK_OPTION_TOO_LONG', status: 400, category: 'invalid-input', area: 'Twilio webhooks and REST', meaning: 'An agent option in the voice webhook\'s query string over 500 characters: refused (answered with this 400), never dropped or cut.', fix: 'Put long options (instructions, prompts) in a profile (`BRIDGE_PROFILES`, docs/profiles.md) and name it with `?profile=NAME` or by the called number.' },
  TWILIO_ARGUMENT: { code: 'BRIDGE_ERR_TWILIO_ARGUMENT', status: 502, category: 'invalid-input', area: 'Twilio webhooks and REST', meaning: 'Our own argument check of a REST request failed before anything was sent.', fix: 'See the detail.' },

  // Admission and lifecycle (src/lifecycle).
  DRAINING: { code: 'BRIDGE_ERR_DRAINING', status: 503, category: 'unavailable', area: 'Admission', meaning: 'The bridge is shutting down and takes no new calls (a refused stream upgrade, `/readyz`).', fix: '— (route to another instance)' },
  AT_CAPACITY: { code: 'BRIDGE_ERR_AT_CAPACITY', status: 503, category: 'unavailable', area: 'Admission', meaning: '`BRIDGE_MAX_CALLS` calls are in flight.', fix: 'Add instances or raise the limit.' },
  OVERLOADED: { code: 'BRIDGE_ERR_OVERLOADED', status: 503, category: 'unavailable', area: 'Admission', meaning: 'The load gate is tripped: event-loop utilisation over `BRIDGE_LOAD_THRESHOLD` (refusals, `/readyz`).', fix: 'Add instances or workers; check what keeps the loop busy.' },
  PENDING_STREAMS: { code: 'BRIDGE_ERR_PENDING_STREAMS', status: 429, category: 'unavailable', area: 'Admission', meaning: 'Too many Media Streams sockets waiting for their `start`, in total or from one source.', fix: 'Check the source; raise `BRIDGE_MAX_PENDING_STREAMS` / `BRIDGE_MAX_PENDING_STREAMS_PER_SOURCE`.' },
  RATE_LIMITED: { code: 'BRIDGE_ERR_RATE_LIMITED', status: 429, category: 'unavailable', area: 'Admission', meaning: 'Too many voice webhooks from one source (with `Retry-After`).', fix: 'Check the source; raise `BRIDGE_WEBHOOK_RATE_PER_MIN`; set `BRIDGE_TRUST_PROXY` to your proxy.' },

  // The HTTP surface (src/server).
  BAD_REQUEST: { code: 'BRIDGE_ERR_BAD_REQUEST', status: 400, category: 'invalid-input', area: 'HTTP', meaning: "A malformed request: its params, query string or body do not match the route's schema.", fix: 'See the detail.' },
  NOT_FOUND: { code: 'BRIDGE_ERR_NOT_FOUND', status: 404, category: 'invalid-input', area: 'HTTP', meaning: 'No route for this method and path.', fix: 'See the routes in the README.' },
  BODY_TOO_LARGE: { code: 'BRIDGE_ERR_BODY_TOO_LARGE', status: 413, category: 'invalid-input', area: 'HTTP', meaning: 'A request body over 64 KiB.', fix: '—' },
  UNSUPPORTED_MEDIA_TYPE: { code: 'BRIDGE_ERR_UNSUPPORTED_MEDIA_TYPE', status: 415, category: 'invalid-input', area: 'HTTP', meaning: 'A body of a content type the bridge does not read (it reads JSON and form-encoded bodies).', fix: 'Send `application/json`.' },
  INTERNAL: { code: 'BRIDGE_ERR_INTERNAL', status: 500, category: 'internal', area: 'HTTP', meaning: 'An unexpected failure while answering a request (logged with its stack).', fix: 'Report it with the log line.' },
  ADMIN_DISABLED: { code: 'BRIDGE_ERR_ADMIN_DISABLED', status: 403, category: 'invalid-input', area: 'HTTP', meaning: 'An admin route while `BRIDGE_ADMIN_TOKEN` is not set.', fix: 'Set `BRIDGE_ADMIN_TOKEN`.' },
  ADMIN_AUTH: { code: 'BRIDGE_ERR_ADMIN_AUTH', status: 401, category: 'invalid-input', area: 'HTTP', meaning: 'A missing or wrong admin token.', fix: 'Send `Authorization: Bearer <BRIDGE_ADMIN_TOKEN>`.' },
  CONSOLE_NOT_BUILT: { code: 'BRIDGE_ERR_CONSOLE_NOT_BUILT', status: 503, category: 'invalid-input', area: 'HTTP', meaning: '`GET /console` while the call console is not built (no `dist/console-ui/index.html`).', fix: 'Run `npm run build` (or `npm run build:console`).' },

  // Live calls (src/server/call-routes.ts).
  CALL_NOT_FOUND: { code: 'BRIDGE_ERR_CALL_NOT_FOUND', status: 404, category: 'invalid-input', area: 'Calls', meaning: '`/calls/:callSid` (or `/say`, `/hangup`, `/calls/history/:callSid`) for a call no instance carries or recorded.', fix: '—' },
  CALL_OWNER_UNREACHABLE: { code: 'BRIDGE_ERR_CALL_OWNER_UNREACHABLE', status: 502, category: 'unavailable', area: 'Calls', meaning: 'The call is live on another instance, which did not answer the forwarded request.', fix: 'Check that instance and its `BRIDGE_INTERNAL_URL` (it must be reachable from the others).' },
  CALL_NOT_STREAMING: { code: 'BRIDGE_ERR_CALL_NOT_STREAMING', status: 409, category: 'state', area: 'Calls', meaning: '`POST /calls/:callSid/say` for a call that is not streaming.', fix: '—' },
  TRANSFER_NOT_ALLOWED: { code: 'BRIDGE_ERR_TRANSFER_NOT_ALLOWED', status: 403, category: 'invalid-input', area: 'Calls', meaning: '`POST /calls/:callSid/transfer` to a destination that is not in the call profile\'s `transfer_call` list (a call without a profile has none).', fix: 'Transfer to one of the destinations the console lists for the call, or add it to the profile\'s `transfer_call` `to`.' },
  RECORDING_NOT_FOUND: { code: 'BRIDGE_ERR_RECORDING_NOT_FOUND', status: 404, category: 'invalid-input', area: 'Calls', meaning: '`GET /calls/:callSid/recording` for a call without a recording on this instance (not recorded, still being written, or on another instance\'s disk).', fix: 'Ask the instance that carried the call; recordings stay where they were written (`BRIDGE_RECORD_DIR`).' },
  TTS_NOT_CONFIGURED: { code: 'BRIDGE_ERR_TTS_NOT_CONFIGURED', status: 503, category: 'invalid-input', area: 'Calls', meaning: '`POST /calls/:callSid/say` without ElevenLabs TTS configured.', fix: 'Set `ELEVENLABS_API_KEY` and `ELEVENLABS_VOICE_ID`.' },

  // Call records (src/store).
  STORE_CONFIG: { code: 'BRIDGE_ERR_STORE_CONFIG', category: 'invalid-input', area: 'Call records', meaning: 'A bad `DATABASE_URL` or store setting, or the database refused our credentials, database name or the migration.', fix: 'Fix the URL, role, password or database; the bridge does not start until then.' },
  STORE_UNAVAILABLE: { code: 'BRIDGE_ERR_STORE_UNAVAILABLE', status: 503, category: 'unavailable', area: 'Call records', meaning: 'The call-record database is unreachable or too slow; history reads get 503, records wait in the outbox.', fix: 'Bring the database back; nothing is lost.' },
  STORE_REJECTED: { code: 'BRIDGE_ERR_STORE_REJECTED', category: 'invalid-input', area: 'Call records', meaning: "The database refused a record for good; it is kept in the outbox's `outbox-rejected.jsonl`.", fix: 'Look at the reason in that file.' },
  STORE_OUTBOX: { code: 'BRIDGE_ERR_STORE_OUTBOX', category: 'unavailable', area: 'Call records', meaning: 'The outbox file cannot be opened or written (disk full, permissions); records wait in memory.', fix: 'Free space / fix the permissions of `BRIDGE_DATA_DIR`; writes are retried from memory.' },

  // Recording (src/recording): never affects the call.
  RECORDING_DIR: { code: 'BRIDGE_ERR_RECORDING_DIR', category: 'invalid-input', area: 'Recording', meaning: '`BRIDGE_RECORD_DIR` cannot be created or written (at start; the bridge does not start).', fix: 'Point it at a writable directory, or fix its permissions.' },
  RECORDING_IO: { code: 'BRIDGE_ERR_RECORDING_IO', category: 'unavailable', area: 'Recording', meaning: 'A recording file could not be opened, written or finalised; that call has no recording.', fix: 'Check free space and the directory; the call itself was not affected.' },
  RECORDING_DROPPED: { code: 'BRIDGE_ERR_RECORDING_DROPPED', category: 'unavailable', area: 'Recording', meaning: 'The disk did not keep up; part of a recording is silence (time kept).', fix: 'Use a faster local disk for `BRIDGE_RECORD_DIR`; ship files elsewhere after the call.' },

  // Tools the agent calls (src/tools): each becomes an error result to the agent; the call goes on.
  TOOL_ARGUMENTS: { code: 'BRIDGE_ERR_TOOL_ARGUMENTS', category: 'invalid-input', area: 'Agent tools', meaning: "A tool call whose arguments from the AI service are not a JSON object (counted; nothing is sent to the tool's URL).", fix: "— (the model's mistake; a clearer tool description or `parameters` schema helps)" },
  TOOL_HTTP_STATUS: { code: 'BRIDGE_ERR_TOOL_HTTP_STATUS', category: 'unavailable', area: 'Agent tools', meaning: "The tool's URL answered with a status other than 2xx.", fix: 'Check the tool server and its logs (`status` is in the log line).' },
  TOOL_TIMEOUT: { code: 'BRIDGE_ERR_TOOL_TIMEOUT', category: 'unavailable', area: 'Agent tools', meaning: "The tool's URL did not answer in full within the tool's `timeoutMs`.", fix: 'Make the tool faster, or raise its `timeoutMs` in the profile (at most 60000).' },
  TOOL_BAD_RESPONSE: { code: 'BRIDGE_ERR_TOOL_BAD_RESPONSE', category: 'invalid-input', area: 'Agent tools', meaning: 'A 2xx tool reply that is not a JSON object with an `output` member.', fix: 'Answer `{"output": <any JSON>}` (docs/tools.md).' },
  TOOL_RESPONSE_TOO_LARGE: { code: 'BRIDGE_ERR_TOOL_RESPONSE_TOO_LARGE', category: 'invalid-input', area: 'Agent tools', meaning: 'A tool reply over 64 KiB (reading stopped at the limit).', fix: 'Return less: the model only needs what it will say.' },
  TOOL_NETWORK: { code: 'BRIDGE_ERR_TOOL_NETWORK', category: 'unavailable', area: 'Agent tools', meaning: "The tool's URL could not be reached (refused, DNS, TLS, connection reset).", fix: "Check the tool's `url` and that its server is up." },
  TOOL_UNKNOWN: { code: 'BRIDGE_ERR_TOOL_UNKNOWN', category: 'invalid-input', area: 'Agent tools', meaning: "The agent called a tool its profile does not have (counted; nothing is sent).", fix: "— (the model's mistake; check the tool names in the agent's own settings, e.g. ElevenLabs client tools)" },
  TOOL_TRANSFER_REFUSED: { code: 'BRIDGE_ERR_TOOL_TRANSFER_REFUSED', category: 'invalid-input', area: 'Agent tools', meaning: "`transfer_call` to a destination the profile's `transfer_call.to` does not list: refused to the agent, nothing is dialled.", fix: 'Add the destination to the profile if it is meant to be allowed.' },
  TOOL_ABORTED: { code: 'BRIDGE_ERR_TOOL_ABORTED', category: 'state', area: 'Agent tools', meaning: 'A tool request cancelled by the bridge: the caller barged in, the call ended, or the AI service cancelled the call.', fix: '—' },

  // Call events (src/events): at-least-once delivery to a profile's `events.url`.
  EVENTS_DELIVERY: { code: 'BRIDGE_ERR_EVENTS_DELIVERY', category: 'unavailable', area: 'Call events', meaning: 'An event delivery attempt failed (non-2xx, timeout, unreachable); it is retried with backoff.', fix: "Check the receiver at the profile's `events.url`; events wait on disk meanwhile." },
  EVENTS_EXPIRED: { code: 'BRIDGE_ERR_EVENTS_EXPIRED', category: 'unavailable', area: 'Call events', meaning: 'An event was dropped undelivered: older than the maximum age (24 h), its profile no longer has an `events.url`, or the queue was full.', fix: 'Bring the receiver back sooner; the log line has the event id and type.' },
  EVENTS_OUTBOX: { code: 'BRIDGE_ERR_EVENTS_OUTBOX', category: 'unavailable', area: 'Call events', meaning: 'The events outbox file cannot be written (disk full, permissions); events wait in memory and the write is retried.', fix: 'Free space / fix the permissions of `BRIDGE_DATA_DIR`.' },
  EVENTS_OUTBOX_CORRUPT: { code: 'BRIDGE_ERR_EVENTS_OUTBOX_CORRUPT', category: 'internal', area: 'Call events', meaning: 'A line of the events outbox file that is not an event (skipped and counted; the rest are delivered).', fix: '— (a damaged file; nothing to do)' },

  // Metrics and tools.
  METRICS_AGGREGATION: { code: 'BRIDGE_ERR_METRICS_AGGREGATION', status: 503, category: 'unavailable', area: 'Metrics and tools', meaning: "`GET /metrics` in a cluster worker could not get the cluster-wide aggregate (the primary did not answer within 6 s, or a worker did not answer prom-client's request within 5 s).", fix: 'Check that the primary runs `startPrimaryMetrics()`; a worker stuck in a long synchronous task can cause it — the next scrape usually succeeds.' },
  WAV_FORMAT: { code: 'BRIDGE_ERR_WAV_FORMAT', category: 'invalid-input', area: 'Metrics and tools', meaning: 'A WAV file the simulator or tools cannot read.', fix: 'Use PCM16, μ-law or A-law WAV.' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorKey = keyof typeof ERROR_TABLE;
export type ErrorCode = (typeof ERROR_TABLE)[ErrorKey]['code'];

/** `ErrorCodes.AGENT_AUTH === 'BRIDGE_ERR_AGENT_AUTH'`: the constants modules use instead of spelling codes. */
export const ErrorCodes = Object.freeze(Object.fromEntries(Object.entries(ERROR_TABLE).map(([k, v]) => [k, v.code]))) as { readonly [K in ErrorKey]: (typeof ERROR_TABLE)[K]['code'] };

const BY_CODE: ReadonlyMap<string, ErrorSpec> = new Map(Object.values(ERROR_TABLE).map((s: ErrorSpec) => [s.code, s]));

/** The table's row for a code (undefined for a string that is not one of ours). */
export function errorSpec(code: string): ErrorSpec | undefined {
  return BY_CODE.get(code);
}

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && BY_CODE.has(code);
}

/** The category of a code, from the table. */
export function categoryOf(code: ErrorCode): ErrorCategory {
  return BY_CODE.get(code)?.category ?? 'internal';
}

export class BridgeError extends Error {
  readonly code: ErrorCode;
  readonly category: ErrorCategory;
  /** Whether the same operation may succeed if tried again later. */
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BridgeError';
    this.code = code;
    this.category = categoryOf(code);
    this.retryable = this.category === 'unavailable';
  }
}

export function isBridgeError(e: unknown, code?: ErrorCode): e is BridgeError {
  return e instanceof BridgeError && (code === undefined || e.code === code);
}

/** RFC 9457 §3: the media type of every HTTP error body the bridge sends. */
export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/**
 * An HTTP error body (RFC 9457 problem details): `type` names the table row (a tag
 * URI, RFC 4151 — an identifier, not a link: docs/errors.md lists every one),
 * `title` is the row's meaning (the same for every occurrence), `status` the HTTP
 * status, `detail` this occurrence, and `code` our stable code (extension member, so
 * `body.code` is all a client needs).
 */
export interface ProblemDetails {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  [extension: string]: unknown;
}

export const PROBLEM_TYPE_PREFIX = 'tag:voice-bridge,2026:error:';

/** The problem body for `code`; `status` defaults to the table's (500 for a code without one). */
export function problemDetails(code: ErrorCode, detail: string, options: { status?: number; extensions?: Record<string, unknown> } = {}): ProblemDetails {
  const spec = errorSpec(code);
  const status = options.status ?? spec?.status ?? 500;
  return { ...options.extensions, type: `${PROBLEM_TYPE_PREFIX}${code}`, title: spec?.meaning ?? code, status, detail, code };
}

/**
 * An HTTP refusal with a stable code: thrown by a route or hook, answered by the
 * server's one error handler as problem details (src/server/problem.ts).
 */
export class HttpProblem extends Error {
  readonly code: ErrorCode;
  readonly statusCode: number;
  readonly extensions: Record<string, unknown> | undefined;
  readonly headers: Record<string, string> | undefined;

  constructor(code: ErrorCode, detail: string, options: { status?: number; extensions?: Record<string, unknown>; headers?: Record<string, string> } = {}) {
    super(detail);
    this.name = 'HttpProblem';
    this.code = code;
    this.statusCode = options.status ?? errorSpec(code)?.status ?? 500;
    this.extensions = options.extensions;
    this.headers = options.headers;
  }
}
