import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExecutionResponse } from '../../src/runner/index.js';
import { postgresAvailable, startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { call, startTestServer, type TestServer } from '../helpers/server.js';
import { runTask, validated } from '../tasks/helpers.js';

/** The whole service on PostgreSQL (DATABASE_URL), and what a client sees when the database goes away. */
describe.skipIf(!postgresAvailable())('service on PostgreSQL', () => {
  let pg: TestPostgres;
  let t: TestServer;

  beforeAll(async () => {
    pg = await startPostgres();
    t = await startTestServer({ store: { databaseUrl: pg.url }, server: { retryAfterSeconds: 3 } });
  });
  afterAll(async () => {
    await t?.close();
    await pg?.stop();
  });

  it('executes and persists through PostgreSQL', async () => {
    const res = await call<ExecutionResponse>(t.url, 'POST', '/execute', {
      code: 'print("pg")',
      language: 'python',
    });
    expect(res.status).toBe(200);
    expect(res.body.output).toBe('pg\n');
    const record = await call<{ status: string; response: ExecutionResponse }>(
      t.url,
      'GET',
      `/executions/${res.body.request_id}`,
    );
    expect(record.body.status).toBe('done');
    expect(record.body.response).toEqual(res.body);
    const health = await call<{ checks: { store: { ok: boolean; dialect: string } } }>(
      t.url,
      'GET',
      '/health',
    );
    expect(health.body.checks.store).toMatchObject({ ok: true, dialect: 'postgres' });
  });

  it('a task result comes back exactly as the handler returned it (a JSON string is not parsed again)', async () => {
    const echo = await validated(
      t.url,
      'echo.py',
      'async def handler(payload):\n    return payload["value"]\n',
    );
    expect(echo.status).toBe('VALIDATED');
    for (const value of ['hello', '42', 'null', '{"a": 1}', 42, true, { zeta: ['é', { k: false }], a: 1 }]) {
      const task = await runTask(t.url, 'echo', { value });
      expect(task.status).toBe('succeeded');
      expect(JSON.stringify(task.result)).toBe(JSON.stringify(value));
    }
  });

  it('503 with Retry-After when the database is down', async () => {
    await pg.stop();
    const res = await call<{ error: { code: string } }>(t.url, 'POST', '/execute', {
      code: 'print(1)',
      language: 'python',
    });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('3');
    expect(res.body.error.code).toBe('store_unavailable');
    const poll = await call<{ error: { code: string } }>(t.url, 'GET', '/executions/anything');
    expect(poll.status).toBe(503);
    const health = await call<{ checks: { store: { ok: boolean } } }>(t.url, 'GET', '/health');
    expect(health.status).toBe(503);
    expect(health.body.checks.store.ok).toBe(false);
  });
});
