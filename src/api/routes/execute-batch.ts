import { randomUUID } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { ExecutionRequest, ExecutionResponse } from '../../runner/index.js';
import { acceptCallback, type Callback } from '../callback.js';
import type { AppDeps } from '../deps.js';
import { ApiError } from '../errors.js';
import { checkExecution } from '../execution-checks.js';
import { errorBody, errors, executeRequest, executeResponse, executionState } from '../schemas.js';
import { awaitExecution, submitExecutions } from '../submit.js';
import { requestTenant } from '../tenant.js';

/**
 * POST /execute/batch (Judge0's `POST /submissions/batch`): up to MAX_BATCH executions in one call.
 *
 * - Each item is checked like a POST /execute body; an item that fails is reported in its place with
 *   the field at fault (`submissions.3.language`) and the others go ahead, as Judge0 does. Only when
 *   no item passes is the whole call a 400 (nothing would be queued).
 * - The accepted items take their places in the queue together, in one Redis script: when they do
 *   not all fit under server.maxQueueDepth the whole batch is refused (429) and nothing is queued, so
 *   a client never has to find out which half of its batch got in.
 * - `wait=false` is the default (Judge0 has no waiting batch): 202 with each item's request_id at
 *   once. `wait=true` waits up to server.requestTimeoutMs for all of them: 200 when every accepted
 *   item is done, else 202 with what is done so far.
 */

export const MAX_BATCH = 20;

const itemError = z.object({
  index: z.number().int().describe('Position of the submission in the request (0-based).'),
  error: errorBody.shape.error.omit({ request_id: true }),
});

const itemAccepted = z.object({
  index: z.number().int(),
  request_id: z.string(),
  status: executionState,
  poll: z.string().describe('GET this URL for the result.'),
  response: executeResponse.nullable().describe('The POST /execute answer once `done`, else null.'),
});

const batchAnswer = z.object({
  submissions: z
    .array(z.union([itemAccepted, itemError]))
    .describe('One entry per submission, in the order given: accepted (request_id) or refused (error).'),
});

const batchQuery = z.strictObject({
  wait: z
    .enum(['true', 'false'])
    .default('false')
    .describe('true: wait (up to server.requestTimeoutMs) for every accepted submission to finish.'),
});

type ItemError = z.infer<typeof itemError>;
type Checked = { index: number; request: ExecutionRequest; callback?: Callback; requestId: string };

/** A zod issue as the field it names (`submissions.2.limits.timeout`) and a message. */
function issueError(index: number, issue: z.core.$ZodIssue, maxCodeChars: number): ItemError {
  const path = issue.path.map(String);
  if (issue.code === 'unrecognized_keys') path.push(issue.keys[0] ?? '');
  const field = ['submissions', String(index), ...path].join('.');
  if (issue.code === 'too_big' && path.join('.') === 'code') {
    const message = `code is longer than the limit of ${maxCodeChars} characters`;
    return { index, error: { code: 'code_too_large', message, field } };
  }
  const message =
    issue.code === 'unrecognized_keys'
      ? `unknown field ${JSON.stringify(path.at(-1))}`
      : issue.code === 'invalid_type' && issue.input === undefined
        ? 'required'
        : issue.message;
  return { index, error: { code: 'invalid_request', message: `${field}: ${message}`, field } };
}

export const executeBatchRoutes =
  (deps: AppDeps): FastifyPluginAsyncZod =>
  async (app) => {
    const { config } = deps;
    const itemSchema = executeRequest(config);

    /** An item as POST /execute would take it, or why not (with its field under `submissions.N`). */
    async function check(index: number, item: unknown, req: FastifyRequest): Promise<Checked | ItemError> {
      const parsed = itemSchema.safeParse(item);
      if (!parsed.success) return issueError(index, parsed.error.issues[0]!, config.analysis.maxCodeChars);
      try {
        const request = await checkExecution(deps, parsed.data, requestTenant(req));
        const callback = await acceptCallback(deps, req, parsed.data.callback_url);
        return { index, request, callback, requestId: randomUUID() };
      } catch (err) {
        if (!(err instanceof ApiError) || err.statusCode !== 400) throw err;
        const field = ['submissions', String(index), ...(err.field ? [err.field] : [])].join('.');
        return { index, error: { code: err.code, message: err.message, field } };
      }
    }

    app.post(
      '/execute/batch',
      {
        config: { scope: 'execute' },
        schema: {
          summary: `Submit up to ${MAX_BATCH} executions at once (Judge0's batch)`,
          description: `\`submissions\`: up to ${MAX_BATCH} POST /execute bodies. Each is checked on its own: one that fails is reported in its place (its \`error.field\` under \`submissions.N\`) and the others are queued; only when none passes is the answer a 400. The accepted ones are admitted to the queue together or not at all (429 when they do not all fit under server.maxQueueDepth). Answers 202 with a request_id per submission (\`wait=false\`, the default), or waits up to server.requestTimeoutMs for all of them (\`wait=true\`: 200 once all are done). The whole body must fit in server.bodyLimitBytes.`,
          body: z.strictObject({
            submissions: z
              .array(z.record(z.string(), z.unknown()).describe('A POST /execute body (see that endpoint).'))
              .min(1)
              .max(MAX_BATCH)
              .describe(`1 to ${MAX_BATCH} POST /execute bodies.`),
          }),
          querystring: batchQuery,
          response: {
            200: batchAnswer.describe('Every accepted submission is done.'),
            202: batchAnswer.describe('Queued (wait=false), or not all done when the wait ended.'),
            400: errorBody
              .extend({ submissions: z.array(itemError).optional() })
              .describe('The request, or every submission in it, is invalid.'),
            ...errors(413, 415, 429, 500, 503),
          },
        },
      },
      async (req, reply) => {
        const tenant = requestTenant(req);
        const checked = await Promise.all(req.body.submissions.map((item, i) => check(i, item, req)));
        const accepted = checked.filter((c): c is Checked => 'request' in c);
        if (accepted.length === 0) {
          const first = checked[0] as ItemError;
          throw new ApiError(400, first.error.code, first.error.message, first.error.field, undefined, {
            submissions: checked,
          });
        }
        await submitExecutions(
          deps,
          req,
          tenant,
          accepted.map((c) => ({
            requestId: c.requestId,
            request: c.request,
            backend: c.request.backend ?? config.sandbox.backend,
            callback: c.callback,
          })),
        );

        const wait = req.query.wait === 'true';
        const answers = await Promise.all(
          checked.map(async (c) => {
            if (!('request' in c)) return c;
            const record = wait ? await awaitExecution(deps, req, reply, c.requestId) : undefined;
            const done = record?.status === 'done' && record.response !== null;
            return {
              index: c.index,
              request_id: c.requestId,
              status: record?.status ?? ('pending' as const),
              poll: `/executions/${c.requestId}`,
              response: done ? (record.response as ExecutionResponse) : null,
            };
          }),
        );
        const allDone = answers.every((a) => !('request_id' in a) || a.response !== null);
        return reply.code(wait && allDone ? 200 : 202).send({ submissions: answers });
      },
    );
  };
