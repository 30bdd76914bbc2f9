import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startTestServer, type TestServer } from '../helpers/server.js';
import { as } from '../helpers/tenants.js';
import { until } from '../helpers/wait.js';

interface State {
  status: 'pending' | 'running' | 'done';
  response: { status: string; output: string } | null;
}

/**
 * quotas.tenants.solo.maxRunning 1 on a worker that runs two at once: while solo's first execution
 * runs, its second waits in the queue even though a worker slot is free, and another tenant's
 * execution, submitted after it, goes through that slot. Ordering, not durations, decides: without
 * the limit solo's second (queued first) would take the free slot before the other tenant's.
 */
describe('concurrent runs per tenant (quotas.maxRunning)', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({
      workers: { concurrency: 2 },
      quotas: { rate: { max: 10_000 }, tenants: { solo: { maxRunning: 1 } } },
    });
  });
  afterAll(async () => {
    await t?.close();
  });

  const state = async (id: string, headers: Record<string, string>) =>
    (await call<State>(t.url, 'GET', `/executions/${id}`, undefined, headers)).body;
  const submit = async (headers: Record<string, string>, body: object) => {
    const res = await call<{ request_id: string }>(t.url, 'POST', '/execute?wait=false', body, headers);
    expect(res.status).toBe(202);
    return res.body.request_id;
  };

  it("a tenant's second run waits for its first; another tenant's run passes it", async () => {
    const solo = await as(t.url, 'solo');
    const other = await as(t.url, 'other');
    const sleeper = await submit(solo, {
      code: 'import time\ntime.sleep(60)',
      language: 'python',
      limits: { timeout: 10 },
    });
    await until(async () => ((await state(sleeper, solo)).status === 'running' ? true : undefined));
    const second = await submit(solo, { code: 'print(2)', language: 'python' });

    const passing = await call<{ status: string; output: string }>(
      t.url,
      'POST',
      '/execute',
      { code: 'print(1)', language: 'python' },
      other,
    );
    expect(passing.status).toBe(200);
    expect(passing.body).toMatchObject({ status: 'success', output: '1\n' });
    // The first still runs, so the second has not started: solo holds its one slot.
    expect((await state(sleeper, solo)).status).toBe('running');
    expect((await state(second, solo)).status).toBe('pending');

    // Once the first ends (its time limit), the second runs and completes.
    const done = await until(
      async () => {
        const s = await state(second, solo);
        return s.status === 'done' ? s.response : undefined;
      },
      120_000,
      50,
      'second execution done',
    );
    expect(done).toMatchObject({ status: 'success', output: '2\n' });
    expect((await state(sleeper, solo)).response?.status).toBe('timeout');
  });

  it("jobs: the same — solo's second job stays queued while another tenant's runs", async () => {
    const solo = await as(t.url, 'solo');
    const other = await as(t.url, 'other');
    const job = async (headers: Record<string, string>, command: string) => {
      const res = await call<{ id: string }>(t.url, 'POST', '/jobs', { command }, headers);
      expect(res.status).toBe(202);
      return res.body.id;
    };
    const jobState = async (id: string, headers: Record<string, string>) =>
      (
        await call<{ status: string; exit_code: number | null }>(
          t.url,
          'GET',
          `/jobs/${id}`,
          undefined,
          headers,
        )
      ).body;
    const settled = (id: string, headers: Record<string, string>) =>
      until(
        async () => {
          const s = await jobState(id, headers);
          return ['completed', 'failed', 'timeout', 'cancelled', 'error'].includes(s.status) ? s : undefined;
        },
        120_000,
        50,
        `job ${id} finished`,
      );

    const sleeper = await job(solo, `python3 -c "import time; time.sleep(120)"`);
    await until(async () => ((await jobState(sleeper, solo)).status === 'running' ? true : undefined));
    const second = await job(solo, 'python3 -c "print(2)"');
    const passing = await job(other, 'python3 -c "print(1)"');
    expect(await settled(passing, other)).toMatchObject({ status: 'completed', exit_code: 0 });
    expect((await jobState(sleeper, solo)).status).toBe('running');
    expect((await jobState(second, solo)).status).toBe('queued');

    // Cancelling the first frees solo's slot: the second runs and completes.
    expect((await call(t.url, 'DELETE', `/jobs/${sleeper}`, undefined, solo)).status).toBe(202);
    expect(await settled(second, solo)).toMatchObject({ status: 'completed', exit_code: 0 });
  });
});
