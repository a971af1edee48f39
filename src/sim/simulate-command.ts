/**
 * `voice-bridge simulate`: place one simulated Twilio call against a running
 * bridge and report what the caller experienced.
 *
 *   voice-bridge simulate --wav in.wav [--url ws://127.0.0.1:8080/twilio/stream]
 *       [--out heard.wav] [--fast] [--barge-in-at 2.5 [--barge-in-wav clip.wav]]
 *       [--dtmf 1@3.0]… [--auth-token T] [--param key=value]… [--tail 3] [--timeout 120]
 *
 * The input may be μ-law 8 kHz (sent as is), or PCM16 / A-law / μ-law at any
 * rate, mono or stereo (mixed to mono, resampled to 8 kHz with a windowed-sinc
 * interpolator, encoded to μ-law). Exit codes: 0 the call ran (completed, or the
 * bridge hung up), 1 it did not (refused, timed out, failed), 2 bad arguments or
 * an unreadable WAV.
 */
import { parseArgs } from 'node:util';
import { readWav, writeWav, type WavAudio } from '../audio/wav.js';
import { ALAW_DECODE, ULAW_DECODE, encodeUlaw } from '../dsp/ts/g711.js';
import { runSimulatedCall, type DtmfPress, type SimulatedCallResult } from './simulator.js';

export interface CommandIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** For TWILIO_AUTH_TOKEN when --auth-token is not given. Default process.env. */
  env?: Record<string, string | undefined>;
}

const defaultIo: CommandIo = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
};

export const SIMULATE_USAGE = `usage: voice-bridge simulate --wav in.wav [options]

  --wav FILE            caller audio (μ-law 8 kHz, or PCM16/A-law/μ-law at any rate; stereo is mixed)
  --url URL             bridge Media Streams URL (default ws://127.0.0.1:8080/twilio/stream)
  --out FILE            write what the caller heard (μ-law 8 kHz WAV)
  --fast                send the caller's clip without waiting; real time after it
  --barge-in-at SEC     the caller talks over the agent at this call time
  --barge-in-wav FILE   what the caller says then (default: the --wav clip again)
  --dtmf D@SEC          press key D (0-9 * # A-D) at SEC; repeatable
  --auth-token TOKEN    sign the upgrade (X-Twilio-Signature); default $TWILIO_AUTH_TOKEN
  --param KEY=VALUE     a <Parameter> for start.customParameters; repeatable
  --tail SEC            silence after the caller audio so the agent can answer (default 3)
  --timeout SEC         bound of the whole call (default: length + 30)
  -h, --help            this text
`;

class UsageError extends Error {}

function seconds(name: string, v: string | undefined, def?: number): number | undefined {
  if (v === undefined) return def;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < 0) throw new UsageError(`--${name} must be a non-negative number of seconds (got ${JSON.stringify(v)})`);
  return n;
}

