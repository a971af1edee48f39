/**
 * A local fake of the Twilio REST API (api.twilio.com/2010-04-01), on
 * 127.0.0.1:0, written from https://www.twilio.com/docs/voice/api/call-resource:
 *
 *   GET  /2010-04-01/Accounts/{AccountSid}.json
 *   POST /2010-04-01/Accounts/{AccountSid}/Calls.json        To, From, Twiml | Url → 201 call JSON
 *   POST /2010-04-01/Accounts/{AccountSid}/Calls/{Sid}.json  Status=completed|canceled → 200 call JSON
 *   GET  /2010-04-01/Accounts/{AccountSid}/Calls/{Sid}.json
 *
 * HTTP Basic auth against one account SID and auth token (401 + code 20003
 * otherwise); form bodies; snake_case JSON; errors as Twilio's
 * `{ code, message, more_info, status }`; unknown call SIDs → 404 + code 20404.
 * Twilio's error numbers for missing parameters (21201 To, 21213 From, 21205 Url)
 * are as we remember them from Twilio's error list; the client only relies on 20003
 * and 20404. Every request is recorded for assertions; `hold` delays answers (to
 * test timeouts) and `failNext` scripts one error reply.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  /** Decoded form body (repeated names → last value in `form`, all values in `formAll`). */
  form: Record<string, string>;
  formAll: Record<string, string[]>;
  rawBody: string;
  /** Basic-auth user, when present and well-formed. */
  username?: string;
}

export interface FakeCall {
  sid: string;
  to: string;
  from: string;
  twiml?: string;
  url?: string;
  statusCallback?: string;
  status: string;
}

export interface FakeTwilioRest {
  /** Base URL, e.g. http://127.0.0.1:43123 (TWILIO_API_URL). */
  readonly url: string;
  readonly accountSid: string;
  readonly authToken: string;
  readonly requests: RecordedRequest[];
  readonly calls: Map<string, FakeCall>;
  /** Delay every answer by this many ms (0 = none). */
  holdMs: number;
  /** The next request gets this reply instead (once). */
  failNext(status: number, body: unknown): void;
  close(): Promise<void>;
}

const API = '/2010-04-01';

