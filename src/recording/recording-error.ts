/**
 * Stable codes for recording failures. A recording failure never affects the call:
 * the tap stops recording (or drops data) and says so in the log with one of these.
 * (To be folded into src/errors.ts ErrorCodes and the README error table.)
 */
export const RecordingErrorCodes = {
  /** BRIDGE_RECORD_DIR cannot be created or written at start (the bridge does not start). */
  DIR: 'BRIDGE_ERR_RECORDING_DIR',
  /** A recording file could not be opened, written or finalised mid-call; that call's recording is abandoned. */
  IO: 'BRIDGE_ERR_RECORDING_IO',
  /** The disk did not keep up: the bounded write queue was full and recording data was dropped (silence in the file, time kept). */
  DROPPED: 'BRIDGE_ERR_RECORDING_DROPPED',
} as const;

export type RecordingErrorCode = (typeof RecordingErrorCodes)[keyof typeof RecordingErrorCodes];

export class RecordingError extends Error {
  readonly code: RecordingErrorCode;
  constructor(code: RecordingErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RecordingError';
    this.code = code;
  }
}