/** Runs the command; returns the process exit code. `argv` are the arguments after `simulate`. */
export async function simulateCommand(argv: string[], io: CommandIo = defaultIo): Promise<number> {
  let opts: Awaited<ReturnType<typeof prepare>>;
  try {
    opts = await prepare(argv, io);
  } catch (e) {
    if (e instanceof UsageError || (e instanceof Error && (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS'))) {
      io.stderr(`voice-bridge simulate: ${e.message}\n\n${SIMULATE_USAGE}`);
      return 2;
    }
    if (e instanceof Error) {
      io.stderr(`voice-bridge simulate: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  if (opts === 'help') {
    io.stdout(SIMULATE_USAGE);
    return 0;
  }
  const { out, ...call } = opts;
  const result = await runSimulatedCall(call);
  io.stdout(summary(result, call.fast ?? false));
  if (out !== undefined) {
    try {
      await writeWav(out, { encoding: 'ulaw', sampleRateHz: 8000, channels: 1, data: result.heard });
      io.stdout(`heard audio written to ${out}\n`);
    } catch (e) {
      io.stderr(`voice-bridge simulate: could not write ${out}: ${e instanceof Error ? e.message : String(e)}\n`);
      return 1;
    }
  }
  return result.outcome === 'completed' || result.outcome === 'server-closed' ? 0 : 1;
}

async function prepare(argv: string[], io: CommandIo) {
  const { values, positionals } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: true,
    options: {
      wav: { type: 'string' },
      url: { type: 'string', default: 'ws://127.0.0.1:8080/twilio/stream' },
      out: { type: 'string' },
      fast: { type: 'boolean', default: false },
      'barge-in-at': { type: 'string' },
      'barge-in-wav': { type: 'string' },
      dtmf: { type: 'string', multiple: true },
      'auth-token': { type: 'string' },
      param: { type: 'string', multiple: true },
      tail: { type: 'string' },
      timeout: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return 'help' as const;
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
  if (!values.wav) throw new UsageError('--wav is required');
  let url: URL;
  try {
    url = new URL(values.url);
  } catch {
    throw new UsageError(`--url must be a ws:// or wss:// URL (got ${JSON.stringify(values.url)})`);
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') throw new UsageError(`--url must be a ws:// or wss:// URL (got ${JSON.stringify(values.url)})`);
  const tailS = seconds('tail', values.tail, 3)!;
  const bargeAtS = seconds('barge-in-at', values['barge-in-at']);
  const timeoutS = seconds('timeout', values.timeout);
  if (timeoutS === 0) throw new UsageError('--timeout must be more than 0');
  if (values['barge-in-wav'] !== undefined && bargeAtS === undefined) throw new UsageError('--barge-in-wav needs --barge-in-at');
  const dtmf: DtmfPress[] = (values.dtmf ?? []).map((d) => {
    const m = /^([0-9A-D*#])@(\d+(?:\.\d+)?)$/.exec(d);
    if (!m) throw new UsageError(`--dtmf must look like 1@3.0 (a key 0-9 * # A-D, @, seconds); got ${JSON.stringify(d)}`);
    return { digit: m[1]!, atMs: Number(m[2]) * 1000 };
  });
  const customParameters: Record<string, string> = {};
  for (const p of values.param ?? []) {
    const eq = p.indexOf('=');
    if (eq <= 0) throw new UsageError(`--param must look like key=value (got ${JSON.stringify(p)})`);
    customParameters[p.slice(0, eq)] = p.slice(eq + 1);
  }
  const audio = toCallerAudio(await readWav(values.wav));
  const bargeInAudio = bargeAtS === undefined ? undefined : values['barge-in-wav'] ? toCallerAudio(await readWav(values['barge-in-wav'])) : audio;
  const authToken = values['auth-token'] ?? (io.env ?? process.env).TWILIO_AUTH_TOKEN;
  return {
    url: values.url,
    audio,
    fast: values.fast,
    tailMs: tailS * 1000,
    dtmf,
    customParameters,
    ...(authToken ? { authToken } : {}),
    ...(bargeAtS !== undefined ? { bargeInAtMs: bargeAtS * 1000, bargeInAudio: bargeInAudio! } : {}),
    ...(timeoutS !== undefined ? { timeoutMs: timeoutS * 1000 } : {}),
    ...(values.out !== undefined ? { out: values.out } : {}),
  };
}

/** Any readable WAV → the caller's μ-law 8 kHz mono stream. */
export function toCallerAudio(wav: WavAudio): Uint8Array {
  if (wav.encoding === 'ulaw' && wav.sampleRateHz === 8000 && wav.channels === 1) return wav.data;
  let pcm: Int16Array;
  if (wav.encoding === 'pcm16') {
    if (wav.channels === 1) pcm = wav.data;
    else {
      const frames = Math.floor(wav.data.length / wav.channels);
      pcm = new Int16Array(frames);
      for (let i = 0; i < frames; i++) {
        let sum = 0;
        for (let c = 0; c < wav.channels; c++) sum += wav.data[i * wav.channels + c]!;
        pcm[i] = Math.round(sum / wav.channels);
      }
    }
  } else {
    const table = wav.encoding === 'ulaw' ? ULAW_DECODE : ALAW_DECODE;
    pcm = new Int16Array(wav.data.length);
    for (let i = 0; i < pcm.length; i++) pcm[i] = table[wav.data[i]!]!;
  }
  const at8k = resample(pcm, wav.sampleRateHz, 8000);
  const out = new Uint8Array(at8k.length);
  encodeUlaw(at8k, out);
  return out;
}

/**
 * Offline band-limited resampling for a test tool (not the frame path): each
 * output sample is a Blackman-windowed sinc interpolation of the input, with the
 * cutoff at 0.92 × the lower Nyquist frequency, so downsampling does not alias.
 */
export function resample(src: Int16Array, fromHz: number, toHz: number): Int16Array {
  if (fromHz === toHz) return src;
  const ratio = toHz / fromHz;
  const cutoff = 0.92 * Math.min(1, ratio); // in units of the input Nyquist frequency
  const half = Math.ceil(8 / cutoff); // taps each side, in input samples
  const outLen = Math.floor(src.length * ratio);
  const out = new Int16Array(outLen);
  for (let n = 0; n < outLen; n++) {
    const t = n / ratio;
    const center = Math.floor(t);
    let sum = 0;
    let wsum = 0;
    for (let k = center - half + 1; k <= center + half; k++) {
      const x = t - k;
      const u = x / half;
      if (u <= -1 || u >= 1) continue;
      const px = Math.PI * cutoff * x;
      const sinc = px === 0 ? 1 : Math.sin(px) / px;
      const h = sinc * (0.42 + 0.5 * Math.cos(Math.PI * u) + 0.08 * Math.cos(2 * Math.PI * u));
      wsum += h;
      if (k >= 0 && k < src.length) sum += src[k]! * h;
    }
    const v = Math.round(sum / wsum); // unity gain at DC
    out[n] = v > 32767 ? 32767 : v < -32768 ? -32768 : v;
  }
  return out;
}

function fmtS(ms: number | null): string {
  return ms === null ? '—' : `${(ms / 1000).toFixed(2)} s`;
}

function summary(r: SimulatedCallResult, fast: boolean): string {
  const lines: string[] = [];
  const close = r.close ? ` (close ${r.close.code}${r.close.reason ? ` "${r.close.reason}"` : ''} by ${r.close.initiatedBy})` : '';
  lines.push(`call ${r.callSid} stream ${r.streamSid}: ${r.outcome}${close}${r.error ? ` — ${r.error}` : ''}`);
  lines.push(`duration            ${fmtS(r.durationMs)}${fast ? ' (caller clip on a virtual clock)' : ''}`);
  lines.push(`frames              ${r.framesSent} sent (caller), ${r.framesReceived} media messages received (${fmtS(r.bytesReceived / 8)} of agent audio)`);
  lines.push(`first agent audio   ${fmtS(r.firstAgentAudioMs)}${r.responseLatencyMs !== null ? ` (${Math.round(r.responseLatencyMs)} ms after the caller's clip ended)` : ''}`);
  const gapTotal = r.gaps.reduce((s, g) => s + g.durationMs, 0);
  lines.push(`playout gaps        ${r.gaps.length}${r.gaps.length ? ` (${Math.round(gapTotal)} ms in total; first at ${fmtS(r.gaps[0]!.atMs)})` : ''}`);
  const echoed = r.marks.filter((m) => m.echoedAtMs !== null);
  lines.push(`marks               ${r.marks.length} received, ${echoed.length} echoed (${echoed.filter((m) => m.viaClear).length} via clear)`);
  lines.push(`clears              ${r.clears.length}`);
  if (r.bargeIn) {
    lines.push(`barge-in            at ${fmtS(r.bargeIn.atMs)}, ${r.bargeIn.reactionMs === null ? 'no clear from the bridge' : `clear after ${Math.round(r.bargeIn.reactionMs)} ms`}`);
  }
  if (r.dtmfSent.length) lines.push(`dtmf sent           ${r.dtmfSent.map((d) => `${d.digit}@${(d.atMs / 1000).toFixed(2)}`).join(' ')}`);
  if (r.unplayedBytes) lines.push(`unplayed at hang-up ${fmtS(r.unplayedBytes / 8)}`);
  lines.push(`protocol errors     ${r.protocolErrors.length === 0 ? 'none' : r.protocolErrors.length}`);
  for (const e of r.protocolErrors.slice(0, 5)) lines.push(`  - ${e}`);
  return `${lines.join('\n')}\n`;
}
