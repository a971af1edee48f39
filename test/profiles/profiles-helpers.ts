/** Shared pieces of the profile routing and reload tests: a profiles file, a voice webhook as Twilio posts it, its TwiML read back. */
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { callSid as newCallSid, form } from '../lifecycle/child-bridge.js';
import { runSimulatedCall, type SimulatedCallOptions, type SimulatedCallResult } from '../../src/sim/simulator.js';

export const FROM = '+15551230000';

/** A profiles file in a fresh directory (the directory is watched: keep it to one file). */
export function profilesFile(text: string, name = 'profiles.yaml'): string {
  const path = join(mkdtempSync(join(tmpdir(), 'vb-profiles-')), name);
  writeFileSync(path, text);
  return path;
}

/** Replaces the file the way editors and ConfigMaps do: a new file renamed over the old one. */
export function replaceByRename(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

export interface Hook {
  status: number;
  callSid: string;
  text: string;
  contentType: string | null;
  /** The <Stream url>, when the TwiML connects. */
  streamUrl?: string;
  /** The <Parameter>s of the <Stream>, decoded. */
  parameters: Record<string, string>;
}

const unescape = (s: string) => s.replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&apos;/g, "'").replace(/&amp;/g, '&');

/** POST /twilio/voice as Twilio would, to `to`, with `query` on the URL. */
export async function voiceWebhook(baseUrl: string, to: string, query = '', sid = newCallSid()): Promise<Hook> {
  const r = await fetch(`${baseUrl}/twilio/voice${query ? `?${query}` : ''}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', connection: 'close' }, body: form({ CallSid: sid, From: FROM, To: to }) });
  const text = await r.text();
  const parameters: Record<string, string> = {};
  for (const m of text.matchAll(/<Parameter name="([^"]+)" value="([^"]*)"\/>/g)) parameters[unescape(m[1]!)] = unescape(m[2]!);
  const url = /<Stream url="([^"]+)"/.exec(text)?.[1];
  return { status: r.status, callSid: sid, text, contentType: r.headers.get('content-type'), parameters, ...(url ? { streamUrl: unescape(url) } : {}) };
}

/** The stream the webhook's TwiML names, with its parameters, as Twilio would open it. */
export function streamOf(hook: Hook, sim: Omit<SimulatedCallOptions, 'url' | 'callSid' | 'customParameters'>): Promise<SimulatedCallResult> {
  if (!hook.streamUrl) throw new Error(`the webhook did not connect a stream: ${hook.text}`);
  return runSimulatedCall({ ...sim, url: hook.streamUrl, callSid: hook.callSid, customParameters: hook.parameters });
}

/** A metric's value in Prometheus text (undefined when absent). */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-z_]+)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/([a-z_]+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return undefined;
}
