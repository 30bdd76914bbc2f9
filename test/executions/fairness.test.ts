import { afterEach, describe, expect, it } from 'vitest';
import type { ExecutionResponse } from '../../src/runner/index.js';
import { call, startTestServer, type TestServer } from '../helpers/server.js';
import { until } from '../helpers/wait.js';
import { execution, finished, submit } from './helpers.js';

/** A request's cases run as separate jobs, taking turns with other requests' cases, within a budget. */
describe('scheduling of test cases', () => {
  let t: TestServer | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  const sleepers = (prefix: string, count: number) => ({
    code: 'import time\ntime.sleep(30)',
    language: 'python',
    limits: { timeout: 1 },
    test_cases: Array.from({ length: count }, (_, i) => ({
      name: `${prefix}${i}`,
      input_data: '',
      expected_output: '',
    })),
  });

  it('a small request overtakes two big ones holding every worker', async () => {
    t = await startTestServer({ workers: { concurrency: 2 } });
    const big = [await submit(t.url, sleepers('a', 6)), await submit(t.url, sleepers('b', 6))];
    // Both workers are busy with the big requests' cases.
    await until(async () => {
      const health = await call<{ checks: { queue: { active: number } } }>(t!.url, 'GET', '/health');
      return health.body.checks.queue.active >= 2 ? true : undefined;
    });
    const small = await call<ExecutionResponse>(t.url, 'POST', '/execute', {
      code: 'print(1)',
      language: 'python',
    });
    expect(small.status).toBe(200);
    expect(small.body).toMatchObject({ status: 'success', output: '1\n' });
    // Ordering, not durations: neither big request has finished when the small one is answered.
    for (const id of big) expect((await execution(t.url, id)).status).not.toBe('done');

    for (const id of big) {
      const response = await finished(t.url, id);
      expect(response.test_results).toHaveLength(6);
      expect(response.test_results.every((r) => r.status === 'timeout')).toBe(true);
      expect(response.status).toBe('timeout');
    }
  });

  it('cases past the request’s time budget are skipped, with the reason', async () => {
    t = await startTestServer({ workers: { concurrency: 2 }, sandbox: { maxRequestMs: 1000 } });
    const id = await submit(t.url, { ...sleepers('c', 5), limits: { timeout: 5 } });
    const response = await finished(t.url, id);
    const statuses = response.test_results.map((r) => r.status);
    expect(statuses).toHaveLength(5);
    expect(statuses.every((s) => s === 'timeout' || s === 'skipped')).toBe(true);
    expect(statuses).toContain('skipped');
    for (const r of response.test_results.filter((r) => r.status === 'skipped')) {
      expect(r).toMatchObject({ passed: false, execution_time: 0, actual_output: '' });
      expect(response.errors).toContain(
        `${r.name}: skipped: the request's time budget (sandbox.maxRequestMs, 1 s for all cases) was used up`,
      );
    }
    // No case ran past the budget: those that ran were cut to what was left of it.
    for (const r of response.test_results.filter((r) => r.status === 'timeout')) {
      expect(response.errors).toContain(
        `${r.name}: the request’s time budget (sandbox.maxRequestMs) ran out during this run`,
      );
    }
    expect(response).toMatchObject({ status: 'timeout', success: false, all_tests_passed: false });
  });
});
