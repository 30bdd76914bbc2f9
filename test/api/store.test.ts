import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kysely, Migrator, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore, storeTarget, type Store } from '../../src/store/db.js';
import { migrationProvider } from '../../src/store/migrations.js';
import {
  deleteExecution,
  executionState,
  finishExecution,
  getExecution,
  insertExecution,
  claimExecution,
} from '../../src/store/executions.js';
import { finishTask, getTask, insertTask } from '../../src/store/tasks.js';
import { postgresAvailable, startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { testConfig } from '../helpers/server.js';

/** The same store code on SQLite (always) and PostgreSQL (when its binaries are installed). */
const dialects = postgresAvailable() ? (['sqlite', 'postgres'] as const) : (['sqlite'] as const);

describe.each(dialects)('store on %s', (dialect) => {
  let dir: string;
  let pgServer: TestPostgres | undefined;
  let store: Store;
  let databaseUrl: string | undefined;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-store-'));
    if (dialect === 'postgres') {
      pgServer = await startPostgres();
      databaseUrl = pgServer.url;
    }
    store = await openStore(testConfig(dir, { store: { databaseUrl } }));
  });

  afterAll(async () => {
    await store?.close();
    await pgServer?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('opens with the expected dialect and answers a ping', async () => {
    expect(store.dialect).toBe(dialect);
    await expect(store.ping()).resolves.toBeUndefined();
    if (dialect === 'sqlite') expect(store.location).toBe(join(dir, 'warden.sqlite'));
    else expect(store.location).toMatch(/^postgres:\/\/warden@127\.0\.0\.1:\d+\/postgres$/);
  });

  it('migrates once: opening again applies nothing and keeps the data', async () => {
    await insertExecution(store.db, {
      tenant: 'default',
      requestId: 'keep-me',
      language: 'python',
      backend: 'bwrap',
      request: { a: 1 },
    });
    const again = await openStore(testConfig(dir, { store: { databaseUrl } }));
    try {
      expect((await getExecution(again.db, 'keep-me'))?.request).toEqual({ a: 1 });
      const applied = await sql<{ name: string }>`select name from warden_migrations order by name`.execute(
        again.db,
      );
      const known = Object.keys(await migrationProvider(dialect).getMigrations()).sort();
      expect(applied.rows.map((r) => r.name)).toEqual(known);
      expect(known.slice(0, 3)).toEqual(['0001_executions', '0002_task_files', '0003_tasks']);
    } finally {
      await again.close();
    }
  });

  it('records an execution from pending to running to done, JSON and timestamps intact', async () => {
    const request = {
      code: 'print("é")',
      language: 'python',
      test_cases: [{ name: 't', input_data: '', expected_output: 'é' }],
    };
    await insertExecution(store.db, {
      tenant: 'default',
      requestId: 'r1',
      language: 'python',
      backend: 'bwrap',
      request,
    });
    const pending = await getExecution(store.db, 'r1');
    expect(pending).toMatchObject({
      requestId: 'r1',
      status: 'pending',
      verdict: null,
      response: null,
      tenant: 'default',
    });
    expect(pending?.request).toEqual(request);
    expect(new Date(pending!.createdAt).toISOString()).toBe(pending!.createdAt);

    await claimExecution(store.db, 'r1', 'token-1');
    const running = await getExecution(store.db, 'r1');
    expect(running?.status).toBe('running');
    expect(running?.startedAt).not.toBeNull();

    const response = {
      request_id: 'r1',
      status: 'success',
      nested: { list: [1, 2, 3] },
      text: 'line\nbreak "quoted"',
    };
    await finishExecution(store.db, 'r1', 'success', response);
    const done = await getExecution(store.db, 'r1');
    expect(done).toMatchObject({ status: 'done', verdict: 'success' });
    expect(done?.response).toEqual(response);
    expect(Date.parse(done!.finishedAt!)).toBeGreaterThanOrEqual(Date.parse(done!.startedAt!));
  });

  it.each([
    ['a JSON string', 'hello'],
    ['a string that looks like a number', '42'],
    ['a string that looks like JSON', '{"a":1}'],
    ['an empty string', ''],
    ['a number', 42],
    ['a float', -0.5],
    ['null', null],
    ['true', true],
    ['false', false],
    ['an empty array', []],
    ['nested values', { list: [1, 'two', { three: [null, false] }], 'key with space': 'é 🎉 \u0000 "q"' }],
    ['unicode text', 'ünïcödé ✓ 𝄞 日本'],
    ['an object whose keys are not in sorted order', { zeta: 1, b: 2, aa: 3 }],
  ])('stores %s and reads it back as it was, in every JSON column', async (_what, value) => {
    const id = `json-${Math.random().toString(36).slice(2)}`;
    await insertExecution(store.db, {
      tenant: 'default',
      requestId: id,
      language: 'python',
      backend: null,
      request: value,
    });
    await finishExecution(store.db, id, 'success', value);
    const execution = await getExecution(store.db, id);
    expect(execution?.request).toStrictEqual(value);
    expect(execution?.response).toStrictEqual(value);
    expect(JSON.stringify(execution?.response)).toBe(JSON.stringify(value)); // key order too

    await insertTask(store.db, { taskId: id, title: 't', owner: 'o', payload: value });
    await finishTask(store.db, id, { status: 'succeeded', result: value, usage: value });
    const task = await getTask(store.db, id);
    expect(task?.payload).toStrictEqual(value);
    expect(task?.result).toStrictEqual(value);
    expect(task?.usage).toStrictEqual(value);
    expect(JSON.stringify(task?.result)).toBe(JSON.stringify(value));
  });

  it('never moves a finished execution back to running (redelivered job)', async () => {
    await insertExecution(store.db, {
      tenant: 'default',
      requestId: 'r2',
      language: 'javascript',
      backend: null,
      request: {},
    });
    await finishExecution(store.db, 'r2', 'failed', { x: 1 });
    expect(await claimExecution(store.db, 'r2', 'token-2')).toBeUndefined();
    expect((await getExecution(store.db, 'r2'))?.status).toBe('done');
  });

  it('finishes an execution only under the claim that holds it, each call with its own values', async () => {
    // Two executions interleaved through the same (compiled-once) statements: no call may see another's.
    for (const id of ['r4', 'r5'])
      await insertExecution(store.db, {
        tenant: id,
        requestId: id,
        language: 'python',
        backend: null,
        request: { id },
      });
    expect((await claimExecution(store.db, 'r4', 'token-4'))?.claim).toBe('token-4');
    expect((await claimExecution(store.db, 'r5', 'token-5'))?.claim).toBe('token-5');
    expect(await finishExecution(store.db, 'r4', 'success', { id: 'r4' }, 'token-5')).toBe(false);
    expect(await finishExecution(store.db, 'r4', 'success', { id: 'r4' }, 'token-4')).toBe(true);
    expect(await executionState(store.db, 'r5')).toBe('running');
    // Taken again by another worker: the first one's token no longer finishes it.
    const again = await claimExecution(store.db, 'r5', 'token-5b');
    expect(again).toMatchObject({ attempts: 2, claim: 'token-5b', tenant: 'r5' });
    expect(await finishExecution(store.db, 'r5', 'failed', { id: 'r5' }, 'token-5')).toBe(false);
    expect(await finishExecution(store.db, 'r5', 'failed', { id: 'r5' }, 'token-5b')).toBe(true);
    expect(await getExecution(store.db, 'r4')).toMatchObject({ verdict: 'success', response: { id: 'r4' } });
    expect(await getExecution(store.db, 'r5')).toMatchObject({ verdict: 'failed', response: { id: 'r5' } });
    expect(await executionState(store.db, 'r5')).toBe('done');
  });

  it('refuses a duplicate request id and forgets deleted executions', async () => {
    await insertExecution(store.db, {
      tenant: 'default',
      requestId: 'r3',
      language: 'python',
      backend: 'bwrap',
      request: {},
    });
    await expect(
      insertExecution(store.db, {
        tenant: 'default',
        requestId: 'r3',
        language: 'python',
        backend: 'bwrap',
        request: {},
      }),
    ).rejects.toThrow();
    await deleteExecution(store.db, 'r3');
    expect(await getExecution(store.db, 'r3')).toBeUndefined();
    expect(await getExecution(store.db, 'never-existed')).toBeUndefined();
  });
});

describe('store target', () => {
  it('defaults to SQLite under the data dir and understands sqlite: and postgres URLs', () => {
    expect(storeTarget(testConfig('/srv/w'))).toEqual({
      dialect: 'sqlite',
      target: '/srv/w/warden.sqlite',
    });
    expect(storeTarget(testConfig('/srv/w', { store: { databaseUrl: 'sqlite:/tmp/x.db' } }))).toEqual({
      dialect: 'sqlite',
      target: '/tmp/x.db',
    });
    expect(
      storeTarget(testConfig('/srv/w', { store: { databaseUrl: 'postgresql://u:p@h/db' } })).dialect,
    ).toBe('postgres');
  });

  it('reports an unreachable PostgreSQL as an error, without hanging', async () => {
    const started = Date.now();
    await expect(
      openStore(testConfig('/tmp', { store: { databaseUrl: 'postgres://warden@127.0.0.1:1/none' } })),
    ).rejects.toThrow(/postgres/);
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});

describe.skipIf(!postgresAvailable())('a PostgreSQL store from before JSON was kept as text', () => {
  it('is upgraded with every stored value intact', async () => {
    const server = await startPostgres();
    const dir = mkdtempSync(join(tmpdir(), 'warden-store-'));
    try {
      const old = new Kysely<unknown>({
        dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: server.url }) }),
      });
      const migrator = new Migrator({
        db: old,
        provider: migrationProvider('postgres'),
        migrationTableName: 'warden_migrations',
        migrationLockTableName: 'warden_migrations_lock',
      });
      expect((await migrator.migrateTo('0003_tasks')).error).toBeUndefined();
      await sql`insert into tasks (task_id, title, owner, status, payload, result, attempts, created_at, updated_at)
        values ('old', 't', 'o', 'succeeded', ${'{"b": 1, "a": "x"}'}::jsonb, ${'"hello"'}::jsonb, 1, now(), now())`.execute(
        old,
      );
      await old.destroy();

      const store = await openStore(testConfig(dir, { store: { databaseUrl: server.url } }));
      try {
        const task = await getTask(store.db, 'old');
        expect(task?.payload).toStrictEqual({ a: 'x', b: 1 });
        expect(task?.result).toBe('hello');
      } finally {
        await store.close();
      }
    } finally {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
