import { readFileSync } from 'node:fs';

let cached: string | undefined;

/** The package's version, from its package.json (one level above src/ and dist/). */
export function packageVersion(): string {
  if (cached !== undefined) return cached;
  try {
    cached = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string }).version ?? 'unknown';
  } catch {
    cached = 'unknown';
  }
  return cached;
}
