/**
 * A small Twilio REST client: create an outbound call, hang one up, fetch the
 * account (https://www.twilio.com/docs/voice/api/call-resource).
 *
 * Why `fetch` and not the official `twilio` package here: the package has no
 * base-URL option — `https://api.twilio.com` is hard-coded per domain
 * (`rest/ApiBase.js`) and only rewritten for edge/region — so pointing it at the
 * local fake (TWILIO_API_URL) would mean injecting a custom `httpClient` that
 * rewrites every URI, i.e. writing the transport anyway. It also cannot take an
 * AbortSignal per request. The wire format is small and stable: HTTP Basic auth
 * (AccountSid:AuthToken, or API key SID:secret), `application/x-www-form-urlencoded`
 * bodies with PascalCase names, JSON responses with snake_case fields, and errors
 * as JSON `{ code, message, more_info, status }`. Signatures still use the package
 * (signature.ts).
 *
 * Every request is bounded by `timeoutMs` (and an optional caller AbortSignal).
 * Nothing is retried: creating a call is not idempotent.
 */
import { anySignal } from '../any-signal.js';
import { ErrorCodes, type ErrorCategory } from '../errors.js';

/** Stable codes of the REST client (declared, with their meaning, in src/errors.ts). */
export const TwilioRestCodes = {
  REST: ErrorCodes.TWILIO_REST,
  AUTH: ErrorCodes.TWILIO_AUTH,
  NOT_FOUND: ErrorCodes.TWILIO_NOT_FOUND,
  TIMEOUT: ErrorCodes.TWILIO_TIMEOUT,
  NETWORK: ErrorCodes.TWILIO_NETWORK,
  BAD_RESPONSE: ErrorCodes.TWILIO_BAD_RESPONSE,
  ARGUMENT: ErrorCodes.TWILIO_ARGUMENT,
} as const;
export type TwilioRestCode = (typeof TwilioRestCodes)[keyof typeof TwilioRestCodes];

export class TwilioRestError extends Error {
  readonly code: TwilioRestCode;
  readonly category: ErrorCategory;
  /** Whether the same request may succeed later (timeouts, network, 429, 5xx). */
  readonly retryable: boolean;
  /** HTTP status, when Twilio answered. */
  readonly status?: number;
  /** Twilio's error number (20003, 20404, 21201, …), when the body carried one. */
  readonly twilioCode?: number;
  readonly moreInfo?: string;

  constructor(code: TwilioRestCode, message: string, details: { category: ErrorCategory; status?: number; twilioCode?: number; moreInfo?: string; cause?: unknown }) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'TwilioRestError';
    this.code = code;
    this.category = details.category;
    this.retryable = details.category === 'unavailable';
    if (details.status !== undefined) this.status = details.status;
    if (details.twilioCode !== undefined) this.twilioCode = details.twilioCode;
    if (details.moreInfo !== undefined) this.moreInfo = details.moreInfo;
  }
}

export interface TwilioRestOptions {
  accountSid: string;
  authToken: string;
  /** Basic-auth user when using an API key (SK…); default accountSid. authToken is then the key secret. */
  username?: string;
  /** Default https://api.twilio.com (TWILIO_API_URL; tests point it at the local fake). */
  apiUrl?: string;
  /** Bound of each request, connect to last body byte. Default 10 000 ms. */
  timeoutMs?: number;
}

export interface RequestOptions {
  signal?: AbortSignal;
}

export type CallStatus = 'queued' | 'ringing' | 'in-progress' | 'completed' | 'busy' | 'failed' | 'no-answer' | 'canceled';

export type CreateCallParams = {
  /** E.164 number, SIP URI or client identifier. */
  to: string;
  /** Caller ID (one of your Twilio numbers). */
  from: string;
  /** Status callback URL (POSTed on completion; add events with statusCallbackEvent). */
  statusCallback?: string;
  statusCallbackEvent?: readonly ('initiated' | 'ringing' | 'answered' | 'completed')[];
  /** Seconds to let it ring (Twilio default 60, max 600). */
  timeoutSeconds?: number;
  /**
   * Answering machine detection, asynchronous (AsyncAmd=true): the call connects at once
   * and Twilio POSTs `AnsweredBy` to `amdStatusCallback` when it knows.
   */
  machineDetection?: { mode: 'Enable' | 'DetectMessageEnd'; amdStatusCallback: string };
} & ({ twiml: string; url?: undefined } | { url: string; twiml?: undefined });

export interface CallInfo {
  sid: string;
  status: CallStatus | string;
}
export interface EndCallResult extends CallInfo {
  /** True when Twilio answered 404/20404: the call had already ended (or never existed). */
  alreadyEnded: boolean;
}
export interface AccountInfo {
  sid: string;
  friendlyName: string;
  /** active | suspended | closed */
  status: string;
  /** Trial | Full */
  type: string;
}

const ACCOUNT_SID_RE = /^AC[0-9a-fA-F]{32}$/;
const CALL_SID_RE = /^CA[0-9a-fA-F]{32}$/;
const TWIML_MAX_CHARS = 4000; // https://www.twilio.com/docs/api/errors/32018

