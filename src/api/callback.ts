import type { FastifyRequest } from 'fastify';
import { requestAuth } from './auth.js';
import { insertHook, type HookKind } from '../store/webhooks.js';
import { CallbackRefused, CallbackUnresolved, checkCallbackUrl, targetPolicy } from '../webhooks/target.js';
import type { AppDeps } from './deps.js';
import { ApiError, storeGuard } from './errors.js';
import { requestTenant } from './tenant.js';

/**
 * A request's `callback_url`, checked before anything is recorded (a refused or unresolvable URL is
 * a 400 naming the field), then saved with the resource: `save` runs after the resource's row is
 * written and before its queue job, so the callback exists before anything can finish the resource.
 */
export interface Callback {
  save(kind: HookKind, resourceId: string): Promise<void>;
}

export async function acceptCallback(
  deps: Pick<AppDeps, 'config' | 'store' | 'audit'>,
  req: FastifyRequest,
  url: string | undefined,
): Promise<Callback | undefined> {
  if (url === undefined) return undefined;
  const tenant = requestTenant(req);
  try {
    await checkCallbackUrl(url, targetPolicy(deps.config.webhooks));
  } catch (err) {
    if (!(err instanceof CallbackRefused || err instanceof CallbackUnresolved)) throw err;
    if (err instanceof CallbackRefused) {
      // The reason names the host and address, never the whole URL (it may carry a token).
      deps.audit.record({
        tenant,
        actor: requestAuth(req).keyId ?? tenant,
        action: 'webhook.refused',
        outcome: 'refused',
        details: { reason: err.message },
      });
    }
    throw new ApiError(400, 'invalid_callback_url', `callback_url: ${err.message}`, 'callback_url');
  }
  const stored = storeGuard(deps.config.server.retryAfterSeconds);
  return {
    save: (kind, resourceId) =>
      stored(() => insertHook(deps.store.db, { kind, resourceId, tenant, url }), req.log),
  };
}
