/**
 * Bounded label values. A Prometheus series exists per distinct label set and is
 * never forgotten by the process, so every label fed from call data is reduced to
 * a small, known-shaped set: end reasons keep their kind and at most a stable
 * BRIDGE_ERR_* code, agent names must look like agent names, and each label has a
 * hard cap on distinct values after which new ones are reported as "other".
 */

/** Distinct end-reason label values kept before new ones become "other". */
export const MAX_REASON_VALUES = 64;
/** Distinct agent label values kept before new ones become "other". */
export const MAX_AGENT_VALUES = 32;

const REASON_KIND = /^[a-z][a-z0-9-]{0,39}$/;
const ERROR_CODE = /^BRIDGE_ERR_[A-Z0-9_]{1,48}$/;
const AGENT_NAME = /^[a-z0-9][a-z0-9_.-]{0,31}$/i;

/**
 * An end reason as a label: the part before the first ':' (its kind), plus the
 * error code after it when that is a BRIDGE_ERR_* code — free text never reaches
 * the label. `agent-closed:server went away (1006)` → `agent-closed`;
 * `agent-connect-failed:BRIDGE_ERR_AGENT_AUTH` stays as it is; null → `unknown`.
 */
export function normaliseEndReason(reason: string | null | undefined): string {
  if (!reason) return 'unknown';
  const colon = reason.indexOf(':');
  const kind = (colon < 0 ? reason : reason.slice(0, colon)).trim();
  if (!REASON_KIND.test(kind)) return 'other';
  if (colon < 0) return kind;
  const detail = reason.slice(colon + 1).trim();
  const code = /^\S+/.exec(detail)?.[0];
  return code && ERROR_CODE.test(code) ? `${kind}:${code}` : kind;
}

/** A label whose distinct values are capped; shape-checks each value first. */
export class BoundedLabel {
  readonly #seen = new Set<string>();

  constructor(
    readonly max: number,
    private readonly accept: (v: string) => boolean = () => true,
  ) {}

  value(v: string): string {
    if (this.#seen.has(v)) return v;
    if (!this.accept(v)) return 'other';
    if (this.#seen.size >= this.max) return 'other';
    this.#seen.add(v);
    return v;
  }
}

/** Agent names: known ones (when a list is given) or anything shaped like a name, capped. */
export function agentLabel(known?: () => readonly string[]): BoundedLabel {
  return new BoundedLabel(MAX_AGENT_VALUES, (v) => AGENT_NAME.test(v) && (known === undefined || known().includes(v)));
}

export function reasonLabel(): BoundedLabel {
  return new BoundedLabel(MAX_REASON_VALUES);
}
