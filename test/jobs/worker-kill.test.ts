import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startLocalRedis, type LocalRedis } from '../../src/queue/redis-server.js';
import { cleanup, spawnWarden, tempDir } from '../helpers/processes.js';
import { allEvents, b64, finished, openEvents } from './helpers.js';
import { call } from '../helpers/server.js';

/**
 * Jobs across processes: an API node without workers and standalone `warden worker --jobs`
 * processes sharing Redis and the store. The log streams live from a worker through the store to the
 * API's SSE; a worker SIGKILLed mid-job loses it to another worker, which runs it again from the
 * start (Warden's failure, not the job's), says so in the log, and sweeps the dead one's /out mount.
 */
describe('a job worker killed mid-job', () => {
  let redis: LocalRedis | undefined;
  afterAll(async () => {
    await cleanup();
    await redis?.stop();
  });

  it('another worker runs the job again to the end', async () => {
    const root = tempDir('warden-jobkill-');
    redis = await startLocalRedis({ dir: join(root, 'redis') });
    const shared = {
      queue: { redisUrl: redis.url },
      store: { databaseUrl: `sqlite:${join(root, 'warden.sqlite')}` },
      sandbox: { pool: { size: 0 } },
      workers: { concurrency: 1, heartbeatIntervalMs: 300 },
      jobs: { jobLockMs: 1000, pollMs: 50 },
      artifacts: { dir: join(root, 'artifacts'), signingSecret: 's'.repeat(32) },
    };
    const api = await spawnWarden('serve', {
      dataDir: join(root, 'api'),
      config: { ...shared, workers: { ...shared.workers, inProcess: false } },
    });
    const doomed = await spawnWarden('worker', {
      dataDir: join(root, 'doomed'),
      config: shared,
      args: ['--jobs'],
    });

    const script =
      'import time\nprint("start", flush=True)\ntime.sleep(4)\nopen("/out/r.txt", "w").write("done")\nprint("end")\n';
    const res = await call<{ id: string }>(api.url, 'POST', '/jobs', {
      command: 'python3 job.py',
      files: [{ path: 'job.py', content: b64(script) }],
    });
    expect(res.status).toBe(202);
    const id = res.body.id;

    // Live through the API node while the other process runs it.
    const stream = await openEvents(`${api.url}/jobs/${id}/logs`);
    expect(JSON.parse((await stream.next())!.data)).toMatchObject({ stream: 'stdout', line: 'start' });
    stream.close();
    doomed.child.kill('SIGKILL');
    expect((await doomed.exited).signal).toBe('SIGKILL');
    const mountOf = (pid: number) =>
      readFileSync('/proc/mounts', 'utf8')
        .split('\n')
        .filter((l) => l.includes(`/job-outputs/${pid}-`));
    if (process.getuid?.() === 0) expect(mountOf(doomed.pid)).toHaveLength(1);

    await spawnWarden('worker', { dataDir: join(root, 'survivor'), config: shared, args: ['--jobs'] });
    const done = await finished(api.url, id);
    expect(done, JSON.stringify(done)).toMatchObject({ status: 'completed', attempts: 2, exit_code: 0 });
    expect(done.artifacts.map((a) => a.path)).toEqual(['r.txt']);
    const lines = (await allEvents(`${api.url}/jobs/${id}/logs`))
      .filter((e) => e.event === 'message')
      .map((e) => JSON.parse(e.data) as { stream: string; line: string });
    expect(lines.filter((l) => l.stream === 'stdout').map((l) => l.line)).toEqual(['start', 'start', 'end']);
    expect(lines.some((l) => l.stream === 'system' && /again \(attempt 2\)/.test(l.line))).toBe(true);
    expect(mountOf(doomed.pid)).toEqual([]);
  }, 300_000);
});
