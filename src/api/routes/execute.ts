import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { ExecutionResponse } from '../../runner/index.js';
import { getExecution } from '../../store/executions.js';
import { acceptCallback } from '../callback.js';
import type { AppDeps } from '../deps.js';
import { ApiError, storeGuard } from '../errors.js';
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
import { awaitExecution, submitExecutions } from '../submit.js';
import { requestTenant } from '../tenant.js';
import { executionView } from '../views.js';

export const executeRoutes =
  (deps: AppDeps): FastifyPluginAsyncZod =>
  async (app) => {
    const { config, store } = deps;
    const stored = storeGuard(config.server.retryAfterSeconds);

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
        const request = await checkExecution(deps, body, tenant);
        const callback = await acceptCallback(deps, req, body.callback_url);
        const requestId = req.id;
        const backend = body.backend ?? config.sandbox.backend;
        await submitExecutions(deps, req, tenant, [{ requestId, request, backend, callback }]);

        const poll = `/executions/${requestId}`;
        const pending = (status: 'pending' | 'running') =>
          reply.code(202).header('location', poll).send({ request_id: requestId, status, poll });
        if (req.query.wait === 'false') return pending('pending');
        const record = await awaitExecution(deps, req, reply, requestId);
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
