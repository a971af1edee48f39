/**
 * A profiles file refused: every problem at once (`problems`, one line each, led by
 * the path of the offending value, e.g. `profiles[1].tools[0].url: …`), code
 * BRIDGE_ERR_PROFILES. A command exits 78 (EX_CONFIG) on it, like a configuration error.
 */
import { BridgeError, ErrorCodes } from '../errors.js';

export class ProfilesError extends BridgeError {
  constructor(
    readonly file: string,
    readonly problems: readonly string[],
  ) {
    super(ErrorCodes.PROFILES, `invalid profiles file ${file}:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ProfilesError';
  }
}
