import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openExecutionQueue, type ExecutionQueue } from '../../src/queue/executions.js';
import { startLocalRedis, type LocalRedis } from '../../src/queue/redis-server.js';

/**
 * How a request waiting for its execution learns that it finished: a worker in the same process hands
 * the answer over directly; one in another process (`warden worker`, another node) publishes a notice
 * on Redis. The store check that backs both up is switched off here (it never says done), so only the
 * notice can end these waits.
 */
describe('finish notices', () => {
  let dir: string;
  let redis: LocalRedis;
  let api: ExecutionQueue;
  const prefix = `notices${process.pid}`;
  const neverDone = async () => false;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-notices-'));
    redis = await startLocalRedis({ dir: join(dir, 'redis') });
    api = await openExecutionQueue({ redisUrl: redis.url, prefix });
  });
  afterAll(async () => {
    await api?.close();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /**
   * A worker's side of the notices, in this order, from a process of its own (no waiter there: it
   * publishes).
   */
  async function notifyFromAnotherProcess(...notices: [string, 'done' | 'ended'][]): Promise<void> {
    const source = new URL('../../src/queue/executions.ts', import.meta.url).pathname;
    const script = `
      const { openExecutionQueue } = await import(${JSON.stringify(source)});
      const queue = await openExecutionQueue({ redisUrl: ${JSON.stringify(redis.url)}, prefix: ${JSON.stringify(prefix)}, listen: false });
      for (const [id, kind] of ${JSON.stringify(notices)})
        await queue.notify(id, kind === 'done' ? { kind, response: {} } : { kind });
      await queue.close();`;
    await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script]);
  }

  it('ends a wait on the notice of a worker in another process', async () => {
    const done = randomUUID();
    const waiting = api.waitForDone(done, 60_000, neverDone);
    await notifyFromAnotherProcess([done, 'done']);
    // Only the notice crossed processes: the answer itself is read from the store.
    expect(await waiting).toEqual({ kind: 'done' });

    const failed = randomUUID();
    const waitingFailed = api.waitForDone(failed, 60_000, neverDone);
    await notifyFromAnotherProcess([failed, 'ended']);
    expect(await waitingFailed).toEqual({ kind: 'ended' });
  });

  it('hands the answer over directly to a request waiting in the same process', async () => {
    const worker = await openExecutionQueue({ redisUrl: redis.url, prefix, listen: false });
    try {
      const id = randomUUID();
      const response = { request_id: id, output: '1\n' };
      const waiting = api.waitForDone(id, 60_000, neverDone);
      await worker.notify(id, { kind: 'done', response });
      const outcome = await waiting;
      expect(outcome.kind).toBe('done');
      // The very object the worker wrote to the store: nothing went through Redis or the store.
      expect(outcome.kind === 'done' && outcome.response).toBe(response);
    } finally {
      await worker.close();
    }
  });

  it('is not ended by another execution’s notice', async () => {
    const mine = randomUUID();
    const waiting = api.waitForDone(mine, 60_000, neverDone);
    // Notices arrive in the order they were published: the other one first.
    await notifyFromAnotherProcess([randomUUID(), 'done'], [mine, 'ended']);
    expect(await waiting).toEqual({ kind: 'ended' });
  });

  it('ends at the timeout, or when the service shuts down', async () => {
    expect(await api.waitForDone(randomUUID(), 50, neverDone)).toEqual({ kind: 'timeout' });
    const shutdown = new AbortController();
    const waiting = api.waitForDone(randomUUID(), 60_000, neverDone, shutdown.signal);
    shutdown.abort();
    expect(await waiting).toEqual({ kind: 'aborted' });
  });

  it('ends the wait from the store when no notice comes (one lost while Redis was away)', async () => {
    let done = false;
    const waiting = api.waitForDone(randomUUID(), 60_000, async () => done);
    done = true; // the row says done; nobody publishes
    expect(await waiting).toEqual({ kind: 'done' });
  });
});
