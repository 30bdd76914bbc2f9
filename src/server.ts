import { setMaxListeners } from 'node:events';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { buildApp } from './api/app.js';
import { checkServable, describeAuth } from './api/auth.js';
import { openArtifactStore } from './artifacts/index.js';
import type { WardenConfig } from './config/schema.js';
import { LANGUAGES, languageVersion } from './languages/index.js';
import { createLogger, throttled } from './logging.js';
import { createMetrics } from './metrics.js';
import { openExecutionQueue, redactUrl, type ExecutionQueue } from './queue/executions.js';
import { openHeartbeats } from './queue/heartbeats.js';
import { startLocalRedis, type LocalRedis } from './queue/redis-server.js';
import { openTaskQueue } from './queue/tasks.js';
import { openValidationQueue } from './queue/validations.js';
import { openAuditLog, type AuditLog } from './store/audit.js';
import { openStore, type Store } from './store/db.js';
import { startRetentionSweeper } from './store/retention.js';
import { sweepStaging } from './worker/validations.js';
import { startWorker, type WardenWorker } from './worker/worker.js';

export interface RunningServer {
  app: FastifyInstance;
  /** e.g. http://127.0.0.1:8080 */
  url: string;
  /** The local redis-server started because no REDIS_URL was given, if any. */
  localRedis?: LocalRedis;
  /** Graceful: stop accepting, let running executions finish, then release everything. Idempotent. */
  close(): Promise<void>;
}

/**
 * `warden serve`: store, queue (and a local redis-server when queue.redisUrl is unset), in-process
 * workers owning the sandbox engine, and the HTTP API, in that order; close() undoes it in reverse.
 */
