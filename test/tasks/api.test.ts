import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WORKER_ROLES } from '../../src/queue/heartbeats.js';
import { call, sample, startTestServer, type TestServer } from '../helpers/server.js';
import { as } from '../helpers/tenants.js';
import {
  ls,
  runTask,
  status,
  upload,
  validated,
  verdict,
  type ErrorAnswer,
  type TaskAnswer,
} from './helpers.js';

/**
 * The task-file API end to end on a real server: uploads through staging, the validation queue and
 * the real bwrap sandbox into the tasks dir or quarantine, then tasks through their own queue.
 */

const GOOD = {
  'sum.py': [
    'async def handler(payload):',
    '    items = payload.get("items", [])',
    '    print("summing", len(items))',
    '    return {"count": len(items), "total": sum(items)}',
    '',
  ].join('\n'),
  'sum_js.js': [
    'export async function handler(payload) {',
    '  const items = payload.items ?? [];',
    '  return { count: items.length, total: items.reduce((a, b) => a + b, 0) };',
    '}',
    '',
  ].join('\n'),
  'sum_ts.ts': [
    'export async function handler(payload: { items?: number[] }): Promise<{ count: number; total: number }> {',
    '  const items = payload.items ?? [];',
    '  return { count: items.length, total: items.reduce((a, b) => a + b, 0) };',
    '}',
    '',
  ].join('\n'),
};

let t: TestServer;
let dirs: { staging: string; tasks: string; quarantine: string };

beforeAll(async () => {
  t = await startTestServer({ tasks: { maxUploadBytes: 8192 } });
  dirs = {
    staging: t.config.tasks.stagingDir,
    // Keyless requests act for the built-in tenant `default`, whose files live in its own dir.
    tasks: join(t.config.tasks.dir, 'default'),
    quarantine: t.config.tasks.quarantineDir,
  };
});
afterAll(() => t?.close());

describe('a good task file', () => {
  it.each(Object.keys(GOOD) as (keyof typeof GOOD)[])(
    '%s is validated, promoted and runnable',
    async (fileName) => {
      const res = await upload(t.url, fileName, GOOD[fileName]);
      expect(res.status).toBe(202);
      const id = res.body.validation_id as string;
      expect(res.body).toMatchObject({
        status: 'PENDING',
        file_name: fileName,
        poll: `/tasks/validation_status/${id}`,
      });
      expect(res.headers.get('location')).toBe(res.body.poll);

      const done = await verdict(t.url, id);
      expect(done).toMatchObject({ status: 'VALIDATED', reasons: [], title: fileName.split('.')[0] });
      expect(Date.parse(done.checked_at!)).toBeGreaterThan(0);
      expect(done.report?.usage?.cpu_time).toBeGreaterThan(0);
      expect(readFileSync(join(dirs.tasks, fileName), 'utf8')).toBe(GOOD[fileName]);
      expect(ls(dirs.staging).filter((f) => f.startsWith(id))).toEqual([]);

      const task = await runTask(t.url, done.title, { items: [1, 2, 3] });
      expect(task).toMatchObject({
        status: 'succeeded',
        result: { count: 3, total: 6 },
        error: null,
        validation_id: id,
      });
      expect(task.usage?.wall_time).toBeGreaterThan(0);
    },
  );

  it('keeps what a task printed apart from its result, and reports a handler that raises', async () => {
    await validated(
      t.url,
      'picky.py',
      'async def handler(payload):\n    print("checking")\n    return {"name": payload["name"]}\n',
    );
    const ok = await runTask(t.url, 'picky', { name: 'ada' });
    expect(ok).toMatchObject({ status: 'succeeded', result: { name: 'ada' } });
    expect((ok as unknown as { logs: string }).logs).toContain('checking');
    const failed = await runTask(t.url, 'picky', {});
    expect(failed.status).toBe('failed');
    expect(failed.result).toBeNull();
    expect(failed.error).toMatch(/KeyError.*name/);
  });
});

