import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { listAudit } from '../../store/audit.js';
import { decodeCursor, encodeCursor } from '../cursor.js';
import type { AppDeps } from '../deps.js';
import { ApiError, storeGuard } from '../errors.js';
import { errors } from '../schemas.js';
import { auditPage, auditQuery } from '../schemas/audit.js';

/** GET /audit (admin scope): who did what, across tenants, newest first. */
export const auditRoutes =
  (deps: AppDeps): FastifyPluginAsyncZod =>
  async (app) => {
    const stored = storeGuard(deps.config.server.retryAfterSeconds);

    app.get(
      '/audit',
      {
        config: { scope: 'admin' },
        schema: {
          summary: 'The audit log: who did what and what came of it, newest first',
          description:
            'Key creations and revocations, code submitted (its sha256, language and verdict), static rejections (the rules), run-time violations (the system calls), task files uploaded, validated or quarantined (the reasons), tasks run, jobs created or cancelled, connections the egress proxy refused. Records are written in batches: one may appear up to a fraction of a second after its action.',
          querystring: auditQuery,
          response: { 200: auditPage, ...errors(400, 503) },
        },
      },
      async (req) => {
        const { tenant, action, from, to, limit, cursor } = req.query;
        let after: number | undefined;
        if (cursor !== undefined) {
          after = Number(decodeCursor(cursor).id);
          if (!Number.isSafeInteger(after) || after < 1)
            throw new ApiError(400, 'invalid_request', 'cursor: not a cursor this server gave', 'cursor');
        }
        const page = await stored(
          () => listAudit(deps.store.db, { tenant, action, from, to, limit, cursor: after }),
          req.log,
        );
        const last = page.records.at(-1);
        return {
          records: page.records,
          next_cursor:
            page.next !== null && last ? encodeCursor({ createdAt: last.at, id: String(page.next) }) : null,
        };
      },
    );
  };
