import type { FastifyRequest } from 'fastify';
import { ApiError } from './errors.js';

/**
 * Who is asking: the `X-Warden-User` header, or `anonymous`. Until API keys exist this is a label the
 * client chooses, not an identity; it is read here only, so that keys can replace it in one place.
 */
export const USER_HEADER = 'x-warden-user';
export const ANONYMOUS = 'anonymous';
const USER_RE = /^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$/;

export function requestUser(req: FastifyRequest): string {
  const value = req.headers[USER_HEADER];
  if (value === undefined || value === '') return ANONYMOUS;
  if (typeof value !== 'string' || !USER_RE.test(value)) {
    throw new ApiError(
      400,
      'invalid_user',
      `${USER_HEADER} must be 1 to 128 letters, digits or "_.@-", starting with a letter or digit`,
      USER_HEADER,
    );
  }
  return value;
}
