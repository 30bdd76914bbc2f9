import { randomUUID } from 'node:crypto';
import { DelayedError, type Job } from 'bullmq';
import type { Logger } from 'pino';
import { executionEvents } from '../audit/events.js';
import {
  caseJobId,
  EXECUTION_QUEUE,
  type ExecutionJobData,
  type ExecutionQueue,
} from '../queue/executions.js';
import {
  analyzeExecution,
  assembleResponse,
  emptyResponse,
  engineLimits,
  failedCase,
  outputShare,
  runCase,
  skippedCase,
  wardenFault,
  type CaseBudget,
  type CaseOutcome,
  type ExecutionRequest,
  type ExecutionResponse,
} from '../runner/index.js';
import {
  caseOutcomes,
  claimExecution,
  finishExecution,
  getExecution,
  pendingAmong,
  planCases,
  recordCase,
  recordedCases,
  staleExecutions,
  type ExecutionRecord,
} from '../store/executions.js';
import { limitsRunning, tenantQuotas } from '../config/quotas.js';
import type { Role, WorkerContext } from './role.js';

/**
 * Executions (POST /execute) taken from `warden-executions`. An `execution` job claims the request in
 * the store, analyses it and either answers (rejected; a single run) or splits it into one `case` job
 * per test case, which any worker takes in turn with other requests' cases. The worker recording the
 * last case assembles the answer. Every write is fenced by the claim; a worker that dies leaves the
 * execution to another (stalled job) or to the recovery pass, at most `tasks.maxAttempts` times, after
 * which it ends as `error`, Warden's fault.
 */
