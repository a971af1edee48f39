/**
 * `voice-bridge profiles check [FILE]`: validates a profiles file (docs/profiles.md) the
 * way the bridge will read it — format, unknown keys, duplicates, URLs, transfer
 * destinations and every `${VAR}` against this environment (so run it where the bridge
 * runs, or with its --env-file). Without FILE it checks `BRIDGE_PROFILES`.
 * Exit 0 with `ok: N profiles (names…)`; 78 (EX_CONFIG) with every problem; 2 on usage.
 */
import { parseArgs } from 'node:util';
import { EX_CONFIG } from '../config-error.js';
import { rawValue } from '../env-schema.js';
import { loadProfilesFile } from './load.js';
import { ProfilesError } from './profiles-error.js';

export const PROFILES_USAGE = `usage: voice-bridge profiles check [FILE]

Validates a profiles file (YAML or JSON; docs/profiles.md, JSON Schema in
docs/profiles.schema.json): its format, unknown keys, duplicate names and numbers,
tool and event URLs, transfer destinations, and every \${VAR} against the environment.
Prints "ok: N profiles (names…)" and exits 0, or lists every problem and exits 78.
  FILE         the file to check (default: BRIDGE_PROFILES)
  -h, --help   this text`;

type Env = Readonly<Record<string, string | undefined>>;
interface CommandIo {
  out(text: string): void;
  err(text: string): void;
}

export async function profilesCommand(argv: string[], env: Env = process.env, io: CommandIo = { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) }): Promise<number> {
  const { positionals } = parseArgs({ args: argv, allowPositionals: true, options: {} });
  const [sub, fileArg, ...extra] = positionals;
  if (sub !== 'check' || extra.length > 0) {
    io.err(`voice-bridge profiles: ${sub === undefined ? 'give a subcommand' : sub === 'check' ? 'one FILE at most' : `unknown subcommand "${sub}"`}\n\n${PROFILES_USAGE}\n`);
    return 2;
  }
  const file = fileArg ?? rawValue(env, 'BRIDGE_PROFILES');
  if (file === undefined) {
    io.err(`voice-bridge profiles check: give FILE, or set BRIDGE_PROFILES\n\n${PROFILES_USAGE}\n`);
    return 2;
  }
  try {
    const profiles = loadProfilesFile(file, env);
    io.out(`ok: ${profiles.length} ${profiles.length === 1 ? 'profile' : 'profiles'} (${profiles.map((p) => p.name).join(', ')})\n`);
    return 0;
  } catch (e) {
    if (!(e instanceof ProfilesError)) throw e;
    io.err(`${e.message}\n`);
    return EX_CONFIG;
  }
}