describe.concurrent('a bad task file is REJECTED with a clear reason and quarantined', () => {
  it.each([
    [
      'no handler',
      'nohandler.py',
      'def helper(payload):\n    return 1\n',
      /no handler: the task file must define `async def handler\(payload\)`/,
    ],
    ['a sync handler', 'sync.py', 'def handler(payload):\n    return {}\n', /handler is not async/],
    [
      'a sync JavaScript handler',
      'sync_js.js',
      'export function handler(payload) { return 1; }\n',
      /handler is not async/,
    ],
    [
      'a syntax error',
      'syntax.py',
      'async def handler(payload):\n    return (1 +\n',
      /syntax error \(line \d+\)/,
    ],
    [
      'os.system',
      'shell.py',
      'import os\n\nasync def handler(payload):\n    os.system("id")\n    return 1\n',
      /rejected by static analysis \(line 4, process_spawn\): Uses os\.system/,
    ],
    [
      'an infinite loop',
      'loop.py',
      'def keep_going():\n    return True\n\nasync def handler(payload):\n    n = 0\n    while keep_going():\n        n += 1\n    return n\n',
      /timed out/,
    ],
    [
      'a memory hog',
      'hog.py',
      'def big():\n    return int("1" + "0" * 10)\n\nasync def handler(payload):\n    s = "x" * 1024\n    while len(s) < big():\n        s = s + s\n    return len(s)\n',
      /exceeded its memory limit of 128 MiB/,
    ],
    [
      'a non-JSON result',
      'notjson.py',
      'async def handler(payload):\n    return {1, 2, 3}\n',
      /not JSON-serialisable/,
    ],
  ])('%s', async (_what, fileName, code, reason) => {
    const done = await validated(t.url, fileName, code);
    expect(done.status).toBe('REJECTED');
    expect(done.reasons.join('\n')).toMatch(reason);
    const id = done.validation_id;
    expect(ls(dirs.quarantine)).toEqual(expect.arrayContaining([`${id}.quarantined`, `${id}.reasons.json`]));
    const record = JSON.parse(readFileSync(join(dirs.quarantine, `${id}.reasons.json`), 'utf8'));
    expect(record.reasons).toEqual(done.reasons);
    expect(existsSync(join(dirs.tasks, fileName))).toBe(false);
    expect(ls(dirs.staging).filter((f) => f.startsWith(id))).toEqual([]);
  });

  it('a sample payload the handler fails on, naming the payload', async () => {
    const done = await validated(
      t.url,
      'greet.py',
      'async def handler(payload):\n    return "hi " + payload["name"]\n',
      {
        samplePayloads: JSON.stringify([{ name: 'ada' }, { nom: 'x' }]),
      },
    );
    expect(done.status).toBe('REJECTED');
    expect(done.reasons.join('\n')).toMatch(/sample payload #2.*KeyError/);
  });
});

describe('uploads refused at the door', () => {
  it.each([
    ['../../etc/evil.py', 'unsafe_file_name', /bare name, not a path/],
    ['..\\evil.py', 'unsafe_file_name', /bare name, not a path/],
    ['/srv/tasks/evil.py', 'unsafe_file_name', /bare name, not a path/],
    ['.hidden.py', 'unsafe_file_name', /hidden file names/],
    ['evil.sh', 'unsafe_file_name', /not a task file extension/],
    ['no extension', 'unsafe_file_name', /no extension/],
    ['spaced name.py', 'unsafe_file_name', /may only hold letters/],
  ])('the file name %j (path traversal and friends): 400', async (fileName, code, message) => {
    const res = await upload(t.url, fileName, GOOD['sum.py']);
    expect(res.status).toBe(400);
    expect((res.body as ErrorAnswer).error).toMatchObject({
      code,
      field: 'file',
      message: expect.stringMatching(message),
    });
  });

  it('an oversized upload: 413 before it reaches the disk', async () => {
    const big = `${GOOD['sum.py']}\n${'# padding\n'.repeat(1000)}`;
    const res = await upload(t.url, 'big.py', big);
    expect(res.status).toBe(413);
    expect((res.body as ErrorAnswer).error).toMatchObject({
      code: 'file_too_large',
      field: 'file',
      message: expect.stringContaining('8192 bytes'),
    });
  });

  it.each([
    ['an empty file', 'empty.py', '', {}, 'empty_file', 'file'],
    [
      'a file that is not UTF-8',
      'latin.py',
      new Uint8Array([0x23, 0xe9, 0xff, 0x0a]),
      {},
      'invalid_file',
      'file',
    ],
    ['an unknown language', 'x.py', GOOD['sum.py'], { language: 'cobol' }, 'unknown_language', 'language'],
    [
      'a language the extension contradicts',
      'x.py',
      GOOD['sum.py'],
      { language: 'javascript' },
      'language_mismatch',
      'language',
    ],
    [
      'sample_payloads that are not JSON',
      'x.py',
      GOOD['sum.py'],
      { samplePayloads: '[{' },
      'invalid_request',
      'sample_payloads',
    ],
    [
      'sample_payloads that are not an array',
      'x.py',
      GOOD['sum.py'],
      { samplePayloads: '{}' },
      'invalid_request',
      'sample_payloads',
    ],
  ] as const)('%s: 400 naming the field', async (_what, fileName, code, options, errorCode, field) => {
    const res = await upload(t.url, fileName, code, options);
    expect(res.status).toBe(400);
    expect((res.body as ErrorAnswer).error).toMatchObject({ code: errorCode, field });
  });

  it('a request that is not multipart: 415; a form without the file: 400', async () => {
    const json = await call<ErrorAnswer>(t.url, 'POST', '/tasks/upload_file', { file: 'x' });
    expect(json.status).toBe(415);
    expect(json.body.error.field).toBe('content-type');
    const form = new FormData();
    form.append('language', 'python');
    const res = await fetch(`${t.url}/tasks/upload_file`, { method: 'POST', body: form });
    expect(res.status).toBe(400);
    expect(((await res.json()) as ErrorAnswer).error).toMatchObject({ field: 'file' });
  });

  it('leaves nothing staged behind', async () => {
    // Staged files are named by validation id: each must be an accepted upload still waiting for its
    // verdict. A refused upload has no validation, so a file it left would have no status to show.
    for (const file of ls(dirs.staging)) {
      const id = file.replace(/\.task$/, '');
      const res = await call<{ status: string }>(t.url, 'GET', `/tasks/validation_status/${id}`);
      expect({ file, status: res.status }).toEqual({ file, status: 200 });
      expect(['PENDING', 'VALIDATING']).toContain(res.body.status);
    }
  });
});

describe('POST /tasks', () => {
  it('404 for an unknown title, 400 naming a bad field', async () => {
    const unknown = await call<ErrorAnswer>(t.url, 'POST', '/tasks', {
      title: 'never_uploaded',
      payload: {},
    });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error).toMatchObject({ code: 'unknown_title', field: 'title' });
    const bad = await call<ErrorAnswer>(t.url, 'POST', '/tasks', { payload: {} });
    expect(bad.status).toBe(400);
    expect(bad.body.error.field).toBe('title');
    const missing = await call<ErrorAnswer>(t.url, 'GET', '/tasks/no-such-task');
    expect(missing.status).toBe(404);
  });

  it('?wait=true answers the verdict and the task once they are decided, each in one request', async () => {
    const slow =
      'import asyncio\n\nasync def handler(payload):\n    await asyncio.sleep(0.3)\n    return {"echo": payload.get("x")}\n';
    const uploaded = await upload(t.url, 'slow_echo.py', slow);
    expect(uploaded.status).toBe(202);
    const decided = await call<{ status: string }>(t.url, 'GET', `${uploaded.body.poll as string}?wait=true`);
    expect(decided.body.status).toBe('VALIDATED');
    const created = await call<{ poll: string }>(t.url, 'POST', '/tasks', {
      title: 'slow_echo',
      payload: { x: 1 },
    });
    expect(created.status).toBe(201);
    const waited = await call<TaskAnswer>(t.url, 'GET', `${created.body.poll}?wait=true`);
    expect(waited.status).toBe(200);
    expect(waited.body).toMatchObject({ status: 'succeeded', result: { echo: 1 } });
    // Another tenant waits for nothing: 404 at once, as without wait.
    const other = await call<ErrorAnswer>(
      t.url,
      'GET',
      `${created.body.poll}?wait=true`,
      undefined,
      await as(t.url, 'intruder'),
    );
    expect(other.status).toBe(404);
    const bad = await call<ErrorAnswer>(t.url, 'GET', `${created.body.poll}?wait=soon`);
    expect(bad.status).toBe(400);
    expect(bad.body.error.field).toBe('wait');
  });

  it('412 with the status while the file is not validated (PENDING/VALIDATING, then REJECTED)', async () => {
    const slow = await upload(
      t.url,
      'slow.py',
      // Slow to import: its validation is surely still under way when the next request comes.
      'import time\ntime.sleep(2)\n\nasync def handler(payload):\n    return 1\n',
    );
    expect(slow.status).toBe(202);
    const early = await call<ErrorAnswer & { status: string; validation_id: string; title: string }>(
      t.url,
      'POST',
      '/tasks',
      { title: 'slow', payload: {} },
    );
    expect(early.status).toBe(412);
    expect(early.body).toMatchObject({ title: 'slow', validation_id: slow.body.validation_id });
    expect(['PENDING', 'VALIDATING']).toContain(early.body.status);
    expect(early.body.error).toMatchObject({ code: 'task_file_not_validated', field: 'title' });
    expect((await verdict(t.url, slow.body.validation_id as string)).status).toBe('VALIDATED');
    expect((await call(t.url, 'POST', '/tasks', { title: 'slow', payload: {} })).status).toBe(201);

    const rejected = await validated(t.url, 'rejected.py', 'def handler(payload):\n    return 1\n');
    const late = await call<{ status: string; validation_id: string }>(t.url, 'POST', '/tasks', {
      title: 'rejected',
      payload: {},
    });
    expect(late.status).toBe(412);
    expect(late.body).toMatchObject({ status: 'REJECTED', validation_id: rejected.validation_id });
  });
});

