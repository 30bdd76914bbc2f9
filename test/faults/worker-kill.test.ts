import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startLocalRedis, type LocalRedis } from '../../src/queue/redis-server.js';
import { cleanup, spawnWarden, tempDir } from '../helpers/processes.js';
import { call } from '../helpers/server.js';
import { until } from '../helpers/wait.js';
import { finals, outcomes, stored, submit } from './helpers.js';

/** A standalone `warden worker` SIGKILLed while it runs an execution: another worker finishes it. */
describe('a worker killed mid-execution', () => {
  let redis: LocalRedis | undefined;
  afterAll(async () => {
    await cleanup();
    await redis?.stop();
  });

  it('another worker runs it to the end', async () => {
    const root = tempDir();
    redis = await startLocalRedis({ dir: join(root, 'redis') });
    const shared = {
      queue: { redisUrl: redis.url },
      store: { databaseUrl: `sqlite:${join(root, 'warden.sqlite')}` },
      sandbox: { pool: { size: 0 } },
      workers: { concurrency: 1, heartbeatIntervalMs: 300 },
      // Short locks and recovery passes: the dead worker's run is noticed in seconds.
      tasks: { jobLockMs: 3000, recoveryIntervalMs: 1000 },
    };
    const api = await spawnWarden('serve', {
      dataDir: join(root, 'api'),
      config: { ...shared, workers: { ...shared.workers, inProcess: false } },
    });
    const doomed = await spawnWarden('worker', { dataDir: join(root, 'doomed'), config: shared });

    const sent = await submit(() => api.url, 1, { seconds: 3 });
    expect(sent.refused).toEqual([]);
    const [{ id }] = sent.accepted as [{ id: string; i: number }];
    await until(async () => {
      const res = await call<{ status: string }>(api.url, 'GET', `/executions/${id}`);
      return res.body.status === 'running' ? true : undefined;
    }, 30_000);
    doomed.child.kill('SIGKILL');
    expect((await doomed.exited).signal).toBe('SIGKILL');

    await spawnWarden('worker', { dataDir: join(root, 'survivor'), config: shared });
    const last = await finals(() => api.url, [id], 150_000);
    expect(outcomes(sent.accepted, last)).toEqual(['success']);
    // Taken twice: the killed worker did not get to finish it.
    const [record] = await stored(root, [id], shared.store.databaseUrl);
    expect(record?.attempts).toBe(2);
  }, 300_000);
});
