import type { Job } from 'bullmq';
import type { ExecutionJobData, ExecutionJobResult } from '../queue/executions.js';
import { EXECUTION_QUEUE } from '../queue/executions.js';
import { runExecution } from '../runner/execution.js';
import { finishExecution, markExecutionRunning } from '../store/executions.js';
import type { Role, WorkerContext } from './role.js';

/** Executions (POST /execute) taken from `warden-executions`, their progress and response in the store. */
export function executionRole(ctx: WorkerContext): Role {
  const { config, engine, store, metrics, logger } = ctx;
  return {
    name: 'executions',
    queue: EXECUTION_QUEUE,
    // Running executions may take up to the longest allowed run per test case; give them that.
    graceMs: config.sandbox.maxLimits.wallTimeMs + 30_000,
    async process(job: Job<ExecutionJobData, ExecutionJobResult>): Promise<ExecutionJobResult> {
      const { requestId, request } = job.data;
      const log = logger.child({ reqId: requestId });
      await markExecutionRunning(store.db, requestId);
      const response = await runExecution(
        {
          engine,
          policy: config.analysis,
          onRun: (language, result) => metrics.observeRun(language, result),
          onAnalysis: (language, report) => metrics.observeAnalysis(language, report),
          onInternalError: (err, detail) => log.error({ err }, detail),
        },
        requestId,
        request,
      );
      metrics.observeExecution(request.language, response.status);
      await finishExecution(store.db, requestId, response.status, response);
      log.info(
        {
          language: request.language,
          status: response.status,
          runs: Math.max(1, response.test_results.length),
          seconds: response.execution_time,
        },
        'execution finished',
      );
      return { status: response.status };
    },
  };
}