describe('titles and tenants', () => {
  const asTenant = (tenant: string) => as(t.url, tenant);

  it('titles are per tenant: each tenant runs its own, and sees nothing of another’s', async () => {
    const alices = await validated(t.url, 'shared.py', 'async def handler(payload):\n    return "alice"\n', {
      user: 'alice',
    });
    expect(alices.status).toBe('VALIDATED');
    // Bob sees neither the title nor alice's validation...
    expect(
      (await call(t.url, 'POST', '/tasks', { title: 'shared', payload: {} }, await asTenant('bob'))).status,
    ).toBe(404);
    expect(
      (
        await call(
          t.url,
          'GET',
          `/tasks/validation_status/${alices.validation_id}`,
          undefined,
          await asTenant('bob'),
        )
      ).status,
    ).toBe(404);
    // ...and takes the same title for himself, which tells him nothing about alice's.
    const bobs = await validated(t.url, 'shared.js', 'export async function handler(p) { return "bob"; }\n', {
      user: 'bob',
    });
    expect(bobs.status).toBe('VALIDATED');
    expect(await runTask(t.url, 'shared', {}, 'bob')).toMatchObject({ status: 'succeeded', result: 'bob' });
    const task = await runTask(t.url, 'shared', {}, 'alice');
    expect(task).toMatchObject({ status: 'succeeded', result: 'alice', validation_id: alices.validation_id });
    expect(
      (await call(t.url, 'GET', `/tasks/${task.task_id}`, undefined, await asTenant('bob'))).status,
    ).toBe(404);
    expect(ls(join(t.config.tasks.dir, 'alice'))).toContain('shared.py');
    expect(ls(join(t.config.tasks.dir, 'bob'))).toContain('shared.js');
  });

  it('a tenant replaces its title in another language', async () => {
    await validated(t.url, 'swap.py', 'async def handler(payload):\n    return "python"\n', {
      user: 'carol',
    });
    const replaced = await validated(
      t.url,
      'swap.js',
      'export async function handler(p) { return "javascript"; }\n',
      { user: 'carol' },
    );
    expect(replaced.status).toBe('VALIDATED');
    expect(ls(join(t.config.tasks.dir, 'carol')).filter((f) => f.startsWith('swap.'))).toEqual(['swap.js']);
    expect(await runTask(t.url, 'swap', {}, 'carol')).toMatchObject({
      status: 'succeeded',
      result: 'javascript',
      validation_id: replaced.validation_id,
    });
  });

  it('a rejected replacement leaves the validated version running', async () => {
    await validated(t.url, 'stable.py', 'async def handler(payload):\n    return 1\n', { user: 'erin' });
    const broken = await validated(t.url, 'stable.py', 'async def handler(payload):\n    return (\n', {
      user: 'erin',
    });
    expect(broken.status).toBe('REJECTED');
    expect(await runTask(t.url, 'stable', {}, 'erin')).toMatchObject({ status: 'succeeded', result: 1 });
  });
});

