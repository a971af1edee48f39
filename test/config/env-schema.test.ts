/**
 * One schema, one reader, one pass: every variable read anywhere in src is declared in
 * src/env-schema.ts; booleans and integers have one grammar each; loadConfig lists the
 * problems of every module's settings at once.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { ENV_NAMES, envVar, readEnv, type EnvName } from '../../src/env-schema.js';
import { createLogger, piiLoggingEnabled } from '../../src/log.js';

const src = join(import.meta.dirname, '..', '..', 'src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? sourceFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
    return [];
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
}

const declared = new Set<string>(ENV_NAMES);
const ofType = (type: string) => ENV_NAMES.filter((n) => envVar(n).type === type);

describe('the configuration schema', () => {
  it('declares every environment variable src reads (process.env.X, env.X, (… ?? process.env).X, env["X"], rawValue(env, "X"), get("X"))', () => {
    // Literal reads only: a module that reads through readEnv() gets typed values, and
    // an undeclared name there does not compile.
    const patterns = [/\benv\)?\??\.([A-Z][A-Z0-9_]{2,})\b/g, /\benv\??\.?\[\s*['"]([A-Z][A-Z0-9_]{2,})['"]\s*\]/g, /\brawValue\([^,]+,\s*['"]([A-Z][A-Z0-9_]{2,})['"]/g, /\bget\(\s*['"]([A-Z][A-Z0-9_]{2,})['"]\s*\)/g];
    const undeclared: string[] = [];
    let reads = 0;
    for (const file of sourceFiles(src)) {
      const text = readFileSync(file, 'utf8');
      for (const re of patterns) {
        for (const m of text.matchAll(re)) {
          reads++;
          if (!declared.has(m[1]!)) undeclared.push(`${file.slice(src.length + 1)}: ${m[1]}`);
        }
      }
    }
    expect(reads).toBeGreaterThan(10); // the patterns still find the reads there are
    expect(undeclared).toEqual([]);
  });

  it('gives every variable a type, a doc line and, for numbers, a range that holds its default', () => {
    for (const name of ENV_NAMES) {
      const s = envVar(name);
      expect(['integer', 'number', 'boolean', 'string', undefined]).toContain(s.type);
      expect(s.description, name).toBeTruthy();
      if (s.type === 'integer' || s.type === 'number') {
        expect(typeof s['minimum'], name).toBe('number');
        expect(typeof s['maximum'], name).toBe('number');
        if (s.default !== undefined) expect(readEnv({ [name]: String(s.default) }).problems, name).toEqual([]);
      }
    }
  });

  it('reads every boolean with one grammar (1/0 true/false yes/no on/off, any case); another word is a problem, never "off"', () => {
    const booleans = ofType('boolean');
    expect(booleans).toEqual(expect.arrayContaining(['BRIDGE_LOG_PII', 'BRIDGE_RECORD', 'BRIDGE_CALL_RECORDS', 'PIPECAT_RECONNECT', 'GEMINI_INTERRUPT_NOTE']));
    for (const name of booleans) {
      for (const [text, value] of [['1', true], ['TRUE', true], ['yes', true], ['On', true], ['0', false], ['false', false], ['NO', false], ['off', false]] as const) {
        const r = readEnv({ [name]: text });
        expect(r.problems, `${name}=${text}`).toEqual([]);
        expect(r.values[name as EnvName], `${name}=${text}`).toBe(value);
      }
      expect(readEnv({ [name]: 'maybe' }).problems).toEqual([`${name}="maybe": must be 1/0, true/false, yes/no or on/off`]);
    }
  });

  it('reads every integer with one grammar: decimal digits, so 1e3, 0x10, 12.0 and 5s are problems', () => {
    for (const name of ofType('integer')) {
      for (const text of ['1e3', '0x10', '12.0', '5s']) expect(readEnv({ [name]: text }).problems, `${name}=${text}`).toHaveLength(1);
    }
  });

  it('treats unset, empty and blank alike: the default', () => {
    expect(readEnv({ PORT: '', BRIDGE_RECORD: '  ' })).toMatchObject({ problems: [], values: { PORT: 8080, BRIDGE_RECORD: false } });
  });

  it('BRIDGE_LOG_PII=yes is on: the logger writes pii fields in clear', () => {
    expect(piiLoggingEnabled({ BRIDGE_LOG_PII: 'yes' })).toBe(true);
    expect(piiLoggingEnabled({ BRIDGE_LOG_PII: 'On' })).toBe(true);
    expect(piiLoggingEnabled({ BRIDGE_LOG_PII: 'no' })).toBe(false);
    const out = new PassThrough();
    let text = '';
    out.on('data', (d: Buffer) => (text += d.toString()));
    const logger = createLogger(loadConfig({ BRIDGE_LOG_LEVEL: 'info', BRIDGE_LOG_PII: 'yes' }), out);
    logger.info({ pii: { from: '+15551230000' } }, 'hello');
    logger.flush();
    expect(text).toContain('+15551230000');
    expect(problemsOf({ BRIDGE_LOG_PII: 'maybe' })).toEqual(['BRIDGE_LOG_PII="maybe": must be 1/0, true/false, yes/no or on/off']);
  });

  it("loadConfig lists every module's problems at once: the bridge's own, lifecycle, call records, recording, traces, agents, TTS", () => {
    const problems = problemsOf({
      PORT: 'abc',
      BRIDGE_RECORD: 'maybe',
      DATABASE_URL: 'bogus',
      BRIDGE_LOAD_THRESHOLD: '2',
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
      OPENAI_API_KEY: 'k',
      OPENAI_VOICE: 'a b',
      PIPECAT_RECONNECT: 'maybe',
      ELEVENLABS_TTS_CACHE_MB: 'x',
    });
    expect(problems.map((p) => p.split(/[=: ]/)[0])).toEqual([
      'PORT',
      'BRIDGE_LOAD_THRESHOLD',
      'DATABASE_URL',
      'BRIDGE_RECORD',
      'OTEL_EXPORTER_OTLP_PROTOCOL',
      'OPENAI_VOICE',
      'PIPECAT_RECONNECT',
      'ELEVENLABS_TTS_CACHE_MB',
    ]);
    // A secret is named, never quoted.
    expect(problems.join('\n')).not.toContain('bogus');
  });

  it('a default agent without its keys is a problem of the same pass', () => {
    expect(problemsOf({ BRIDGE_AGENT: 'openai', PORT: '-1' })).toEqual(['PORT="-1": must be an integer from 0 to 65535', 'BRIDGE_AGENT=openai: that agent is not configured (set its keys)']);
  });
});
