import type { FastifyRequest } from 'fastify';
import { requestAuth } from './auth.js';

/**
 * The tenant a request acts for: every resource it creates or reads belongs to this tenant, and
 * another tenant's resources answer 404. It is the API key's tenant (or the built-in `default` under
 * auth.mode none); see src/api/auth.ts.
 */
export function requestTenant(req: FastifyRequest): string {
  return requestAuth(req).tenant;
}
