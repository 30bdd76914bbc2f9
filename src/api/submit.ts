import type { FastifyReply, FastifyRequest } from 'fastify';
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
import type { Callback } from './callback.js';
import { storeGuard, UnavailableError } from './errors.js';

/** One execution to submit: its id, the checked request, where it runs, and its callback if any. */
export interface Submission {
  requestId: string;
  request: ExecutionRequest;
  backend: string;
  callback?: Callback;
}

/**
 * Executions' way in, for every route that takes them (one from POST /execute and the Piston API, up
 * to 20 from a batch): their places in the queue (one atomic check-and-take, all or none), the rows
 * (with the caller's tenant and key) and callbacks, then the jobs. The rows are written while the
 * places are asked for (a job, not a row, is what a worker takes); a refusal at any step leaves
 * nothing of any of them behind.
 */
export async function submitExecutions(
  deps: AppDeps,
  req: FastifyRequest,
  tenant: string,
  items: readonly Submission[],
): Promise<void> {
  const { config, store, queue } = deps;
  const retryAfter = config.server.retryAfterSeconds;
  if (deps.shutdown?.aborted)
    throw new UnavailableError('service', retryAfter, 'the service is shutting down');
  const ids = items.map((item) => item.requestId);
  const admitted = admitOrRefuse(config, queue.admission, ids, tenant, 'executions').then(
    () => undefined,
    (err: unknown) => err,
  );
  try {
    for (const { requestId, request, backend } of items) {
      await storeGuard(retryAfter)(
        () =>
          insertExecution(store.db, {
            requestId,
            language: request.language,
            request,
            apiKeyId: req.auth?.keyId,
            tenant,
            backend,
          }),
        req.log,
      );
    }
    const refused = await admitted;
    if (refused) throw refused;
    for (const { requestId, callback } of items) await callback?.save('execution', requestId);
    await queue.enqueue(ids);
  } catch (err) {
    // Refused (429, or 503 for a store or queue outage): none of these executions ever existed.
    await Promise.all(ids.map((id) => deleteExecution(store.db, id).catch(() => {})));
    // Their places, if they were taken (the store may have failed while they were asked for).
    if ((await admitted) === undefined)
      await Promise.all(ids.map((id) => queue.admission.release(id).catch(() => {})));
    throw err;
  }
}

const WAIT_ENDED = new Error('the wait ended: the service is stopping or the client went away');

/**
 * What ends a request's wait early: the service shutting down, or the client gone (the connection
 * closed before the answer: nobody is left to tell, and a wait held for it would hold its timer, its
 * socket and its share of the store checks until the timeout).
 */
export function waitSignal(deps: Pick<AppDeps, 'shutdown'>, reply: FastifyReply): AbortSignal {
  const ended = new AbortController();
  // One reason for all (nobody reads it): abort() without one builds a DOMException, stack and all,
  // at the close of every answered request.
  const end = () => ended.abort(WAIT_ENDED);
  if (deps.shutdown?.aborted) end();
  deps.shutdown?.addEventListener('abort', end, { once: true });
  // Closed: answered, or the client went away. Either way the service's signal is not needed here.
  reply.raw.once('close', () => {
    deps.shutdown?.removeEventListener('abort', end);
    end();
  });
  return ended.signal;
}

/**
 * Waits up to server.requestTimeoutMs for the execution to finish (or the service to shut down, or the
 * client to go away: waitSignal). The
 * answer comes with the notice when the worker that wrote it runs in this process; otherwise it is
 * read from the store, which has the truth (a notice only says that something ended).
 */
export async function awaitExecution(
  deps: AppDeps,
  req: FastifyRequest,
  reply: FastifyReply,
  requestId: string,
): Promise<Pick<ExecutionRecord, 'status' | 'response'> | undefined> {
  const { config, store, queue } = deps;
  const outcome = await queue.notices.wait(
    'execution',
    requestId,
    config.server.requestTimeoutMs,
    async () => (await executionState(store.db, requestId)) === 'done',
    waitSignal(deps, reply),
  );
  if (outcome.kind === 'done' && outcome.response !== undefined)
    return { status: 'done', response: outcome.response };
  return storeGuard(config.server.retryAfterSeconds)(() => getExecution(store.db, requestId), req.log);
}
