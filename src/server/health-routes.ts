/**
 * GET /healthz   the process answers
 * GET /readyz    whether it takes new calls: 200, or 503 with the reason (draining, at
 *                BRIDGE_MAX_CALLS, overloaded) — a status document, not an error, so
 *                it keeps its own body in both cases (balancers and operators read it)
 *
 * GET /metrics sits beside them (src/metrics/route.ts, registered by main).
 */
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config.js';
import type { AgentRegistry } from '../agents/registry.js';
import type { DspLoadInfo } from '../dsp/load.js';
import type { Admission } from '../lifecycle/admission.js';
import { gcModeOfThisProcess } from '../gc-mode.js';

export interface HealthRoutesOptions {
  config: Config;
  agents: AgentRegistry;
  admission: Admission;
  dspInfo: () => DspLoadInfo | undefined;
  dspPool?: () => { threads: number; calls: number; workerCalls: number; batches: number; failedBatches: number };
}

export async function healthRoutes(app: FastifyInstance, o: HealthRoutesOptions): Promise<void> {
  const { config, agents, admission } = o;
  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_req, reply) => {
    const info = o.dspInfo();
    const a = admission.status();
    const body = {
      ready: a.ready,
      reason: a.reason,
      dsp: info ? { backend: info.backend, requested: info.requested, fallbackReason: info.fallbackReason ?? null, simd: info.simd ?? null } : null,
      activeCalls: a.activeCalls,
      reservedCalls: a.reservedCalls,
      maxCalls: a.maxCalls,
      load: a.load,
      pid: process.pid,
      gc: gcModeOfThisProcess(),
      ...(config.unsignedExposed ? { warning: 'Twilio signature checks are off on a non-loopback address (BRIDGE_ALLOW_UNSIGNED=1): anyone who reaches this port can start calls' } : {}),
      instance: config.instanceId,
      worker: config.workerSlot ?? null,
      routeKey: config.routeKey,
      agents: agents.available(),
      ...(o.dspPool ? { dspPool: o.dspPool() } : {}),
    };
    return reply.code(a.ready ? 200 : 503).send(body);
  });
}
