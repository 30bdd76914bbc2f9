import { hostname } from 'node:os';
import { Worker } from 'bullmq';
import type { Logger } from 'pino';
import { warmUp } from '../analysis/index.js';
import { openArtifactStore } from '../artifacts/index.js';
import type { WardenConfig } from '../config/schema.js';
import { LANGUAGES, languageSandbox, poolSizeFor } from '../languages/index.js';
import { createLogger, throttled } from '../logging.js';
import { createMetrics, type Metrics } from '../metrics.js';
import { redisConnections, withDeadline } from '../queue/connection.js';
import {
  openHeartbeats,
  workerId,
  WORKER_ROLES,
  type Heartbeats,
  type WorkerRole,
} from '../queue/heartbeats.js';
import { openExecutionQueue } from '../queue/executions.js';
import { openJobsQueue } from '../queue/jobs.js';
import { openTaskQueue } from '../queue/tasks.js';
import { openValidationQueue } from '../queue/validations.js';
import { createEngine, type Engine } from '../sandbox/engine.js';
import { startContainerMonitor } from '../sandbox/monitor.js';
import type { BackendProbe } from '../sandbox/types.js';
import { openAuditLog, type AuditLog } from '../store/audit.js';
import { openStore, type Store } from '../store/db.js';
import { executionRole } from './executions.js';
import type { Role, WorkerContext } from './role.js';
import { jobRole } from './jobs.js';
import { taskRole } from './tasks.js';
import { validationRole } from './validations.js';
import { webhookRole } from './webhooks.js';
import { hookNotifier } from '../webhooks/notify.js';
import { openWebhookQueue } from '../webhooks/queue.js';

/**
 * A worker process: one sandbox engine (with its pool), one store, and a BullMQ consumer per role —
 * executions, task-file validations, tasks. Runs inside `warden serve` or alone (`warden worker`), as
 * many processes as wanted against one Redis, and announces itself with a heartbeat.
 */
export interface WardenWorker {
  readonly id: string;
  readonly roles: readonly WorkerRole[];
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
  audit?: AuditLog;
  metrics?: Metrics;
  logger?: Logger;
}

const PROBE_TTL_MS = 30_000;

