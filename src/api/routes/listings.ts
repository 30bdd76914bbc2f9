import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { Verdict } from '../../sandbox/types.js';
import { listExecutions, listTaskFiles } from '../../store/listings.js';
import { decodeCursor, encodeCursor } from '../cursor.js';
import type { AppDeps } from '../deps.js';
import { storeGuard } from '../errors.js';
import { errors } from '../schemas.js';
import { executionList, pageQuery, taskFileList } from '../schemas/listings.js';
import { requestTenant } from '../tenant.js';

/**
 * The caller's own executions and task files, newest first (the dashboard lists them). Only the
 * tenant's rows are ever read: another tenant's are not filtered out afterwards, they are never
 * selected.
 */
export const listingRoutes =
  (deps: AppDeps): FastifyPluginAsyncZod =>
  async (app) => {
    const { store } = deps;
    const stored = storeGuard(deps.config.server.retryAfterSeconds);

    app.get(
      '/executions',
      {
        config: { scope: 'execute' },
        schema: {
          summary: 'Your executions, newest first, with verdict and usage',
          querystring: pageQuery,
          response: { 200: executionList, ...errors(400, 503) },
        },
      },
      async (req) => {
        const tenant = requestTenant(req);
        const { limit, cursor } = req.query;
        const after = cursor ? decodeCursor(cursor) : undefined;
        const page = await stored(() => listExecutions(store, { tenant, limit, after }), req.log);
        return {
          executions: page.items.map((e) => ({
            request_id: e.requestId,
            language: e.language,
            backend: e.backend,
            status: e.status,
            verdict: e.verdict as Verdict | null,
            resource_usage: e.usage,
            has_security_violations: e.securityViolations,
            created_at: e.createdAt,
            finished_at: e.finishedAt,
            poll: `/executions/${e.requestId}`,
          })),
          next_cursor: page.next ? encodeCursor(page.next) : null,
        };
      },
    );

    app.get(
      '/tasks/files',
      {
        config: { scope: 'tasks' },
        schema: {
          summary: 'Your uploaded task files, newest first, with their validation status',
          querystring: pageQuery,
          response: { 200: taskFileList, ...errors(400, 503) },
        },
      },
      async (req) => {
        const owner = requestTenant(req);
        const { limit, cursor } = req.query;
        const after = cursor ? decodeCursor(cursor) : undefined;
        const page = await stored(() => listTaskFiles(store, { owner, limit, after }), req.log);
        return {
          task_files: page.items.map((f) => ({
            validation_id: f.validationId,
            title: f.title,
            file_name: f.fileName,
            original_filename: f.originalName,
            language: f.language,
            status: f.status,
            reasons: f.reasons,
            created_at: f.createdAt,
            checked_at: f.checkedAt,
            poll: `/tasks/validation_status/${f.validationId}`,
          })),
          next_cursor: page.next ? encodeCursor(page.next) : null,
        };
      },
    );
  };
