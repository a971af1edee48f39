/**
 * The profiles of a running bridge (`BRIDGE_PROFILES`, docs/profiles.md): loaded once at
 * start (a bad file there is a configuration error: ProfilesError, exit 78), then
 * reloaded when the file changes and on demand (SIGHUP), without touching live calls —
 * a call looks its profile up once, when its agent is opened, and keeps that snapshot.
 *
 * ```text
 *   fs.watch(dir of the file) ──any event──► debounce 200 ms ──► read ──same text?──► nothing
 *   reload('signal') (SIGHUP) ─────────────────────────────────► read ──► parse ──ok──► swap, emit reload{ok}
 *                                                                              └─bad─► keep the previous, emit reload{error, problems}
 * ```
 *
 * The directory is watched, not the file: editors (vim, VS Code with atomic saves) and
 * Kubernetes ConfigMaps replace a file by renaming another over it, after which a watch
 * on the old inode never fires again. Any event in the directory schedules a check, and
 * the check reloads only when the text differs from the last one read, so unrelated
 * files in the same directory cost one read each, and never a reload.
 */
import { EventEmitter } from 'node:events';
import { readFileSync, statSync, watch, type FSWatcher } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { formatOf, loadProfilesFile, MAX_PROFILES_FILE_BYTES, parseProfiles } from './load.js';
import { ProfilesError } from './profiles-error.js';
import type { Profile } from './schema.js';
import { selectProfile } from './select-profile.js';

type Env = Readonly<Record<string, string | undefined>>;

/** What asked for a reload: the file changed, a SIGHUP (or the cluster primary's forward of one), or code. */
export type ReloadTrigger = 'change' | 'signal' | 'manual';

export type ReloadOutcome =
  | { readonly result: 'ok'; readonly trigger: ReloadTrigger; readonly file: string; readonly names: readonly string[] }
  | { readonly result: 'error'; readonly trigger: ReloadTrigger; readonly file: string; readonly problems: readonly string[]; readonly kept: readonly string[] };

export interface LiveProfilesEvents {
  /** A reload was attempted (not emitted for a change that left the text as it was). */
  reload: [ReloadOutcome];
}

/** How long a burst of file events (an editor's write, rename, chmod) is left to settle before the file is read. */
export const RELOAD_DEBOUNCE_MS = 200;

export class LiveProfiles extends EventEmitter<LiveProfilesEvents> {
  readonly file: string;
  readonly #env: Env;
  #profiles: readonly Profile[];
  /** The text last read (valid or not): a directory event that leaves it as it was is no change. */
  #lastText: string | undefined;
  #watcher: FSWatcher | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  private constructor(file: string, env: Env, profiles: readonly Profile[], text: string) {
    super();
    this.file = file;
    this.#env = env;
    this.#profiles = profiles;
    this.#lastText = text;
  }

  /** Reads and validates the file; throws ProfilesError (every problem) when it cannot be used. */
  static load(file: string, env: Env = process.env): LiveProfiles {
    const path = resolve(file);
    // loadProfilesFile checks the size and kind of the file and lists every problem;
    // the text is read again to remember it (a file that changes in between is caught by the watch).
    const profiles = loadProfilesFile(path, env);
    let text = '';
    try {
      text = readFileSync(path, 'utf8');
    } catch {
      // read a moment ago; the next event re-reads it
    }
    return new LiveProfiles(path, env, profiles, text);
  }

  /** The profiles now in force (frozen; a reload replaces the list, never edits it). */
  get current(): readonly Profile[] {
    return this.#profiles;
  }

  byName(name: string): Profile | undefined {
    return this.#profiles.find((p) => p.name === name);
  }

  /** selectProfile (src/profiles/select-profile.ts) over the profiles now in force. */
  select(by: { to?: string; profileName?: string }): Profile | undefined {
    return selectProfile(this.#profiles, by);
  }

  /**
   * Reads the file now. A valid file replaces the profiles; a bad one keeps the previous
   * and lists its problems. With `onlyIfChanged`, the same text as last time is no reload.
   */
  reload(trigger: ReloadTrigger = 'manual', onlyIfChanged = false): ReloadOutcome | undefined {
    let text: string;
    try {
      const st = statSync(this.file);
      if (!st.isFile()) throw new ProfilesError(this.file, ['not a regular file']);
      if (st.size > MAX_PROFILES_FILE_BYTES) throw new ProfilesError(this.file, [`larger than ${MAX_PROFILES_FILE_BYTES / 1024 / 1024} MiB`]);
      text = readFileSync(this.file, 'utf8');
    } catch (e) {
      const problems = e instanceof ProfilesError ? e.problems : [`cannot be read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`];
      // A file that is briefly away (an editor between its rename and its write) is a
      // problem reported once; the event of its return reloads it.
      if (onlyIfChanged && this.#lastText === undefined) return undefined;
      this.#lastText = undefined;
      return this.#emit({ result: 'error', trigger, file: this.file, problems, kept: this.#profiles.map((p) => p.name) });
    }
    if (onlyIfChanged && text === this.#lastText) return undefined;
    this.#lastText = text;
    try {
      this.#profiles = parseProfiles(text, { format: formatOf(this.file), env: this.#env, source: this.file });
    } catch (e) {
      if (!(e instanceof ProfilesError)) throw e;
      return this.#emit({ result: 'error', trigger, file: this.file, problems: e.problems, kept: this.#profiles.map((p) => p.name) });
    }
    return this.#emit({ result: 'ok', trigger, file: this.file, names: this.#profiles.map((p) => p.name) });
  }

  #emit(outcome: ReloadOutcome): ReloadOutcome {
    this.emit('reload', outcome);
    return outcome;
  }

  /** Watches the file's directory; each burst of events is read once, RELOAD_DEBOUNCE_MS after its last event. */
  watch(debounceMs = RELOAD_DEBOUNCE_MS): void {
    if (this.#watcher || this.#closed) return;
    // Every event is checked, whatever file it names: the name is null on some
    // platforms, and a symlink swap (Kubernetes' `..data`) names another entry.
    this.#watcher = watch(dirname(this.file), { persistent: false }, () => {
      clearTimeout(this.#timer);
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        if (!this.#closed) this.reload('change', true);
      }, debounceMs);
      this.#timer.unref();
    });
    this.#watcher.on('error', () => {
      // The directory itself went away: no more change events (SIGHUP still reloads).
      this.#watcher?.close();
      this.#watcher = undefined;
    });
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#watcher?.close();
    this.#watcher = undefined;
  }
}
