import type { FastifyError } from 'fastify';
import { hasZodFastifySchemaValidationErrors, type FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { ExecutionResponse } from '../../runner/index.js';
import type { AppDeps } from '../deps.js';
import { errorAnswer } from '../errors.js';
import { pistonExecution, PistonRequestError } from '../piston/request.js';
import { pistonResponse } from '../piston/response.js';
import { findRuntime, pistonRuntimes } from '../piston/runtimes.js';
import {
  pistonError,
  pistonExecuteRequest,
  pistonExecuteResponse,
  pistonRuntimes as runtimesSchema,
} from '../schemas/piston.js';
import { awaitExecution, submitExecutions } from '../submit.js';
import { requestTenant } from '../tenant.js';
import { executionWithinTenant } from '../tenant-limits.js';

/** `/files/0/content` → `files[0].content`, as Piston names fields in its messages. */
function pistonField(instancePath: string, context: string | undefined): string {
  const path = instancePath.split('/').filter(Boolean);
  if (path.length === 0) return context ?? 'body';
  return path.map((p, i) => (/^\d+$/.test(p) ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

/**
 * Piston's v2 API (`GET /api/v2/runtimes`, `POST /api/v2/execute`) over Warden's executions: the
 * same queue, workers, analysis and sandboxes as POST /execute, with Piston's request, answer and
 * error shape (`{ message }`), so Piston clients switch by changing the base URL.
 */
export const pistonRoutes =
  (deps: AppDeps): FastifyPluginAsyncZod =>
  async (app) => {
    const { config } = deps;

    // Piston clients send JSON bodies; some (piston-client) without a JSON content type.
    app.addContentTypeParser('text/plain', { parseAs: 'string' }, app.getDefaultJsonParser('error', 'error'));

    // Every error of these routes in Piston's shape, `{ message }`; the status codes and Retry-After
    // stay Warden's (errorAnswer).
    app.setErrorHandler((err: FastifyError, req, reply) => {
      if (hasZodFastifySchemaValidationErrors(err)) {
        const first = err.validation[0];
        const field = pistonField(first?.instancePath ?? '', err.validationContext);
        const text = first?.message ?? 'invalid request';
        const message = text.includes('{field}') ? text.replaceAll('{field}', field) : `${field}: ${text}`;
        return reply.code(400).send({ message });
      }
      if (err instanceof PistonRequestError) return reply.code(400).send({ message: err.message });
      const answer = errorAnswer(err, req, config.server.retryAfterSeconds);
      if (answer.retryAfterSeconds !== undefined)
        void reply.header('retry-after', String(answer.retryAfterSeconds));
      // Piston's own words for a body that is not JSON.
      const message =
        answer.code === 'unsupported_media_type'
          ? 'requests must be of type application/json'
          : answer.message;
      return reply.code(answer.status).send({ message });
    });

    app.get(
      '/api/v2/runtimes',
      {
        config: { scope: 'execute' },
        schema: {
          summary: 'Piston: the runtimes (language, version, aliases)',
          tags: ['piston'],
          response: { 200: runtimesSchema },
        },
      },
      async () => pistonRuntimes().map(({ lang: _lang, ...runtime }) => runtime),
    );

    app.post(
      '/api/v2/execute',
      {
        config: { scope: 'execute' },
        schema: {
          summary: 'Piston: run files with a language and version',
          description:
            'Piston’s request and answer (times in ms, memory in bytes). Static analysis applies unless `piston.analysis: false`; rejected code answers as a failed run (status RE) with the violations in `message`. Differences from Piston: see the README.',
          tags: ['piston'],
          body: pistonExecuteRequest,
          response: {
            200: pistonExecuteResponse,
            400: pistonError,
            429: pistonError,
            503: pistonError,
            504: pistonError,
          },
        },
      },
      async (req, reply) => {
        const body = req.body;
        const runtime = findRuntime(body.language, body.version);
        if (!runtime) throw new PistonRequestError(`${body.language}-${body.version} runtime is unknown`);
        const tenant = requestTenant(req);
        const request = pistonExecution(body, runtime, config);
        // The tenant's ceilings hold here too (a 400 past one), as on /execute.
        const limits = executionWithinTenant(config, tenant, request.limits);
        const requestId = req.id;
        const backend = config.sandbox.backend;
        await submitExecutions(deps, req, tenant, [{ requestId, request: { ...request, limits }, backend }]);
        const record = await awaitExecution(deps, req, reply, requestId);
        if (record?.status !== 'done' || !record.response) {
          // Piston has no asynchronous answer: say where the result will be.
          return reply.code(504).send({
            message: `the execution did not finish within ${config.server.requestTimeoutMs / 1000} s; its result will be at GET /executions/${requestId}`,
          });
        }
        return reply.code(200).send(pistonResponse(runtime, record.response as ExecutionResponse));
      },
    );
  };
