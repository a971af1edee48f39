/**
 * Optional call recording (BRIDGE_RECORD=1): one stereo WAV per call in
 * BRIDGE_RECORD_DIR, caller left, agent right (see recording-tap.ts).
 *
 * Wiring: `const recorder = createRecorder(config, { log })` at start (validates the
 * env keys and creates the directory), then `new CallManager({ …, tapFor: recorder.tapFor })`.
 * The session closes each tap when its call ends and puts the file's path in
 * `CallSummary.recordingPath`, which the call record carries.
 */
import { accessSync, constants, mkdirSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Config } from '../config.js';
import { ConfigError } from '../config-error.js';
import { readEnv } from '../env-schema.js';
import type { CallAudioTap } from '../call/hooks.js';
import { RecordingTap, type QueueBudget, type RecordingLog, type RecordingTapStats } from './recording-tap.js';
import { RecordingError, RecordingErrorCodes } from './recording-error.js';

export interface RecordingSettings {
  enabled: boolean;
  /** Absolute directory (resolved against the working directory). */
  dir: string;
}

/** Reads BRIDGE_RECORD and BRIDGE_RECORD_DIR (src/env-schema.ts); returns the settings or the problems (for one ConfigError). */
export function readRecordingSettings(env: Readonly<Record<string, string | undefined>>): { settings: RecordingSettings; problems: string[] } {
  const { values: e, problems } = readEnv(env, 'recording');
  return { settings: { enabled: e.BRIDGE_RECORD, dir: resolve(e.BRIDGE_RECORD_DIR) }, problems };
}

/** A file name from a CallSid: letters, digits, `_` and `-` only, at most 64 characters, never empty or hidden. */
export function recordingBaseName(callSid: string): string {
  let s = callSid.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 64);
  if (!/^[A-Za-z0-9]/.test(s)) s = `call${s}`.slice(0, 64);
  return s;
}

export interface RecorderOptions {
  log?: RecordingLog;
  /** Monotonic ms clock; default performance.now (the call core's clock). */
  now?: () => number;
  /** The window each call holds in memory (ms of stereo audio; 1 s = 32 KiB). Default: lateness + one block + the playout lead + 250 ms, at least 2 s. */
  windowMs?: number;
  /** How far ahead of its play time agent audio reaches the tap (BRIDGE_PLAYOUT_LEAD_MS). Default 2000. */
  leadMs?: number;
  /** How late a caller frame may arrive and still be placed; also how long agent audio waits for a `clear`. Default 500. */
  latenessMs?: number;
  /** Size of each write (ms of audio). Default 500 (16 KiB). */
  blockMs?: number;
  /** Timestamps further than this ahead of the clock are rejected (hostile input). Default 60000. */
  maxAheadMs?: number;
  /** Write queue per call (ms of audio waiting for the disk). Default 8000 (256 KiB). */
  maxQueuedMsPerCall?: number;
  /** Write queue across all calls (bytes). Default 64 MiB. */
  maxQueuedBytes?: number;
}

export interface RecorderStats {
  enabled: boolean;
  /** Recordings in progress. */
  active: number;
  /** Recordings finished with a file. */
  completed: number;
  /** Recordings abandoned (open/write failures). */
  failed: number;
  /** Bytes written to recording files. */
  writtenBytes: number;
  /** Recording data dropped because the disk did not keep up (ms of stereo audio). */
  droppedMs: number;
  /** Bytes waiting for the disk across all calls. */
  queuedBytes: number;
}

export interface Recorder {
  readonly enabled: boolean;
  /** The recordings directory (absolute), also when disabled. */
  readonly dir: string;
  /** For CallManagerDeps.tapFor: a tap per call when recording is on, undefined when off. Never throws. */
  readonly tapFor: (info: { callSid: string; streamSid: string }) => CallAudioTap | undefined;
  stats(): RecorderStats;
}

const STEREO_BYTES_PER_MS = 32;

/**
 * Creates the recorder from `config.env`. Throws ConfigError for bad values and
 * RecordingError(BRIDGE_ERR_RECORDING_DIR) when recording is on and the directory
 * cannot be created or written (at start, so a bad disk is found before the first call).
 */
export function createRecorder(config: Pick<Config, 'env'>, options: RecorderOptions = {}): Recorder {
  const { settings, problems } = readRecordingSettings(config.env);
  if (problems.length > 0) throw new ConfigError(problems);
  const latenessMs = options.latenessMs ?? 500;
  const blockMs = options.blockMs ?? 500;
  // Agent audio arrives up to the playout lead before it plays, and must stay in the window until
  // its time has passed (a barge-in's clear zeroes what Twilio never played).
  const windowMs = options.windowMs ?? Math.max(2000, latenessMs + blockMs + (options.leadMs ?? 2000) + 250);
  // The window must hold what is not yet written (lateness + one block) plus the agent's lead.
  if (!(windowMs >= latenessMs + blockMs + 250)) throw new RangeError(`windowMs (${windowMs}) must be at least latenessMs + blockMs + 250 (${latenessMs + blockMs + 250})`);
  if (!(blockMs >= 20)) throw new RangeError('blockMs must be at least 20');

  const totals = { active: 0, completed: 0, failed: 0, writtenBytes: 0, droppedBytes: 0 };
  const budget: QueueBudget = { queuedBytes: 0, maxBytes: options.maxQueuedBytes ?? 64 * 1024 * 1024 };
  const stats = (): RecorderStats => ({
    enabled: settings.enabled,
    active: totals.active,
    completed: totals.completed,
    failed: totals.failed,
    writtenBytes: totals.writtenBytes,
    droppedMs: totals.droppedBytes / STEREO_BYTES_PER_MS,
    queuedBytes: budget.queuedBytes,
  });

  if (!settings.enabled) return { enabled: false, dir: settings.dir, tapFor: () => undefined, stats };

  try {
    mkdirSync(settings.dir, { recursive: true });
    if (!statSync(settings.dir).isDirectory()) throw new Error('not a directory');
    accessSync(settings.dir, constants.W_OK | constants.X_OK);
  } catch (e) {
    throw new RecordingError(RecordingErrorCodes.DIR, `BRIDGE_RECORD_DIR ${settings.dir} cannot be used for recordings: ${(e as Error).message}`, { cause: e });
  }

  const now = options.now ?? (() => performance.now());
  const log = options.log;
  const onDone = (s: RecordingTapStats, path: string | undefined) => {
    totals.active--;
    if (path) totals.completed++;
    else totals.failed++;
    totals.writtenBytes += s.writtenBytes;
    totals.droppedBytes += s.droppedBytes;
  };
  const tapFor = (info: { callSid: string; streamSid: string }): CallAudioTap | undefined => {
    try {
      const tap = new RecordingTap({
        dir: settings.dir,
        baseName: recordingBaseName(info.callSid),
        callSid: info.callSid,
        now,
        windowMs,
        latenessMs,
        blockMs,
        maxAheadMs: options.maxAheadMs ?? 60_000,
        maxQueuedBytes: (options.maxQueuedMsPerCall ?? 8000) * STEREO_BYTES_PER_MS,
        budget,
        log,
        onDone,
      });
      totals.active++;
      return tap;
    } catch (e) {
      log?.('warn', 'recording could not start (the call is unaffected)', { code: RecordingErrorCodes.IO, callSid: info.callSid, err: e });
      return undefined;
    }
  };
  return { enabled: true, dir: settings.dir, tapFor, stats };
}