describe('observability', () => {
  it('/health lists live workers by role; /metrics counts validations and tasks', async () => {
    const health = await call<{
      checks: {
        workers: {
          ok: boolean;
          live: number;
          roles: Record<string, number>;
          processes: { pid: number; roles: string[] }[];
        };
        queue: { queues: Record<string, unknown> };
      };
    }>(t.url, 'GET', '/health');
    expect(health.status).toBe(200);
    expect(health.body.checks.workers).toMatchObject({
      ok: true,
      live: 1,
      roles: { executions: 1, validation: 1, tasks: 1 },
    });
    // One in-process worker takes every role there is.
    expect(health.body.checks.workers.processes[0]).toMatchObject({
      pid: process.pid,
      roles: [...WORKER_ROLES],
    });
    expect(Object.keys(health.body.checks.queue.queues)).toEqual(
      expect.arrayContaining(['executions', 'tasks', 'validation']),
    );

    await validated(t.url, 'counted.py', GOOD['sum.py']);
    const metrics = (await call<string>(t.url, 'GET', '/metrics')).body;
    expect(
      sample(metrics, 'warden_task_validations_total', { status: 'VALIDATED', language: 'python' }),
    ).toBeGreaterThan(0);
    expect(sample(metrics, 'warden_tasks_total', { status: 'succeeded' })).toBeGreaterThan(0);
  });

  it('documents the task endpoints in OpenAPI', async () => {
    const doc = await call<{ paths: Record<string, Record<string, { responses: Record<string, unknown> }>> }>(
      t.url,
      'GET',
      '/docs/json',
    );
    expect(Object.keys(doc.body.paths)).toEqual(
      expect.arrayContaining([
        '/tasks/upload_file',
        '/tasks/validation_status/{validation_id}',
        '/tasks',
        '/tasks/{task_id}',
      ]),
    );
    expect(Object.keys(doc.body.paths['/tasks']!.post!.responses)).toEqual(
      expect.arrayContaining(['201', '404', '412']),
    );
    expect(Object.keys(doc.body.paths['/tasks/upload_file']!.post!.responses)).toEqual(
      expect.arrayContaining(['202', '400', '401', '403', '413']),
    );
  });

  it('a validation status is 404 for an unknown id', async () => {
    await expect(status(t.url, 'no-such-validation')).rejects.toThrow(/404/);
  });
});
