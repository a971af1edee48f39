/**
 * The capacity benchmark's yardstick: the simplest published Twilio ⇄ OpenAI Realtime
 * bridge, written here from its documented behaviour (Twilio's "speech assistant with
 * OpenAI Realtime API" Node sample: one WebSocket per call each way, μ-law end to end).
 * It does only what that sample does:
 *
 *   Twilio `media`  → JSON.parse → `input_audio_buffer.append` with the same base64 (JSON.stringify)
 *   agent `response.output_audio.delta` → JSON.parse → one Twilio `media` message + one `mark`
 *   agent `input_audio_buffer.speech_started` → `clear` (the sample's barge-in)
 *
 * and holds the caller's media that arrives before the agent's socket is open (the
 * sample drops it; the harness matches caller frames to agent arrivals by index, and the
 * bridge keeps that audio too).
 * Nothing else: no jitter buffer, no pacing (every delta goes to Twilio at once; Twilio
 * buffers it), no records, no metrics, no admission, no DSP. `run.ts --modes relay` runs it
 * under exactly the load the bridge gets, so every report carries the bridge/relay ratio.
 *
 * Env: PORT, OPENAI_REALTIME_URL (the fake agent). Serves GET /readyz for the harness.
 */
import { createServer } from 'node:http';
import WebSocket, { WebSocketServer } from 'ws';

const port = Number(process.env.PORT ?? 0);
const agentUrl = process.env.OPENAI_REALTIME_URL ?? 'ws://127.0.0.1:1/v1/realtime';

const http = createServer((req, res) => {
  res.writeHead(req.url === '/readyz' ? 200 : 404, { 'content-type': 'application/json' });
  res.end('{}');
});
const wss = new WebSocketServer({ server: http, perMessageDeflate: false });

wss.on('connection', (twilio) => {
  let streamSid = '';
  let agent: WebSocket | undefined;
  let markSeq = 0;
  const early: string[] = [];
  twilio.on('message', (data) => {
    const m = JSON.parse(data.toString()) as { event: string; streamSid?: string; media?: { payload: string }; start?: { customParameters?: Record<string, string> } };
    if (m.event === 'start') {
      streamSid = m.streamSid ?? '';
      const a = new WebSocket(agentUrl, { headers: { Authorization: `Bearer ${process.env.OPENAI_API_KEY ?? ''}` }, perMessageDeflate: false });
      agent = a;
      a.on('open', () => {
        a.send(
          JSON.stringify({
            type: 'session.update',
            session: {
              type: 'realtime',
              instructions: m.start?.customParameters?.instructions ?? '',
              audio: { input: { format: { type: 'audio/pcmu' }, turn_detection: { type: 'server_vad' } }, output: { format: { type: 'audio/pcmu' }, voice: 'alloy' } },
            },
          }),
        );
        for (const text of early.splice(0)) a.send(text);
      });
      a.on('message', (raw) => {
        const e = JSON.parse(raw.toString()) as { type: string; delta?: string };
        if (e.type === 'response.output_audio.delta' && e.delta) {
          twilio.send(JSON.stringify({ event: 'media', streamSid, media: { payload: e.delta } }));
          twilio.send(JSON.stringify({ event: 'mark', streamSid, mark: { name: `m${++markSeq}` } }));
        } else if (e.type === 'input_audio_buffer.speech_started') {
          twilio.send(JSON.stringify({ event: 'clear', streamSid }));
        }
      });
      a.on('error', () => undefined);
      a.on('close', () => twilio.close());
    } else if (m.event === 'media' && m.media) {
      const text = JSON.stringify({ type: 'input_audio_buffer.append', audio: m.media.payload });
      if (agent?.readyState === WebSocket.OPEN) agent.send(text);
      else early.push(text);
    } else if (m.event === 'stop') {
      agent?.close();
    }
  });
  twilio.on('close', () => agent?.close());
  twilio.on('error', () => undefined);
});

http.listen(port, '127.0.0.1');
process.on('SIGTERM', () => process.exit(0)); // a normal exit writes --cpu-prof's profile