export function executionRole(ctx: WorkerContext, queue: ExecutionQueue): Role {
  const { config, engine, store, audit, metrics, logger } = ctx;
  const db = store.db;
  const { maxAttempts } = config.tasks;
  const { maxRequestMs } = config.sandbox;
  const { maxResponseBytes } = config.server;

  const runner = (log: Logger) => ({
    engine,
    policy: config.analysis,
    typecheck: config.languages.typescript.typecheck,
    onRun: metrics.observeRun.bind(metrics),
    onAnalysis: metrics.observeAnalysis.bind(metrics),
    onInternalError: (err: unknown, detail: string) => log.error({ err }, detail),
  });

  const budget = (req: ExecutionRequest, startedAt: string | null): CaseBudget => ({
    remainingMs: Date.parse(startedAt ?? '') + maxRequestMs - Date.now(),
    wallTimeMs: Math.min(
      engineLimits(req.limits).wallTimeMs ?? config.sandbox.limits.wallTimeMs,
      config.sandbox.maxLimits.wallTimeMs,
    ),
    outputBytes: outputShare(req, maxResponseBytes),
  });

  // A tenant at quotas.maxRunning: its job waits this long in the queue before it is tried again.
  const slots = queue.runningSlots({ staleMs: maxRequestMs + 60_000, retryMs: 250 });

  const elapsedMs = (record: ExecutionRecord) => Date.now() - Date.parse(record.startedAt ?? '');

  async function finish(
    record: ExecutionRecord,
    token: string,
    response: ExecutionResponse,
    log: Logger,
  ): Promise<boolean> {
    if (!(await finishExecution(db, record.requestId, response.status, response, token))) return false;
    // The answer is in the store: the waiting request goes first (its reply is written before the
    // next turn of the event loop), the bookkeeping after.
    await queue.notices.notify('execution', record.requestId, { kind: 'done', response });
    await new Promise((resolve) => setImmediate(resolve));
    metrics.observeExecution(record.language, response.status);
    // A callback is saved only for a request that names one (callback_url): the others have no row
    // to mark. (One missed would still be found by the webhook role's recovery pass.)
    if ((record.request as ExecutionRequest).callback_url !== undefined)
      await ctx.webhooks.finished('execution', record.requestId);
    for (const event of executionEvents(record, response)) audit.record(event);
    log.info(
      {
        language: record.language,
        status: response.status,
        runs: Math.max(1, response.test_results.length),
        seconds: response.execution_time,
      },
      'execution finished',
    );
    return true;
  }

  /** All cases are in: the answer from them, in the order given. */
  async function assemble(record: ExecutionRecord, token: string, log: Logger): Promise<boolean> {
    const req = record.request as ExecutionRequest;
    const outcomes = await caseOutcomes(db, record.requestId);
    const ordered = (req.test_cases ?? []).map((_, i) => outcomes.get(i) as CaseOutcome);
    return finish(record, token, assembleResponse(record.requestId, req, ordered, elapsedMs(record)), log);
  }

  async function takeExecution(requestId: string): Promise<boolean> {
    const token = randomUUID();
    const record = await claimExecution(db, requestId, token);
    // Taken (or gone): its place among the waiting executions is free.
    queue.admission
      .release(requestId)
      .catch((err: Error) => logger.warn({ err: err.message }, 'queue admission'));
    if (!record) return false;
    const log = logger.child({ reqId: requestId, attempt: record.attempts });
    try {
      if (record.attempts > maxAttempts) {
        const why = `its worker stopped ${maxAttempts} times while running it; submit it again`;
        return await finish(
          record,
          token,
          emptyResponse(requestId, 'error', [wardenFault(requestId, why)]),
          log,
        );
      }
      if (record.attempts > 1) log.warn('running an execution again: its worker stopped');
      const req = record.request as ExecutionRequest;
      const decision = await analyzeExecution(runner(log), requestId, req);
      if (decision.kind === 'answer') return await finish(record, token, decision.response, log);
      const cases = req.test_cases ?? [];
      if (cases.length === 0) {
        const outcome = await runCase(runner(log), requestId, req, req.stdin, budget(req, record.startedAt));
        const response = assembleResponse(requestId, req, [outcome], elapsedMs(record));
        return await finish(record, token, response, log);
      }
      if (!(await planCases(db, requestId, token, cases.length))) return false;
      const recorded = await recordedCases(db, requestId);
      const missing = cases.map((_, i) => i).filter((i) => !recorded.has(i));
      if (missing.length === 0) return await assemble(record, token, log);
      await queue.enqueueCases(requestId, record.attempts, missing);
      return false;
    } catch (err) {
      log.error({ err }, 'execution failed in Warden');
      const response = emptyResponse(requestId, 'error', [
        wardenFault(requestId, 'the worker failed while running it'),
      ]);
      // The store may be what failed: then the recovery pass takes it up later.
      return finish(record, token, response, log).catch(() => false);
    }
  }

  async function takeCase(requestId: string, attempt: number, index: number): Promise<boolean> {
    const record = await getExecution(db, requestId);
    // Another attempt holds the execution now (or it is finished): this job is stale.
    if (!record?.claim || record.status !== 'running' || record.attempts !== attempt) return false;
    const token = record.claim;
    const req = record.request as ExecutionRequest;
    const testCase = req.test_cases?.[index];
    if (!testCase) return false;
    const log = logger.child({ reqId: requestId, attempt, case: index });
    const caseBudget = budget(req, record.startedAt);
    let outcome: CaseOutcome;
    try {
      outcome =
        caseBudget.remainingMs <= 0
          ? skippedCase(maxRequestMs)
          : await runCase(runner(log), requestId, req, testCase.input_data, caseBudget);
    } catch (err) {
      log.error({ err }, 'test case failed in Warden');
      outcome = failedCase(requestId, 'the worker failed while running this case');
    }
    const { last } = await recordCase(db, requestId, token, index, outcome);
    return last ? assemble(record, token, log) : false;
  }

  return {
    name: 'executions',
    queue: EXECUTION_QUEUE,
    lockMs: config.tasks.jobLockMs,
    // Stalls are counted by the row's attempts, which close the execution when they run out.
    maxStalledCount: maxAttempts,
    // A running job may take up to the longest allowed run; give it that.
    graceMs: config.sandbox.maxLimits.wallTimeMs + 30_000,
    async process(job: Job<ExecutionJobData>, token?: string): Promise<void> {
      const data = job.data;
      const take = async () => {
        if (data.kind === 'case') await takeCase(data.requestId, data.attempt, data.index);
        else await takeExecution(data.requestId);
      };
      try {
        if (!limitsRunning(config.quotas)) return await take();
        const tenant = (await getExecution(db, data.requestId))?.tenant;
        if (!tenant) return await take(); // gone: nothing will run
        const { maxRunning } = tenantQuotas(config.quotas, config.server.maxQueueDepth, tenant);
        return await slots.run(job, token, tenant, maxRunning, take);
      } catch (err) {
        // The job fails and recovery takes the execution up later: the waiting request need not wait.
        // (A job put back for the tenant's maxRunning is not finished.)
        if (data.kind === 'execution' && !(err instanceof DelayedError))
          await queue.notices.notify('execution', data.requestId, { kind: 'ended' });
        throw err;
      }
    },
    async recover() {
      const staleMs = Math.min(config.tasks.recoveryIntervalMs, 30_000);
      for (const record of await staleExecutions(db, new Date(Date.now() - staleMs).toISOString())) {
        const log = logger.child({ reqId: record.requestId, status: record.status });
        const split = record.status === 'running' && record.casesTotal > 0;
        if (split && record.claim && record.casesDone >= record.casesTotal) {
          // Every case is in; the worker that was to assemble the answer stopped.
          await assemble(record, record.claim, log).catch(async (err: Error) => {
            log.error({ err }, 'could not assemble the answer of a finished execution');
            const why = 'its answer could not be assembled from its test cases';
            const response = emptyResponse(record.requestId, 'error', [wardenFault(record.requestId, why)]);
            await finish(record, record.claim!, response, log);
          });
          continue;
        }
        const jobs = [record.requestId];
        if (split) {
          const recorded = await recordedCases(db, record.requestId);
          for (let i = 0; i < record.casesTotal; i++)
            if (!recorded.has(i)) jobs.push(caseJobId(record.requestId, record.attempts, i));
        }
        if (await queue.anyAlive(jobs)) continue;
        if (await queue.ensure(record.requestId)) log.warn('queued again an execution whose job was lost');
      }
      // Places held by executions no longer waiting (refused or lost midway) are given back.
      const admitted = await queue.admission.admittedBefore(Date.now() - staleMs);
      const pending = await pendingAmong(db, admitted);
      for (const id of admitted) if (!pending.has(id)) await queue.admission.release(id);
    },
  };
}
