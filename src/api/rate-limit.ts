import fastifyRateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { tenantQuotas } from '../config/quotas.js';
import type { WardenConfig } from '../config/schema.js';
import { redisClient } from '../queue/admission.js';
import { redisConnections } from '../queue/connection.js';
import { ApiError } from './errors.js';

/**
 * Requests per window per API key (quotas.rate, per-tenant overrides in quotas.tenants), counted in
 * Redis so the limit holds across every API node sharing it. Answers carry RateLimit-Limit,
 * RateLimit-Remaining and RateLimit-Reset; past the limit, 429 `rate_limited` with Retry-After.
 *
 * - Public routes (/health, /metrics, /languages, /docs, the dashboard's assets) are not limited:
 *   they are cheap reads that load balancers and browsers repeat, and they carry no key to count by.
 * - Under auth.mode none (loopback only), requests without a key are not limited either: there is
 *   one local user, and the queue caps still bound what it can queue. Requests with a key are.
 * - Counting happens after authentication (a route hook, after the root's auth hook): a request
 *   refused 401/403 is not counted against anyone's key.
 * - Redis unavailable: requests are let through (the queue then answers 503 by itself).
 */
export async function installRateLimit(
  app: FastifyInstance,
  config: Pick<WardenConfig, 'quotas' | 'queue' | 'server'>,
): Promise<void> {
  const quotas = (req: FastifyRequest) =>
    tenantQuotas(config.quotas, config.server.maxQueueDepth, req.auth?.tenant ?? '').rate;
  const redisUrl = config.queue.redisUrl;
  const connections = redisUrl ? redisConnections(redisUrl) : undefined;
  const redis = connections ? redisClient(connections.producer) : undefined;
  if (redis) {
    redis.on('error', (err: Error) => app.log.warn({ err: err.message }, 'rate limit store'));
    await redis.connect().catch(() => {}); // it reconnects; meanwhile requests are let through
    app.addHook('onClose', async () => {
      connections?.stop();
      redis.disconnect();
    });
  }
  await app.register(fastifyRateLimit, {
    global: true,
    hook: 'onRequest',
    enableDraftSpec: true,
    skipOnError: true,
    ...(redis ? { redis, nameSpace: `${config.queue.prefix}:rate:` } : {}),
    allowList: (req) => req.auth === null || req.auth.keyId === null,
    keyGenerator: (req) => req.auth?.keyId ?? 'public',
    max: (req) => quotas(req).max,
    timeWindow: (req) => quotas(req).windowMs,
    errorResponseBuilder: (_req, context) =>
      new ApiError(
        429,
        'rate_limited',
        `more than ${context.max} requests in ${quotas(_req).windowMs} ms with this API key (quotas.rate); retry in ${context.after}`,
        null,
        Math.max(1, Math.ceil(context.ttl / 1000)),
      ),
  });
}
