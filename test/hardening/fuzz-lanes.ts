/**
 * The hostile lanes of the fuzz test (see fuzz.test.ts), run in a worker thread
 * (fuzz-worker.mjs) so generating 100,000 mutated messages never holds the event loop
 * the bridge and the real calls share — as hostile clients on other machines would not.
 */
import { connect } from 'node:net';
import { performance } from 'node:perf_hooks';
import { WebSocket } from 'ws';
import { mintStreamToken, streamTokenKey } from '../../src/twilio/stream-token.js';
import { Prng, newIds, nextItem, upgradeRequest, validConnected, validStart, validStop, type GenState } from './fuzz-gen.js';

export interface LanesOptions {
  seed: number;
  totalMessages: number;
  url: string;
  streamUrl: string;
  signature: string;
  /** The bridge's TWILIO_AUTH_TOKEN: real streams carry the stream token their webhook would have issued. */
  authToken: string;
  maxMessageBytes: number;
  maxPayloadBytes: number;
  countedLanes: number;
  chaosLanes: number;
  upgradeLanes: number;
}

export interface CountedResult {
  callSid: string;
  sent: number;
  binary: number;
  tooLarge: number;
  notJson: number;
  record: any;
  problem?: string;
}

export interface LanesResult {
  sentTotal: number;
  bytesTotal: number;
  seconds: number;
  counted: CountedResult[];
  chaos: { connections: number; closedByBridge: Record<string, number> };
  upgrades: { total: number; statuses: Record<string, number>; accepted: string[]; wrongStatus: string[] };
}

/**
 * Per counted socket: 150 messages/s on average, against elapsed time (late timers on a
 * busy machine are caught up), never more than 200 ahead: the bridge's flood guard is a
 * bucket of 1,000 refilled at 250/s, so every message of a counted stream is classified.
 */
const COUNTED_RATE_PER_S = 150;
const PACE_BURST = 200;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
/** Waits while `sent` is ahead of `ratePerS` since `t0` (plus a burst); yields every few messages. */
async function pace(sent: number, t0: number, ratePerS: number): Promise<void> {
  if (sent % 8 === 0) await new Promise<void>((r) => setImmediate(r));
  while (sent > PACE_BURST + ((performance.now() - t0) / 1000) * ratePerS) await sleep(10);
}

async function getJson(url: string): Promise<{ status: number; body: any }> {
  const r = await fetch(url);
  return { status: r.status, body: await r.json().catch(() => null) };
}

