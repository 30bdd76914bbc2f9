import type { FastifyRequest } from 'fastify';
import { requestUser } from './user.js';

/**
 * The tenant a request acts for: every resource it creates or reads belongs to this tenant. Until API
 * keys exist it is the client-chosen `X-Warden-User` label; keys replace it here, in one place.
 */
export function requestTenant(req: FastifyRequest): string {
  return requestUser(req);
}
