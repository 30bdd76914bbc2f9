import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExecutionResponse } from '../../src/runner/index.js';
import { startLocalRedis, type LocalRedis } from '../../src/queue/redis-server.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { startWorker, type WardenWorker } from '../../src/worker/worker.js';
import { call, testConfig, type Answer } from '../helpers/server.js';
import { until } from '../helpers/wait.js';
import { as } from '../helpers/tenants.js';

/**
 * Fair share of the queue: tenant `flood` sends far more executions than the queue holds, at once,
 * while no worker takes any (so the places stay taken); tenant `calm` still gets its runs admitted,
 * and once a worker starts they run to completion. Without the share (queuedShare 1), the same flood
 * takes every place and `calm` is refused: the share is what makes the difference.
 */
describe('fair share: one tenant flooding the queue cannot starve another', () => {
  let dir: string;
  let redis: LocalRedis;
  const maxQueueDepth = 10;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-fair-'));
    redis = await startLocalRedis({ dir: join(dir, 'redis') });
  });
  afterAll(async () => {
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const config = (name: string, queuedShare: number) =>
    testConfig(join(dir, name), {
      queue: { redisUrl: redis.url, prefix: name },
      server: { maxQueueDepth },
      workers: { inProcess: false, concurrency: 2 },
      quotas: { queuedShare, rate: { max: 10_000 } },
    });
  const run = (url: string, headers: Record<string, string>, i: number) =>
    call<{ request_id: string; error?: { code: string } }>(
      url,
      'POST',
      '/execute?wait=false',
      { code: `print(${i})`, language: 'python' },
      headers,
    );
  const flood = async (url: string) => {
    const headers = await as(url, 'flood');
    return Promise.all(Array.from({ length: 40 }, (_, i) => run(url, headers, i)));
  };
  const codes = (answers: Answer<{ error?: { code: string } }>[]) =>
    answers.filter((a) => a.status === 429).map((a) => a.body.error?.code);

  it('with a share of one half, the other tenant gets its places and its runs complete', async () => {
    const cfg = config('shared', 0.5);
    const server: RunningServer = await startServer(cfg);
    let worker: WardenWorker | undefined;
    try {
      const flooded = await flood(server.url);
      expect(flooded.filter((a) => a.status === 202)).toHaveLength(maxQueueDepth / 2);
      expect(new Set(codes(flooded))).toEqual(new Set(['tenant_queue_full']));

      const calmHeaders = await as(server.url, 'calm');
      const calm = await Promise.all(Array.from({ length: 5 }, (_, i) => run(server.url, calmHeaders, i)));
      expect(calm.map((a) => a.status)).toEqual([202, 202, 202, 202, 202]);
      // Now the queue is full for everyone.
      expect((await run(server.url, calmHeaders, 99)).body.error?.code).toBe('queue_full');

      worker = await startWorker(cfg);
      for (const [i, answer] of calm.entries()) {
        const id = answer.body.request_id;
        const done = await until(
          async () => {
            const res = await call<{ status: string; response: ExecutionResponse | null }>(
              server.url,
              'GET',
              `/executions/${id}`,
              undefined,
              calmHeaders,
            );
            return res.body.status === 'done' ? res.body.response : undefined;
          },
          120_000,
          50,
          `calm execution ${i} done`,
        );
        expect(done).toMatchObject({ status: 'success', output: `${i}\n` });
      }
      // Taken by the worker, the places are free again: calm is admitted once more.
      await until(async () => ((await run(server.url, calmHeaders, 7)).status === 202 ? true : undefined));
    } finally {
      await worker?.close();
      await server.close();
    }
  });

  it('without a share (queuedShare 1), the same flood takes every place and the other tenant is refused', async () => {
    const server = await startServer(config('unshared', 1));
    try {
      const flooded = await flood(server.url);
      expect(flooded.filter((a) => a.status === 202)).toHaveLength(maxQueueDepth);
      const calm = await run(server.url, await as(server.url, 'calm'), 0);
      expect(calm.status).toBe(429);
      expect(calm.body.error?.code).toBe('queue_full');
    } finally {
      await server.close();
    }
  });
});
