/**
 * Who is calling (SPEC §8): API keys, scopes and the tenant every request acts for.
 *
 * HOW A ROUTE DECLARES WHAT IT NEEDS — one line:
 *
 *   app.post('/things', { config: { scope: 'jobs' }, schema: { … } }, handler);
 *
 * or, for a plugin whose routes all need the same scope:
 *
 *   await app.register(withScope('execute', pistonRoutes(deps)));   // in app.ts
 *
 * Scopes: `execute` (/execute, /validate, Piston /api/v2/*), `tasks` (/tasks*), `jobs` (/jobs*),
 * `admin` (/admin/*, /audit: operators, across tenants), or `public` (no key: /health, /docs, …).
 * A route that declares nothing needs `admin`: forgetting fails closed.
 *
 * In a handler: `requestTenant(req)` (tenant.ts) is whose resources the request may see and create;
 * `requestAuth(req)` is `{ tenant, keyId, scopes }`, e.g. for rate limits and quotas (keyId is null
 * for the built-in tenant of auth.mode none). Both throw on a public route: there is nobody there.
 *
 * Keys travel only as `Authorization: Bearer wdn_…`. A missing, malformed, unknown, revoked or
 * expired key is one and the same 401, so an answer never tells whether a key exists; a valid key
 * without the route's scope is a 403. The key itself is never logged or stored (only its SHA-256).
 */
import type { SwaggerTransform } from '@fastify/swagger';
import type { FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import type { WardenConfig } from '../config/schema.js';
import { isLoopbackHost } from '../config/auth.js';
import { countUsableKeys, DEFAULT_TENANT, SCOPES, verifyApiKey, type Scope } from '../store/api-keys.js';
import type { Database } from '../store/schema.js';
import { ApiError, storeGuard } from './errors.js';
import { errorBody } from './schemas.js';

export type RouteScope = Scope | 'public';

/** Who a request acts for, once authenticated. */
export interface Principal {
  tenant: string;
  /** The key's id (`key_…`); null for the built-in tenant of auth.mode none. */
  keyId: string | null;
  scopes: readonly Scope[];
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** What a caller must hold to reach this route (see the top of src/api/auth.ts). */
    scope?: RouteScope;
  }
  interface FastifyRequest {
    /** Set by the auth hook for every route that is not public. */
    auth: Principal | null;
  }
}

/**
 * What a route needs: its declared scope, `admin` when it declares none; nothing for a 404, nor for
 * a CORS preflight (@fastify/cors's OPTIONS route: browsers never send credentials there).
 */
export function routeScope(req: FastifyRequest): RouteScope {
  if (req.is404) return 'public';
  const declared = req.routeOptions.config.scope;
  if (declared === undefined && req.method === 'OPTIONS') return 'public';
  return declared ?? 'admin';
}

export function requestAuth(req: FastifyRequest): Principal {
  if (!req.auth) {
    // A programming error (a public route asking whom it serves), never the client's.
    throw new Error(`route ${req.routeOptions.url ?? req.url} is public: it has no tenant`);
  }
  return req.auth;
}

/** Registers `plugin` with `scope` as the default of every route it adds that declares none. */
export function withScope(scope: RouteScope, plugin: FastifyPluginAsync): FastifyPluginAsync {
  return async (app) => {
    app.addHook('onRoute', (route) => {
      if (route.config?.scope === undefined) route.config = { ...route.config, scope };
    });
    await app.register(plugin);
  };
}

const unauthorized = () =>
  new ApiError(
    401,
    'unauthorized',
    'a valid API key is required: send it as `Authorization: Bearer <key>`',
    'authorization',
  );

const BEARER_RE = /^Bearer[ \t]+(\S+)[ \t]*$/i;

/** The built-in principal of auth.mode none: one tenant, every scope. */
const NO_AUTH: Principal = { tenant: DEFAULT_TENANT, keyId: null, scopes: SCOPES };

/**
 * Installs authentication on the root instance, before any route: a request hook that finds the
 * key, checks the route's scope and sets `req.auth`. It runs before the body is read, so an
 * unauthenticated upload is refused before a byte of it is parsed; installed after helmet and CORS,
 * whose headers then go out with a 401 too.
 */
