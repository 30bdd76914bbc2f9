import { randomUUID } from 'node:crypto';
import fastifyCors from '@fastify/cors';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import helmet from 'helmet';
import { createJsonSchemaTransform, serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import { documentScopes, installAuth, withScope } from './auth.js';
import type { AppDeps } from './deps.js';
import { installErrorHandling } from './errors.js';
import { installRateLimit } from './rate-limit.js';
import { adminKeyRoutes } from './routes/admin-keys.js';
import { artifactRoutes } from './routes/artifacts.js';
import { auditRoutes } from './routes/audit.js';
import { executeBatchRoutes } from './routes/execute-batch.js';
import { executeRoutes } from './routes/execute.js';
import { jobRoutes } from './routes/jobs.js';
import { languageRoutes } from './routes/languages.js';
import { listingRoutes } from './routes/listings.js';
import { pistonRoutes } from './routes/piston.js';
import { serviceRoutes } from './routes/service.js';
import { taskRoutes } from './routes/tasks.js';
import { uiRoutes } from './routes/ui.js';
import { webhookRoutes } from './routes/webhooks.js';

export type { AppDeps } from './deps.js';

/**
 * The HTTP API (SPEC §5) as a Fastify instance, not yet listening: tests use app.inject, the server
 * calls listen. Every route's input and output is a zod schema; /docs is generated from them.
 */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const app: FastifyInstance = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    bodyLimit: deps.config.server.bodyLimitBytes,
    // Ids are also the executions' request_id: generated here, never taken from the client.
    genReqId: () => randomUUID(),
    // Receiving one request may not take longer than this (slow clients hold sockets).
    requestTimeout: 30_000,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  installErrorHandling(app, deps.config.server.retryAfterSeconds);
  // JSON only: a text body would otherwise reach the schemas as a string.
  app.removeContentTypeParser('text/plain');
  // Counted per key once the key is known; before every route, so each one is limited.
  await installRateLimit(app, deps.config);
  const securityHeaders = helmet({
    // Helmet's policy (scripts from this origin only), minus upgrade-insecure-requests: served over
    // plain http on a LAN address, it would send browsers to an https port nobody listens on.
    contentSecurityPolicy: { directives: { upgradeInsecureRequests: null } },
  });
  // Built once here: @fastify/helmet built the middleware (and parsed the policy) for every request.
  app.addHook('onRequest', (req, reply, done) =>
    securityHeaders(req.raw, reply.raw, (err) => done(err instanceof Error ? err : undefined)),
  );
  if (deps.config.server.cors.origins.length > 0) {
    await app.register(fastifyCors, {
      origin: deps.config.server.cors.origins,
      methods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'],
      allowedHeaders: ['authorization', 'content-type', 'last-event-id'],
      exposedHeaders: [
        'x-request-id',
        'location',
        'retry-after',
        'ratelimit-limit',
        'ratelimit-remaining',
        'ratelimit-reset',
      ],
      maxAge: 600,
    });
  }
  // Before every route, after the headers every answer gets: a key and its scope are checked
  // before a request's body is read.
  installAuth(app, deps);

  app.addHook('onSend', async (req, reply) => {
    void reply.header('x-request-id', req.id);
  });
  app.addHook('onResponse', async (req, reply) => {
    deps.metrics.observeHttp(
      req.method,
      req.routeOptions.url ?? 'unmatched',
      reply.statusCode,
      reply.elapsedTime / 1000,
    );
  });

  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Warden',
        description:
          'Runs untrusted code: static analysis, then a sandboxed run under hard limits. Times are in seconds, memory in bytes (limits.memory_limit in MiB). Errors are `{ error: { code, message, field, request_id } }`.',
        version: '1',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    },
    transform: documentScopes(
      createJsonSchemaTransform({ skipList: ['/docs', '/docs/*', '/docs/json', '/docs/yaml'] }),
    ),
  });
  await app.register(
    withScope('public', async (docs) => docs.register(fastifySwaggerUi, { routePrefix: '/docs' })),
  );

  await app.register(serviceRoutes(deps));
  await app.register(executeRoutes(deps));
  await app.register(executeBatchRoutes(deps));
  await app.register(languageRoutes(deps));
  await app.register(taskRoutes(deps));
  await app.register(jobRoutes(deps));
  await app.register(auditRoutes(deps));
  await app.register(adminKeyRoutes(deps));
  await app.register(listingRoutes(deps));
  await app.register(pistonRoutes(deps));
  await app.register(uiRoutes());
  await app.register(webhookRoutes(deps));
  if (deps.artifacts) await app.register(artifactRoutes(deps, deps.artifacts));
  return app;
}
