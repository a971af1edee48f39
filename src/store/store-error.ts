/**
 * Failure modes of the call-record store, with stable codes (to be listed in
 * README "Error codes"). Kept here rather than in src/errors.ts so the store is
 * self-contained; the shape matches BridgeError (code, category, retryable).
 */
export const StoreErrorCodes = {
  /** DATABASE_URL / BRIDGE_DATA_DIR / store settings are invalid, or the database refused our credentials or database name. */
  STORE_CONFIG: 'BRIDGE_ERR_STORE_CONFIG',
  /** The call-record database cannot be reached or answered too slowly (history reads get 503; writes wait in the outbox). */
  STORE_UNAVAILABLE: 'BRIDGE_ERR_STORE_UNAVAILABLE',
  /** The database refused a record for good (data or constraint error); it was moved to the outbox's rejected file. */
  STORE_REJECTED: 'BRIDGE_ERR_STORE_REJECTED',
  /** The local outbox file could not be written or read (disk full, permissions); records wait in memory and are retried. */
  STORE_OUTBOX: 'BRIDGE_ERR_STORE_OUTBOX',
} as const;

export type StoreErrorCode = (typeof StoreErrorCodes)[keyof typeof StoreErrorCodes];

const CATEGORY: Record<StoreErrorCode, 'invalid-input' | 'unavailable'> = {
  BRIDGE_ERR_STORE_CONFIG: 'invalid-input',
  BRIDGE_ERR_STORE_UNAVAILABLE: 'unavailable',
  BRIDGE_ERR_STORE_REJECTED: 'invalid-input',
  BRIDGE_ERR_STORE_OUTBOX: 'unavailable',
};

export class StoreError extends Error {
  readonly code: StoreErrorCode;
  readonly category: 'invalid-input' | 'unavailable';
  readonly retryable: boolean;

  constructor(code: StoreErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreError';
    this.code = code;
    this.category = CATEGORY[code];
    this.retryable = this.category === 'unavailable';
  }
}
