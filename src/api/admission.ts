import { tenantQuotas } from '../config/quotas.js';
import type { WardenConfig } from '../config/schema.js';
import type { Admission } from '../queue/admission.js';
import { ApiError } from './errors.js';

/**
 * Takes places in a queue for `ids` (all or none) for `tenant`, or refuses with a 429 and Retry-After:
 * `queue_full` when server.maxQueueDepth places are taken, `tenant_queue_full` when the tenant holds
 * its share already (quotas.queuedShare, or its maxQueued) — so one tenant flooding a queue leaves
 * places for the others. `what` names the work in the message ("executions", "jobs", …).
 */
export async function admitOrRefuse(
  config: Pick<WardenConfig, 'server' | 'quotas'>,
  admission: Admission,
  ids: readonly string[],
  tenant: string,
  what: string,
): Promise<void> {
  const queue = config.server.maxQueueDepth;
  const share = tenantQuotas(config.quotas, queue, tenant).maxQueued;
  const outcome = await admission.admit(ids, tenant, { queue, tenant: share });
  if (outcome === 'admitted') return;
  const retryAfter = config.server.retryAfterSeconds;
  const these = ids.length === 1 ? `more ${what}` : `the ${ids.length} ${what} (nothing was queued)`;
  if (outcome === 'tenant_full') {
    throw new ApiError(
      429,
      'tenant_queue_full',
      `no place for ${these}: your tenant may have ${share} ${what} waiting for a worker at once (quotas.queuedShare, or its quotas.tenants entry); retry later`,
      null,
      retryAfter,
    );
  }
  throw new ApiError(
    429,
    'queue_full',
    `no place for ${these}: ${queue} ${what} may wait for a worker (server.maxQueueDepth); retry later`,
    null,
    retryAfter,
  );
}

/** Runs the work that follows an admission; if it fails, the place is given back before the error goes on. */
export async function holdingPlace<T>(admission: Admission, id: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    await admission.release(id).catch(() => {});
    throw err;
  }
}
