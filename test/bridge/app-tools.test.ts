/**
 * Tools as functions of an app that embeds the bridge (startBridge(env, { tools })),
 * through a real bridge and the fake OpenAI Realtime service: declared to the agent of a
 * profile call beside the profile's own tools (only for the profiles they name; a profile
 * tool of the same name wins), run in process with the call's identity and the arguments
 * as an object; a throw and a timeout are error results (the timed-out function's signal
 * fires), and the call goes on.
 */
import { describe, expect, it } from 'vitest';
import { runSimulatedCall } from '../../src/sim/simulator.js';
import type { AppTool } from '../../src/tools/app-tools.js';
import { startFakeOpenAi } from '../fakes/openai-realtime.js';
import { profilesFile } from '../profiles/profiles-helpers.js';
import { callSid as newCallSid } from '../lifecycle/child-bridge.js';
import { until } from '../agents/agent-events.js';
import { withBridge } from './helpers.js';

const TO = '+15557650000';

describe('app tools (in-process functions)', () => {
  it('offered beside the profile tools, run in process; a throw and a timeout are error results and the call goes on', async () => {
    const fake = await startFakeOpenAi({ replyMs: 200 });
    const seen: { args: Record<string, unknown>; callSid: string; profile: string }[] = [];
    let slowAborted = false;
    const tools: AppTool[] = [
      {
        name: 'book_slot',
        description: 'Book an appointment slot',
        parameters: { type: 'object', properties: { day: { type: 'string' } }, required: ['day'] },
        run: async (args, call) => {
          seen.push({ args, callSid: call.callSid, profile: call.profile });
          return { booked: args.day };
        },
      },
      { name: 'explodes', description: 'Always throws', run: () => Promise.reject(new Error('database is down')) },
      {
        name: 'slow',
        description: 'Never finishes in time',
        timeoutMs: 200,
        run: (_args, call) => new Promise((resolve) => call.signal.addEventListener('abort', () => ((slowAborted = true), resolve('late')))),
      },
      { name: 'other_desk', description: 'Only for another profile', profiles: ['sales'], run: () => 'no' },
      { name: 'lookup_order', description: 'Shadowed by the profile tool of that name', run: () => 'app' },
    ];
    const yaml = `
profiles:
  - name: support
    match: { to: ["${TO}"] }
    agent: openai
    options: { format: pcmu }
    tools:
      - name: lookup_order
        description: Look up an order
        url: http://127.0.0.1:9/never
`;
    try {
      await withBridge(
        { ...fake.env, BRIDGE_PROFILES: profilesFile(yaml) },
        async (bridge) => {
          const sid = newCallSid();
          const call = runSimulatedCall({ url: bridge.streamUrl, callSid: sid, customParameters: { profile: 'support', vb_from: '+15551230000', vb_to: TO }, audio: new Uint8Array(8000).fill(0xff), fast: true, tailMs: 4000, timeoutMs: 30_000 });
          await until(() => fake.current?.sessionUpdates.length === 1, 'the agent session');
          expect(fake.current!.sessionUpdates[0]!.tools.map((t: { name: string }) => t.name)).toEqual(['lookup_order', 'book_slot', 'explodes', 'slow']);
          const outputs = () => fake.current!.items.filter((i) => i.type === 'function_call_output');
          const idle = () => until(() => fake.current!.current === undefined, 'the follow-up reply to end');

          const id = await fake.callTool('book_slot', { day: 'monday' });
          await until(() => outputs().length === 1, 'the book_slot output');
          expect(outputs()[0]).toEqual({ type: 'function_call_output', call_id: id, output: '{"booked":"monday"}' });
          expect(seen).toEqual([{ args: { day: 'monday' }, callSid: sid, profile: 'support' }]);

          await idle();
          await fake.callTool('explodes', {});
          await until(() => outputs().length === 2, 'the error result of a throw');
          expect(JSON.parse(outputs()[1]!.output)).toEqual({ error: 'explodes failed: database is down' });

          await idle();
          await fake.callTool('slow', {});
          await until(() => outputs().length === 3, 'the timeout error result');
          expect(JSON.parse(outputs()[2]!.output)).toEqual({ error: 'slow did not answer within 200 ms' });
          expect(slowAborted).toBe(true);
          expect((await call).outcome).toBe('completed');
        },
        { tools },
      );
    } finally {
      await fake.close();
    }
  });
});
