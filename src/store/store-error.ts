/**
 * Failure modes of the call-record store. The codes, their meaning and category are
 * declared in src/errors.ts; the shape matches BridgeError (code, category, retryable).
 */
import { categoryOf, ErrorCodes } from '../errors.js';

export const StoreErrorCodes = {
  STORE_CONFIG: ErrorCodes.STORE_CONFIG,
  STORE_UNAVAILABLE: ErrorCodes.STORE_UNAVAILABLE,
  STORE_REJECTED: ErrorCodes.STORE_REJECTED,
  STORE_OUTBOX: ErrorCodes.STORE_OUTBOX,
} as const;

export type StoreErrorCode = (typeof StoreErrorCodes)[keyof typeof StoreErrorCodes];

export class StoreError extends Error {
  readonly code: StoreErrorCode;
  readonly category: 'invalid-input' | 'unavailable';
  readonly retryable: boolean;

  constructor(code: StoreErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreError';
    this.code = code;
    this.category = categoryOf(code) === 'unavailable' ? 'unavailable' : 'invalid-input';
    this.retryable = this.category === 'unavailable';
  }
}
