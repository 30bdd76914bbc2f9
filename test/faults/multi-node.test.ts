import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalRedis, type LocalRedis } from '../../src/queue/redis-server.js';
import { postgresAvailable, startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { cleanup, spawnWarden, tempDir, type WardenProcess } from '../helpers/processes.js';
import { call } from '../helpers/server.js';
import { until } from '../helpers/wait.js';
import { ls, runTask, upload, verdict } from '../tasks/helpers.js';

/**
 * Three nodes that share no disk: an API process and two `warden worker` processes, each with a data
 * dir of its own, sharing only Redis and PostgreSQL. The validation worker never sees the API's
 * staging dir and the task worker never sees the validation worker's tasks dir: every byte they run
 * comes from the store.
 */
describe.skipIf(!postgresAvailable())('multi-node without shared disk', () => {
  let pg: TestPostgres;
  let redis: LocalRedis;
  let api: WardenProcess;
  let validator: WardenProcess;
  let runner: WardenProcess;

  beforeAll(async () => {
    pg = await startPostgres();
    redis = await startLocalRedis({ dir: join(tempDir(), 'redis') });
    const shared = {
      queue: { redisUrl: redis.url },
      store: { databaseUrl: pg.url },
      sandbox: { pool: { size: 0 } },
      workers: { concurrency: 2, heartbeatIntervalMs: 300 },
      tasks: { recoveryIntervalMs: 300 },
    };
    api = await spawnWarden('serve', {
      dataDir: tempDir('warden-node-api-'),
      config: { ...shared, workers: { ...shared.workers, inProcess: false } },
    });
    validator = await spawnWarden('worker', {
      dataDir: tempDir('warden-node-validation-'),
      config: shared,
      args: ['--validation'],
    });
    runner = await spawnWarden('worker', {
      dataDir: tempDir('warden-node-runner-'),
      config: shared,
      args: ['--executions', '--tasks'],
    });
  }, 180_000);

  afterAll(async () => {
    for (const node of [runner, validator, api]) await node?.stop();
    await cleanup();
    await redis?.stop();
    await pg?.stop();
  });

  const dirsOf = (node: WardenProcess) => ({
    staging: join(node.dataDir, 'uploads'),
    tasks: join(node.dataDir, 'tasks'),
    quarantine: join(node.dataDir, 'quarantine'),
  });

  it('runs executions on the worker node', async () => {
    const res = await call<{ output: string; status: string }>(api.url, 'POST', '/execute', {
      code: 'print("from another node")',
      language: 'python',
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'success', output: 'from another node\n' });
  });

  it('validates uploads staged on the API node, and runs tasks on a node that never saw the file', async () => {
    const first = await upload(api.url, 'greeter.py', 'async def handler(payload):\n    return "v1"\n');
    expect(first.status).toBe(202);
    const firstId = first.body.validation_id as string;
    expect((await verdict(api.url, firstId, undefined, 60_000)).status).toBe('VALIDATED');
    // The copy in the tasks dir (one dir per tenant) is the validating node's; the task runner's
    // dirs stay empty.
    expect(ls(dirsOf(validator).tasks)).toEqual(['default']);
    expect(ls(join(dirsOf(validator).tasks, 'default'))).toEqual(['greeter.py']);
    expect(ls(dirsOf(api).tasks)).toEqual([]);
    expect(ls(dirsOf(runner).tasks)).toEqual([]);
    expect(await runTask(api.url, 'greeter', {})).toMatchObject({ status: 'succeeded', result: 'v1' });

    // A new version replaces the old one everywhere tasks run from.
    const second = await upload(api.url, 'greeter.py', 'async def handler(payload):\n    return "v2"\n');
    expect((await verdict(api.url, second.body.validation_id as string, undefined, 60_000)).status).toBe(
      'VALIDATED',
    );
    expect(await runTask(api.url, 'greeter', {})).toMatchObject({ status: 'succeeded', result: 'v2' });

    // The API node cleans its staging dir once the verdicts are in, though it validated nothing.
    await until(() => (ls(dirsOf(api).staging).length === 0 ? true : undefined), 30_000);
  });

  it('answers ?wait=true with a verdict and a result decided on other nodes (the queues tell the API)', async () => {
    const slow =
      'import asyncio\n\nasync def handler(payload):\n    await asyncio.sleep(0.2)\n    return "waited"\n';
    const uploaded = await upload(api.url, 'waiter.py', slow);
    expect(uploaded.status).toBe(202);
    const decided = await call<{ status: string }>(
      api.url,
      'GET',
      `${uploaded.body.poll as string}?wait=true`,
    );
    expect(decided.body.status).toBe('VALIDATED');
    const created = await call<{ poll: string }>(api.url, 'POST', '/tasks', { title: 'waiter', payload: {} });
    expect(created.status).toBe(201);
    const done = await call<{ status: string }>(api.url, 'GET', `${created.body.poll}?wait=true`);
    expect(done.body).toMatchObject({ status: 'succeeded', result: 'waited' });
  });

  it('quarantines a rejected upload on the validating node, with its reasons', async () => {
    const bad = await upload(api.url, 'broken.py', 'def handler(payload):\n    return 1\n');
    expect(bad.status).toBe(202);
    const id = bad.body.validation_id as string;
    const done = await verdict(api.url, id, undefined, 60_000);
    expect(done.status).toBe('REJECTED');
    expect(done.reasons.join('\n')).toMatch(/handler is not async/);
    expect(ls(dirsOf(validator).quarantine)).toEqual(
      expect.arrayContaining([`${id}.quarantined`, `${id}.reasons.json`]),
    );
    expect(ls(dirsOf(api).quarantine)).toEqual([]);
    await until(() => (ls(dirsOf(api).staging).length === 0 ? true : undefined), 30_000);
  });

  it('each node has its own data dir and none shares another one', () => {
    const roots = [api, validator, runner].map((n) => n.dataDir);
    expect(new Set(roots).size).toBe(3);
    expect(ls(dirsOf(validator).staging)).toEqual([]);
    expect(ls(dirsOf(runner).staging)).toEqual([]);
  });
});