function argError(message: string): TwilioRestError {
  return new TwilioRestError(TwilioRestCodes.ARGUMENT, message, { category: 'invalid-input' });
}

function httpUrl(name: string, v: string): void {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw argError(`${name} must be an absolute URL`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw argError(`${name} must be an http(s) URL`);
}

export class TwilioRest {
  readonly accountSid: string;
  readonly apiUrl: string;
  readonly timeoutMs: number;
  readonly #authorization: string;

  constructor(options: TwilioRestOptions) {
    if (!ACCOUNT_SID_RE.test(options.accountSid)) throw argError('accountSid must be "AC" followed by 32 hex digits');
    if (!options.authToken) throw argError('authToken is required');
    const apiUrl = (options.apiUrl ?? 'https://api.twilio.com').replace(/\/+$/, '');
    httpUrl('apiUrl', apiUrl);
    const timeoutMs = options.timeoutMs ?? 10_000;
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw argError('timeoutMs must be a positive number');
    this.accountSid = options.accountSid;
    this.apiUrl = apiUrl;
    this.timeoutMs = timeoutMs;
    this.#authorization = `Basic ${Buffer.from(`${options.username ?? options.accountSid}:${options.authToken}`).toString('base64')}`;
  }

  /** POST /2010-04-01/Accounts/{AccountSid}/Calls.json — returns the new call's SID and status ("queued"). */
  async createCall(params: CreateCallParams, options: RequestOptions = {}): Promise<CallInfo> {
    if (!params.to) throw argError('to is required');
    if (!params.from) throw argError('from is required');
    const hasTwiml = typeof params.twiml === 'string';
    const hasUrl = typeof params.url === 'string';
    // Twilio would silently ignore Twiml when both are sent (call-resource docs); refuse the ambiguity instead.
    if (hasTwiml === hasUrl) throw argError('exactly one of twiml or url is required');
    const form = new URLSearchParams();
    form.set('To', params.to);
    form.set('From', params.from);
    if (hasTwiml) {
      if (params.twiml!.length === 0 || params.twiml!.length > TWIML_MAX_CHARS) throw argError(`twiml must be 1–${TWIML_MAX_CHARS} characters`);
      form.set('Twiml', params.twiml!);
    } else {
      httpUrl('url', params.url!);
      form.set('Url', params.url!);
    }
    if (params.statusCallback !== undefined) {
      httpUrl('statusCallback', params.statusCallback);
      form.set('StatusCallback', params.statusCallback);
      for (const ev of params.statusCallbackEvent ?? []) form.append('StatusCallbackEvent', ev);
    }
    if (params.machineDetection !== undefined) {
      httpUrl('amdStatusCallback', params.machineDetection.amdStatusCallback);
      form.set('MachineDetection', params.machineDetection.mode);
      form.set('AsyncAmd', 'true');
      form.set('AsyncAmdStatusCallback', params.machineDetection.amdStatusCallback);
    }
    if (params.timeoutSeconds !== undefined) {
      if (!Number.isInteger(params.timeoutSeconds) || params.timeoutSeconds < 1 || params.timeoutSeconds > 600) throw argError('timeoutSeconds must be an integer from 1 to 600');
      form.set('Timeout', String(params.timeoutSeconds));
    }
    const body = await this.#request('POST', `/2010-04-01/Accounts/${this.accountSid}/Calls.json`, form, options);
    return callInfo(body);
  }

  /**
   * Hangs up: POST …/Calls/{Sid}.json `Status=completed`. A 404 with code 20404
   * means the call already ended — resolved with `alreadyEnded: true`, not thrown,
   * so hang-up stays idempotent.
   */
  async endCall(callSid: string, options: RequestOptions = {}): Promise<EndCallResult> {
    if (!CALL_SID_RE.test(callSid)) throw argError('callSid must be "CA" followed by 32 hex digits');
    const form = new URLSearchParams({ Status: 'completed' });
    try {
      const body = await this.#request('POST', `/2010-04-01/Accounts/${this.accountSid}/Calls/${callSid}.json`, form, options);
      return { ...callInfo(body), alreadyEnded: false };
    } catch (e) {
      if (e instanceof TwilioRestError && e.status === 404 && e.twilioCode === 20404) {
        return { sid: callSid, status: 'completed', alreadyEnded: true };
      }
      throw e;
    }
  }

  /**
   * POST …/Calls/{Sid}.json with `Twiml`: redirects a live call to new instructions
   * (e.g. a spoken apology and a hang-up); the Media Stream ends as Twilio moves on.
   * A call that already ended (404, code 20404) resolves with alreadyEnded.
   */
  async updateCallTwiml(callSid: string, twiml: string, options: RequestOptions = {}): Promise<EndCallResult> {
    if (!CALL_SID_RE.test(callSid)) throw argError('callSid must be "CA" followed by 32 hex digits');
    if (twiml.length === 0 || twiml.length > 4000) throw argError('twiml must be 1–4000 characters');
    const form = new URLSearchParams({ Twiml: twiml });
    try {
      const body = await this.#request('POST', `/2010-04-01/Accounts/${this.accountSid}/Calls/${callSid}.json`, form, options);
      return { ...callInfo(body), alreadyEnded: false };
    } catch (e) {
      if (e instanceof TwilioRestError && e.status === 404 && e.twilioCode === 20404) {
        return { sid: callSid, status: 'completed', alreadyEnded: true };
      }
      throw e;
    }
  }

  /** GET /2010-04-01/Accounts/{AccountSid}.json — proves the credentials work (doctor). */
  async fetchAccount(options: RequestOptions = {}): Promise<AccountInfo> {
    const body = await this.#request('GET', `/2010-04-01/Accounts/${this.accountSid}.json`, undefined, options);
    const sid = body.sid;
    if (typeof sid !== 'string') throw badResponse('account without "sid"');
    return {
      sid,
      friendlyName: typeof body.friendly_name === 'string' ? body.friendly_name : '',
      status: typeof body.status === 'string' ? body.status : 'unknown',
      type: typeof body.type === 'string' ? body.type : 'unknown',
    };
  }

  async #request(method: 'GET' | 'POST', path: string, form: URLSearchParams | undefined, options: RequestOptions): Promise<Record<string, unknown>> {
    const timeout = AbortSignal.timeout(this.timeoutMs);
    const signal = options.signal ? anySignal([timeout, options.signal]) : timeout;
    const what = `${method} ${path}`;
    try {
      const res = await fetch(`${this.apiUrl}${path}`, {
        method,
        headers: {
          authorization: this.#authorization,
          accept: 'application/json',
          ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
        },
        body: form?.toString(),
        signal,
        redirect: 'error',
      });
      const text = await res.text();
      let json: unknown;
      try {
        json = text === '' ? {} : JSON.parse(text);
      } catch {
        json = undefined;
      }
      const body = typeof json === 'object' && json !== null && !Array.isArray(json) ? (json as Record<string, unknown>) : undefined;
      if (res.ok) {
        if (!body) throw badResponse(`${what}: HTTP ${res.status} with a non-JSON body`);
        return body;
      }
      throw httpError(what, res.status, body);
    } catch (e) {
      if (e instanceof TwilioRestError) throw e;
      if (timeout.aborted) {
        throw new TwilioRestError(TwilioRestCodes.TIMEOUT, `${what}: no answer from Twilio within ${this.timeoutMs} ms`, { category: 'unavailable', cause: e });
      }
      if (options.signal?.aborted) {
        throw new TwilioRestError(TwilioRestCodes.NETWORK, `${what}: aborted`, { category: 'unavailable', cause: e });
      }
      const reason = e instanceof Error ? ((e.cause as { code?: string } | undefined)?.code ?? e.message) : String(e);
      throw new TwilioRestError(TwilioRestCodes.NETWORK, `${what}: ${reason}`, { category: 'unavailable', cause: e });
    }
  }
}