function twilioError(res: ServerResponse, status: number, code: number, message: string): void {
  send(res, status, { code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status });
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function callJson(accountSid: string, c: FakeCall): Record<string, unknown> {
  const now = new Date().toUTCString().replace('GMT', '+0000');
  return {
    sid: c.sid,
    date_created: now,
    date_updated: now,
    parent_call_sid: null,
    account_sid: accountSid,
    to: c.to,
    to_formatted: c.to,
    from: c.from,
    from_formatted: c.from,
    phone_number_sid: null,
    status: c.status,
    start_time: null,
    end_time: c.status === 'completed' || c.status === 'canceled' ? now : null,
    duration: null,
    price: null,
    price_unit: 'USD',
    direction: 'outbound-api',
    answered_by: null,
    api_version: '2010-04-01',
    forwarded_from: null,
    group_sid: null,
    caller_name: null,
    queue_time: '0',
    trunk_sid: null,
    uri: `${API}/Accounts/${accountSid}/Calls/${c.sid}.json`,
    subresource_uris: {
      notifications: `${API}/Accounts/${accountSid}/Calls/${c.sid}/Notifications.json`,
      recordings: `${API}/Accounts/${accountSid}/Calls/${c.sid}/Recordings.json`,
      streams: `${API}/Accounts/${accountSid}/Calls/${c.sid}/Streams.json`,
    },
  };
}

export async function startFakeTwilioRest(options: { accountSid?: string; authToken?: string } = {}): Promise<FakeTwilioRest> {
  const accountSid = options.accountSid ?? `AC${randomBytes(16).toString('hex')}`;
  const authToken = options.authToken ?? randomBytes(16).toString('hex');
  const requests: RecordedRequest[] = [];
  const calls = new Map<string, FakeCall>();
  let scripted: { status: number; body: unknown } | undefined;
  const timers = new Set<NodeJS.Timeout>();

  const handle = (req: IncomingMessage, res: ServerResponse, rawBody: string): void => {
    const path = (req.url ?? '/').split('?')[0]!;
    const formAll: Record<string, string[]> = {};
    const isForm = (req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded');
    if (isForm) for (const [k, v] of new URLSearchParams(rawBody)) (formAll[k] ??= []).push(v);
    const form = Object.fromEntries(Object.entries(formAll).map(([k, v]) => [k, v[v.length - 1]!]));
    const auth = /^Basic ([A-Za-z0-9+/=]+)$/.exec(req.headers.authorization ?? '');
    const decoded = auth ? Buffer.from(auth[1]!, 'base64').toString('utf8') : undefined;
    const colon = decoded?.indexOf(':') ?? -1;
    const username = decoded !== undefined && colon > 0 ? decoded.slice(0, colon) : undefined;
    const password = decoded !== undefined && colon > 0 ? decoded.slice(colon + 1) : undefined;
    const rec: RecordedRequest = { method: req.method ?? '', path, headers: req.headers, form, formAll, rawBody };
    if (username !== undefined) rec.username = username;
    requests.push(rec);

    if (scripted) {
      const s = scripted;
      scripted = undefined;
      send(res, s.status, s.body);
      return;
    }
    if (username !== accountSid || password !== authToken) {
      res.setHeader('www-authenticate', 'Basic realm="Twilio API"');
      twilioError(res, 401, 20003, 'Authenticate');
      return;
    }
    const notFound = () => twilioError(res, 404, 20404, `The requested resource ${path} was not found`);
    const m = /^\/2010-04-01\/Accounts\/([^/]+?)(?:\/Calls(?:\/([^/]+?))?)?\.json$/.exec(path);
    if (!m || m[1] !== accountSid) return notFound();
    const isCalls = path.includes('/Calls');
    const callSid = m[2];

    if (!isCalls) {
      if (req.method !== 'GET') return twilioError(res, 405, 20004, 'Method not allowed');
      send(res, 200, {
        sid: accountSid,
        owner_account_sid: accountSid,
        friendly_name: 'Fake Twilio account',
        status: 'active',
        type: 'Full',
        date_created: 'Mon, 01 Jan 2024 00:00:00 +0000',
        date_updated: 'Mon, 01 Jan 2024 00:00:00 +0000',
        uri: `${API}/Accounts/${accountSid}.json`,
        subresource_uris: { calls: `${API}/Accounts/${accountSid}/Calls.json` },
      });
      return;
    }
    if (callSid === undefined) {
      if (req.method !== 'POST') return twilioError(res, 405, 20004, 'Method not allowed');
      if (!form.To) return twilioError(res, 400, 21201, "No 'To' number is specified");
      if (!form.From) return twilioError(res, 400, 21213, "No 'From' number is specified");
      if (!form.Url && !form.Twiml && !form.ApplicationSid) return twilioError(res, 400, 21205, 'Url parameter is required.');
      if (form.Twiml !== undefined && form.Twiml.length > 4000) return twilioError(res, 400, 21232, 'Twiml is too long (max 4000 characters)');
      const call: FakeCall = { sid: `CA${randomBytes(16).toString('hex')}`, to: form.To, from: form.From, status: 'queued' };
      // twilio-node call.ts: "If both twiml and url are provided then twiml parameter will be ignored."
      if (form.Url) call.url = form.Url;
      else if (form.Twiml) call.twiml = form.Twiml;
      if (form.StatusCallback) call.statusCallback = form.StatusCallback;
      calls.set(call.sid, call);
      send(res, 201, callJson(accountSid, call));
      return;
    }
    const call = calls.get(callSid);
    if (!call) return notFound();
    if (req.method === 'GET') return send(res, 200, callJson(accountSid, call));
    if (req.method !== 'POST') return twilioError(res, 405, 20004, 'Method not allowed');
    if (form.Status !== undefined) {
      if (form.Status !== 'completed' && form.Status !== 'canceled') return twilioError(res, 400, 21218, `Invalid value for Status: ${form.Status}`);
      // Hanging up an already-ended call again answers with its final state (idempotent here).
      if (call.status !== 'completed' && call.status !== 'canceled') call.status = form.Status;
      return send(res, 200, callJson(accountSid, call));
    }
    if (form.Twiml !== undefined || form.Url !== undefined) return send(res, 200, callJson(accountSid, call));
    return twilioError(res, 400, 21218, 'Nothing to update');
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', () => res.destroy());
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const go = () => {
        try {
          handle(req, res, body);
        } catch (e) {
          send(res, 500, { code: 20500, message: `fake crashed: ${String(e)}`, status: 500 });
        }
      };
      if (fake.holdMs > 0) {
        const t = setTimeout(() => {
          timers.delete(t);
          if (!res.destroyed) go();
        }, fake.holdMs);
        timers.add(t);
      } else go();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  const fake: FakeTwilioRest = {
    url: `http://127.0.0.1:${port}`,
    accountSid,
    authToken,
    requests,
    calls,
    holdMs: 0,
    failNext(status, body) {
      scripted = { status, body };
    },
    close() {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return fake;
}