export async function startServer(
  config: WardenConfig,
  options: { logger?: Logger; audit?: AuditLog } = {},
): Promise<RunningServer> {
  const logger = options.logger ?? createLogger(config.server.logLevel);
  mkdirSync(config.dataDir, { recursive: true });
  const undo: (() => Promise<void>)[] = [];
  const unwind = async () => {
    for (const step of undo.reverse().splice(0))
      await step().catch((err) => logger.error({ err }, 'shutdown step failed'));
  };

  try {
    let redisUrl = config.queue.redisUrl;
    let localRedis: LocalRedis | undefined;
    if (!redisUrl) {
      localRedis = await startLocalRedis({
        binary: config.queue.redisServer,
        dir: join(config.dataDir, 'redis'),
        onRestart: (info) => logger.error(info, 'the local redis-server died; starting it again'),
        onError: (err) => logger.error({ err: err.message }, 'the local redis-server did not come back yet'),
      });
      undo.push(() => localRedis!.stop());
      redisUrl = localRedis.url;
      logger.info(
        { url: redisUrl, pid: localRedis.pid },
        'started a local redis-server (no queue.redisUrl), persisting in the data dir',
      );
    }

    const store: Store = await openStore(config);
    undo.push(() => store.close());
    logger.info({ dialect: store.dialect, location: store.location }, 'store ready');
    // Before anything starts work: beyond loopback, no usable key means no start (NoKeysError).
    const servable = await checkServable(config, store.db);
    if (servable.warning) logger.warn(servable.warning);
    // Closed after everything that records (undone in reverse), before the store: nothing is lost.
    const audit = options.audit ?? openAuditLog(store.db, { logger, flushMs: config.store.auditFlushMs });
    if (!options.audit) undo.push(() => audit.close());
    const sweeper = startRetentionSweeper(
      store.db,
      config.store.retention,
      {
        onSwept: (deleted) => {
          if (Object.values(deleted).some((n) => n > 0)) logger.info({ deleted }, 'expired rows deleted');
        },
        onError: (err) => logger.warn({ err: err.message }, 'retention sweep failed'),
      },
      { audit_log: config.store.auditRetention },
    );
    undo.push(() => sweeper.stop());

    // Uploads are staged by this process: it cleans them up, whichever node validated them.
    let sweeping: Promise<void> | undefined;
    const sweepUploads = () =>
      (sweeping ??= sweepStaging(store.db, config.tasks.stagingDir, logger)
        .catch((err: Error) => logger.warn({ err: err.message }, 'staging sweep failed'))
        .finally(() => {
          sweeping = undefined;
        }));
    const stagingTimer = setInterval(() => void sweepUploads(), config.tasks.recoveryIntervalMs);
    stagingTimer.unref();
    undo.push(async () => {
      clearInterval(stagingTimer);
      await sweeping;
    });

    const metrics = createMetrics();
    const logQueueError = throttled(30_000, (err: Error) =>
      logger.error({ err: err.message }, 'queue connection error'),
    );
    const queue: ExecutionQueue = await openExecutionQueue({
      redisUrl,
      prefix: config.queue.prefix,
      onError: logQueueError,
    });
    undo.push(() => queue.close());
    metrics.setQueueDepth(() => queue.counts());
    logger.info({ url: redactUrl(redisUrl) }, 'queue ready');

    const effective = { ...config, queue: { ...config.queue, redisUrl } };
    const validations = await openValidationQueue(effective, logQueueError);
    undo.push(() => validations.close());
    const tasks = await openTaskQueue(effective, logQueueError);
    undo.push(() => tasks.close());
    const heartbeats = await openHeartbeats({
      redisUrl,
      prefix: config.queue.prefix,
      onError: logQueueError,
    });
    undo.push(() => heartbeats.close());

    let worker: WardenWorker | undefined;
    if (config.workers.inProcess) {
      worker = await startWorker(effective, { store, audit, metrics, logger });
      undo.push(() => worker!.close());
    }
    // Runtime versions are asked once; do it now rather than on the first GET /languages.
    for (const lang of Object.values(LANGUAGES)) languageVersion(lang);

    const artifacts = await openArtifactStore(config, logger);
    undo.push(() => artifacts.close());

    const shutdown = new AbortController();
    // Every waiting request listens to it (removed as each wait ends): thousands at once are normal.
    setMaxListeners(0, shutdown.signal);
    const app = await buildApp({
      config: effective,
      store,
      audit,
      queue,
      validations,
      tasks,
      heartbeats,
      metrics,
      logger,
      artifacts,
      worker,
      shutdown: shutdown.signal,
    });
    let appClosing: Promise<void> | undefined;
    const closeApp = () => (appClosing ??= app.close());
    undo.push(closeApp);
    await app.listen({ host: config.server.host, port: config.server.port });
    const address = app.server.address();
    const port = typeof address === 'object' && address ? address.port : config.server.port;
    const host = config.server.host.includes(':') ? `[${config.server.host}]` : config.server.host;
    const url = `http://${host}:${port}`;
    logger.info(
      { url, backend: config.sandbox.backend, workers: config.workers.concurrency },
      'warden is listening',
    );
    logger[config.auth.mode === 'none' ? 'warn' : 'info'](
      { auth: config.auth.mode, usableKeys: servable.usableKeys },
      describeAuth(config),
    );

    let closing: Promise<void> | undefined;
    const close = () => {
      closing ??= (async () => {
        logger.info('shutting down');
        // Stop accepting first; requests already in flight are still answered.
        const appClosed = closeApp();
        if (worker) await worker.close();
        // Requests still waiting for a result answer 202 with their request_id; executions not
        // started yet stay queued (the local Redis persists) and run after the next start.
        shutdown.abort();
        // Keep-alive connections that were busy when closing began are idle now; without this they
        // would hold app.close() for the whole keep-alive timeout.
        const sweep = setInterval(() => app.server.closeIdleConnections(), 100);
        app.server.closeIdleConnections();
        await appClosed.finally(() => clearInterval(sweep));
        await unwind(); // the rest, in reverse order of start (closing twice is harmless)
        logger.info('stopped');
      })();
      return closing;
    };
    return { app, url, localRedis, close };
  } catch (err) {
    await unwind();
    throw err;
  }
}
