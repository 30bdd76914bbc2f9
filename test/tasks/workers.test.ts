import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { WardenConfig } from '../../src/config/schema.js';
import { createMetrics, type Metrics } from '../../src/metrics.js';
import { promote, stageFile, stagedPath, tenantTasksDir } from '../../src/pipeline/index.js';
import { startLocalRedis, type LocalRedis } from '../../src/queue/redis-server.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { DEFAULT_TENANT } from '../../src/store/api-keys.js';
import { openStore, type Store } from '../../src/store/db.js';
import {
  claimValidation,
  getTaskFile,
  insertUpload,
  recordVerdict,
  type TaskFileRecord,
} from '../../src/store/task-files.js';
import { insertTask } from '../../src/store/tasks.js';
import { startWorker, type WardenWorker } from '../../src/worker/worker.js';
import { call, sample, testConfig } from '../helpers/server.js';
import { ls, runTask, status, until, upload, verdict } from './helpers.js';

/** Where keyless requests' task files go: the built-in tenant's part of the tasks dir. */
const tenantDir = () => tenantTasksDir(config.tasks.dir, DEFAULT_TENANT);

/**
 * Validation workers as a fleet: an API without workers of its own, workers in this process and in a
 * child process (`warden worker --validation`), sharing one Redis, one store and the task dirs.
 */

const BIN = fileURLToPath(new URL('../../bin/warden.js', import.meta.url));
const quiet = pino({ level: 'silent' });

let dir: string;
let redis: LocalRedis;
let config: WardenConfig;
let server: RunningServer;
let store: Store;
const workers: WardenWorker[] = [];

async function validationWorker(metrics: Metrics = createMetrics()): Promise<WardenWorker> {
  const worker = await startWorker(config, { roles: ['validation'], metrics, logger: quiet });
  workers.push(worker);
  return worker;
}

const validations = (metrics: Metrics) =>
  metrics.registry.metrics().then((text) => sample(text, 'warden_task_validations_total'));

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'warden-fleet-'));
  redis = await startLocalRedis({ dir: join(dir, 'redis') });
  config = testConfig(dir, {
    queue: { redisUrl: redis.url },
    workers: { inProcess: false, concurrency: 2, heartbeatIntervalMs: 300 },
    tasks: { jobLockMs: 1500, recoveryIntervalMs: 400 },
  });
  server = await startServer(config);
  store = await openStore(config);
});

