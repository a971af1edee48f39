// Dev/test entry of the DSP pool worker: piscina loads plain JavaScript, so when the
// bridge runs from its TypeScript sources (vitest, tsx) the worker registers tsx's
// loader first, then imports dsp-pool-worker.ts. The built bridge loads
// dist/dsp/pool/dsp-pool-worker.js directly and never uses this file.
import { register } from 'tsx/esm/api';

register();
const worker = await import(new URL('./dsp-pool-worker.ts', import.meta.url).href);
export default worker.default;
