import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openJobsQueue } from '../../src/queue/jobs.js';
import { startLocalRedis, type LocalRedis } from '../../src/queue/redis-server.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { call, testConfig } from '../helpers/server.js';
import { as } from '../helpers/tenants.js';
import { upload } from '../tasks/helpers.js';

/**
 * Every queue's admission is one atomic check-and-take: an API without workers (nothing leaves the
 * queues), hit by hundreds of concurrent requests, never lets more in than server.maxQueueDepth, and
 * a tenant never more than its share. Tenants' ceilings on limits are 400s naming the field.
 */
describe('admission to every queue, and tenant ceilings', () => {
  let dir: string;
  let redis: LocalRedis;
  let server: RunningServer;
  const maxQueueDepth = 20;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-quota-'));
    redis = await startLocalRedis({ dir: join(dir, 'redis') });
    server = await startServer(
      testConfig(dir, {
        queue: { redisUrl: redis.url },
        workers: { inProcess: false },
        server: { maxQueueDepth },
        quotas: {
          queuedShare: 1,
          rate: { max: 10_000 },
          maxLimits: { wallTimeMs: 2000, cpus: 1 },
          tenants: { roomy: { maxLimits: { wallTimeMs: 20_000 } }, small: { maxQueued: 2 } },
        },
      }),
    );
  });
  afterAll(async () => {
    await server?.close();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const job = (i: number) => ({ command: `echo ${i}` });

  it('400 concurrent POST /jobs: at most the cap is admitted, then exactly up to it, and no more', async () => {
    const answers = await Promise.all(
      Array.from({ length: 400 }, (_, i) => call(server.url, 'POST', '/jobs', job(i))),
    );
    const statuses = answers.map((a) => a.status);
    expect(statuses.filter((s) => s !== 202 && s !== 429)).toEqual([]);
    const accepted = statuses.filter((s) => s === 202).length;
    expect(accepted).toBeGreaterThan(0);
    expect(accepted).toBeLessThanOrEqual(maxQueueDepth);
    for (const a of answers.filter((a) => a.status === 429)) {
      expect(a.headers.get('retry-after')).not.toBeNull();
      expect((a.body as { error: { code: string } }).error.code).toBe('queue_full');
    }
    for (let i = accepted; i < maxQueueDepth; i++) {
      expect((await call(server.url, 'POST', '/jobs', job(i))).status).toBe(202);
    }
    expect((await call(server.url, 'POST', '/jobs', job(0))).status).toBe(429);
    // A refused job left no row behind.
    const refused = answers.find((a) => a.status === 429)!;
    const id = refused.headers.get('x-request-id');
    expect((await call(server.url, 'GET', `/jobs/${id}`)).status).toBe(404);
    // The places are the jobs queue's own: executions still get in.
    const run = await call(server.url, 'POST', '/execute?wait=false', {
      code: 'print(1)',
      language: 'python',
    });
    expect(run.status).toBe(202);
  });

  it('100 concurrent task uploads: at most the cap is admitted', async () => {
    const code = 'async def handler(payload):\n    return {}\n';
    const answers = await Promise.all(
      Array.from({ length: 100 }, (_, i) => upload(server.url, `burst_${i}.py`, code)),
    );
    const statuses = answers.map((a) => a.status);
    expect(statuses.filter((s) => s !== 202 && s !== 429)).toEqual([]);
    const accepted = statuses.filter((s) => s === 202).length;
    expect(accepted).toBeGreaterThan(0);
    expect(accepted).toBeLessThanOrEqual(maxQueueDepth);
  });

  it("a tenant's maxQueued caps it within the queue: 429 tenant_queue_full, others unaffected", async () => {
    const headers = await as(server.url, 'small');
    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        call(server.url, 'POST', '/execute?wait=false', { code: `print(${i})`, language: 'python' }, headers),
      ),
    );
    expect(answers.filter((a) => a.status === 202)).toHaveLength(2);
    const refused = answers.filter((a) => a.status === 429);
    expect(refused).toHaveLength(8);
    for (const a of refused) {
      expect((a.body as { error: { code: string } }).error.code).toBe('tenant_queue_full');
      expect(a.headers.get('retry-after')).not.toBeNull();
    }
    const other = await call(
      server.url,
      'POST',
      '/execute?wait=false',
      { code: 'print(1)', language: 'python' },
      await as(server.url, 'roomy'),
    );
    expect(other.status).toBe(202);
  });

  it("limits past the tenant's ceiling are a 400 naming the field; another tenant's ceiling is its own", async () => {
    const slow = { code: 'print(1)', language: 'python', limits: { timeout: 5 } };
    const res = await call<{ error: { code: string; field: string; message: string } }>(
      server.url,
      'POST',
      '/execute?wait=false',
      slow,
    );
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'limit_above_tenant_ceiling', field: 'limits.timeout' });
    expect(res.body.error.message).toContain('2 s');
    const cpu = await call<{ error: { field: string } }>(server.url, 'POST', '/execute?wait=false', {
      ...slow,
      limits: { cpu_limit: 2 },
    });
    expect(cpu.status).toBe(400);
    expect(cpu.body.error.field).toBe('limits.cpu_limit');

    const batch = await call<{ error: { field: string } }>(server.url, 'POST', '/execute/batch', {
      submissions: [slow],
    });
    expect(batch.status).toBe(400);
    expect(batch.body.error.field).toBe('submissions.0.limits.timeout');

    const slowJob = await call<{ error: { code: string; field: string } }>(server.url, 'POST', '/jobs', {
      command: 'echo hi',
      timeout: 5,
    });
    expect(slowJob.status).toBe(400);
    expect(slowJob.body.error).toMatchObject({ code: 'limit_above_tenant_ceiling', field: 'timeout' });

    // The Piston API holds the same ceilings, answering in Piston's shape.
    const piston = await call<{ message: string }>(server.url, 'POST', '/api/v2/execute', {
      language: 'python',
      version: '*',
      files: [{ content: 'print(1)' }],
      run_timeout: 5000,
    });
    expect(piston.status).toBe(400);
    expect(piston.body.message).toContain('limits.timeout');

    // Within the ceiling, or for the tenant whose ceiling is higher, the same request is taken.
    const roomy = await call(server.url, 'POST', '/execute?wait=false', slow, await as(server.url, 'roomy'));
    expect(roomy.status).toBe(202);
    const fits = await call(server.url, 'POST', '/execute?wait=false', { ...slow, limits: { timeout: 2 } });
    expect([202, 429]).toContain(fits.status); // admitted, or the queue is full from above: never a 400
  });
});