export function installAuth(
  app: FastifyInstance,
  deps: { config: WardenConfig; store: { db: Kysely<Database> } },
): void {
  const mode = deps.config.auth.mode;
  const stored = storeGuard(deps.config.server.retryAfterSeconds);
  app.decorateRequest('auth', null);
  app.addHook('onRequest', async (req, reply) => {
    const scope = routeScope(req);
    if (scope === 'public') return;
    const header = req.headers.authorization;
    let principal: Principal;
    if (header === undefined && mode === 'none') {
      principal = NO_AUTH;
    } else {
      const key = typeof header === 'string' ? BEARER_RE.exec(header)?.[1] : undefined;
      const record = key ? await stored(() => verifyApiKey(deps.store.db, key), req.log) : undefined;
      if (!record) {
        void reply.header('www-authenticate', 'Bearer realm="warden"');
        throw unauthorized();
      }
      principal = { tenant: record.tenant, keyId: record.id, scopes: record.scopes };
    }
    if (!principal.scopes.includes(scope)) {
      throw new ApiError(
        403,
        'forbidden',
        `this API key does not have the ${scope} scope this endpoint needs`,
        'authorization',
      );
    }
    req.auth = principal;
    // Every later log line of the request says whom it served (never the key itself).
    req.log = req.log.child({ tenant: principal.tenant, keyId: principal.keyId });
  });
}

/**
 * Wraps the OpenAPI transform: every route says its scope (`x-warden-scope`), and every non-public
 * one is documented with the bearer scheme and the 401/403 answers the auth hook gives.
 */
export function documentScopes(transform: SwaggerTransform): SwaggerTransform {
  return (document) => {
    const scope = document.route.config?.scope ?? 'admin';
    const schema = document.schema as Record<string, unknown> | undefined;
    if (!schema || schema.hide) return transform(document);
    let documented: Record<string, unknown> = { ...schema, 'x-warden-scope': scope };
    if (scope !== 'public') {
      const description = typeof schema.description === 'string' ? `${schema.description}\n\n` : '';
      documented = {
        ...documented,
        description: `${description}Needs an API key with the \`${scope}\` scope.`,
        security: [{ bearer: [] }],
        response: {
          // Every keyed route is rate limited (src/api/rate-limit.ts); a route's own 429 says more.
          429: errorBody.describe(
            'Too many requests with this API key (`rate_limited`, quotas.rate): retry after `Retry-After` seconds.',
          ),
          ...(schema.response as Record<string, unknown> | undefined),
          401: errorBody.describe('No API key, or one that is unknown, revoked or expired.'),
          403: errorBody.describe(`The API key does not have the \`${scope}\` scope.`),
        },
      };
    }
    return transform({ ...document, schema: documented });
  };
}

/** One sentence on how callers are authenticated: the start-up log, /health and `warden doctor`. */
export function describeAuth(config: Pick<WardenConfig, 'auth' | 'server'>): string {
  if (config.auth.mode === 'none') {
    return `auth.mode none: no API key is needed; requests without one act for the tenant "${DEFAULT_TENANT}" with every scope (allowed only because server.host ${config.server.host} is loopback)`;
  }
  return 'auth.mode keys: every request but /health, /metrics, /languages and /docs needs an API key (Authorization: Bearer)';
}

/** The command that makes the first key, as the refusal to start names it. */
export const FIRST_KEY_COMMAND = 'warden keys create --tenant admin --scopes admin,execute,tasks,jobs';

export class NoKeysError extends Error {}

/**
 * Beyond loopback under auth.mode keys, a server without a single usable key would refuse every
 * request: it refuses to start instead, naming the command that fixes it.
 */
export async function checkServable(
  config: Pick<WardenConfig, 'auth' | 'server'>,
  db: Kysely<Database>,
): Promise<{ usableKeys: number | null; warning?: string }> {
  if (config.auth.mode === 'none') return { usableKeys: null };
  const usableKeys = await countUsableKeys(db);
  if (usableKeys > 0) return { usableKeys };
  const message = `auth.mode is keys and no API key exists yet (or every one is revoked or expired); create the first one with \`${FIRST_KEY_COMMAND}\``;
  if (!isLoopbackHost(config.server.host)) {
    throw new NoKeysError(`refusing to listen on ${config.server.host}: ${message}, then start again`);
  }
  return { usableKeys, warning: message };
}
