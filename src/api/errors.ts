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

/** An error as the client is told it, before it takes a route's shape (Warden's, or Piston's). */
export interface ErrorAnswer {
  status: number;
  code: string;
  message: string;
  field: string | null;
  retryAfterSeconds?: number;
  details?: Record<string, unknown>;
}

/**
 * Any error but a schema validation's as its answer: a client's mistake is a 4xx with a safe
 * message, a dependency that is down a 503 with Retry-After, anything else a 500 with only the
 * request id (the details go to the log).
 */
export function errorAnswer(err: FastifyError, req: FastifyRequest, retryAfterSeconds: number): ErrorAnswer {
  if (err instanceof ApiError) {
    if (err.statusCode >= 500) req.log.warn({ code: err.code }, err.message);
    return {
      status: err.statusCode,
      code: err.code,
      message: err.message,
      field: err.field,
      retryAfterSeconds: err.retryAfterSeconds,
      details: err.details,
    };
  }
  if (err instanceof QueueUnavailableError) {
    req.log.warn({ err: err.message }, 'queue unavailable');
    const message = 'the queue is unavailable; retry later';
    return { status: 503, code: 'queue_unavailable', message, field: null, retryAfterSeconds };
  }
  if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE')
    return { status: 413, code: 'body_too_large', message: err.message, field: 'body' };
  if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    const message = 'send the body as application/json';
    return { status: 415, code: 'unsupported_media_type', message, field: 'content-type' };
  }
  // Fastify's own client errors (malformed JSON, empty body, bad content length, …) have safe messages.
  if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
    const invalidBody = err.code?.startsWith('FST_ERR_CTP') === true;
    return {
      status: err.statusCode,
      code: invalidBody ? 'invalid_body' : 'bad_request',
      message: err.message,
      field: invalidBody ? 'body' : null,
    };
  }
  req.log.error({ err }, 'unexpected error');
  const message = `internal error; quote request id ${req.id} when reporting it`;
  return { status: 500, code: 'internal_error', message, field: null };
}

/**
 * The one place errors become answers. A client's mistake is a 4xx naming the field; a dependency
 * that is down is a 503 with Retry-After; anything else is a 500 with only the request id, the
 * details going to the server log.
 */
export function installErrorHandling(app: FastifyInstance, retryAfterSeconds: number): void {
  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (hasZodFastifySchemaValidationErrors(err)) return sendValidationError(err, req, reply);
    const answer = errorAnswer(err, req, retryAfterSeconds);
    if (answer.retryAfterSeconds !== undefined)
      void reply.header('retry-after', String(answer.retryAfterSeconds));
    return reply
      .code(answer.status)
      .send({ ...answer.details, ...body(req, answer.code, answer.message, answer.field) });
  });

  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send(body(req, 'not_found', `no route ${req.method} ${req.url.split('?')[0]}`, null)),
  );
}