function badResponse(message: string): TwilioRestError {
  return new TwilioRestError(TwilioRestCodes.BAD_RESPONSE, message, { category: 'unavailable' });
}

function httpError(what: string, status: number, body: Record<string, unknown> | undefined): TwilioRestError {
  const twilioCode = typeof body?.code === 'number' ? body.code : undefined;
  const moreInfo = typeof body?.more_info === 'string' ? body.more_info : undefined;
  const detail = typeof body?.message === 'string' ? body.message : `HTTP ${status}`;
  const message = `${what}: ${detail}${twilioCode !== undefined ? ` (Twilio error ${twilioCode})` : ''}`;
  const d = { status, twilioCode, moreInfo };
  if (status === 401 || status === 403) return new TwilioRestError(TwilioRestCodes.AUTH, message, { ...d, category: 'invalid-input' });
  if (status === 404) return new TwilioRestError(TwilioRestCodes.NOT_FOUND, message, { ...d, category: 'invalid-input' });
  if (status === 429 || status >= 500) return new TwilioRestError(TwilioRestCodes.REST, message, { ...d, category: 'unavailable' });
  return new TwilioRestError(TwilioRestCodes.REST, message, { ...d, category: 'invalid-input' });
}

function callInfo(body: Record<string, unknown>): CallInfo {
  if (typeof body.sid !== 'string' || typeof body.status !== 'string') throw badResponse('call without "sid"/"status"');
  return { sid: body.sid, status: body.status };
}

/** A client from the validated config (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_API_URL). */
export function twilioRestFromConfig(config: { twilio: { accountSid?: string; authToken?: string; apiUrl?: string } }, timeoutMs?: number): TwilioRest {
  const { accountSid, authToken, apiUrl } = config.twilio;
  if (!accountSid || !authToken) throw argError('TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are required for the Twilio REST API');
  return new TwilioRest({ accountSid, authToken, ...(apiUrl ? { apiUrl } : {}), ...(timeoutMs ? { timeoutMs } : {}) });
}
