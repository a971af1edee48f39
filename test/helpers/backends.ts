/**
 * The DSP backends every contract suite runs against. CI sets BRIDGE_DSP=native so
 * a broken addon fails loudly instead of hiding behind the fallback; locally, when
 * the addon is not built and BRIDGE_DSP is not 'native', only ts runs (and says so).
 */
import { loadDsp } from '../../src/dsp/load.js';
import type { DspBackend } from '../../src/dsp/backend.js';

export const nativeRequired = process.env.BRIDGE_DSP === 'native';

export async function loadBackends(): Promise<DspBackend[]> {
  const ts = await loadDsp({ backend: 'ts' });
  try {
    const native = await loadDsp({ backend: 'native' });
    return [native, ts];
  } catch (e) {
    if (nativeRequired) throw e;
    console.warn(`[tests] native DSP backend not available, testing ts only: ${(e as Error).message}`);
    return [ts];
  }
}

export const backends = await loadBackends();
export const backendNames = backends.map((b) => b.name);
