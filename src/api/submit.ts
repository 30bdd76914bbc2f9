import type { FastifyRequest } from 'fastify';
import type { ExecutionRequest } from '../runner/index.js';
import {
  deleteExecution,
  executionState,
  getExecution,
  insertExecution,
  type ExecutionRecord,
} from '../store/executions.js';
import type { AppDeps } from './deps.js';
import { admitOrRefuse } from './admission.js';
import { storeGuard, UnavailableError } from './errors.js';

/**
 * An execution's way in, for every route that takes one: a place in the queue (one atomic
 * check-and-take), then the row (with the caller's tenant and key), then the job; a refusal at any
 * step leaves nothing behind. `beforeEnqueue` runs once the row exists (e.g. to store its callback).
 * The request id is the HTTP request's.
 */
export async function submitExecution(
  deps: AppDeps,
  req: FastifyRequest,
  request: ExecutionRequest,
  row: { tenant: string; backend: string },
  beforeEnqueue?: (requestId: string) => Promise<void>,
): Promise<string> {
  const { config, store, queue } = deps;
  const retryAfter = config.server.retryAfterSeconds;
  if (deps.shutdown?.aborted)
    throw new UnavailableError('service', retryAfter, 'the service is shutting down');
  const requestId = req.id;
  await admitOrRefuse(config, queue.admission, [requestId], row.tenant, 'executions');
  const giveBack = () => queue.admission.release(requestId).catch(() => {});
  try {
    await storeGuard(retryAfter)(
      () =>
        insertExecution(store.db, {
          requestId,
          language: request.language,
          request,
          apiKeyId: req.auth?.keyId,
          ...row,
        }),
      req.log,
    );
  } catch (err) {
    await giveBack();
    throw err;
  }
  try {
    await beforeEnqueue?.(requestId);
    await queue.enqueue(requestId);
  } catch (err) {
    // Refused with 503: the execution never existed.
    await deleteExecution(store.db, requestId).catch(() => {});
    await giveBack();
    throw err;
  }
  return requestId;
}

/**
 * Waits up to server.requestTimeoutMs for the execution to finish (or the service to shut down),
 * then reads it from the store, which has the truth (the queue only says that something ended).
 */
export async function awaitExecution(
  deps: AppDeps,
  req: FastifyRequest,
  requestId: string,
): Promise<ExecutionRecord | undefined> {
  const { config, store, queue } = deps;
  await queue.waitForDone(
    requestId,
    config.server.requestTimeoutMs,
    async () => (await executionState(store.db, requestId)) === 'done',
    deps.shutdown,
  );
  return storeGuard(config.server.retryAfterSeconds)(() => getExecution(store.db, requestId), req.log);
}
