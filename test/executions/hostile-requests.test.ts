import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExecutionResponse } from '../../src/runner/index.js';
import { postgresAvailable, startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { call, startTestServer, type TestServer } from '../helpers/server.js';

type ErrorAnswer = { error: { code: string; field: string | null; message: string } };

/** The extremes a hostile or careless client sends: a 400 naming the field, or a run; never a 500. */
describe('limit values at the edges', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ server: { maxTestCases: 50 } });
  });
  afterAll(async () => {
    await t?.close();
  });

  const post = (body: unknown) => call<ErrorAnswer & ExecutionResponse>(t.url, 'POST', '/execute', body);
  const withLimits = (limits: Record<string, unknown>) => ({ code: 'print(1)', language: 'python', limits });

  it('refuses values no run can have, naming the field', async () => {
    const refused: [Record<string, unknown>, string][] = [
      [{ cpu_limit: 0.001 }, 'limits.cpu_limit'], // under the kernel's 1 ms per 100 ms quota
      [{ cpu_limit: 0 }, 'limits.cpu_limit'],
      [{ cpu_limit: -1 }, 'limits.cpu_limit'],
      [{ cpu_limit: 1e308 }, 'limits.cpu_limit'],
      [{ cpu_limit: 'NaN' }, 'limits.cpu_limit'],
      [{ cpu_limit: null }, 'limits.cpu_limit'],
      [{ timeout: 0 }, 'limits.timeout'],
      [{ timeout: 0.0001 }, 'limits.timeout'],
      [{ timeout: -5 }, 'limits.timeout'],
      [{ timeout: 1e9 }, 'limits.timeout'],
      [{ memory_limit: 0 }, 'limits.memory_limit'],
      [{ memory_limit: 15 }, 'limits.memory_limit'],
      [{ memory_limit: -256 }, 'limits.memory_limit'],
      [{ memory_limit: 1e12 }, 'limits.memory_limit'],
      [{ network_access: 'yes' }, 'limits.network_access'],
    ];
    for (const [limits, field] of refused) {
      const res = await post(withLimits(limits));
      expect(res.status, JSON.stringify(limits)).toBe(400);
      expect(res.body.error.field, JSON.stringify(limits)).toBe(field);
      expect(res.body.error.message).toContain(field);
    }
    // 1e400 is Infinity once parsed: not a number a run can have either.
    const infinite = await call<ErrorAnswer>(
      t.url,
      'POST',
      '/execute',
      '{"code":"print(1)","language":"python","limits":{"timeout":1e400}}',
    );
    expect(infinite.status).toBe(400);
    expect(infinite.body.error.field).toBe('limits.timeout');
  });

  it('runs values at the documented edges, clamping those above the operator’s ceilings', async () => {
    const accepted: Record<string, unknown>[] = [
      { cpu_limit: 0.01 },
      { cpu_limit: 64 },
      { timeout: 3600 },
      { memory_limit: 16 },
      { memory_limit: 1024 * 1024 },
    ];
    for (const limits of accepted) {
      const res = await post(withLimits(limits));
      expect(res.status, JSON.stringify(limits)).toBe(200);
      expect(['success', 'timeout', 'memory_limit_exceeded'], JSON.stringify(limits)).toContain(
        res.body.status,
      );
    }
    const clamped = await post(withLimits({ timeout: 3600, memory_limit: 1024 * 1024, cpu_limit: 64 }));
    expect(clamped.body).toMatchObject({ status: 'success', output: '1\n' });
  });

  it('refuses more test cases than server.maxTestCases, and thousands of them', async () => {
    for (const count of [51, 5000]) {
      const res = await post({
        code: 'print(1)',
        language: 'python',
        test_cases: Array.from({ length: count }, (_, i) => ({ name: `t${i}`, expected_output: '1' })),
      });
      expect(res.status).toBe(400);
      expect(res.body.error.field).toBe('test_cases');
      expect(res.body.error.message).toContain('50');
    }
  });
});

/** Strings no JSON column of PostgreSQL's (jsonb) would take back, on each store. */
describe.each(postgresAvailable() ? (['sqlite', 'postgres'] as const) : (['sqlite'] as const))(
  'odd unicode on %s',
  (dialect) => {
    let t: TestServer;
    let pg: TestPostgres | undefined;
    beforeAll(async () => {
      if (dialect === 'postgres') pg = await startPostgres();
      t = await startTestServer(pg ? { store: { databaseUrl: pg.url } } : {});
    });
    afterAll(async () => {
      await t?.close();
      await pg?.stop();
    });

    it('comes back exactly as sent, in the answer and from the store', async () => {
      const names = ['\u202e evil \u202d', '😀 \ud800 lone', 'nul \u0000 in a name', '\udc00'];
      const res = await call<ExecutionResponse>(t.url, 'POST', '/execute', {
        code: '# \ud800 a lone surrogate in a comment\nimport sys\nsys.stdout.write(sys.stdin.read() + "\\x00")',
        language: 'python',
        test_cases: names.map((name) => ({ name, input_data: `in \u0001 ${name}`, expected_output: name })),
      });
      expect(res.status).toBe(200);
      expect(res.body.test_results.map((r) => r.name)).toEqual(names);
      expect(res.body.test_results.map((r) => r.expected_output)).toEqual(names);
      for (const r of res.body.test_results) {
        expect(r.status).toBe('success');
        expect(r.actual_output).toBe(`in \u0001 ${r.name.replace(/[\ud800-\udfff]/gu, '\ufffd')}\u0000`);
      }
      const stored = await call<{ response: ExecutionResponse }>(
        t.url,
        'GET',
        `/executions/${res.body.request_id}`,
      );
      expect(stored.status).toBe(200);
      expect(stored.body.response).toEqual(res.body);
    });
  },
);
