/**
 * How a problem names the value it is about: `profiles[1].tools[0].url`, the way the
 * file reads (an index for a list item, `.key` for a key, `["odd key"]` for a key that
 * is not a plain word). The top level reads `(top level)`.
 */
export type ValuePath = readonly (string | number)[];

export function formatPath(path: ValuePath): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out === '' ? '(top level)' : out;
}

/** One problem: where, and what is wrong (never the value itself: it may be a secret from `${VAR}`). */
export interface Problem {
  readonly path: ValuePath;
  readonly message: string;
}

export const problemLine = (p: Problem) => `${formatPath(p.path)}: ${p.message}`;
