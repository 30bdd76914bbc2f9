import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import {
  hookAttempts,
  listHooks,
  rotateSecret,
  tenantSecret,
  type HookSecret,
} from '../../store/webhooks.js';
import type { AppDeps } from '../deps.js';
import { ApiError, storeGuard } from '../errors.js';
import { errors } from '../schemas.js';
import { deliveriesQuery, deliveryList, hookSecret } from '../schemas/webhooks.js';
import { requestAuth } from '../auth.js';
import { requestTenant } from '../tenant.js';

/**
 * The caller's webhook signing secret (read, rotate) and its callbacks' deliveries with every
 * attempt. Only the tenant's own rows are ever selected; another tenant's resource id is a 404.
 */

const secretView = (s: HookSecret) => ({
  secret: s.secret,
  created_at: s.createdAt,
  rotated_at: s.rotatedAt,
});

export const webhookRoutes =
  (deps: AppDeps): FastifyPluginAsyncZod =>
  async (app) => {
    const db = deps.store.db;
    const stored = storeGuard(deps.config.server.retryAfterSeconds);
    // Any key that can submit work with a callback_url needs the secret; `execute` is every key's default.
    const config = { scope: 'execute' as const };

    app.get(
      '/webhooks/secret',
      {
        config,
        schema: {
          summary: 'Your webhook signing secret (made on first use)',
          response: { 200: hookSecret, ...errors(503) },
        },
      },
      async (req) => secretView(await stored(() => tenantSecret(db, requestTenant(req)), req.log)),
    );

    app.post(
      '/webhooks/secret',
      {
        config,
        schema: {
          summary: 'Replace your webhook signing secret',
          description:
            'Deliveries signed from now on (retries of earlier callbacks included) use the new secret.',
          response: { 200: hookSecret, ...errors(503) },
        },
      },
      async (req) => {
        const tenant = requestTenant(req);
        const rotated = await stored(() => rotateSecret(db, tenant), req.log);
        deps.audit.record({
          tenant,
          actor: requestAuth(req).keyId ?? tenant,
          action: 'webhook.secret_rotated',
          outcome: 'ok',
        });
        return secretView(rotated);
      },
    );

    app.get(
      '/webhooks/deliveries',
      {
        config,
        schema: {
          summary: 'Your callbacks and each delivery attempt',
          querystring: deliveriesQuery,
          response: { 200: deliveryList, ...errors(400, 404, 503) },
        },
      },
      async (req) => {
        const tenant = requestTenant(req);
        const { resource, limit } = req.query;
        const hooks = await stored(() => listHooks(db, { tenant, resourceId: resource, limit }), req.log);
        if (resource !== undefined && hooks.length === 0) {
          throw new ApiError(404, 'not_found', `no callback for ${JSON.stringify(resource)}`, 'resource');
        }
        const deliveries = await Promise.all(
          hooks.map(async (h) => ({
            kind: h.kind,
            resource_id: h.resourceId,
            url: h.url,
            status: h.status,
            attempts: (await stored(() => hookAttempts(db, h.kind, h.resourceId), req.log)).map((a) => ({
              attempt: a.attempt,
              status_code: a.statusCode,
              error: a.error,
              duration_ms: a.durationMs,
              at: a.at,
            })),
            created_at: h.createdAt,
            finished_at: h.finishedAt,
          })),
        );
        return { deliveries };
      },
    );
  };