afterAll(async () => {
  for (const worker of workers) await worker.close();
  await server?.close();
  await store?.close();
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('two validation workers', () => {
  it('share a burst of 50 uploads, each ending VALIDATED or REJECTED exactly once', async () => {
    const [m1, m2] = [createMetrics(), createMetrics()];
    const [w1, w2] = [await validationWorker(m1), await validationWorker(m2)];
    const health = await call<{ checks: { workers: { roles: Record<string, number> } } }>(
      server.url,
      'GET',
      '/health',
    );
    expect(health.body.checks.workers.roles.validation).toBe(2);

    const good = (i: number) => `async def handler(payload):\n    return {"burst": ${i}}\n`;
    const bad = 'def handler(payload):\n    return 1\n';
    const files = Array.from({ length: 50 }, (_, i) =>
      i % 5 === 4
        ? { name: `burst_bad_${i}.py`, code: bad, ok: false }
        : { name: `burst_${i}.py`, code: good(i), ok: true },
    );
    const accepted = await Promise.all(files.map((f) => upload(server.url, f.name, f.code)));
    expect(accepted.map((a) => a.status)).toEqual(files.map(() => 202));
    const ids = accepted.map((a) => a.body.validation_id as string);
    const done = await Promise.all(ids.map((id) => verdict(server.url, id, undefined, 60_000)));

    expect(done.map((d) => d.status)).toEqual(files.map((f) => (f.ok ? 'VALIDATED' : 'REJECTED')));
    expect(ls(tenantDir())).toEqual(
      files
        .filter((f) => f.ok)
        .map((f) => f.name)
        .sort(),
    );
    expect(ls(config.tasks.quarantineDir).filter((f) => f.endsWith('.quarantined'))).toEqual(
      ids
        .filter((_, i) => !files[i]!.ok)
        .map((id) => `${id}.quarantined`)
        .sort(),
    );
    expect(ls(config.tasks.stagingDir)).toEqual([]);
    // Each validated once, by one worker or the other, and both did some.
    const rows = await Promise.all(ids.map((id) => getTaskFile(store.db, id)));
    expect(rows.map((r) => r?.attempts)).toEqual(files.map(() => 1));
    const [n1, n2] = [await validations(m1), await validations(m2)];
    expect(n1 + n2).toBe(50);
    expect(n1).toBeGreaterThan(0);
    expect(n2).toBeGreaterThan(0);

    await w1.close();
    await w2.close();
    workers.length = 0;
  }, 90_000);
});

describe('a validation worker killed mid-validation', () => {
  let child: ChildProcess | undefined;
  afterAll(() => {
    child?.kill('SIGKILL');
  });

  it('loses nothing: the stalled job is finished by another worker', async () => {
    const yaml = join(dir, 'worker.yaml');
    writeFileSync(
      yaml,
      stringify({
        dataDir: config.dataDir,
        queue: { redisUrl: redis.url },
        server: { logLevel: 'silent' },
        sandbox: { pool: { size: 0 } },
        workers: { concurrency: 1, heartbeatIntervalMs: 300 },
        tasks: { jobLockMs: 1500, recoveryIntervalMs: 400 },
      }),
    );
    child = spawn(process.execPath, [BIN, '--config', yaml, 'worker', '--validation'], {
      env: { ...process.env, WARDEN_FROM_SOURCE: '1' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    await until(async () => (stderr.includes('worker ready') ? true : undefined), 30_000);
    expect(stderr).toContain('validation');

    // Slow to import, so the worker is surely in the middle of it when it dies.
    const code = 'import time\ntime.sleep(2)\n\nasync def handler(payload):\n    return {"survived": True}\n';
    const res = await upload(server.url, 'survivor.py', code);
    expect(res.status).toBe(202);
    const id = res.body.validation_id as string;
    await until(
      async () => ((await status(server.url, id)).status === 'VALIDATING' ? true : undefined),
      15_000,
    );
    const pid = child.pid!;
    child.kill('SIGKILL');
    await new Promise((r) => child!.once('exit', r));

    // Its heartbeat expires; the upload waits for a worker, still VALIDATING, still staged.
    await until(async () => {
      const health = await call<{ checks: { workers: { processes: { pid: number }[] } } }>(
        server.url,
        'GET',
        '/health',
      );
      return health.body.checks.workers.processes.some((p) => p.pid === pid) ? undefined : true;
    }, 10_000);
    expect((await status(server.url, id)).status).toBe('VALIDATING');
    expect(existsSync(stagedPath(config.tasks.stagingDir, id))).toBe(true);

    const metrics = createMetrics();
    await validationWorker(metrics);
    const done = await verdict(server.url, id, undefined, 30_000);
    expect(done).toMatchObject({ status: 'VALIDATED', reasons: [] });
    expect((await getTaskFile(store.db, id))?.attempts).toBe(2);
    expect(await validations(metrics)).toBe(1);
    expect(ls(tenantDir())).toContain('survivor.py');
    expect(ls(config.tasks.stagingDir)).toEqual([]);
    expect(ls(config.tasks.quarantineDir).filter((f) => f.startsWith(id))).toEqual([]);
  }, 60_000);
});

describe('recovery of what a crash or a lost Redis left behind', () => {
  const code = (n: number) => `async def handler(payload):\n    return ${n}\n`;

  /** An upload as the API leaves it, but without its job (as if Redis lost it). */
  async function orphanUpload(title: string, source: string): Promise<{ id: string; path: string }> {
    const id = randomUUID();
    const staged = await stageFile(config.tasks.stagingDir, id, source);
    await insertUpload(store.db, {
      validationId: id,
      title,
      fileName: `${title}.py`,
      originalName: `${title}.py`,
      language: 'python',
      owner: DEFAULT_TENANT,
      sha256: staged.sha256,
      sizeBytes: staged.size,
      content: Buffer.from(source),
    });
    return { id, path: staged.path };
  }

  /** Claims it as a worker would, then "dies": the row stays VALIDATING. */
  async function claimAndDie(id: string): Promise<TaskFileRecord> {
    const record = await claimValidation(store.db, id, randomUUID());
    expect(record?.status).toBe('VALIDATING');
    return record!;
  }

  let metrics: Metrics;
  beforeAll(async () => {
    metrics = createMetrics();
    await validationWorker(metrics);
    workers.push(await startWorker(config, { roles: ['tasks'], logger: quiet }));
  });

  it('a PENDING upload whose job Redis lost is queued again and validated', async () => {
    const { id } = await orphanUpload('lost_job', code(1));
    expect((await verdict(server.url, id)).status).toBe('VALIDATED');
    expect(await runTask(server.url, 'lost_job', {})).toMatchObject({ status: 'succeeded', result: 1 });
  });

  it('a decided VALIDATED upload still in staging is promoted without validating it again', async () => {
    const { id } = await orphanUpload('decided', code(2));
    const record = await claimAndDie(id);
    expect(
      await recordVerdict(store.db, id, record.claim!, { verdict: 'VALIDATED', reasons: [], report: null }),
    ).toBe(true);
    const before = await validations(metrics);
    expect((await verdict(server.url, id)).status).toBe('VALIDATED');
    expect(await validations(metrics)).toBe(before);
    expect(ls(tenantDir())).toContain('decided.py');
    expect(ls(config.tasks.stagingDir)).toEqual([]);
  });

  it('a promoted upload whose row was not finished is settled as VALIDATED', async () => {
    const { id, path } = await orphanUpload('half_promoted', code(3));
    const record = await claimAndDie(id);
    await recordVerdict(store.db, id, record.claim!, { verdict: 'VALIDATED', reasons: [] });
    await promote(path, tenantDir(), 'half_promoted.py');
    expect((await verdict(server.url, id)).status).toBe('VALIDATED');
    expect(await runTask(server.url, 'half_promoted', {})).toMatchObject({ status: 'succeeded', result: 3 });
  });

  it('a decided REJECTED upload is quarantined with the reasons that were decided', async () => {
    const { id } = await orphanUpload('decided_bad', code(4));
    const record = await claimAndDie(id);
    await recordVerdict(store.db, id, record.claim!, {
      verdict: 'REJECTED',
      reasons: ['decided before the crash'],
    });
    const done = await verdict(server.url, id);
    expect(done).toMatchObject({ status: 'REJECTED', reasons: ['decided before the crash'] });
    expect(ls(config.tasks.quarantineDir)).toContain(`${id}.quarantined`);
  });

  it('a task whose job Redis lost is queued again and run', async () => {
    const { id } = await orphanUpload('lost_task', code(6));
    expect((await verdict(server.url, id)).status).toBe('VALIDATED');
    const taskId = randomUUID();
    await insertTask(store.db, { taskId, title: 'lost_task', owner: DEFAULT_TENANT, payload: {} });
    const task = await until(async () => {
      const res = await call<{ status: string; result: unknown }>(server.url, 'GET', `/tasks/${taskId}`);
      return res.body.status === 'succeeded' ? res.body : undefined;
    });
    expect(task.result).toBe(6);
  });

  it('an upload recorded before the store kept bytes validates from staging and runs from the tasks dir', async () => {
    const { id } = await orphanUpload('legacy', code(7));
    await sql`update task_files set content = null where validation_id = ${id}`.execute(store.db);
    expect((await verdict(server.url, id)).status).toBe('VALIDATED');
    expect(ls(tenantDir())).toContain('legacy.py');
    expect(await runTask(server.url, 'legacy', {})).toMatchObject({ status: 'succeeded', result: 7 });
  });

  it('an upload interrupted maxAttempts times is closed as REJECTED, saying it was not the file', async () => {
    const { id } = await orphanUpload('unlucky', code(5));
    for (let i = 0; i < config.tasks.maxAttempts; i++) await claimAndDie(id);
    const done = await verdict(server.url, id);
    expect(done.status).toBe('REJECTED');
    expect(done.reasons.join('\n')).toMatch(/interrupted 3 times.*not a problem with the file/);
    expect(ls(config.tasks.stagingDir)).toEqual([]);
  });
});
