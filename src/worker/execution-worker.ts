import { Worker, type Job } from 'bullmq';
import type { Logger } from 'pino';
import { warmUp } from '../analysis/index.js';
import type { WardenConfig } from '../config/schema.js';
import { LANGUAGES, languageSandbox } from '../languages/index.js';
import { createMetrics, type Metrics } from '../metrics.js';
import { redisConnections, withDeadline } from '../queue/connection.js';
import {
  EXECUTION_QUEUE,
  workerName,
  type ExecutionJobData,
  type ExecutionJobResult,
} from '../queue/executions.js';
import { runExecution } from '../runner/execution.js';
import { createEngine, type Engine } from '../sandbox/engine.js';
import type { BackendProbe } from '../sandbox/types.js';
import { openStore, type Store } from '../store/db.js';
import { finishExecution, markExecutionRunning } from '../store/executions.js';
import { createLogger, throttled } from '../logging.js';

/**
 * A queue worker: owns a sandbox engine (with its pool) and runs executions taken from
 * `warden-executions`, persisting each one's progress and response in the store. Runs inside
 * `warden serve` or alone (`warden worker`), as many processes as wanted against one Redis.
 */
export interface ExecutionWorker {
  readonly engine: Engine;
  /** Idle pre-started sandboxes per language. */
  poolSizes(): Record<string, number>;
  /** Backend probes, cached for a while (a probe starts a sandbox). */
  probe(): Promise<BackendProbe[]>;
  /** Stops taking jobs, lets running ones finish, then releases everything it opened. */
  close(): Promise<void>;
}

export class WorkerConfigError extends Error {}

/** What `warden serve` shares with its in-process worker instead of opening twice. */
export interface WorkerShared {
  store?: Store;
  metrics?: Metrics;
  logger?: Logger;
}

const PROBE_TTL_MS = 30_000;

export async function startExecutionWorker(
  config: WardenConfig,
  shared: WorkerShared = {},
): Promise<ExecutionWorker> {
  const redisUrl = config.queue.redisUrl;
  if (!redisUrl) {
    throw new WorkerConfigError(
      'a worker needs queue.redisUrl (REDIS_URL): the Redis that `warden serve` uses',
    );
  }
  const logger = (shared.logger ?? createLogger(config.server.logLevel)).child({ component: 'worker' });
  const metrics = shared.metrics ?? createMetrics();
  const store = shared.store ?? (await openStore(config));

  const engine = createEngine(config.sandbox, {
    onError: (err) => logger.error({ err }, 'sandbox engine error'),
  });
  const removed = await engine.cleanupOrphans();
  if (removed.length > 0) logger.warn({ removed }, 'removed sandboxes left behind by a crashed predecessor');
  for (const lang of Object.values(LANGUAGES)) {
    const size = config.sandbox.pool.perLanguage[lang.id] ?? config.sandbox.pool.size;
    if (size > 0) engine.prewarm(languageSandbox(lang), size);
  }
  await warmUp();
  const poolSizes = () => engine.poolSizes();
  metrics.setEngine({ activeRuns: () => engine.activeRuns(), poolSizes });

  const processJob = async (job: Job<ExecutionJobData, ExecutionJobResult>): Promise<ExecutionJobResult> => {
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
  };

  const connections = redisConnections(redisUrl);
  const worker = new Worker<ExecutionJobData, ExecutionJobResult>(EXECUTION_QUEUE, processJob, {
    connection: connections.consumer,
    prefix: config.queue.prefix,
    concurrency: config.workers.concurrency,
    name: workerName(),
  });
  const logRedisError = throttled(30_000, (err: Error) =>
    logger.error({ err: err.message }, 'queue connection error'),
  );
  worker.on('error', logRedisError);
  worker.on('failed', (job, err) =>
    logger.error({ reqId: job?.data.requestId, err }, 'execution job failed'),
  );
  if (!(await withDeadline(worker.waitUntilReady(), 10_000))) {
    connections.stop();
    await withDeadline(worker.close(true), 1000);
    await engine.shutdown();
    if (!shared.store) await store.close();
    throw new WorkerConfigError('the worker cannot reach Redis');
  }
  logger.info({ concurrency: config.workers.concurrency, backend: engine.defaultBackend }, 'worker started');

  let probed: { at: number; value: Promise<BackendProbe[]> } | undefined;
  let closing: Promise<void> | undefined;
  return {
    engine,
    poolSizes,
    probe() {
      if (!probed || Date.now() - probed.at > PROBE_TTL_MS)
        probed = { at: Date.now(), value: engine.probe() };
      return probed.value;
    },
    close() {
      closing ??= (async () => {
        // Running executions may take up to the longest allowed run per test case; give them that.
        const grace = config.sandbox.maxLimits.wallTimeMs + 30_000;
        if (!(await withDeadline(worker.close(), grace))) logger.warn('worker did not stop in time');
        connections.stop();
        await engine.shutdown();
        if (!shared.store) await store.close();
        logger.info('worker stopped');
      })();
      return closing;
    },
  };
}
