import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWorker, type WardenWorker } from '../../src/worker/worker.js';
import { call, startTestServer, type TestServer } from '../helpers/server.js';
import { until } from '../helpers/wait.js';
import { startReceiver, type Receiver } from './receiver.js';

/**
 * A job cancelled while still queued ends in the API, where no worker runs: its callback is still
 * delivered by a worker (the one taking the job's queue entry and finding it cancelled, or any
 * worker's recovery pass). The server runs no worker of its own, so the job cannot start first.
 */

let t: TestServer;
let receiver: Receiver;
let worker: WardenWorker | undefined;

beforeAll(async () => {
  t = await startTestServer({
    workers: { inProcess: false },
    webhooks: { allowlist: ['127.0.0.2/32'] },
  });
  receiver = await startReceiver('127.0.0.2');
}, 120_000);
afterAll(async () => {
  await worker?.close();
  await receiver?.close();
  await t?.close();
});

describe('webhooks of a job cancelled while queued', () => {
  it('delivers the cancelled state', async () => {
    const created = await call<{ id: string }>(t.url, 'POST', '/jobs', {
      command: 'echo never',
      callback_url: `${receiver.url}/cancelled`,
    });
    expect(created.status).toBe(202);
    const cancelled = await call<{ status: string }>(t.url, 'DELETE', `/jobs/${created.body.id}`);
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.status).toBe('cancelled');

    const redisUrl = t.server.localRedis!.url;
    worker = await startWorker({ ...t.config, queue: { ...t.config.queue, redisUrl } }, { roles: ['jobs'] });
    const got = await until(
      () => receiver.received.find((r) => r.path === '/cancelled'),
      60_000,
      50,
      'the callback of the cancelled job',
    );
    expect(got.headers['x-warden-event']).toBe('job.finished');
    const polled = await call(t.url, 'GET', `/jobs/${created.body.id}`);
    expect(JSON.parse(got.body)).toEqual(polled.body);
    expect(polled.body).toMatchObject({ status: 'cancelled' });
  }, 120_000);
});
