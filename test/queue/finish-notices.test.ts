import { execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openExecutionQueue, type ExecutionQueue } from '../../src/queue/executions.js';
import type { FinishKind, FinishOutcome } from '../../src/queue/finish-notices.js';
import { until } from '../helpers/wait.js';
import { startLocalRedis, type LocalRedis } from '../../src/queue/redis-server.js';

const KINDS: FinishKind[] = ['execution', 'task', 'validation'];

/**
 * How a request waiting for work (an execution, a task, a validation) learns that it finished: a
 * worker in the same process hands the end over directly; one in another process (`warden worker`,
 * another node) publishes a notice on Redis; the store backs both up. Except in the store's own cases
 * the store never says done here, so only a notice can end these waits.
 */
describe('finish notices', () => {
  let dir: string;
  let redis: LocalRedis;
  let api: ExecutionQueue;
  const prefix = `notices${process.pid}`;
  const neverDone = async () => false;
  const source = new URL('../../src/queue/executions.ts', import.meta.url).pathname;
  const openIn = (listen: boolean) =>
    `const { openExecutionQueue } = await import(${JSON.stringify(source)});
     const queue = await openExecutionQueue({ redisUrl: ${JSON.stringify(redis.url)}, prefix: ${JSON.stringify(prefix)}, listen: ${listen} });`;

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

  /** A worker's side of the notices, in this order, from a process of its own (no waiter there). */
  async function notifyFromAnotherProcess(
    ...notices: (readonly [FinishKind, string, FinishOutcome['kind']])[]
  ) {
    const script = `${openIn(false)}
      for (const [kind, id, outcome] of ${JSON.stringify(notices)})
        await queue.notices.notify(kind, id, outcome === 'done' ? { kind: outcome, response: {} } : { kind: outcome });
      await queue.close();`;
    await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script]);
  }

  /** A request waiting in another API process: `waiting` once it waits, then its `outcome`. */
  function waitInAnotherProcess(kind: FinishKind, id: string) {
    const script = `${openIn(true)}
      const outcome = queue.notices.wait(${JSON.stringify(kind)}, ${JSON.stringify(id)}, 60_000, async () => false);
      process.stdout.write('waiting\\n');
      process.stdout.write(JSON.stringify(await outcome) + '\\n');
      await queue.close();`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const next = async () => {
      const line = await lines.next();
      if (line.done) throw new Error('the waiting process ended early');
      return line.value;
    };
    const waiting = next().then(() => undefined);
    const outcome = waiting.then(next).then((line) => JSON.parse(line) as unknown);
    // Never left behind by a failed test.
    return { waiting, outcome, stop: () => child.kill() };
  }

  it('ends a wait of every kind on the notice of a worker in another process', async () => {
    const ids = KINDS.map(() => randomUUID());
    const failed = randomUUID();
    const waits = KINDS.map((kind, i) => api.notices.wait(kind, ids[i]!, 60_000, neverDone));
    const waitingFailed = api.notices.wait('execution', failed, 60_000, neverDone);
    await notifyFromAnotherProcess(...KINDS.map((kind, i) => [kind, ids[i]!, 'done'] as const), [
      'execution',
      failed,
      'ended',
    ]);
    // Only the notice crossed processes: the answer itself is read from the store.
    for (const outcome of await Promise.all(waits)) expect(outcome).toEqual({ kind: 'done' });
    expect(await waitingFailed).toEqual({ kind: 'ended' });
  });

  it('hands the end over directly to the requests waiting in the same process', async () => {
    const worker = await openExecutionQueue({ redisUrl: redis.url, prefix, listen: false });
    try {
      const id = randomUUID();
      const response = { request_id: id, output: '1\n' };
      const waiting = api.notices.wait('execution', id, 60_000, neverDone);
      await worker.notices.notify('execution', id, { kind: 'done', response });
      const outcome = await waiting;
      expect(outcome.kind).toBe('done');
      // The very object the worker wrote to the store: nothing went through Redis or the store.
      expect(outcome.kind === 'done' && outcome.response).toBe(response);

      // Several requests may wait for one task; each is told.
      const task = randomUUID();
      const both = [1, 2].map(() => api.notices.wait('task', task, 60_000, neverDone));
      await worker.notices.notify('task', task, { kind: 'done' });
      expect(await Promise.all(both)).toEqual([{ kind: 'done' }, { kind: 'done' }]);
    } finally {
      await worker.close();
    }
  });

  it('tells a request waiting in another process for a task even when one waits here too', async () => {
    const task = randomUUID();
    const there = waitInAnotherProcess('task', task);
    try {
      await there.waiting;
      const here = api.notices.wait('task', task, 60_000, neverDone);
      await api.notices.notify('task', task, { kind: 'done' });
      expect(await here).toEqual({ kind: 'done' });
      expect(await there.outcome).toEqual({ kind: 'done' });
    } finally {
      there.stop();
    }
  });

  it('is not ended by the notice of another id, or of another kind with the same id', async () => {
    const mine = randomUUID();
    const waiting = api.notices.wait('task', mine, 60_000, neverDone);
    // Notices arrive in the order they were published: the others first.
    await notifyFromAnotherProcess(
      ['task', randomUUID(), 'done'],
      ['validation', mine, 'done'],
      ['execution', mine, 'done'],
      ['task', mine, 'ended'],
    );
    expect(await waiting).toEqual({ kind: 'ended' });
  });

  it('ends at the timeout, or when the service shuts down', async () => {
    for (const kind of KINDS) {
      expect(await api.notices.wait(kind, randomUUID(), 50, neverDone)).toEqual({ kind: 'timeout' });
      const shutdown = new AbortController();
      const waiting = api.notices.wait(kind, randomUUID(), 60_000, neverDone, shutdown.signal);
      shutdown.abort();
      expect(await waiting).toEqual({ kind: 'aborted' });
      const stopped = new AbortController();
      stopped.abort();
      expect(await api.notices.wait(kind, randomUUID(), 60_000, neverDone, stopped.signal)).toEqual({
        kind: 'aborted',
      });
    }
  });

  it('ends the wait from the store when no notice comes (one lost while Redis was away)', async () => {
    for (const kind of KINDS) {
      let done = false;
      let asked = 0;
      const waiting = api.notices.wait(kind, randomUUID(), 60_000, async () => {
        asked++;
        return done;
      });
      done = true; // the row says done; nobody publishes
      expect(await waiting).toEqual({ kind: 'done' });
      expect(asked).toBeGreaterThan(1); // the check as the wait began said no: a later one said yes
    }
  });

  it('asks the store once per check for a piece of work, however many requests wait for it', async () => {
    const task = randomUUID();
    let asked = 0;
    const isDone = async () => {
      asked++;
      return false;
    };
    const stop = new AbortController();
    const waits = Array.from({ length: 200 }, () =>
      api.notices.wait('task', task, 60_000, isDone, stop.signal),
    );
    expect(asked).toBe(200); // each wait asks once as it begins
    await until(() => (asked > 200 ? true : undefined), 10_000);
    // The first periodic check: one read for all 200 (a check per wait would have made it 400).
    expect(asked).toBe(201);
    stop.abort();
    expect(await Promise.all(waits)).toEqual(waits.map(() => ({ kind: 'aborted' })));
  });

  it('sees work that ended before the wait began, at once', async () => {
    // The store is asked as the wait begins, before any timer can fire: not the timeout.
    for (const kind of KINDS)
      expect(await api.notices.wait(kind, randomUUID(), 50, async () => true)).toEqual({ kind: 'done' });
  });
});
