import { afterAll, describe, expect, it } from 'vitest';
import { isAlive } from '../../src/sandbox/pids.js';
import { cleanup, localRedisPid, spawnWarden, tempDir } from '../helpers/processes.js';
import { call } from '../helpers/server.js';
import { until } from '../helpers/wait.js';
import { upload as uploadFile, validated, verdict } from '../tasks/helpers.js';
import { finals, outcomes, queueCounts, stored, submit } from './helpers.js';

/**
 * `warden serve` on its defaults (local redis-server, SQLite) stopped with async runs queued and
 * running, then started again on the same data dir: every run ends, and ends as a run of its code.
 */
afterAll(cleanup);

const ECHO = 'async def handler(payload):\n    return payload\n';

/** Short locks and recovery passes: a dead worker's runs are noticed in seconds, not half a minute. */
const config = {
  workers: { concurrency: 2 },
  sandbox: { pool: { size: 1 } },
  tasks: { jobLockMs: 3000, recoveryIntervalMs: 1000 },
};

describe.each(['SIGTERM', 'SIGKILL'] as const)('warden serve stopped by %s', (signal) => {
  it('with 20 async runs queued and running: after a restart on the same data dir every id ends done (tasks and uploads too)', async () => {
    const dataDir = tempDir();
    let serve = await spawnWarden('serve', { dataDir, config });
    expect((await validated(serve.url, 'echo.py', ECHO)).status).toBe('VALIDATED');
    const sent = await submit(() => serve.url, 20, { concurrency: 4, seconds: 0.5 });
    expect(sent.refused).toEqual([]);
    // Task files and tasks queued behind them are in the same boat.
    const upload = await uploadFile(serve.url, 'late.py', ECHO);
    expect(upload.status).toBe(202);
    const tasks: string[] = [];
    for (let n = 0; n < 3; n++) {
      const res = await call<{ task_id: string }>(serve.url, 'POST', '/tasks', { title: 'echo', payload: n });
      expect(res.status).toBe(201);
      tasks.push(res.body.task_id);
    }
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

    const restarted = new Date().toISOString();
    serve = await spawnWarden('serve', { dataDir, config });
    const last = await finals(
      () => serve.url,
      sent.accepted.map((a) => a.id),
      150_000,
    );
    expect(outcomes(sent.accepted, last)).toEqual(sent.accepted.map(() => 'success'));
    // The stop really cut into the work: runs waiting in the queue ran after the restart, and a
    // SIGKILL interrupted runs that were then taken again.
    const records = await stored(
      dataDir,
      sent.accepted.map((a) => a.id),
    );
    expect(records.filter((r) => r!.startedAt! > restarted).length).toBeGreaterThan(0);
    if (signal === 'SIGKILL') expect(Math.max(...records.map((r) => r!.attempts))).toBeGreaterThan(1);
    expect((await verdict(serve.url, upload.body.validation_id as string, undefined, 60_000)).status).toBe(
      'VALIDATED',
    );
    const results = await Promise.all(
      tasks.map((id) =>
        until(async () => {
          const res = await call<{ status: string; result: unknown }>(serve.url, 'GET', `/tasks/${id}`);
          return res.body.status === 'queued' || res.body.status === 'running' ? undefined : res.body;
        }, 60_000),
      ),
    );
    expect(results).toEqual(
      [0, 1, 2].map((n) => expect.objectContaining({ status: 'succeeded', result: n })),
    );
    expect((await serve.stop()).code).toBe(0);
  }, 300_000);
});
