/**
 * BridgeError: every error the bridge raises on purpose carries a stable
 * `BRIDGE_ERR_*` code (listed in README "Error codes") and a category that says
 * whether retrying can help.
 */
export type ErrorCategory = 'invalid-input' | 'state' | 'unavailable' | 'internal';

export const ErrorCodes = {
  /** A sample rate outside 1000–192000 Hz (or not an integer). */
  DSP_RATE: 'BRIDGE_ERR_DSP_RATE',
  /** A resampler quality outside 0–10 (or not an integer). */
  DSP_QUALITY: 'BRIDGE_ERR_DSP_QUALITY',
  /** A caller-supplied destination buffer cannot hold the output; nothing was consumed. */
  DSP_DST_TOO_SMALL: 'BRIDGE_ERR_DSP_DST_TOO_SMALL',
  /** A frame, payload or byte length of the wrong size (odd PCM byte length, non-160-byte G.711 frame). */
  DSP_FRAME_SIZE: 'BRIDGE_ERR_DSP_FRAME_SIZE',
  /** Any other invalid DSP argument (wrong typed-array type, bad option). */
  DSP_ARGUMENT: 'BRIDGE_ERR_DSP_ARGUMENT',
  /** A resampler, jitter buffer or pipeline used after close(). */
  DSP_CLOSED: 'BRIDGE_ERR_DSP_CLOSED',
  /** ?agent= names an agent that does not exist. */
  AGENT_UNKNOWN: 'BRIDGE_ERR_AGENT_UNKNOWN',
  /** The agent's service could not be reached or refused the connection (retryable). */
  AGENT_CONNECT: 'BRIDGE_ERR_AGENT_CONNECT',
  /** The service rejected our credentials (401/403, close 1008, auth error events). */
  AGENT_AUTH: 'BRIDGE_ERR_AGENT_AUTH',
  /** A bounded wait on the service ran out (connect, handshake, a socket that stopped answering). */
  AGENT_TIMEOUT: 'BRIDGE_ERR_AGENT_TIMEOUT',
  /** A malformed, unknown or out-of-order message from the service (counted; the call goes on when it can). */
  AGENT_PROTOCOL: 'BRIDGE_ERR_AGENT_PROTOCOL',
  /** Audio from the service in a format or rate we did not ask for, or undecodable (never sent to the caller). */
  AGENT_AUDIO_FORMAT: 'BRIDGE_ERR_AGENT_AUDIO_FORMAT',
  /** The service reported an error of its own (an `error` event, close 1011…). */
  AGENT_SERVICE: 'BRIDGE_ERR_AGENT_SERVICE',
  /** The service closed the session for good mid-call. */
  AGENT_CLOSED: 'BRIDGE_ERR_AGENT_CLOSED',
  /** Rate or quota limits (429, resource exhausted). */
  AGENT_RATE_LIMIT: 'BRIDGE_ERR_AGENT_RATE_LIMIT',
  /** A bad agent option on the webhook or in the environment. */
  AGENT_CONFIG: 'BRIDGE_ERR_AGENT_CONFIG',
  /** The requested DSP backend could not be loaded (BRIDGE_DSP=native without the addon). */
  DSP_UNAVAILABLE: 'BRIDGE_ERR_DSP_UNAVAILABLE',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

const CATEGORY: Record<ErrorCode, ErrorCategory> = {
  BRIDGE_ERR_DSP_RATE: 'invalid-input',
  BRIDGE_ERR_DSP_QUALITY: 'invalid-input',
  BRIDGE_ERR_DSP_DST_TOO_SMALL: 'invalid-input',
  BRIDGE_ERR_DSP_FRAME_SIZE: 'invalid-input',
  BRIDGE_ERR_DSP_ARGUMENT: 'invalid-input',
  BRIDGE_ERR_DSP_CLOSED: 'state',
  BRIDGE_ERR_AGENT_UNKNOWN: 'invalid-input',
  BRIDGE_ERR_AGENT_CONNECT: 'unavailable',
  BRIDGE_ERR_AGENT_AUTH: 'invalid-input',
  BRIDGE_ERR_AGENT_TIMEOUT: 'unavailable',
  BRIDGE_ERR_AGENT_PROTOCOL: 'invalid-input',
  BRIDGE_ERR_AGENT_AUDIO_FORMAT: 'invalid-input',
  BRIDGE_ERR_AGENT_SERVICE: 'unavailable',
  BRIDGE_ERR_AGENT_CLOSED: 'unavailable',
  BRIDGE_ERR_AGENT_RATE_LIMIT: 'unavailable',
  BRIDGE_ERR_AGENT_CONFIG: 'invalid-input',
  BRIDGE_ERR_DSP_UNAVAILABLE: 'unavailable',
};

export class BridgeError extends Error {
  readonly code: ErrorCode;
  readonly category: ErrorCategory;
  /** Whether the same operation may succeed if tried again later. */
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BridgeError';
    this.code = code;
    this.category = CATEGORY[code] ?? 'internal';
    this.retryable = this.category === 'unavailable';
  }
}

export function isBridgeError(e: unknown, code?: ErrorCode): e is BridgeError {
  return e instanceof BridgeError && (code === undefined || e.code === code);
}
