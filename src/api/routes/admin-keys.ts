import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { duration } from '../../config/duration.js';
import {
  createApiKey,
  InvalidKeyRequestError,
  keyView,
  listApiKeys,
  revokeApiKey,
  SCOPES,
  TENANT_RE,
  TENANT_RULE,
} from '../../store/api-keys.js';
import { keyEvent, requestActor } from '../../audit/events.js';
import type { AppDeps } from '../deps.js';
import { ApiError, storeGuard } from '../errors.js';
import { errors } from '../schemas.js';

/** API keys for operators (admin scope), the same as `warden keys create|list|revoke`. */

const tenant = z.string().regex(TENANT_RE, `must be ${TENANT_RULE}`);

const keyRecord = z.object({
  id: z.string().describe('The key’s public handle (`key_…`); revoke it by this.'),
  tenant: z.string(),
  scopes: z.array(z.enum(SCOPES)),
  name: z.string().nullable(),
  state: z.enum(['active', 'revoked', 'expired']),
  created_at: z.string(),
  expires_at: z.string().nullable(),
  revoked_at: z.string().nullable(),
});

const createBody = z.strictObject({
  tenant: tenant.describe('Whose key: everything it creates belongs to this tenant.'),
  scopes: z
    .array(z.enum(SCOPES))
    .min(1)
    .optional()
    .describe('Default: execute, tasks, jobs (admin only when named).'),
  expires_in: duration
    .optional()
    .describe('Lifetime, e.g. `90d` or `12h` (or milliseconds); none: until revoked.'),
  name: z.string().min(1).max(255).optional().describe('A note on what the key is for.'),
});

export const adminKeyRoutes =
  (deps: Pick<AppDeps, 'config' | 'store' | 'audit'>): FastifyPluginAsyncZod =>
  async (app) => {
    const db = deps.store.db;
    const stored = storeGuard(
      deps.config.server.retryAfterSeconds,
      (e) => e instanceof InvalidKeyRequestError,
    );

    app.post(
      '/admin/keys',
      {
        config: { scope: 'admin' },
        schema: {
          summary: 'Create an API key (shown once)',
          description:
            'The answer holds the key itself, the only time it is ever shown: the server keeps only its SHA-256.',
          body: createBody,
          response: {
            201: keyRecord.extend({ key: z.string().describe('`wdn_…`: store it now.') }),
            ...errors(400, 503),
          },
        },
      },
      async (req, reply) => {
        const { tenant: owner, scopes, expires_in: ttl, name } = req.body;
        let created;
        try {
          created = await stored(
            () =>
              createApiKey(db, {
                tenant: owner,
                scopes,
                name,
                expiresAt: ttl === undefined ? null : new Date(Date.now() + ttl),
              }),
            req.log,
          );
        } catch (err) {
          if (err instanceof InvalidKeyRequestError)
            throw new ApiError(400, 'invalid_request', err.message, err.field);
          throw err;
        }
        req.log.info(
          { keyId: created.record.id, keyTenant: owner, scopes: created.record.scopes },
          'api key created',
        );
        deps.audit.record(keyEvent('key.created', created.record, requestActor(req)));
        return reply.code(201).send({ ...keyView(created.record), key: created.key });
      },
    );

    app.get(
      '/admin/keys',
      {
        config: { scope: 'admin' },
        schema: {
          summary: 'API keys (never the keys themselves)',
          querystring: z.strictObject({ tenant: tenant.optional() }),
          response: { 200: z.object({ keys: z.array(keyRecord) }), ...errors(400, 503) },
        },
      },
      async (req) => {
        const keys = await stored(() => listApiKeys(db, { tenant: req.query.tenant }), req.log);
        return { keys: keys.map((k) => keyView(k)) };
      },
    );

    app.delete(
      '/admin/keys/:id',
      {
        config: { scope: 'admin' },
        schema: {
          summary: 'Revoke an API key (at once, on every node)',
          params: z.strictObject({ id: z.string().min(1).max(64) }),
          response: { 200: keyRecord, ...errors(400, 404, 503) },
        },
      },
      async (req) => {
        const record = await stored(() => revokeApiKey(db, req.params.id), req.log);
        if (!record)
          throw new ApiError(404, 'not_found', `no API key ${JSON.stringify(req.params.id)}`, 'id');
        req.log.info({ keyId: record.id, keyTenant: record.tenant }, 'api key revoked');
        deps.audit.record(keyEvent('key.revoked', record, requestActor(req)));
        return keyView(record);
      },
    );
  };
