import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/app.js';
import { createMetrics } from '../../src/metrics.js';
import { openExecutionQueue, type ExecutionQueue } from '../../src/queue/executions.js';
import { openHeartbeats, type Heartbeats } from '../../src/queue/heartbeats.js';
import { startLocalRedis, type LocalRedis } from '../../src/queue/redis-server.js';
import { openTaskQueue, type TaskQueue } from '../../src/queue/tasks.js';
import { openValidationQueue, type ValidationQueue } from '../../src/queue/validations.js';
import { openAuditLog } from '../../src/store/audit.js';
import { openStore, type Store } from '../../src/store/db.js';
import { testConfig } from '../helpers/server.js';

/** buildApp on real dependencies through app.inject: what a bug in Warden looks like from outside. */
describe('unexpected errors', () => {
  let dir: string;
  let redis: LocalRedis;
  let store: Store;
  let queue: ExecutionQueue;
  let validations: ValidationQueue;
  let tasks: TaskQueue;
  let heartbeats: Heartbeats;
  let app: FastifyInstance;
  const logged: string[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-inject-'));
    redis = await startLocalRedis({ dir: join(dir, 'redis') });
    const config = testConfig(dir, { queue: { redisUrl: redis.url } });
    store = await openStore(config);
    queue = await openExecutionQueue({ redisUrl: redis.url, prefix: config.queue.prefix });
    const queues = { ...config, queue: { ...config.queue, redisUrl: redis.url } };
    validations = await openValidationQueue(queues);
    tasks = await openTaskQueue(queues);
    heartbeats = await openHeartbeats({ redisUrl: redis.url, prefix: config.queue.prefix });
    const logger = pino({ level: 'error' }, { write: (line: string) => void logged.push(line) });
    app = await buildApp({
      config,
      store,
      audit: openAuditLog(store.db),
      queue,
      validations,
      tasks,
      heartbeats,
      metrics: createMetrics(),
      logger,
    });
    app.get('/boom', async () => {
      throw new Error('secret detail: /etc/warden/key');
    });
    await app.ready();
  });

  afterAll(async () => {
    await app?.close();
    await queue?.close();
    await validations?.close();
    await tasks?.close();
    await heartbeats?.close();
    await store?.close();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers 500 with the request id only; the details go to the log', async () => {
    const res = await app.inject({ method: 'GET', url: '/boom' });
    expect(res.statusCode).toBe(500);
    const body = res.json<{ error: { code: string; message: string; request_id: string } }>();
    expect(body.error.code).toBe('internal_error');
    expect(body.error.message).toContain(body.error.request_id);
    expect(res.body).not.toContain('secret detail');
    expect(res.body).not.toContain('.ts:');
    expect(logged.join('\n')).toContain('secret detail');
    expect(logged.join('\n')).toContain(body.error.request_id);
  });

  it('works through app.inject without listening', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/validate',
      payload: { code: 'eval("1")', language: 'python' },
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ safe: false, rejected: 1 });
  });
});
