import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { webhooksConfigSchema } from '../../src/config/webhooks.js';
import { emptyResponse } from '../../src/runner/index.js';
import { finishExecution, insertExecution } from '../../src/store/executions.js';
import { finishJob, insertJob } from '../../src/store/jobs.js';
import { finishTask, insertTask } from '../../src/store/tasks.js';
import {
  deleteHooksBefore,
  finalButWaiting,
  getHook,
  hookAttempts,
  insertHook,
  markQueued,
  rotateSecret,
  staleQueued,
  tenantSecret,
} from '../../src/store/webhooks.js';
import { attemptDelivery } from '../../src/webhooks/deliver.js';
import { targetPolicy, type Resolver } from '../../src/webhooks/target.js';
import { STORE_DIALECTS, useStore } from '../helpers/stores.js';
import { startReceiver, verify, type Receiver } from './receiver.js';

/**
 * One delivery attempt against the store (SQLite and PostgreSQL): the URL is checked again when it
 * is delivered (a name that resolved to a public address at submission and to loopback now is
 * refused, and nothing is sent), attempts are numbered and recorded, the last one ends it.
 */

let receiver: Receiver;
beforeAll(async () => {
  receiver = await startReceiver('127.0.0.2');
});
afterAll(() => receiver.close());

describe.each(STORE_DIALECTS)('webhook deliveries on %s', (dialect) => {
  const store = useStore(dialect);
  const config = webhooksConfigSchema.parse({ attempts: 2, timeoutMs: 5000, allowlist: ['127.0.0.2/32'] });
  const policy = targetPolicy(config);

  async function finishedWithHook(id: string, url: string): Promise<void> {
    const db = store.db;
    await insertExecution(db, {
      requestId: id,
      language: 'python',
      backend: 'bwrap',
      request: {},
      tenant: 'acme',
    });
    await insertHook(db, { kind: 'execution', resourceId: id, tenant: 'acme', url });
    await finishExecution(db, id, 'success', emptyResponse(id, 'success', []));
    expect(await markQueued(db, 'execution', id)).toBe(true);
    expect(await markQueued(db, 'execution', id)).toBe(false); // once
  }

  it('refuses at delivery a name that now resolves to loopback, sending nothing', async () => {
    const trap = await startReceiver('127.0.0.1');
    try {
      const id = `rebind-${dialect}`;
      await finishedWithHook(id, `http://rebind.invalid:${trap.port}/`);
      const now: Resolver = async () => ['127.0.0.1'];
      expect(await attemptDelivery({ db: store.db, config, policy, resolve: now }, 'execution', id)).toBe(
        'failed',
      );
      expect(trap.received).toHaveLength(0);
      const [attempt] = await hookAttempts(store.db, 'execution', id);
      expect(attempt).toMatchObject({ attempt: 1, statusCode: null });
      expect(attempt!.error).toBe('rebind.invalid resolves to 127.0.0.1 is loopback');
      expect((await getHook(store.db, 'execution', id))?.status).toBe('failed');
      // A redelivered job finds it ended.
      expect(await attemptDelivery({ db: store.db, config, policy, resolve: now }, 'execution', id)).toBe(
        'skipped',
      );
    } finally {
      await trap.close();
    }
  });

  it('numbers and records attempts; the last failed one ends the callback', async () => {
    const id = `retry-${dialect}`;
    await finishedWithHook(id, `${receiver.url}/${id}`);
    receiver.respond((_r, res) => res.writeHead(500).end('no'));
    const ctx = { db: store.db, config, policy };
    expect(await attemptDelivery(ctx, 'execution', id)).toBe('retry');
    expect(await attemptDelivery(ctx, 'execution', id)).toBe('failed');
    receiver.respond((_r, res) => res.writeHead(200).end());
    const attempts = await hookAttempts(store.db, 'execution', id);
    expect(attempts.map((a) => [a.attempt, a.statusCode])).toEqual([
      [1, 500],
      [2, 500],
    ]);
    const got = receiver.received.filter((r) => r.path === `/${id}`);
    expect(got.map((r) => r.headers['x-warden-attempt'])).toEqual(['1', '2']);
    expect(verify((await tenantSecret(store.db, 'acme')).secret, got[0]!)).toBe(true);
  });

  it('finds for recovery the callbacks of final resources still waiting, and stale queued ones', async () => {
    const db = store.db;
    const hook = (kind: 'execution' | 'task' | 'job', id: string) =>
      insertHook(db, { kind, resourceId: id, tenant: 'acme', url: `${receiver.url}/${id}` });
    // Per kind: how its resource is made, and how it ends.
    const kinds = {
      execution: {
        make: (id: string) =>
          insertExecution(db, {
            requestId: id,
            language: 'python',
            backend: 'bwrap',
            request: {},
            tenant: 'acme',
          }),
        end: (id: string) => finishExecution(db, id, 'success', emptyResponse(id, 'success', [])),
      },
      task: {
        make: (id: string) => insertTask(db, { taskId: id, title: 'x', owner: 'acme', payload: {} }),
        end: (id: string) => finishTask(db, id, { status: 'failed', error: 'no' }),
      },
      job: {
        make: (id: string) => insertJob(db, { id, owner: 'acme', command: 'true', spec: {}, files: [] }),
        end: (id: string) => finishJob(db, id, null, { status: 'cancelled' }),
      },
    } as const;
    for (const [kind, { make, end }] of Object.entries(kinds)) {
      for (const id of [`${kind}-done-${dialect}`, `${kind}-open-${dialect}`]) {
        await make(id);
        await hook(kind as keyof typeof kinds, id);
        if (id.includes('-done-')) await end(id);
      }
    }
    const found = (await finalButWaiting(db)).map((h) => `${h.kind}:${h.resourceId}`).sort();
    expect(found).toEqual([
      `execution:execution-done-${dialect}`,
      `job:job-done-${dialect}`,
      `task:task-done-${dialect}`,
    ]);
    expect(await markQueued(db, 'task', `task-done-${dialect}`)).toBe(true);
    const later = new Date(Date.now() + 60_000).toISOString();
    expect((await staleQueued(db, later)).map((h) => h.resourceId)).toContain(`task-done-${dialect}`);
    expect((await staleQueued(db, new Date(0).toISOString())).length).toBe(0);
  });

  it('keeps one secret per tenant until rotated, and sweeps old callbacks', async () => {
    const first = await tenantSecret(store.db, 'solo');
    expect(first.secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    expect((await tenantSecret(store.db, 'solo')).secret).toBe(first.secret);
    expect((await tenantSecret(store.db, 'other')).secret).not.toBe(first.secret);
    const rotated = await rotateSecret(store.db, 'solo');
    expect(rotated.secret).not.toBe(first.secret);
    expect(rotated.rotatedAt).not.toBeNull();
    expect(await deleteHooksBefore(store.db, new Date(Date.now() + 60_000).toISOString())).toBeGreaterThan(0);
    expect(await getHook(store.db, 'execution', `retry-${dialect}`)).toBeUndefined();
    expect(await hookAttempts(store.db, 'execution', `retry-${dialect}`)).toEqual([]);
  });
});
