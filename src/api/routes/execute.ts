import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { ExecutionResponse } from '../../runner/index.js';
import { deleteExecution, executionState, getExecution, insertExecution } from '../../store/executions.js';
import { acceptCallback } from '../callback.js';
import type { AppDeps } from '../deps.js';
import { ApiError, storeGuard, UnavailableError } from '../errors.js';
import { checkExecution } from '../execution-checks.js';
import {
  accepted,
  errors,
  executeQuery,
  executeRequest,
  executeResponse,
  executionRecord,
  requestIdParams,
} from '../schemas.js';
import { requestTenant } from '../tenant.js';
import { executionView } from '../views.js';

export const executeRoutes =
  (deps: AppDeps): FastifyPluginAsyncZod =>
  async (app) => {
    const { config, store, queue } = deps;
    const retryAfter = config.server.retryAfterSeconds;
    const stored = storeGuard(retryAfter);

    app.post(
      '/execute',
      {
        config: { scope: 'execute' },
        schema: {
          summary: 'Check code, then run it in a sandbox (once, or once per test case)',
          description:
            'Static analysis first: rejected code never reaches a sandbox (status `security_violation`). Then one sandboxed run, or one per test case with its input_data as stdin. Waits for the result (up to server.requestTimeoutMs, then 202) unless `wait=false`.',
          body: executeRequest(config),
          querystring: executeQuery,
          response: {
            200: executeResponse,
            202: accepted.describe('Not finished yet (wait=false, or the wait timed out): poll `poll`.'),
            ...errors(400, 413, 415, 429, 500, 503),
          },
        },
      },
      async (req, reply) => {
        const body = req.body;
        const tenant = requestTenant(req);
        const request = await checkExecution(deps, body);
        const callback = await acceptCallback(deps, req, body.callback_url);
        if (deps.shutdown?.aborted)
          throw new UnavailableError('service', retryAfter, 'the service is shutting down');

        const requestId = req.id;
        // The place in the queue first (one atomic check-and-take), then the row, then the job.
        if (!(await queue.admit(requestId, config.server.maxQueueDepth))) {
          throw new ApiError(
            429,
            'queue_full',
            `${config.server.maxQueueDepth} executions are waiting for a worker (server.maxQueueDepth); retry later`,
            null,
            retryAfter,
          );
        }
        const giveBack = () => queue.release(requestId).catch(() => {});
        try {
          await stored(
            () =>
              insertExecution(store.db, {
                requestId,
                language: request.language,
                backend: body.backend ?? config.sandbox.backend,
                tenant,
                apiKeyId: req.auth?.keyId,
                request,
              }),
            req.log,
          );
        } catch (err) {
          await giveBack();
          throw err;
        }
        try {
          await callback?.save('execution', requestId);
          await queue.enqueue(requestId);
        } catch (err) {
          // Refused with 503: the execution never existed.
          await deleteExecution(store.db, requestId).catch(() => {});
          await giveBack();
          throw err;
        }

        const poll = `/executions/${requestId}`;
        const pending = (status: 'pending' | 'running') =>
          reply.code(202).header('location', poll).send({ request_id: requestId, status, poll });
        if (req.query.wait === 'false') return pending('pending');
        await queue.waitForDone(
          requestId,
          config.server.requestTimeoutMs,
          async () => (await executionState(store.db, requestId)) === 'done',
          deps.shutdown,
        );
        // Done or not, the store has the truth (the queue only says that something ended).
        const record = await stored(() => getExecution(store.db, requestId), req.log);
        if (record?.status === 'done' && record.response) {
          return reply.code(200).send(record.response as ExecutionResponse);
        }
        return pending(record?.status === 'running' ? 'running' : 'pending');
      },
    );

    app.get(
      '/executions/:request_id',
      {
        config: { scope: 'execute' },
        schema: {
          summary: 'State of an execution, with its response once done',
          params: requestIdParams,
          response: { 200: executionRecord, ...errors(400, 404, 503) },
        },
      },
      async (req) => {
        const record = await stored(() => getExecution(store.db, req.params.request_id), req.log);
        // Another tenant's execution is as absent as one that never existed.
        if (!record || record.tenant !== requestTenant(req)) {
          throw new ApiError(
            404,
            'not_found',
            `no execution ${JSON.stringify(req.params.request_id)}`,
            'request_id',
          );
        }
        return executionView(record);
      },
    );
  };
