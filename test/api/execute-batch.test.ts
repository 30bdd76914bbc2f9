import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExecutionResponse } from '../../src/runner/index.js';
import { call, startTestServer, type TestServer } from '../helpers/server.js';
import { as, keyOf } from '../helpers/tenants.js';
import { until } from '../helpers/wait.js';

/**
 * POST /execute/batch against real servers: one with workers (items run, per-item errors, tenants),
 * one with none and a small queue (admission is all or nothing, per tenant and for the whole queue,
 * counted with POST /execute).
 */

type ItemError = { index: number; error: { code: string; message: string; field: string } };
type ItemAccepted = {
  index: number;
  request_id: string;
  status: string;
  poll: string;
  response: ExecutionResponse | null;
};
type Item = ItemError | ItemAccepted;
type Answer = { submissions: Item[]; error?: { code: string; field: string | null } };

const py = (code: string) => ({ language: 'python', code });
const accepted = (item: Item | undefined): ItemAccepted => {
  expect(item && 'request_id' in item, JSON.stringify(item)).toBe(true);
  return item as ItemAccepted;
};
const refused = (item: Item | undefined): ItemError['error'] => {
  expect(item && 'error' in item, JSON.stringify(item)).toBe(true);
  return (item as ItemError).error;
};

describe('POST /execute/batch with workers', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(async () => t?.close());

  it('refuses 21 submissions with a 400 naming `submissions`', async () => {
    const res = await call<Answer>(t.url, 'POST', '/execute/batch', {
      submissions: Array.from({ length: 21 }, (_, i) => py(`print(${i})`)),
    });
    expect(res.status).toBe(400);
    expect(res.body.error?.field).toBe('submissions');
  });

  it('runs the valid submissions and reports each invalid one in its place, naming its field', async () => {
    const res = await call<Answer>(t.url, 'POST', '/execute/batch?wait=true', {
      submissions: [
        py('print("first")'),
        { language: 'cobol', code: 'x' },
        { language: 'python' },
        { ...py('print(input())'), stdin: 'x', test_cases: [{ name: 'a', expected_output: 'a' }] },
        { language: 'javascript', code: 'console.log("fifth")', colour: 'red' },
        { language: 'javascript', code: 'console.log("sixth")' },
        { ...py('print(7)'), callback_url: 'http://127.0.0.1:9/hook' },
      ],
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const items = res.body.submissions;
    expect(items.map((i) => i.index)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(accepted(items[0]).response?.output).toBe('first\n');
    expect(refused(items[1])).toMatchObject({ code: 'unknown_language', field: 'submissions.1.language' });
    expect(refused(items[2])).toMatchObject({ code: 'invalid_request', field: 'submissions.2.code' });
    expect(refused(items[3])).toMatchObject({ field: 'submissions.3.stdin' });
    expect(refused(items[4])).toMatchObject({ field: 'submissions.4.colour' });
    expect(refused(items[6])).toMatchObject({
      code: 'invalid_callback_url',
      field: 'submissions.6.callback_url',
    });
    const sixth = accepted(items[5]);
    expect(sixth.status).toBe('done');
    expect(sixth.response?.output).toBe('sixth\n');
    // Each accepted submission is an execution of its own, readable like any other.
    const record = await call<{ status: string }>(t.url, 'GET', sixth.poll);
    expect(record.body.status).toBe('done');
  });

  it('answers 400 with every item’s error when no submission is valid', async () => {
    const res = await call<Answer>(t.url, 'POST', '/execute/batch', {
      submissions: [{ language: 'cobol', code: 'x' }, { code: 'print(1)' }],
    });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'unknown_language', field: 'submissions.0.language' });
    expect(res.body.submissions.map((i) => refused(i).field)).toEqual([
      'submissions.0.language',
      'submissions.1.language',
    ]);
  });

  it('answers at once by default (202, request ids) and each execution belongs to the caller’s tenant', async () => {
    const alice = await as(t.url, 'batch-alice');
    const res = await call<Answer>(
      t.url,
      'POST',
      '/execute/batch',
      { submissions: [py('print(1)'), py('print(2)')] },
      alice,
    );
    expect(res.status).toBe(202);
    const ids = res.body.submissions.map((i) => accepted(i).request_id);
    expect(new Set(ids).size).toBe(2);
    for (const item of res.body.submissions) expect(accepted(item)).toMatchObject({ response: null });
    for (const id of ids) {
      const done = await until(async () => {
        const r = await call<{ status: string; response: ExecutionResponse | null }>(
          t.url,
          'GET',
          `/executions/${id}`,
          undefined,
          alice,
        );
        return r.body.status === 'done' ? r.body : undefined;
      });
      expect(done.response?.status).toBe('success');
      const other = await call(t.url, 'GET', `/executions/${id}`, undefined, await as(t.url, 'batch-bob'));
      expect(other.status).toBe(404);
    }
  });

  it('needs the execute scope', async () => {
    const res = await call<Answer>(
      t.url,
      'POST',
      '/execute/batch',
      { submissions: [py('print(1)')] },
      { authorization: `Bearer ${await keyOf(t.url, 'batch-jobs-only', ['jobs'])}` },
    );
    expect(res.status).toBe(403);
  });
});

describe('POST /execute/batch admission (no workers, 4 places, a tenant may hold 2)', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({
      workers: { inProcess: false },
      server: { maxQueueDepth: 4, retryAfterSeconds: 7 },
      quotas: { queuedShare: 0.5 },
    });
  });
  afterAll(async () => t?.close());

  const depth = async () =>
    (await call<{ checks: { queue: { waiting: number } } }>(t.url, 'GET', '/health')).body.checks.queue
      .waiting;
  const batch = async (tenant: string, submissions: unknown[]) =>
    call<Answer>(t.url, 'POST', '/execute/batch', { submissions }, await as(t.url, tenant));

  it('refuses a batch that does not fit whole, queues one that does, and counts it with POST /execute', async () => {
    // Three do not fit in the tenant's two places: refused whole, nothing queued.
    const three = await batch(
      'adm-alice',
      [1, 2, 3].map((i) => py(`print(${i})`)),
    );
    expect(three.status).toBe(429);
    expect(three.body.error?.code).toBe('tenant_queue_full');
    expect(three.headers.get('retry-after')).toBe('7');
    expect(await depth()).toBe(0);

    // Invalid submissions take no place: two valid ones and a bad one fill the tenant's share.
    const two = await batch('adm-alice', [py('print(1)'), { language: 'cobol', code: 'x' }, py('print(2)')]);
    expect(two.status, JSON.stringify(two.body)).toBe(202);
    expect(two.body.submissions.filter((i) => 'request_id' in i)).toHaveLength(2);
    // The same places as POST /execute: a single execution of the tenant is refused now.
    const single = await call(
      t.url,
      'POST',
      '/execute?wait=false',
      py('print(5)'),
      await as(t.url, 'adm-alice'),
    );
    expect(single.status).toBe(429);

    // Another tenant takes the last two places of the queue; then the queue itself is full.
    expect((await batch('adm-bob', [py('print(3)'), py('print(4)')])).status).toBe(202);
    const full = await batch('adm-carol', [py('print(6)')]);
    expect(full.status).toBe(429);
    expect(full.body.error?.code).toBe('queue_full');
    expect(await depth()).toBe(4);
  });
});
