/**
 * `voice-bridge doctor`: checks the configuration end to end and says what is wrong
 * and how to fix it — the environment, the DSP backend, Twilio credentials (an
 * account fetch), every configured agent (connect, handshake, close) and whether the
 * public URL reaches this bridge. Every check is bounded by a timeout.
 */
import { loadConfig, ConfigError, type Config } from './config.js';
import { loadDsp, dspLoadInfo } from './dsp/load.js';
import { createAgentRegistry } from './agents/registry.js';
import { TwilioRest } from './twilio/rest.js';

export interface Check {
  name: string;
  ok: boolean;
  /** ok but worth saying: fine for trying the bridge locally, not for taking calls. */
  warn?: boolean;
  detail: string;
  fix?: string;
}

/**
 * Why Twilio cannot reach `url`, or undefined when it can be a public HTTPS origin.
 * Media Streams need `wss://` (TLS), and Twilio's servers are on the internet: a
 * loopback, private, link-local or unqualified host is never reachable from them.
 */
export function unreachableByTwilio(url: string): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'not a URL';
  }
  if (u.protocol !== 'https:') return `${u.protocol}// — Twilio needs https:// for webhooks and wss:// for the stream (put TLS in front: a proxy or a tunnel)`;
  const host = u.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (host === 'localhost' || host.endsWith('.localhost') || host.endsWith('.local') || host.endsWith('.internal') || host.endsWith('.lan') || host.endsWith('.home.arpa')) return `${host} is a local name`;
  if (!host.includes('.') && !host.includes(':')) return `${host} is not a fully qualified name`;
  const v4 = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(host)?.slice(1).map(Number);
  if (v4) {
    const [a, b] = v4 as [number, number];
    if (a === 127 || a === 10 || a === 0 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 169 && b === 254) || (a === 100 && b >= 64 && b <= 127)) return `${host} is a loopback, private or link-local address`;
  } else if (host.includes(':')) {
    if (host === '::1' || host === '::' || /^f[cd]/.test(host) || /^fe[89ab]/.test(host) || host.startsWith('::ffff:')) return `${host} is a loopback, private or link-local address`;
  }
  return undefined;
}

export interface DoctorOptions {
  env?: Record<string, string | undefined>;
  timeoutMs?: number;
  /** Skip reaching BRIDGE_PUBLIC_URL (e.g. when the bridge is not running). */
  skipPublicUrl?: boolean;
}

