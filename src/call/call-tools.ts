/**
 * The tool calls of one call (docs/tools.md): what the agent asks for, by name in the
 * call's profile, and the answer it gets back through its adapter's sendToolResult().
 *
 * ```text
 *  agent 'toolCall' {callId, name, arguments}
 *    ├─ a profile tool with a url ─► runTool: signed POST, bounded by timeoutMs (+ 1 s at most)
 *    │                                 └─► sendToolResult(callId, {output} | {error})
 *    ├─ end_call       ─► no answer: the call ends after the goodbye the agent is speaking (agent-ended:<reason>)
 *    ├─ transfer_call  ─► `to` in the profile's list and REST configured ─► after the last words are heard,
 *    │                    the live call is redirected to <Dial> (transferred:<to>); else an error result
 *    └─ anything else  ─► an error result (the agent may correct itself), counted as unknown
 *  agent 'toolCancel' {callIds} ─► those requests are aborted; nothing is sent for them
 *  call ends                    ─► every request still running is aborted
 * ```
 *
 * A barge-in does not cancel a running tool: the caller interrupting the agent's words
 * says nothing about the lookup it asked for. The answer goes back when it comes, and
 * each provider decides what to do with it (OpenAI: into the conversation, no new
 * response over the caller's turn; Gemini withdraws calls itself with
 * toolCallCancellation; ElevenLabs and Hume take the result and go on).
 */
import type { AgentSession } from '../agents/agent.js';
import type { Profile } from '../profiles/schema.js';
import { endCallReason, findTool, transferDestination, unknownToolResult, toolErrorResult } from '../tools/dispatch.js';
import { runTool, type ToolResult } from '../tools/run-tool.js';
import { runAppTool, type AppTool } from '../tools/app-tools.js';
import { ErrorCodes } from '../errors.js';

export interface CallToolsDeps {
  profile: Profile;
  /** Tools of the embedding app this call gets (src/tools/app-tools.ts). */
  appTools?: readonly AppTool[];
  agent: AgentSession;
  /** The call's identity at the time of a tool call (the request body carries it). */
  call(): { callSid: string; streamSid: string; from: string | null; to: string | null };
  /** Every result (metrics, events, the call record). */
  observe?: (r: ToolResult, info: { callId: string }) => void;
  /** end_call: the agent's goodbye plays out, then the call ends. */
  endCall(reason: string): void;
  /** transfer_call to an allowed destination; false when transfers cannot be made here (no REST credentials). */
  transfer?: (to: string) => boolean;
  log(level: 'warn' | 'info', msg: string, fields?: Record<string, unknown>): void;
}

export class CallTools {
  readonly #d: CallToolsDeps;
  /** Requests running: the provider's call id → its abort. */
  readonly #running = new Map<string, AbortController>();
  #closed = false;
  /** Tool calls by outcome, for the call record. */
  readonly calls: { name: string; callId: string; ok: boolean; code?: string; durationMs: number }[] = [];

  constructor(deps: CallToolsDeps) {
    this.#d = deps;
  }

  onToolCall(callId: string, name: string, rawArguments: string): void {
    if (this.#closed || this.#running.has(callId)) return;
    const target = findTool(this.#d.profile.tools, name);
    switch (target.kind) {
      case 'http': {
        const ac = new AbortController();
        this.#running.set(callId, ac);
        const c = this.#d.call();
        void runTool(
          target.tool,
          { callSid: c.callSid, streamSid: c.streamSid, profile: this.#d.profile.name, callId, arguments: rawArguments, from: c.from, to: c.to },
          { signal: ac.signal, secret: this.#d.profile.secret },
        ).then((r) => {
          // Withdrawn (toolCancel) or the call ended: nothing goes back.
          if (this.#running.get(callId) !== ac) return;
          this.#running.delete(callId);
          this.#answer(callId, r);
        });
        return;
      }
      case 'end_call': {
        const reason = endCallReason(rawArguments) ?? 'end_call';
        this.#record(callId, { ok: true, tool: 'end_call', output: null, durationMs: 0 });
        this.#d.endCall(reason);
        return;
      }
      case 'transfer_call': {
        const dest = transferDestination(target.allowed, rawArguments);
        if (!dest.ok) return this.#answer(callId, dest.result);
        if (!this.#d.transfer || !this.#d.transfer(dest.to)) {
          return this.#answer(callId, toolErrorResult('transfer_call', ErrorCodes.TOOL_TRANSFER_REFUSED, 'transfers are not available on this line (the bridge has no Twilio REST credentials)'));
        }
        this.#record(callId, { ok: true, tool: 'transfer_call', output: { to: dest.to }, durationMs: 0 });
        return;
      }
      case 'unknown': {
        const app = this.#d.appTools?.find((t) => t.name === name);
        if (!app) return this.#answer(callId, unknownToolResult(name));
        const ac = new AbortController();
        this.#running.set(callId, ac);
        const c = this.#d.call();
        void runAppTool(app, { callSid: c.callSid, streamSid: c.streamSid, profile: this.#d.profile.name, callId, arguments: rawArguments, from: c.from, to: c.to }, ac.signal).then((r) => {
          if (this.#running.get(callId) !== ac) return;
          this.#running.delete(callId);
          this.#answer(callId, r);
        });
        return;
      }
    }
  }

  /** The service withdrew these calls: abort them; nothing is sent for them. */
  onToolCancel(callIds: readonly string[]): void {
    for (const id of callIds) {
      const ac = this.#running.get(id);
      if (!ac) continue;
      this.#running.delete(id);
      ac.abort(new Error('the agent withdrew the call'));
    }
  }

  /** The call ended: every request still running is aborted. */
  close(): void {
    this.#closed = true;
    for (const ac of this.#running.values()) ac.abort(new Error('the call ended'));
    this.#running.clear();
  }

  #answer(callId: string, r: ToolResult): void {
    this.#record(callId, r);
    if (this.#closed) return;
    if (!r.ok) this.#d.log('warn', 'tool call failed; the agent gets an error result', { tool: r.tool, code: r.code, status: r.status ?? null, durationMs: Math.round(r.durationMs) });
    this.#d.agent.sendToolResult(callId, r);
  }

  #record(callId: string, r: ToolResult): void {
    if (this.calls.length < 200) this.calls.push({ name: r.tool, callId, ok: r.ok, ...(r.ok ? {} : { code: r.code }), durationMs: Math.round(r.durationMs) });
    this.#d.observe?.(r, { callId });
  }
}
