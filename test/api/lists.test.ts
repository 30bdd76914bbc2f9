import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { finishExecution, insertExecution } from '../../src/store/executions.js';
import { listExecutions, listTaskFiles, type PageAfter } from '../../src/store/listings.js';
import { insertUpload } from '../../src/store/task-files.js';
import { call, startTestServer, type TestServer } from '../helpers/server.js';
import { STORE_DIALECTS, useStore } from '../helpers/stores.js';

/** Every page of a newest-first list, following its cursor. */
async function allPages<T>(
  read: (after?: PageAfter) => Promise<{ items: T[]; next: PageAfter | null }>,
): Promise<T[][]> {
  const pages: T[][] = [];
  let after: PageAfter | undefined;
  for (;;) {
    const page = await read(after);
    pages.push(page.items);
    if (!page.next) return pages;
    after = page.next;
  }
}

const newestFirst = (a: { createdAt: string; id: string }, b: { createdAt: string; id: string }) =>
  a.createdAt === b.createdAt ? (a.id < b.id ? 1 : -1) : a.createdAt < b.createdAt ? 1 : -1;

describe.each(STORE_DIALECTS)('the dashboard lists on %s', (dialect) => {
  const s = useStore(dialect);

  it("pages a tenant's executions newest first, each once, never another tenant's, with verdict and usage", async () => {
    const store = { db: s.db, dialect };
    const ids = ['a-0', 'a-1', 'a-2', 'a-3', 'a-4'];
    for (const requestId of ids)
      await insertExecution(s.db, {
        requestId,
        tenant: 'alice',
        language: 'python',
        backend: 'bwrap',
        request: {},
      });
    await insertExecution(s.db, {
      requestId: 'b-0',
      tenant: 'bob',
      language: 'python',
      backend: 'bwrap',
      request: {},
    });
    // A NUL in the output (PostgreSQL's JSON functions refuse the whole document), and an output that
    // imitates the usage key ahead of the real one: the list must read the real usage regardless.
    const usage = { cpu_time: 0.5, peak_memory: 1024, wall_time: 0.75 };
    const fake =
      '"resource_usage":{"cpu_time":99,"peak_memory":1,"wall_time":1},"has_security_violations":false';
    await finishExecution(s.db, 'a-1', 'security_violation', {
      status: 'security_violation',
      output: `x\u0000${fake}`.repeat(1000),
      resource_usage: usage,
      has_security_violations: true,
    });

    const pages = await allPages((after) => listExecutions(store, { tenant: 'alice', limit: 2, after }));
    expect(pages.map((p) => p.length)).toEqual([2, 2, 1]);
    const rows = pages.flat();
    expect(rows.map((r) => r.requestId).sort()).toEqual(ids);
    const order = rows.map((r) => ({ createdAt: r.createdAt, id: r.requestId }));
    expect(order).toEqual([...order].sort(newestFirst));

    const done = rows.find((r) => r.requestId === 'a-1')!;
    expect(done).toMatchObject({
      status: 'done',
      verdict: 'security_violation',
      usage,
      securityViolations: true,
    });
    expect(rows.find((r) => r.requestId === 'a-0')).toMatchObject({
      status: 'pending',
      verdict: null,
      usage: null,
      securityViolations: false,
    });
    expect((await listExecutions(store, { tenant: 'bob', limit: 10 })).items.map((r) => r.requestId)).toEqual(
      ['b-0'],
    );
    expect((await listExecutions(store, { tenant: 'carol', limit: 10 })).items).toEqual([]);
  });

  it("lists a tenant's task files with their status, never another tenant's", async () => {
    const upload = (validationId: string, owner: string, title: string) =>
      insertUpload(s.db, {
        validationId,
        title,
        fileName: `${title}.py`,
        originalName: `${title}.py`,
        language: 'python',
        owner,
        sha256: '0'.repeat(64),
        sizeBytes: 1,
        content: Buffer.from('x'),
      });
    await upload('v-1', 'alice', 'first');
    await upload('v-2', 'alice', 'second');
    await upload('v-3', 'bob', 'third');
    const pages = await allPages((after) => listTaskFiles({ db: s.db }, { owner: 'alice', limit: 1, after }));
    expect(pages.map((p) => p.length)).toEqual([1, 1]);
    expect(
      pages
        .flat()
        .map((f) => f.validationId)
        .sort(),
    ).toEqual(['v-1', 'v-2']);
    expect(pages.flat().every((f) => f.status === 'PENDING' && f.reasons.length === 0)).toBe(true);
    expect((await listTaskFiles({ db: s.db }, { owner: 'bob', limit: 5 })).items.map((f) => f.title)).toEqual(
      ['third'],
    );
  });
});

describe('GET /executions and GET /tasks/files', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(async () => {
    await t?.close();
  });

  it('lists what the caller ran, with its verdict and usage, and pages by cursor', async () => {
    const first = await call(t.url, 'POST', '/execute', { language: 'python', code: 'print(1)' });
    const second = await call(t.url, 'POST', '/execute', { language: 'python', code: 'raise SystemExit(3)' });
    expect([first.status, second.status]).toEqual([200, 200]);

    const page1 = await call<{ executions: Record<string, unknown>[]; next_cursor: string | null }>(
      t.url,
      'GET',
      '/executions?limit=1',
    );
    expect(page1.status).toBe(200);
    expect(page1.body.executions).toHaveLength(1);
    expect(page1.body.executions[0]).toMatchObject({
      request_id: second.body.request_id,
      status: 'done',
      verdict: 'failed',
      has_security_violations: false,
      poll: `/executions/${String(second.body.request_id)}`,
    });
    expect(page1.body.executions[0]!.resource_usage).toEqual(second.body.resource_usage);

    const page2 = await call<{ executions: Record<string, unknown>[]; next_cursor: string | null }>(
      t.url,
      'GET',
      `/executions?limit=1&cursor=${page1.body.next_cursor}`,
    );
    expect(page2.body.executions.map((e) => e.request_id)).toEqual([first.body.request_id]);
    expect(page2.body.executions[0]).toMatchObject({ verdict: 'success' });
  });

  it('answers a cursor it did not give, or a bad limit, with a 400 naming the field', async () => {
    for (const path of ['/executions?cursor=bm9wZQ', '/tasks/files?cursor=%5B1%5D']) {
      const res = await call<{ error: { field: string } }>(t.url, 'GET', path);
      expect(res.status).toBe(400);
      expect(res.body.error.field).toBe('cursor');
    }
    const res = await call<{ error: { field: string } }>(t.url, 'GET', '/executions?limit=0');
    expect(res.status).toBe(400);
    expect(res.body.error.field).toBe('limit');
  });
});
