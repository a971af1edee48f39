/**
 * loadDsp(): picks the DSP backend. Native is an optimisation, never a requirement:
 * `auto` tries native then falls back to ts and records why;
 * `native` (or BRIDGE_DSP=native, which CI sets) makes a missing addon an error.
 */
import { BridgeError, ErrorCodes } from '../errors.js';
import { rawValue } from '../env-schema.js';
import type { DspBackend, DspBackendName } from './backend.js';
import { NativeDspBackend, loadAddon } from './native-backend.js';
import { createTsBackend } from './ts-backend.js';

export type DspBackendChoice = 'auto' | DspBackendName;

export interface LoadDspOptions {
  /** Which backend; default from BRIDGE_DSP, else 'auto'. */
  backend?: DspBackendChoice;
  /** Test seam: how the addon is loaded (default: the built native/dsp-node addon). */
  loadAddon?: () => ReturnType<typeof loadAddon>;
}

export interface LoadedDsp extends DspBackend {
  /** Why `auto` fell back to ts (undefined when native loaded or ts was asked for). */
  readonly fallbackReason?: string;
}

export interface DspLoadInfo {
  backend: DspBackendName;
  requested: DspBackendChoice;
  fallbackReason?: string;
  simd?: string;
}

let lastInfo: DspLoadInfo | undefined;

/** What the most recent loadDsp() chose, and why (shown on /readyz). */
export function dspLoadInfo(): DspLoadInfo | undefined {
  return lastInfo;
}

function parseChoice(v: string | undefined): DspBackendChoice {
  if (v === undefined || v === '') return 'auto';
  if (v === 'auto' || v === 'native' || v === 'ts') return v;
  throw new BridgeError(ErrorCodes.DSP_ARGUMENT, `BRIDGE_DSP must be auto, native or ts (got "${v}")`);
}

export async function loadDsp(options: LoadDspOptions = {}): Promise<LoadedDsp> {
  const requested = options.backend ?? parseChoice(rawValue(process.env, 'BRIDGE_DSP'));
  if (requested !== 'auto' && requested !== 'native' && requested !== 'ts') {
    throw new BridgeError(ErrorCodes.DSP_ARGUMENT, `backend must be auto, native or ts (got "${String(requested)}")`);
  }
  const load = options.loadAddon ?? loadAddon;
  if (requested === 'ts') {
    const ts = await createTsBackend();
    lastInfo = { backend: 'ts', requested };
    return ts;
  }
  let reason: string;
  try {
    const native = new NativeDspBackend(load());
    lastInfo = { backend: 'native', requested, simd: native.simd };
    return native;
  } catch (e) {
    reason = e instanceof Error ? e.message : String(e);
  }
  if (requested === 'native') {
    throw new BridgeError(ErrorCodes.DSP_UNAVAILABLE, `native DSP backend unavailable: ${reason}`);
  }
  const ts = await createTsBackend();
  const withReason = Object.assign(ts, { fallbackReason: reason });
  lastInfo = { backend: 'ts', requested, fallbackReason: reason };
  process.emitWarning(`voice-bridge: native DSP unavailable, using the TS fallback: ${reason}`, { code: 'BRIDGE_DSP_FALLBACK' });
  return withReason;
}
