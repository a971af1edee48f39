/** voice-bridge public surface: the bridge, the agent interface, and the DSP core. */
export { loadDsp, dspLoadInfo } from './dsp/load.js';
export type { LoadDspOptions, LoadedDsp, DspLoadInfo, DspBackendChoice } from './dsp/load.js';
export * from './dsp/backend.js';
export { BridgeError, ErrorCodes, ERROR_TABLE, errorSpec, isBridgeError, PROBLEM_CONTENT_TYPE } from './errors.js';
export type { ErrorCode, ErrorCategory, ErrorSpec, ProblemDetails } from './errors.js';

// The bridge itself: start it in-process (as `voice-bridge start` does), with extra agents.
export { startBridge } from './main.js';
export type { RunningBridge, StartOptions } from './main.js';
export { loadConfig, ConfigError } from './config.js';
export type { Config } from './config.js';

// Signed tool requests and call events (docs/tools.md, docs/events.md): what your receiver verifies and reads.
export { signBody, verifySignature, SIGNATURE_HEADER } from './tools/signature.js';
export type { VerifyOptions, VerifyResult } from './tools/signature.js';
export { EVENT_TYPES } from './events/event.js';
export type { BridgeEvent, EventType } from './events/event.js';
export type { AppTool } from './tools/app-tools.js';

// The agent interface: what an agent of your own implements (see src/agents/echo for the smallest one).
export { AgentSession, ULAW_8K, pcm16 } from './agents/agent.js';
export type { AgentAudio, AgentContext, AgentEvent, AgentEventType, AgentFactory, AgentListener, AudioFormat, Transcript } from './agents/agent.js';
