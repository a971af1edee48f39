/** voice-bridge public surface. */
export { loadDsp, dspLoadInfo } from './dsp/load.js';
export type { LoadDspOptions, LoadedDsp, DspLoadInfo, DspBackendChoice } from './dsp/load.js';
export * from './dsp/backend.js';
export { BridgeError, ErrorCodes, isBridgeError } from './errors.js';
export type { ErrorCode, ErrorCategory } from './errors.js';
