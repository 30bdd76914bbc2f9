import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, sample, startTestServer, type TestServer } from '../helpers/server.js';
import { until } from '../helpers/wait.js';
import { validated } from '../tasks/helpers.js';
import { startReceiver, verify, type Receiver } from './receiver.js';

/**
 * Callbacks against a real server: signed deliveries a receiver can verify, retries after a 500,
 * every attempt recorded, and callback URLs refused where they would reach the host's own networks.
 * Receivers listen on 127.0.0.2, which the test config's allowlist opens (and nothing else).
 */

interface Delivery {
  kind: string;
  resource_id: string;
  status: string;
  attempts: { attempt: number; status_code: number | null; error: string | null }[];
}

let t: TestServer;
let receiver: Receiver;

beforeAll(async () => {
  t = await startTestServer({
    webhooks: { allowlist: ['127.0.0.2/32'], attempts: 4, backoffMs: 100, timeoutMs: 5000 },
  });
  receiver = await startReceiver('127.0.0.2');
}, 120_000);
afterAll(async () => {
  await receiver?.close();
  await t?.close();
});

const secret = async () => (await call<{ secret: string }>(t.url, 'GET', '/webhooks/secret')).body.secret;

const delivery = (resource: string) =>
  call<{ deliveries: Delivery[] }>(t.url, 'GET', `/webhooks/deliveries?resource=${resource}`);

/** The callback of `resource` once it is delivered or failed for good. */
const ended = (resource: string) =>
  until(
    async () => {
      const d = (await delivery(resource)).body.deliveries?.[0];
      return d && (d.status === 'delivered' || d.status === 'failed') ? d : undefined;
    },
    60_000,
    50,
    `the callback of ${resource} to end`,
  );

const forResource = (path: string) => receiver.received.filter((r) => r.path === path);

