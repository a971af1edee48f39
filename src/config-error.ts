/**
 * A bad configuration: every problem at once (`problems`, one line each), code
 * BRIDGE_ERR_CONFIG; a process exits 78 (EX_CONFIG) on it. Its own module so that
 * every configuration reader can throw it without importing src/config.ts.
 */
import { ErrorCodes } from './errors.js';

export class ConfigError extends Error {
  readonly code = ErrorCodes.CONFIG;
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

/** EX_CONFIG (sysexits.h): the exit code of a process refused by its configuration. */
export const EX_CONFIG = 78;
