/**
 * `voice-bridge tts "text" --out hello.wav [--voice ID] [--model ID]`: speak text
 * with ElevenLabs and write it as a μ-law 8 kHz mono WAV — exactly the audio a
 * caller would hear. Reads ELEVENLABS_API_KEY, ELEVENLABS_VOICE_ID (or --voice),
 * ELEVENLABS_TTS_URL and ELEVENLABS_TTS_MODEL (or --model) from the environment.
 *
 * Exit codes: 0 written; 1 synthesis or writing failed; 2 bad arguments;
 * 78 (EX_CONFIG) configuration missing or malformed (no API key, no voice id,
 * a bad ELEVENLABS_* value).
 */
import { parseArgs } from 'node:util';
import { writeWav } from './audio/wav.js';
import { ElevenLabsTtsClient } from './agents/elevenlabs/tts/client.js';
import { readElevenLabsTtsEnv } from './agents/elevenlabs/tts/config.js';
import { isBridgeError } from './errors.js';

export interface TtsCommandIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** Default process.env. */
  env?: Readonly<Record<string, string | undefined>>;
}

const defaultIo: TtsCommandIo = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
};

export const TTS_USAGE = `usage: voice-bridge tts "text to speak" --out FILE.wav [--voice ID] [--model ID]

  --out FILE      where to write the speech (μ-law 8 kHz mono WAV, what a caller hears)
  --voice ID      ElevenLabs voice id (default $ELEVENLABS_VOICE_ID)
  --model ID      ElevenLabs model id (default $ELEVENLABS_TTS_MODEL or eleven_flash_v2_5)
  -h, --help      this text

needs ELEVENLABS_API_KEY in the environment
`;

const EX_CONFIG = 78;

/** Runs the command; returns the exit code. `argv` are the arguments after `tts`. */
export async function ttsCommand(argv: string[], io: TtsCommandIo = defaultIo): Promise<number> {
  let values: { out?: string; voice?: string; model?: string; help?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: true,
      options: {
        out: { type: 'string' },
        voice: { type: 'string' },
        model: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (e) {
    io.stderr(`voice-bridge tts: ${e instanceof Error ? e.message : String(e)}\n\n${TTS_USAGE}`);
    return 2;
  }
  if (values.help) {
    io.stdout(TTS_USAGE);
    return 0;
  }
  const usage = (msg: string) => {
    io.stderr(`voice-bridge tts: ${msg}\n\n${TTS_USAGE}`);
    return 2;
  };
  if (positionals.length === 0) return usage('give the text to speak, in quotes');
  if (positionals.length > 1) return usage(`give the text as one argument, in quotes (got ${positionals.length} arguments)`);
  const text = positionals[0]!;
  if (text.trim() === '') return usage('the text is empty');
  if (values.out === undefined || values.out.trim() === '') return usage('--out FILE.wav is required');
  if (values.voice !== undefined && !/^[A-Za-z0-9_-]{1,64}$/.test(values.voice)) return usage(`--voice ${JSON.stringify(values.voice)} is not a voice id (1–64 letters, digits, '_' or '-')`);
  if (values.model !== undefined && !/^[A-Za-z0-9_.-]{1,64}$/.test(values.model)) return usage(`--model ${JSON.stringify(values.model)} is not a model id`);

  const { env, problems } = readElevenLabsTtsEnv(io.env ?? process.env);
  // A malformed ELEVENLABS_VOICE_ID/_MODEL does not matter when the flag replaces it.
  const relevant = problems.filter(
    (p) => !(values.voice !== undefined && p.startsWith('ELEVENLABS_VOICE_ID')) && !(values.model !== undefined && p.startsWith('ELEVENLABS_TTS_MODEL')) && !p.startsWith('ELEVENLABS_GREETING'),
  );
  if (env.apiKey === undefined) relevant.unshift('ELEVENLABS_API_KEY is not set');
  const voiceId = values.voice ?? env.voiceId;
  if (voiceId === undefined) relevant.push('no voice: set ELEVENLABS_VOICE_ID or pass --voice ID');
  if (relevant.length > 0 || env.apiKey === undefined || voiceId === undefined) {
    io.stderr(`voice-bridge tts: configuration:\n  - ${relevant.join('\n  - ')}\n`);
    return EX_CONFIG;
  }

  const client = new ElevenLabsTtsClient({
    apiKey: env.apiKey,
    voiceId,
    baseUrl: env.baseUrl,
    modelId: values.model ?? env.modelId,
    totalTimeoutMs: env.timeoutMs,
    cacheEntries: 0,
    cacheBytes: 0,
  });
  let audio: Uint8Array;
  try {
    audio = await client.synthesize(text, { signal: AbortSignal.timeout(env.timeoutMs + 5000) });
  } catch (e) {
    const code = isBridgeError(e) ? `${e.code}: ` : '';
    io.stderr(`voice-bridge tts: synthesis failed: ${code}${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  } finally {
    client.close();
  }
  if (audio.length === 0) {
    io.stderr('voice-bridge tts: the service returned no audio\n');
    return 1;
  }
  try {
    await writeWav(values.out, { encoding: 'ulaw', sampleRateHz: 8000, channels: 1, data: audio });
  } catch (e) {
    io.stderr(`voice-bridge tts: could not write ${values.out}: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
  io.stdout(`wrote ${(audio.length / 8000).toFixed(2)} s of μ-law 8 kHz speech (${audio.length} bytes) to ${values.out}\n`);
  return 0;
}
