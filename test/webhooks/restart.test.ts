import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../../src/server.js';
import { openStore, type Store } from '../../src/store/db.js';
import { emptyResponse } from '../../src/runner/index.js';
import { finishExecution, insertExecution } from '../../src/store/executions.js';
import { insertHook, markQueued } from '../../src/store/webhooks.js';
import { call, testConfig } from '../helpers/server.js';
import { until } from '../helpers/wait.js';
import { startReceiver, verify, type Receiver } from './receiver.js';

/**
 * Nothing is lost on a restart: a callback waiting for its retry when the service stops is delivered
 * by the next start (the delivery job is in the local Redis' append-only file, the callback in the
 * store), and callbacks whose delivery was never queued (the finishing process stopped first) or
 * whose job Redis lost are found by the recovery pass.
 */

const dir = mkdtempSync(join(tmpdir(), 'warden-hooks-'));
const config = testConfig(dir, {
  webhooks: { allowlist: ['127.0.0.2/32'], attempts: 12, backoffMs: 200 },
  tasks: { recoveryIntervalMs: 300 },
});
let server: RunningServer | undefined;
let receiver: Receiver;

beforeAll(async () => {
  receiver = await startReceiver('127.0.0.2');
  server = await startServer(config);
}, 120_000);
afterAll(async () => {
  await server?.close();
  await receiver?.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Delivery {
  status: string;
  attempts: { status_code: number | null }[];
}
const delivered = (resource: string) =>
  until(
    async () => {
      const res = await call<{ deliveries: Delivery[] }>(
        server!.url,
        'GET',
        `/webhooks/deliveries?resource=${resource}`,
      );
      const d = res.body.deliveries?.[0];
      return d?.status === 'delivered' ? d : undefined;
    },
    90_000,
    50,
    `the callback of ${resource} delivered`,
  );

describe('webhooks across a restart', () => {
  it('delivers after a restart a callback that was waiting for its retry', async () => {
    let restarted = false;
    receiver.respond((_r, res) => res.writeHead(restarted ? 200 : 503).end());
    const res = await call<{ request_id: string }>(server!.url, 'POST', '/execute?wait=false', {
      code: 'print("across")',
      language: 'python',
      callback_url: `${receiver.url}/restart`,
    });
    expect(res.status).toBe(202);
    const id = res.body.request_id;
    await until(() => (receiver.received.some((r) => r.path === '/restart') ? true : undefined));

    await server!.close();
    server = undefined;
    restarted = true;
    server = await startServer(config);

    const d = await delivered(id);
    expect(d.attempts.at(0)?.status_code).toBe(503);
    expect(d.attempts.at(-1)?.status_code).toBe(200);
    const last = receiver.received.filter((r) => r.path === '/restart').at(-1)!;
    const secret = (await call<{ secret: string }>(server.url, 'GET', '/webhooks/secret')).body.secret;
    expect(verify(secret, last)).toBe(true);
    expect(JSON.parse(last.body)).toMatchObject({ request_id: id, status: 'done' });
  }, 180_000);

  it('recovers callbacks never queued, and queued ones whose job is gone', async () => {
    receiver.respond((_r, res) => res.writeHead(200).end());
    let store: Store | undefined;
    try {
      store = await openStore(config);
      const db = store.db;
      // Finished executions as a worker leaves them when it dies right after finishing.
      for (const id of ['lost-before-queue', 'lost-job']) {
        await insertExecution(db, {
          requestId: id,
          language: 'python',
          backend: 'bwrap',
          request: {},
          tenant: 'default',
        });
        await insertHook(db, {
          kind: 'execution',
          resourceId: id,
          tenant: 'default',
          url: `${receiver.url}/${id}`,
        });
        const response = emptyResponse(id, 'success', []);
        expect(await finishExecution(db, id, 'success', response)).toBe(true);
      }
      // This one was marked queued, but its BullMQ job never made it to Redis.
      expect(await markQueued(db, 'execution', 'lost-job')).toBe(true);
    } finally {
      await store?.close();
    }
    for (const id of ['lost-before-queue', 'lost-job']) {
      const d = await delivered(id);
      expect(d.attempts.map((a) => a.status_code)).toEqual([200]);
      expect(receiver.received.filter((r) => r.path === `/${id}`)).toHaveLength(1);
    }
  }, 120_000);
});
