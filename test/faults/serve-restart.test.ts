import { afterAll, describe, expect, it } from 'vitest';
import { isAlive } from '../../src/sandbox/pids.js';
import { cleanup, localRedisPid, spawnWarden, tempDir } from '../helpers/processes.js';
import { until } from '../helpers/wait.js';
import { finals, outcomes, queueCounts, submit } from './helpers.js';

/**
 * `warden serve` on its defaults (local redis-server, SQLite) stopped with async runs queued and
 * running, then started again on the same data dir: every run ends, and ends as a run of its code.
 */
afterAll(cleanup);

/** Short locks and recovery passes: a dead worker's runs are noticed in seconds, not half a minute. */
const config = {
  workers: { concurrency: 2 },
  sandbox: { pool: { size: 1 } },
  tasks: { jobLockMs: 3000, recoveryIntervalMs: 1000 },
};

describe.each(['SIGTERM', 'SIGKILL'] as const)('warden serve stopped by %s', (signal) => {
  it('with 20 async runs queued and running: after a restart on the same data dir every id ends done', async () => {
    const dataDir = tempDir();
    let serve = await spawnWarden('serve', { dataDir, config });
    const sent = await submit(() => serve.url, 20, { concurrency: 4, seconds: 0.5 });
    expect(sent.refused).toEqual([]);
    // Some run now, the others wait in the queue.
    await until(async () => {
      const c = await queueCounts(serve.url);
      return c && c.active > 0 && c.waiting > 0 ? true : undefined;
    }, 30_000);

    const redis = localRedisPid(dataDir);
    expect(redis).toBeDefined();
    serve.child.kill(signal);
    const exit = await serve.exited;
    if (signal === 'SIGTERM') {
      expect(exit.code).toBe(0);
      expect(isAlive(redis!)).toBe(false);
    }

    serve = await spawnWarden('serve', { dataDir, config });
    const last = await finals(
      () => serve.url,
      sent.accepted.map((a) => a.id),
      150_000,
    );
    expect(outcomes(sent.accepted, last)).toEqual(sent.accepted.map(() => 'success'));
    expect((await serve.stop()).code).toBe(0);
  }, 300_000);
});