export async function runLanes(o: LanesOptions): Promise<LanesResult> {
  const SEED = o.seed;
  const MAX_MESSAGE_BYTES = o.maxMessageBytes;
  const MAX_PAYLOAD_BYTES = o.maxPayloadBytes;
  const bridge = { url: o.url, streamUrl: o.streamUrl };
  const host = new URL(o.url).host;
  const signature = o.signature;
  const tokenKey = streamTokenKey(o.authToken);
  const tokenFor = (callSid: string) => mintStreamToken(tokenKey, callSid);
  const headers = { 'X-Twilio-Signature': signature, 'X-Forwarded-Proto': 'https' };
  const t0All = performance.now();
  const target = o.totalMessages;
  let sentTotal = 0;
  let bytesTotal = 0;
  const done = () => sentTotal >= target;
  const take = () => !done();

  const openSocket = () =>
    new Promise<WebSocket | undefined>((resolve) => {
      const ws = new WebSocket(bridge.streamUrl, { headers, perMessageDeflate: false, handshakeTimeout: 5000 });
      ws.on('error', () => resolve(undefined));
      ws.on('unexpected-response', (req) => {
        req.destroy();
        resolve(undefined);
      });
      ws.once('open', () => resolve(ws));
    });
  const closed = (ws: WebSocket) => new Promise<{ code: number; reason: string }>((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  const send = (ws: WebSocket, data: string | Buffer, binary: boolean) => {
    if (ws.readyState !== WebSocket.OPEN) return false;
    ws.send(data, { binary });
    sentTotal++;
    bytesTotal += typeof data === 'string' ? data.length : data.length;
    return true;
  };

  // ── counted lanes ────────────────────────────────────────────────
  const counted: CountedResult[] = [];
  const countedLane = async (lane: number) => {
    const lrng = new Prng(SEED ^ (0x1000 + lane));
    while (!done()) {
      const st: GenState = { ids: newIds(lrng), seq: 0, chunk: 0 };
      const res: CountedResult = { callSid: st.ids.callSid, sent: 0, binary: 0, tooLarge: 0, notJson: 0, record: null };
      const ws = await openSocket();
      if (!ws) {
        res.problem = 'a signed upgrade was refused';
        counted.push(res);
        return;
      }
      const closedP = closed(ws);
      let closedEarly: { code: number; reason: string } | undefined;
      void closedP.then((c) => (closedEarly = c));
      send(ws, JSON.stringify(validConnected()), false);
      send(ws, JSON.stringify(validStart(st.ids, ++st.seq, tokenFor(st.ids.callSid))), false);
      const n = lrng.int(800, 2500);
      const t0 = performance.now();
      for (let i = 0; i < n && !closedEarly && take(); i++) {
        let item = nextItem(st, lrng, { maxMessageBytes: MAX_MESSAGE_BYTES, maxPayloadBytes: MAX_PAYLOAD_BYTES, socketKillers: false });
        // A stop (or '#') would end the call before its record is read: only the chaos lanes send those.
        while (item.kind === 'text' && item.endsCall) item = nextItem(st, lrng, { maxMessageBytes: MAX_MESSAGE_BYTES, maxPayloadBytes: MAX_PAYLOAD_BYTES, socketKillers: false });
        if (item.kind === 'binary') {
          if (send(ws, item.data, true)) res.binary++;
        } else if (item.kind === 'oversize') {
          if (send(ws, item.text, false)) res.tooLarge++;
        } else if (item.kind === 'text') {
          if (send(ws, item.text, false) && item.notJson) res.notJson++;
        }
        res.sent++;
        await pace(i + 1, t0, COUNTED_RATE_PER_S);
      }
      if (closedEarly) {
        res.problem = `the bridge closed a counted stream early: ${JSON.stringify(closedEarly)}`;
      } else {
        send(ws, JSON.stringify(validStop(st.ids, ++st.seq)), false);
        const c = await Promise.race([closedP, sleep(5000).then(() => undefined)]);
        if (!c) {
          res.problem = 'no close within 5 s of stop';
          ws.terminate();
        }
      }
      res.record = (await getJson(`${bridge.url}/calls/${st.ids.callSid}`)).body;
      counted.push(res);
    }
  };

  // ── chaos lanes ──────────────────────────────────────────────────
  const chaos = { connections: 0, closedByBridge: new Map<string, number>() };
  const chaosLane = async (lane: number) => {
    const lrng = new Prng(SEED ^ (0x2000 + lane));
    while (!done()) {
      const ws = await openSocket();
      if (!ws) continue;
      chaos.connections++;
      const closedP = closed(ws);
      let closedBy: { code: number; reason: string } | undefined;
      void closedP.then((c) => (closedBy = c));
      const st: GenState = { ids: newIds(lrng), seq: 0, chunk: 0 };
      const startFirst = lrng.chance(0.6);
      if (startFirst) send(ws, JSON.stringify(validStart(st.ids, ++st.seq, tokenFor(st.ids.callSid))), false);
      const rate = lrng.pick([100, 150, 600]); // per second; 600/s is a flood (the guard allows 250/s)
      const t0 = performance.now();
      const n = lrng.int(200, 3000);
      for (let i = 0; i < n && !closedBy && take(); i++) {
        const item = nextItem(st, lrng, { maxMessageBytes: MAX_MESSAGE_BYTES, maxPayloadBytes: MAX_PAYLOAD_BYTES, socketKillers: true });
        if (item.kind === 'binary' || item.kind === 'bad-utf8') send(ws, item.data, item.kind === 'binary');
        else send(ws, item.text, false);
        await pace(i + 1, t0, rate);
      }
      if (closedBy) chaos.closedByBridge.set(`${closedBy.code} ${closedBy.reason}`, (chaos.closedByBridge.get(`${closedBy.code} ${closedBy.reason}`) ?? 0) + 1);
      else if (lrng.chance(0.5)) ws.terminate();
      else ws.close();
      await Promise.race([closedP, sleep(3000)]);
      ws.terminate();
    }
  };

  // ── upgrade lanes: raw HTTP/TCP ─────────────────────────────────
  const upgrades = { total: 0, statuses: new Map<string, number>(), accepted: [] as string[], wrongStatus: [] as string[] };
  const { port } = new URL(bridge.url);
  const upgradeLane = async (lane: number) => {
    const lrng = new Prng(SEED ^ (0x3000 + lane));
    while (!done()) {
      const req = upgradeRequest(lrng, host, signature);
      const status = await new Promise<string>((resolve) => {
        const sock = connect(Number(port), '127.0.0.1');
        let head = '';
        const t = setTimeout(() => {
          sock.destroy();
          resolve(head.length > 0 ? head.slice(0, 12) : 'no-answer');
        }, 2000);
        sock.on('data', (d) => {
          head += d.toString('latin1');
          if (head.includes('\r\n')) {
            clearTimeout(t);
            sock.destroy();
            resolve(head.slice(0, head.indexOf('\r\n')).split(' ')[1] ?? head.slice(0, 12));
          }
        });
        sock.on('error', () => undefined);
        sock.on('close', () => {
          clearTimeout(t);
          resolve(head.length > 0 ? (head.split(' ')[1] ?? 'partial') : 'closed');
        });
        sock.write(req.raw, () => {
          // A truncated request waits for more bytes: end our side so the server answers or drops it.
          if (req.name === 'truncated' || req.name === 'random-bytes') sock.end();
        });
      });
      upgrades.total++;
      const k = `${req.name} → ${status}`;
      upgrades.statuses.set(k, (upgrades.statuses.get(k) ?? 0) + 1);
      if (status === '101') upgrades.accepted.push(req.name);
      if (req.expectStatus !== undefined && status !== String(req.expectStatus)) upgrades.wrongStatus.push(k);
    }
  };


  await Promise.all([
    ...Array.from({ length: o.countedLanes }, (_, i) => countedLane(i)),
    ...Array.from({ length: o.chaosLanes }, (_, i) => chaosLane(i)),
    ...Array.from({ length: o.upgradeLanes }, (_, i) => upgradeLane(i)),
  ]);
  return {
    sentTotal,
    bytesTotal,
    seconds: (performance.now() - t0All) / 1000,
    counted,
    chaos: { connections: chaos.connections, closedByBridge: Object.fromEntries(chaos.closedByBridge) },
    upgrades: { total: upgrades.total, statuses: Object.fromEntries([...upgrades.statuses].sort()), accepted: upgrades.accepted, wrongStatus: upgrades.wrongStatus },
  };
}