describe('webhooks', () => {
  it('delivers an execution’s final result, signed, retrying after a 500', async () => {
    let calls = 0;
    receiver.respond((_r, res) => res.writeHead(++calls === 1 ? 500 : 200).end());
    const path = '/exec?n=1';
    const res = await call<{ request_id: string }>(t.url, 'POST', '/execute?wait=false', {
      code: 'print(6 * 7)',
      language: 'python',
      callback_url: `${receiver.url}${path}`,
    });
    expect(res.status).toBe(202);
    const id = res.body.request_id;
    const d = await ended(id);
    expect(d.status).toBe('delivered');
    expect(d.attempts.map((a) => a.status_code)).toEqual([500, 200]);

    const got = forResource(path);
    expect(got).toHaveLength(2);
    const key = await secret();
    for (const r of got) {
      expect(verify(key, r)).toBe(true);
      expect(verify('whsec_another', r)).toBe(false);
      expect(r.headers['x-warden-event']).toBe('execution.finished');
      expect(r.headers['content-type']).toBe('application/json');
    }
    expect(got.map((r) => r.headers['x-warden-attempt'])).toEqual(['1', '2']);
    // A tampered body no longer verifies.
    expect(verify(key, { ...got[1]!, body: got[1]!.body.replace('42', '43') })).toBe(false);
    // Exactly what GET answers.
    const polled = await call(t.url, 'GET', `/executions/${id}`);
    expect(JSON.parse(got[1]!.body)).toEqual(polled.body);
    expect(polled.body).toMatchObject({ status: 'done', response: { status: 'success', output: '42\n' } });
  });

  it.each([
    'http://127.0.0.1:9/',
    'http://10.0.0.1/',
    'http://169.254.169.254/latest/meta-data/',
    'http://[::1]:9/',
    'http://[::ffff:127.0.0.1]:9/',
    'http://localhost:9/',
    'gopher://127.0.0.2/',
  ])('refuses callback_url %s with a 400 naming the field', async (url) => {
    const res = await call<{ error: { code: string; field: string; message: string } }>(
      t.url,
      'POST',
      '/execute?wait=false',
      { code: 'print(1)', language: 'python', callback_url: url },
    );
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'invalid_callback_url', field: 'callback_url' });
    const job = await call<{ error: { field: string } }>(t.url, 'POST', '/jobs', {
      command: 'echo hi',
      callback_url: url,
    });
    expect(job.status).toBe(400);
    expect(job.body.error.field).toBe('callback_url');
  });

  it('follows no redirect: a 302 to a loopback address is a failed attempt, and nothing reaches it', async () => {
    const trap = await startReceiver('127.0.0.1');
    try {
      receiver.respond((_r, res) => res.writeHead(302, { location: `${trap.url}/stolen` }).end());
      const res = await call<{ request_id: string }>(t.url, 'POST', '/execute?wait=false', {
        code: 'print(1)',
        language: 'python',
        callback_url: `${receiver.url}/redirecting`,
      });
      const d = await ended(res.body.request_id);
      expect(d.status).toBe('failed');
      expect(d.attempts.map((a) => a.status_code)).toEqual([302, 302, 302, 302]);
      expect(trap.received).toHaveLength(0);
    } finally {
      receiver.respond((_r, res) => res.writeHead(200).end());
      await trap.close();
    }
  });

  it('delivers a task’s result as GET /tasks/{id} answers it', async () => {
    const v = await validated(
      t.url,
      'hooked.py',
      'async def handler(payload):\n    return {"twice": payload["n"] * 2}\n',
    );
    expect(v.status).toBe('VALIDATED');
    const created = await call<{ task_id: string }>(t.url, 'POST', '/tasks', {
      title: 'hooked',
      payload: { n: 21 },
      callback_url: `${receiver.url}/task`,
    });
    expect(created.status).toBe(201);
    const d = await ended(created.body.task_id);
    expect(d).toMatchObject({ kind: 'task', status: 'delivered' });
    const [got] = forResource('/task');
    expect(verify(await secret(), got!)).toBe(true);
    expect(got!.headers['x-warden-event']).toBe('task.finished');
    const polled = await call(t.url, 'GET', `/tasks/${created.body.task_id}`);
    expect(JSON.parse(got!.body)).toEqual(polled.body);
    expect(polled.body).toMatchObject({ status: 'succeeded', result: { twice: 42 } });
  });

  it('delivers a job’s final state, signed with the secret as rotated', async () => {
    const before = await secret();
    const rotated = await call<{ secret: string; rotated_at: string }>(t.url, 'POST', '/webhooks/secret');
    expect(rotated.status).toBe(200);
    expect(rotated.body.secret).not.toBe(before);
    expect(await secret()).toBe(rotated.body.secret);
    const created = await call<{ id: string }>(t.url, 'POST', '/jobs', {
      command: 'echo hooked',
      callback_url: `${receiver.url}/job`,
    });
    expect(created.status).toBe(202);
    const d = await ended(created.body.id);
    expect(d).toMatchObject({ kind: 'job', status: 'delivered' });
    const [got] = forResource('/job');
    expect(verify(rotated.body.secret, got!)).toBe(true);
    expect(verify(before, got!)).toBe(false);
    const polled = await call(t.url, 'GET', `/jobs/${created.body.id}`);
    expect(JSON.parse(got!.body)).toEqual(polled.body);
    expect(polled.body).toMatchObject({ status: 'completed', exit_code: 0 });
  });

  it('counts attempts by result in /metrics', async () => {
    // The tests above: three delivered callbacks, one 500 and three 302s retried, one ended failed.
    const expected = { delivered: 3, retry: 4, failed: 1 };
    const counts = async () => {
      const text = (await call<string>(t.url, 'GET', '/metrics')).body;
      const count = (result: string) => sample(text, 'warden_webhook_attempts_total', { result });
      return { delivered: count('delivered'), retry: count('retry'), failed: count('failed') };
    };
    // The counter moves just after the store records the attempt: wait for it, then compare.
    await until(
      async () => (JSON.stringify(await counts()) === JSON.stringify(expected) ? true : undefined),
      5000,
    );
    expect(await counts()).toEqual(expected);
  });

  it('answers 404 for deliveries of a resource without a callback', async () => {
    const res = await call<{ error: { field: string } }>(t.url, 'GET', '/webhooks/deliveries?resource=nope');
    expect(res.status).toBe(404);
    expect(res.body.error.field).toBe('resource');
  });
});