describe('a place is given back when its work is taken or gone', () => {
  it('the recovery sweep frees places whose job no longer waits, and keeps those that do', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-quota-sweep-'));
    const redis = await startLocalRedis({ dir: join(dir, 'redis') });
    const config = testConfig(dir, { queue: { redisUrl: redis.url } });
    const queue = await openJobsQueue({ ...config, queue: { ...config.queue, redisUrl: redis.url } });
    try {
      const caps = { queue: 10, tenant: 10 };
      expect(await queue.admission.admit(['waits', 'lost'], 't1', caps)).toBe('admitted');
      await queue.enqueue('waits', { job_id: 'waits' });
      // 'lost' was admitted and never queued (its API died midway): the sweep gives its place back.
      expect(await queue.releaseStale(Date.now() + 1)).toBe(1);
      expect(await queue.admission.admittedBefore(Date.now() + 1)).toEqual(['waits']);
      expect(await queue.admission.tenantDepth('t1')).toBe(1);
      // All or none: two more do not fit a tenant cap of 2 (one is held), one does.
      expect(await queue.admission.admit(['a', 'b'], 't1', { queue: 10, tenant: 2 })).toBe('tenant_full');
      expect(await queue.admission.admit(['a'], 't1', { queue: 10, tenant: 2 })).toBe('admitted');
      expect(await queue.admission.admit(['c'], 't2', { queue: 2, tenant: 2 })).toBe('queue_full');
      await queue.admission.release('a');
      await queue.admission.release('a'); // idempotent
      expect(await queue.admission.depth()).toBe(1);
      expect(await queue.admission.tenantDepth('t1')).toBe(1);
    } finally {
      await queue.close();
      await redis.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
