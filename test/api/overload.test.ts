import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalRedis, type LocalRedis } from '../../src/queue/redis-server.js';
import type { ExecutionResponse } from '../../src/runner/index.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { startWorker, type WardenWorker } from '../../src/worker/worker.js';
import { call, testConfig } from '../helpers/server.js';

type ErrorAnswer = { error: { code: string; field: string | null } };
type Accepted = { request_id: string; status: string; poll: string };

async function until<T>(probe: () => Promise<T | undefined>, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * An API without in-process workers (workers.inProcess: false) on a Redis the test owns (REDIS_URL),
 * so the queue can be filled, a standalone worker (`warden worker`) can drain it, and Redis can be
 * stopped and brought back.
 */
describe('overload and outages', () => {
  let dir: string;
  let redis: LocalRedis;
  let server: RunningServer;
  let worker: WardenWorker | undefined;
  const queued: string[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-overload-'));
    redis = await startLocalRedis({ dir: join(dir, 'redis') });
    const config = testConfig(dir, {
      queue: { redisUrl: redis.url },
      workers: { inProcess: false },
      server: { maxQueueDepth: 2, requestTimeoutMs: 300, retryAfterSeconds: 7 },
    });
    server = await startServer(config);
  });

  afterAll(async () => {
    await worker?.close();
    await server?.close();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('/health is 503 with no live worker', async () => {
    const res = await call<{ status: string; checks: { workers: { ok: boolean; live: number } } }>(
      server.url,
      'GET',
      '/health',
    );
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('7');
    expect(res.body.status).toBe('degraded');
    expect(res.body.checks.workers).toMatchObject({ ok: false, live: 0 });
  });

  it('a synchronous request that outlasts requestTimeoutMs answers 202 with the id to poll', async () => {
    const started = Date.now();
    const res = await call<Accepted>(server.url, 'POST', '/execute', {
      code: 'print("late")',
      language: 'python',
    });
    expect(res.status).toBe(202);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(res.body).toMatchObject({ status: 'pending', poll: `/executions/${res.body.request_id}` });
    queued.push(res.body.request_id);
  });

  it('429 with Retry-After once maxQueueDepth executions are waiting', async () => {
    const second = await call<Accepted>(server.url, 'POST', '/execute?wait=false', {
      code: 'print("queued")',
      language: 'python',
    });
    expect(second.status).toBe(202);
    queued.push(second.body.request_id);

    const third = await call<ErrorAnswer>(server.url, 'POST', '/execute?wait=false', {
      code: 'print(3)',
      language: 'python',
    });
    expect(third.status).toBe(429);
    expect(third.headers.get('retry-after')).toBe('7');
    expect(third.body.error.code).toBe('queue_full');
    const metrics = (await call<string>(server.url, 'GET', '/metrics')).body;
    expect(metrics).toContain('warden_queue_jobs{state="waiting"} 2');
  });

  it('a standalone worker drains the queue; results are polled from the store', async () => {
    worker = await startWorker(testConfig(dir, { queue: { redisUrl: redis.url } }));
    const outputs = await Promise.all(
      queued.map((id) =>
        until(async () => {
          const res = await call<{ status: string; response: ExecutionResponse | null }>(
            server.url,
            'GET',
            `/executions/${id}`,
          );
          return res.body.status === 'done' ? res.body.response?.output : undefined;
        }),
      ),
    );
    expect(outputs).toEqual(['late\n', 'queued\n']);
    const health = await call<{ checks: { workers: { live: number; in_process: boolean } } }>(
      server.url,
      'GET',
      '/health',
    );
    expect(health.status).toBe(200);
    expect(health.body.checks.workers).toMatchObject({ live: 1, in_process: false });
    const sync = await call<ExecutionResponse>(server.url, 'POST', '/execute', {
      code: 'print("now")',
      language: 'python',
    });
    expect(sync.status).toBe(200);
    expect(sync.body.output).toBe('now\n');
  });

  it('503 with Retry-After while Redis is down, and recovery when it is back', async () => {
    await redis.stop();

    const down = await call<ErrorAnswer>(server.url, 'POST', '/execute', {
      code: 'print(1)',
      language: 'python',
    });
    expect(down.status).toBe(503);
    expect(down.headers.get('retry-after')).toBe('7');
    expect(down.body.error.code).toBe('queue_unavailable');

    const health = await call<{ checks: { queue: { ok: boolean } } }>(server.url, 'GET', '/health');
    expect(health.status).toBe(503);
    expect(health.body.checks.queue.ok).toBe(false);

    // The store still answers for finished executions.
    expect((await call(server.url, 'GET', `/executions/${queued[0]}`)).status).toBe(200);
    // A refused execution leaves nothing behind.
    expect((await call(server.url, 'GET', `/executions/${down.headers.get('x-request-id')}`)).status).toBe(
      404,
    );

    // Same dir, same socket: the clients reconnect to where they were.
    redis = await startLocalRedis({ dir: join(dir, 'redis') });
    const back = await until(async () => {
      const res = await call<ExecutionResponse>(server.url, 'POST', '/execute', {
        code: 'print("back")',
        language: 'python',
      });
      return res.status === 200 ? res : undefined;
    }, 20_000);
    expect(back.body.output).toBe('back\n');
  });
});