export async function startWorker(
  config: WardenConfig,
  options: WorkerShared & { roles?: readonly WorkerRole[] } = {},
): Promise<WardenWorker> {
  const redisUrl = config.queue.redisUrl;
  if (!redisUrl) {
    throw new WorkerConfigError(
      'a worker needs queue.redisUrl (REDIS_URL): the Redis that `warden serve` uses',
    );
  }
  const roles = [...new Set(options.roles?.length ? options.roles : WORKER_ROLES)];
  const id = workerId();
  const logger = (options.logger ?? createLogger(config.server.logLevel)).child({
    component: 'worker',
    worker: id,
  });
  const metrics = options.metrics ?? createMetrics();
  const undo: (() => Promise<void>)[] = [];
  const unwind = async () => {
    for (const step of undo.reverse().splice(0))
      await step().catch((err) => logger.error({ err }, 'worker shutdown step failed'));
  };

  try {
    const store = options.store ?? (await openStore(config));
    if (!options.store) undo.push(() => store.close());
    const audit = options.audit ?? openAuditLog(store.db, { logger, flushMs: config.store.auditFlushMs });
    if (!options.audit) undo.push(() => audit.close());

    const engine = createEngine(config.sandbox, {
      onError: (err) => logger.error({ err }, 'sandbox engine error'),
    });
    undo.push(() => engine.shutdown());
    // The configured backend must work here (or sandbox.fallback name one that does): never silently weaker.
    const backend = await engine.requireUsable();
    if (backend !== config.sandbox.backend)
      logger.warn(
        { configured: config.sandbox.backend, backend },
        'sandbox backend unavailable: runs use the fallback',
      );
    // Leftovers of a crashed predecessor go now; those of runs and services that end later, at each sweep.
    const monitor = startContainerMonitor(engine, {
      intervalMs: config.sandbox.monitor.intervalMs,
      onRemoved: (backend, removed) => {
        metrics.observeOrphans(backend, removed.length);
        logger.warn({ backend, removed }, 'removed sandbox leftovers of finished runs or dead services');
      },
      onError: (err) => logger.error({ err }, 'container monitor sweep failed'),
    });
    undo.push(() => monitor.stop());
    await monitor.sweep();
    for (const lang of Object.values(LANGUAGES)) {
      const size = poolSizeFor(config.sandbox.pool, lang);
      if (size > 0) engine.prewarm(languageSandbox(lang), size);
    }
    await warmUp();
    const poolSizes = () => engine.poolSizes();
    metrics.setEngine({ activeRuns: () => engine.activeRuns(), poolSizes });

    const logRedisError = throttled(30_000, (err: Error) =>
      logger.error({ err: err.message }, 'queue connection error'),
    );
    // Callbacks are queued where work finishes, and delivered by the processes that finish work.
    const hookQueue = await openWebhookQueue(
      { ...config, queue: { ...config.queue, redisUrl } },
      logRedisError,
    );
    undo.push(() => hookQueue.close());
    const webhooks = hookNotifier(store.db, hookQueue, logger);
    const ctx: WorkerContext = {
      config: { ...config, queue: { ...config.queue, redisUrl } },
      engine,
      store,
      audit,
      metrics,
      logger,
      webhooks,
    };
    const built: Role[] = [];
    for (const role of roles) {
      if (role === 'executions') {
        const queue = await openExecutionQueue({
          redisUrl,
          prefix: config.queue.prefix,
          listen: false,
          onError: logRedisError,
        });
        undo.push(() => queue.close());
        built.push(executionRole(ctx, queue));
      }
      if (role === 'validation') {
        const queue = await openValidationQueue(ctx.config, logRedisError);
        undo.push(() => queue.close());
        built.push(validationRole(ctx, queue));
      }
      if (role === 'tasks') {
        const queue = await openTaskQueue(ctx.config, logRedisError);
        undo.push(() => queue.close());
        built.push(taskRole(ctx, queue));
      }
      if (role === 'jobs') {
        const queue = await openJobsQueue(ctx.config, logRedisError);
        undo.push(() => queue.close());
        const artifacts = await openArtifactStore(config, logger);
        undo.push(() => artifacts.close());
        built.push(jobRole(ctx, queue, artifacts));
      }
    }
    if (roles.some((r) => r !== 'validation')) built.push(webhookRole(ctx, hookQueue, webhooks));

    const connections = redisConnections(redisUrl);
    undo.push(async () => connections.stop());
    const consumers = built.map((role) => {
      const worker = new Worker(role.queue, (job, token) => role.process(job, token), {
        connection: connections.consumer,
        prefix: config.queue.prefix,
        concurrency: config.workers.concurrency,
        name: `${id}:${role.name}`,
        ...(role.lockMs === undefined
          ? {}
          : { lockDuration: role.lockMs, stalledInterval: Math.max(250, Math.floor(role.lockMs / 2)) }),
        ...(role.maxStalledCount === undefined ? {} : { maxStalledCount: role.maxStalledCount }),
      });
      worker.on('error', logRedisError);
      worker.on('failed', (job, err) =>
        logger.warn({ role: role.name, jobId: job?.id, err: err.message }, 'job attempt failed'),
      );
      return { role, worker };
    });
    // Closing a consumer lets its running jobs finish (each role's grace), before the engine goes.
    undo.push(async () => {
      await Promise.all(
        consumers.map(async ({ role, worker }) => {
          role.stopping?.();
          if (!(await withDeadline(worker.close(), role.graceMs)))
            logger.warn({ role: role.name }, 'worker did not stop in time');
        }),
      );
    });
    const ready = await withDeadline(Promise.all(consumers.map((c) => c.worker.waitUntilReady())), 10_000);
    if (!ready) {
      connections.stop();
      await Promise.all(consumers.map((c) => withDeadline(c.worker.close(true), 1000)));
      throw new WorkerConfigError('the worker cannot reach Redis');
    }

    const heartbeats: Heartbeats = await openHeartbeats({
      redisUrl,
      prefix: config.queue.prefix,
      onError: logRedisError,
    });
    undo.push(() => heartbeats.close());
    heartbeats.announce(
      {
        id,
        host: hostname(),
        pid: process.pid,
        roles,
        backend: engine.defaultBackend,
        concurrency: config.workers.concurrency,
        started_at: new Date().toISOString(),
      },
      config.workers.heartbeatIntervalMs,
    );

    const recovering = built.filter((r) => r.recover);
    let pass: Promise<void> | undefined;
    // One pass at a time: a slow store must not stack them up.
    const recover = () =>
      (pass ??= Promise.all(
        recovering.map((r) =>
          r.recover!().catch((err: Error) =>
            logger.warn({ role: r.name, err: err.message }, 'recovery pass failed'),
          ),
        ),
      )
        .then(() => undefined)
        .finally(() => {
          pass = undefined;
        }));
    if (recovering.length > 0) {
      void recover();
      const timer = setInterval(() => void recover(), config.tasks.recoveryIntervalMs);
      timer.unref();
      undo.push(async () => {
        clearInterval(timer);
        await pass;
      });
    }
    logger.info(
      { roles, concurrency: config.workers.concurrency, backend: engine.defaultBackend },
      'worker started',
    );

    let probed: { at: number; value: Promise<BackendProbe[]> } | undefined;
    let closing: Promise<void> | undefined;
    return {
      id,
      roles,
      engine,
      poolSizes,
      probe() {
        if (!probed || Date.now() - probed.at > PROBE_TTL_MS)
          probed = { at: Date.now(), value: engine.probe() };
        return probed.value;
      },
      close() {
        closing ??= (async () => {
          await unwind();
          logger.info('worker stopped');
        })();
        return closing;
      },
    };
  } catch (err) {
    await unwind();
    throw err;
  }
}
