/**
 * The admin checks, as fastify `onRequest` hooks: they run before the body is read
 * (https://fastify.dev/docs/latest/Reference/Lifecycle/), so a request without the
 * right token is refused at its headers — a stranger cannot make the bridge parse a
 * body (or wait out a slow one) on an admin route.
 *
 *   admin      BRIDGE_ADMIN_TOKEN set: `Authorization: Bearer <token>` (constant-time
 *              compare), else 401 BRIDGE_ERR_ADMIN_AUTH; unset: 403 BRIDGE_ERR_ADMIN_DISABLED
 *   callData   call data (numbers, transcripts, custom parameters): the admin check once
 *              a token is set, or whenever the bridge is reachable from other hosts (a
 *              non-loopback bind); open without a token only on loopback (development)
 */
import { timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { ErrorCodes, HttpProblem } from '../errors.js';

export type AuthHook = (req: FastifyRequest) => Promise<void>;

export interface AdminAuth {
  admin: AuthHook;
  callData: AuthHook;
}

export function adminAuth(options: { adminToken: string | undefined; loopbackOnly: boolean }): AdminAuth {
  const want = options.adminToken ? Buffer.from(`Bearer ${options.adminToken}`) : undefined;
  const admin: AuthHook = async (req) => {
    if (!want) throw new HttpProblem(ErrorCodes.ADMIN_DISABLED, 'set BRIDGE_ADMIN_TOKEN to enable admin routes');
    const got = Buffer.from(req.headers.authorization ?? '');
    if (got.length !== want.length || !timingSafeEqual(got, want)) throw new HttpProblem(ErrorCodes.ADMIN_AUTH, 'missing or wrong admin token');
  };
  const open = !want && options.loopbackOnly;
  const callData: AuthHook = async (req) => {
    if (!open) await admin(req);
  };
  return { admin, callData };
}