export async function runDoctor(options: DoctorOptions = {}): Promise<Check[]> {
  const env = options.env ?? process.env;
  const timeoutMs = options.timeoutMs ?? 8000;
  const checks: Check[] = [];
  let config: Config;
  try {
    config = loadConfig(env);
    checks.push({ name: 'configuration', ok: true, detail: 'environment variables are valid' });
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    checks.push({ name: 'configuration', ok: false, detail: e.problems.join('; '), fix: 'fix the listed variables (README: Environment variables)' });
    return checks;
  }

  try {
    const dsp = await loadDsp({ backend: config.dsp });
    const info = dspLoadInfo();
    checks.push(
      info?.fallbackReason
        ? { name: 'DSP backend', ok: true, detail: `ts fallback (native unavailable: ${info.fallbackReason})`, fix: 'install Rust (cargo) and run "npm run build:native" for the native core' }
        : { name: 'DSP backend', ok: true, detail: `${dsp.name}${info?.simd ? ` (${info.simd})` : ''}` },
    );
  } catch (e) {
    checks.push({ name: 'DSP backend', ok: false, detail: (e as Error).message, fix: 'run "npm run build:native" (needs cargo) or set BRIDGE_DSP=auto' });
  }

  const { accountSid, authToken, apiUrl } = config.twilio;
  if (accountSid && authToken) {
    try {
      const rest = new TwilioRest({ accountSid, authToken, apiUrl, timeoutMs });
      const account = await rest.fetchAccount();
      checks.push({ name: 'Twilio credentials', ok: account.status === 'active', detail: `account ${account.sid} (${account.friendlyName || 'no name'}) is ${account.status}`, fix: account.status === 'active' ? undefined : 'the account must be active' });
    } catch (e) {
      const err = e as { code?: string; message?: string };
      checks.push({ name: 'Twilio credentials', ok: false, detail: `${err.code ?? ''} ${err.message ?? String(e)}`.trim(), fix: 'check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN (Console → Account info)' });
    }
  } else {
    checks.push({
      name: 'Twilio credentials',
      ok: !authToken && !accountSid,
      detail: authToken || accountSid ? 'only one of TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN is set' : 'not set: signatures are not checked, hang-up closes the stream, outbound calls are off',
      fix: 'set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN for production',
    });
  }

  let registry;
  try {
    registry = createAgentRegistry(config);
  } catch (e) {
    checks.push({ name: 'agents', ok: false, detail: e instanceof ConfigError ? e.problems.join('; ') : (e as Error).message, fix: 'set the agent variables (README: Agents)' });
  }
  if (registry) {
    for (const name of registry.available()) {
      const factory = registry.get(name);
      const session = factory.create({ callSid: 'CA' + '0'.repeat(32), parameters: {} });
      const t0 = Date.now();
      try {
        await session.connect(AbortSignal.timeout(timeoutMs));
        checks.push({ name: `agent ${name}`, ok: true, detail: `connected and handshook in ${Date.now() - t0} ms` });
      } catch (e) {
        const err = e as { code?: string; message?: string };
        checks.push({ name: `agent ${name}`, ok: false, detail: `${err.code ?? ''} ${err.message ?? String(e)}`.trim(), fix: `check the ${name.toUpperCase()}_* variables and that the service is reachable` });
      } finally {
        await Promise.race([session.close('doctor'), new Promise((r) => setTimeout(r, 2000).unref())]);
      }
    }
  }

  if (!config.publicUrl) {
    // Out of the box (no Twilio account) this is the local echo setup: say so, do not fail.
    const production = Boolean(accountSid || authToken);
    checks.push({
      name: 'public URL',
      ok: !production,
      warn: !production,
      detail: production
        ? 'BRIDGE_PUBLIC_URL is not set: stream URLs and signature checks use each request\'s Host/X-Forwarded-* headers'
        : 'not set: fine for local calls (voice-bridge simulate); Twilio cannot reach this bridge',
      fix: 'set BRIDGE_PUBLIC_URL=https://your.host (the URL Twilio reaches)',
    });
  } else {
    const why = unreachableByTwilio(config.publicUrl);
    checks.push(why
      ? { name: 'public URL', ok: false, detail: `${config.publicUrl}: Twilio cannot reach it (${why})`, fix: 'set BRIDGE_PUBLIC_URL to the public https:// URL of your proxy or tunnel' }
      : { name: 'public URL', ok: true, detail: `${config.publicUrl} is a public https:// URL` });
    if (!options.skipPublicUrl) {
      const name = 'public URL reaches this bridge';
      try {
        const r = await fetch(`${config.publicUrl}/healthz`, { signal: AbortSignal.timeout(timeoutMs) });
        const body = (await r.json().catch(() => null)) as { status?: string } | null;
        checks.push(r.ok && body?.status === 'ok'
          ? { name, ok: true, detail: `${config.publicUrl}/healthz answers` }
          : { name, ok: false, detail: `${config.publicUrl}/healthz answered HTTP ${r.status}`, fix: 'point BRIDGE_PUBLIC_URL at this bridge (through your proxy/tunnel)' });
      } catch (e) {
        checks.push({ name, ok: false, detail: `${config.publicUrl} unreachable: ${(e as Error).message}`, fix: 'start the bridge and make BRIDGE_PUBLIC_URL reach it over HTTPS (or run with --offline)' });
      }
    }
  }
  return checks;
}

export async function doctorCommand(argv: string[], env: Record<string, string | undefined> = process.env): Promise<number> {
  const checks = await runDoctor({ env, skipPublicUrl: argv.includes('--offline') });
  for (const c of checks) {
    console.log(`${!c.ok ? 'FAIL' : c.warn ? 'warn' : 'ok  '}  ${c.name}: ${c.detail}`);
    if ((!c.ok || c.warn) && c.fix) console.log(`      fix: ${c.fix}`);
  }
  const failed = checks.filter((c) => !c.ok).length;
  const warned = checks.filter((c) => c.ok && c.warn).length;
  console.log(failed === 0 ? `all checks passed${warned ? ` (${warned} warning${warned > 1 ? 's' : ''})` : ''}` : `${failed} check(s) failed`);
  return failed === 0 ? 0 : 1;
}
