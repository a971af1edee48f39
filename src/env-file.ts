/**
 * `--env-file PATH` of every CLI command: KEY=value lines (the dotenv format, parsed by
 * Node's own util.parseEnv) put into the environment before the configuration is read.
 *
 * As with dotenv, a variable already in the real environment wins over the file, so a
 * deployment can override one value of a shared file (`PORT=9000 voice-bridge start
 * --env-file .env`). Several files may be given; among them a later one wins.
 * `.env.example` (generated from src/env-schema.ts) lists every variable.
 */
import { readFileSync } from 'node:fs';
import { parseEnv } from 'node:util';

export class EnvFileError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'EnvFileError';
  }
}

/** Splits `--env-file PATH` / `--env-file=PATH` (any number) out of a command's arguments. */
export function takeEnvFileOption(argv: readonly string[]): { argv: string[]; paths: string[] } {
  const rest: string[] = [];
  const paths: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      rest.push(...argv.slice(i));
      break;
    }
    if (a.startsWith('--env-file=')) paths.push(a.slice('--env-file='.length));
    else if (a === '--env-file') {
      const path = argv[i + 1];
      if (path === undefined || path.startsWith('-')) throw new EnvFileError('--env-file needs a path');
      paths.push(path);
      i++;
    } else rest.push(a);
  }
  if (paths.some((p) => p === '')) throw new EnvFileError('--env-file needs a path');
  return { argv: rest, paths };
}

/**
 * Reads the files and sets each of their variables that `env` does not have yet.
 * Returns the names it set. Throws EnvFileError when a file cannot be read.
 */
export function applyEnvFiles(paths: readonly string[], env: NodeJS.ProcessEnv = process.env): string[] {
  const fromFiles: Record<string, string> = {};
  for (const path of paths) {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (e) {
      throw new EnvFileError(`--env-file ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`, { cause: e });
    }
    for (const [k, v] of Object.entries(parseEnv(text))) if (v !== undefined) fromFiles[k] = v;
  }
  const set: string[] = [];
  for (const [k, v] of Object.entries(fromFiles)) {
    if (env[k] !== undefined) continue; // the real environment wins
    env[k] = v;
    set.push(k);
  }
  return set;
}
