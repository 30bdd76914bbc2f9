import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { QueueUnavailableError } from '../queue/executions.js';
import type { ErrorBody } from './schemas.js';

/** An answer other than 2xx that the client caused or can wait out; never a stack trace. */
export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly field: string | null = null,
    readonly retryAfterSeconds?: number,
    /** Top-level fields beside `error` (e.g. the status a 412 is about); the route's schema lists them. */
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

/** A dependency (store, queue) is down: 503 with Retry-After. */
export class UnavailableError extends ApiError {
  constructor(what: 'store' | 'queue' | 'service', retryAfterSeconds: number, message?: string) {
    super(
      503,
      `${what}_unavailable`,
      message ?? `the ${what} is unavailable; retry later`,
      null,
      retryAfterSeconds,
    );
  }
}

/**
 * Store work as a route does it: a store failure is the service's, not the user's, so it becomes a
 * 503 with Retry-After and the cause goes to the log. `passes` lets the store's own domain errors
 * (e.g. a title owned by someone else) through as they are.
 */
export function storeGuard(retryAfterSeconds: number, passes: (err: unknown) => boolean = () => false) {
  return async <T>(work: () => Promise<T>, log: { warn(o: object, m: string): void }): Promise<T> => {
    try {
      return await work();
    } catch (err) {
      if (passes(err)) throw err;
      log.warn({ err: (err as Error).message }, 'store unavailable');
      throw new UnavailableError('store', retryAfterSeconds);
    }
  };
}

function body(req: FastifyRequest, code: string, message: string, field: string | null): ErrorBody {
  return { error: { code, message, field, request_id: req.id } };
}

/** `/limits/timeout` → `limits.timeout`; a body-level problem names the part of the request. */
function fieldOf(instancePath: string, context: string | undefined, extraKey?: string): string {
  const path = instancePath.split('/').filter(Boolean);
  if (extraKey) path.push(extraKey);
  if (path.length > 0) return path.join('.');
  return context === 'querystring' ? 'query' : (context ?? 'body');
}

interface ZodIssueParams {
  keys?: string[];
  origin?: string;
  maximum?: number;
}

function sendValidationError(err: FastifyError, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  const issues = err.validation ?? [];
  const first = issues[0];
  const params = (first?.params ?? {}) as ZodIssueParams;
  const unknownKey = first?.keyword === 'unrecognized_keys' ? params.keys?.[0] : undefined;
  const field = fieldOf(first?.instancePath ?? '', err.validationContext, unknownKey);
  let message = first?.message ?? 'invalid request';
  if (unknownKey) message = `unknown field ${JSON.stringify(unknownKey)}`;
  if (first?.keyword === 'invalid_type' && /received undefined/.test(message)) message = 'required';
  if (field === 'code' && first?.keyword === 'too_big') {
    return reply
      .code(400)
      .send(
        body(req, 'code_too_large', `code is longer than the limit of ${params.maximum} characters`, field),
      );
  }
  const more =
    issues.length > 1 ? ` (and ${issues.length - 1} more problem${issues.length > 2 ? 's' : ''})` : '';
  return reply.code(400).send(body(req, 'invalid_request', `${field}: ${message}${more}`, field));
}

/**
 * The one place errors become answers. A client's mistake is a 4xx naming the field; a dependency
 * that is down is a 503 with Retry-After; anything else is a 500 with only the request id, the
 * details going to the server log.
 */
export function installErrorHandling(app: FastifyInstance, retryAfterSeconds: number): void {
  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (hasZodFastifySchemaValidationErrors(err)) return sendValidationError(err, req, reply);
    if (err instanceof ApiError) {
      if (err.retryAfterSeconds !== undefined)
        void reply.header('retry-after', String(err.retryAfterSeconds));
      if (err.statusCode >= 500) req.log.warn({ code: err.code }, err.message);
      return reply
        .code(err.statusCode)
        .send({ ...err.details, ...body(req, err.code, err.message, err.field) });
    }
    if (err instanceof QueueUnavailableError) {
      req.log.warn({ err: err.message }, 'queue unavailable');
      void reply.header('retry-after', String(retryAfterSeconds));
      return reply
        .code(503)
        .send(body(req, 'queue_unavailable', 'the queue is unavailable; retry later', null));
    }
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return reply.code(413).send(body(req, 'body_too_large', err.message, 'body'));
    }
    if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      return reply
        .code(415)
        .send(body(req, 'unsupported_media_type', 'send the body as application/json', 'content-type'));
    }
    // Fastify's own client errors (malformed JSON, empty body, bad content length, …) have safe messages.
    if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
      const code = err.code?.startsWith('FST_ERR_CTP') ? 'invalid_body' : 'bad_request';
      return reply
        .code(err.statusCode)
        .send(body(req, code, err.message, code === 'invalid_body' ? 'body' : null));
    }
    req.log.error({ err }, 'unexpected error');
    return reply
      .code(500)
      .send(
        body(req, 'internal_error', `internal error; quote request id ${req.id} when reporting it`, null),
      );
  });

  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send(body(req, 'not_found', `no route ${req.method} ${req.url.split('?')[0]}`, null)),
  );
}
