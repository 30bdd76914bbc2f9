import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openExecutionQueue, type ExecutionQueue } from '../../src/queue/executions.js';
import { startLocalRedis, type LocalRedis } from '../../src/queue/redis-server.js';
import type { CaseOutcome, ExecutionRequest } from '../../src/runner/index.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { openStore, type Store } from '../../src/store/db.js';
import {
  claimExecution,
  finishExecution,
  getExecution,
  insertExecution,
  planCases,
  recordCase,
} from '../../src/store/executions.js';
import { startWorker, type WardenWorker } from '../../src/worker/worker.js';
import { call, testConfig } from '../helpers/server.js';
import { finished } from './helpers.js';

const request = (extra: Partial<ExecutionRequest> = {}): ExecutionRequest => ({
  code: 'import sys\nprint(sys.stdin.read().strip() or "ran")',
  language: 'python',
  ...extra,
});

const outcome = (stdout: string): CaseOutcome => ({
  status: 'success',
  stdout,
  errors: [],
  truncated: false,
  usage: { wallMs: 5, cpuMs: 4, peakMemoryBytes: 1024 },
  violations: [],
});

/**
 * The store is the truth: executions whose jobs Redis lost, or whose worker died, are found by a
 * worker's recovery pass and run again (at most tasks.maxAttempts times), and every write is fenced
 * by the claim so that a stale worker changes nothing.
 */
