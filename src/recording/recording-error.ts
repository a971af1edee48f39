/**
 * Stable codes for recording failures (declared in src/errors.ts). A recording failure
 * never affects the call: the tap stops recording (or drops data) and says so in the
 * log with one of these.
 */
import { ErrorCodes } from '../errors.js';

export const RecordingErrorCodes = {
  DIR: ErrorCodes.RECORDING_DIR,
  IO: ErrorCodes.RECORDING_IO,
  DROPPED: ErrorCodes.RECORDING_DROPPED,
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