describe('execution recovery', () => {
  let dir: string;
  let redis: LocalRedis;
  let server: RunningServer;
  let store: Store;
  let worker: WardenWorker | undefined;
  let n = 0;
  const config = () =>
    testConfig(dir, {
      queue: { redisUrl: redis.url },
      workers: { inProcess: false, concurrency: 2 },
      tasks: { recoveryIntervalMs: 200, maxAttempts: 3 },
    });
  const newId = () => `recovery-${process.pid}-${++n}`;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-recovery-'));
    redis = await startLocalRedis({ dir: join(dir, 'redis') });
    server = await startServer(config());
    store = await openStore(config());
  });
  afterEach(async () => {
    await worker?.close();
    worker = undefined;
  });
  afterAll(async () => {
    await store?.close();
    await server?.close();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('fences every write by the claim: a stale worker and a duplicate change nothing', async () => {
    const id = newId();
    await insertExecution(store.db, {
      tenant: 'default',
      requestId: id,
      language: 'python',
      backend: null,
      request: request(),
    });
    const first = await claimExecution(store.db, id, 'first');
    expect(first).toMatchObject({ status: 'running', attempts: 1, claim: 'first' });
    const second = await claimExecution(store.db, id, 'second');
    expect(second).toMatchObject({ attempts: 2, claim: 'second' });
    expect(await planCases(store.db, id, 'first', 2)).toBe(false);
    expect(await planCases(store.db, id, 'second', 2)).toBe(true);
    expect(await recordCase(store.db, id, 'first', 0, outcome('stale'))).toEqual({
      recorded: false,
      last: false,
    });
    expect(await recordCase(store.db, id, 'second', 0, outcome('a'))).toEqual({
      recorded: true,
      last: false,
    });
    expect(await recordCase(store.db, id, 'second', 0, outcome('again'))).toEqual({
      recorded: false,
      last: false,
    });
    expect(await recordCase(store.db, id, 'second', 1, outcome('b'))).toEqual({ recorded: true, last: true });
    expect(await finishExecution(store.db, id, 'success', { by: 'stale' }, 'first')).toBe(false);
    expect(await finishExecution(store.db, id, 'success', { by: 'holder' }, 'second')).toBe(true);
    expect(await finishExecution(store.db, id, 'error', { by: 'late' }, 'second')).toBe(false);
    expect(await claimExecution(store.db, id, 'third')).toBeUndefined();
    expect(await getExecution(store.db, id)).toMatchObject({ status: 'done', response: { by: 'holder' } });
  });

  it('runs executions whose jobs were lost, and again those whose worker died', async () => {
    const pending = newId();
    await insertExecution(store.db, {
      tenant: 'default',
      requestId: pending,
      language: 'python',
      backend: null,
      request: request(),
    });
    // Claimed once by a worker that died with its job: running, nobody on it.
    const orphan = newId();
    await insertExecution(store.db, {
      tenant: 'default',
      requestId: orphan,
      language: 'python',
      backend: null,
      request: request({ stdin: 'again' }),
    });
    await claimExecution(store.db, orphan, 'dead-worker');

    worker = await startWorker(config());
    expect(await finished(server.url, pending)).toMatchObject({ status: 'success', output: 'ran\n' });
    expect(await finished(server.url, orphan)).toMatchObject({ status: 'success', output: 'again\n' });
    expect((await getExecution(store.db, orphan))?.attempts).toBe(2);

    // A job delivered again for a finished execution (a duplicate) runs nothing and changes nothing.
    const before = await getExecution(store.db, pending);
    const queue = await openExecutionQueue({
      redisUrl: redis.url,
      prefix: config().queue.prefix,
      listen: false,
    });
    try {
      expect(await queue.ensure(pending)).toBe(true);
      await expect.poll(() => queue.anyAlive([pending]), { timeout: 10_000 }).toBe(false);
    } finally {
      await queue.close();
    }
    expect(await getExecution(store.db, pending)).toEqual(before);
  });

  it('keeps the cases already recorded and runs only the missing ones', async () => {
    const id = newId();
    const cases = ['x', 'y', 'z'].map((name) => ({ name, input_data: name, expected_output: name }));
    await insertExecution(store.db, {
      tenant: 'default',
      requestId: id,
      language: 'python',
      backend: null,
      request: request({ test_cases: cases }),
    });
    await claimExecution(store.db, id, 'dead-worker');
    await planCases(store.db, id, 'dead-worker', 3);
    await recordCase(store.db, id, 'dead-worker', 1, outcome('recorded before the crash'));

    worker = await startWorker(config());
    const response = await finished(server.url, id);
    expect(response.test_results.map((r) => [r.name, r.actual_output.trim(), r.passed])).toEqual([
      ['x', 'x', true],
      ['y', 'recorded before the crash', false],
      ['z', 'z', true],
    ]);
  });

  it('ends as Warden’s error after maxAttempts interrupted runs', async () => {
    const id = newId();
    await insertExecution(store.db, {
      tenant: 'default',
      requestId: id,
      language: 'python',
      backend: null,
      request: request(),
    });
    for (const token of ['w1', 'w2', 'w3']) await claimExecution(store.db, id, token);

    worker = await startWorker(config());
    const response = await finished(server.url, id);
    expect(response).toMatchObject({ status: 'error', success: false });
    expect(response.errors.join('\n')).toMatch(/internal error in Warden .*stopped 3 times/);
  });

  it('an exception in the worker still ends the execution, as Warden’s error', async () => {
    worker = await startWorker(config());
    (worker.engine as { run: unknown }).run = async () => {
      throw new Error('injected failure');
    };
    const single = await call<{ request_id: string }>(server.url, 'POST', '/execute?wait=false', {
      code: 'print(1)',
      language: 'python',
    });
    const split = await call<{ request_id: string }>(server.url, 'POST', '/execute?wait=false', {
      code: 'print(1)',
      language: 'python',
      test_cases: [
        { name: 'one', input_data: '', expected_output: '1' },
        { name: 'two', input_data: '', expected_output: '1' },
      ],
    });
    const a = await finished(server.url, single.body.request_id);
    expect(a.status).toBe('error');
    expect(a.errors.join('\n')).toMatch(/internal error in Warden/);
    expect(a.errors.join('\n')).not.toMatch(/injected/);
    const b = await finished(server.url, split.body.request_id);
    expect(b.status).toBe('error');
    expect(b.test_results.map((r) => r.status)).toEqual(['error', 'error']);
    expect(b.errors.every((e) => /^(one|two): internal error in Warden/.test(e))).toBe(true);
  });

  it('gives back queue places held by executions no longer waiting', async () => {
    const queue: ExecutionQueue = await openExecutionQueue({
      redisUrl: redis.url,
      prefix: config().queue.prefix,
      listen: false,
    });
    try {
      const gone = newId();
      expect(await queue.admission.admit([gone], 'probe', { queue: 1000, tenant: 1000 })).toBe('admitted');
      const before = await queue.admission.depth();
      worker = await startWorker(config());
      await expect
        .poll(async () => (await queue.admission.admittedBefore(Date.now())).includes(gone), {
          timeout: 10_000,
        })
        .toBe(false);
      expect(await queue.admission.depth()).toBe(before - 1);
      expect(await queue.admission.tenantDepth('probe')).toBe(0);
    } finally {
      await queue.close();
    }
  });
});
