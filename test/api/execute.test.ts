import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExecutionResponse } from '../../src/runner/index.js';
import { call, sample, startTestServer, type TestServer } from '../helpers/server.js';

/** POST /execute end to end: real HTTP, real Redis queue, in-process workers, bwrap sandboxes, SQLite. */
describe('POST /execute', () => {
  let t: TestServer;
  const execute = (body: unknown, query = '') =>
    call<ExecutionResponse>(t.url, 'POST', `/execute${query}`, body);

  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(async () => {
    await t?.close();
  });

  it('runs Python and answers every documented field', async () => {
    const res = await execute({
      code: 'import sys\nprint("hello", sys.stdin.read())',
      language: 'python',
      stdin: 'world',
    });
    expect(res.status).toBe(200);
    expect(Object.keys(res.body).sort()).toEqual(
      [
        'all_tests_passed',
        'errors',
        'execution_time',
        'has_security_violations',
        'output',
        'request_id',
        'resource_usage',
        'security_violations',
        'status',
        'success',
        'test_results',
        'truncated',
      ].sort(),
    );
    expect(res.body).toMatchObject({
      success: true,
      status: 'success',
      output: 'hello world\n',
      errors: [],
      test_results: [],
      security_violations: [],
      all_tests_passed: true,
      has_security_violations: false,
      truncated: false,
    });
    expect(res.headers.get('x-request-id')).toBe(res.body.request_id);
    const usage = res.body.resource_usage;
    expect(usage.wall_time).toBeGreaterThan(0);
    expect(usage.wall_time).toBeLessThan(5); // seconds, not milliseconds
    expect(usage.peak_memory).toBeGreaterThan(1024 * 1024); // bytes
    expect(res.body.execution_time).toBeGreaterThanOrEqual(usage.wall_time);
  });

  it('runs JavaScript and TypeScript (aliases accepted)', async () => {
    const js = await execute({ code: 'console.log([1, 2, 3].map((x) => x * 2).join(","))', language: 'js' });
    expect(js.body).toMatchObject({ status: 'success', output: '2,4,6\n' });
    const ts = await execute({ code: 'const n: number = 41;\nconsole.log(n + 1);', language: 'typescript' });
    expect(ts.body).toMatchObject({ status: 'success', output: '42\n' });
  });

  it('reports a failing program with its stderr', async () => {
    const res = await execute({ code: 'raise SystemExit("boom")', language: 'python' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ success: false, status: 'failed', all_tests_passed: false });
    expect(res.body.errors.join('\n')).toContain('boom');
  });

  it('runs one sandbox per test case, in order, passing on trimmed output', async () => {
    const res = await execute({
      code: 'n = int(input())\nprint(n * n)',
      language: 'python',
      test_cases: [
        { name: 'two', input_data: '2', expected_output: '4' },
        { name: 'three', input_data: '3\n', expected_output: '  9\n\n' },
        { name: 'wrong', input_data: '4', expected_output: '17' },
      ],
    });
    expect(res.status).toBe(200);
    expect(res.body.test_results.map((r) => [r.name, r.passed, r.actual_output, r.status])).toEqual([
      ['two', true, '4\n', 'success'],
      ['three', true, '9\n', 'success'],
      ['wrong', false, '16\n', 'success'],
    ]);
    expect(res.body).toMatchObject({ status: 'success', success: true, all_tests_passed: false, output: '' });
    for (const r of res.body.test_results) expect(r.execution_time).toBeGreaterThan(0);
  });

  it('passes every case when all outputs match', async () => {
    const res = await execute({
      code: 'const lines = require("fs").readFileSync(0, "utf8").trim().split(" ").map(Number);\nconsole.log(lines[0] + lines[1]);',
      language: 'javascript',
      test_cases: [
        { name: 'a', input_data: '1 2', expected_output: '3' },
        { name: 'b', input_data: '40 2', expected_output: '42' },
      ],
    });
    expect(res.body).toMatchObject({ status: 'success', all_tests_passed: true });
    expect(res.body.test_results.every((r) => r.passed)).toBe(true);
  });

  it('a case that times out does not stop the others', async () => {
    const res = await execute({
      code: 'n = int(input())\nwhile n < 0:\n    n -= 1\nprint(n)',
      language: 'python',
      limits: { timeout: 1 },
      test_cases: [
        { name: 'before', input_data: '1', expected_output: '1' },
        { name: 'forever', input_data: '-1', expected_output: '' },
        { name: 'after', input_data: '2', expected_output: '2' },
      ],
    });
    expect(res.status).toBe(200);
    expect(res.body.test_results.map((r) => [r.name, r.status, r.passed])).toEqual([
      ['before', 'success', true],
      ['forever', 'timeout', false],
      ['after', 'success', true],
    ]);
    const forever = res.body.test_results[1]!;
    expect(forever.execution_time).toBeGreaterThanOrEqual(0.9);
    expect(forever.execution_time).toBeLessThan(3);
    expect(res.body).toMatchObject({ status: 'timeout', success: false, all_tests_passed: false });
    expect(res.body.errors.some((e) => e.startsWith('forever: '))).toBe(true);
  });

  it('rejected code never reaches a sandbox', async () => {
    const before = (await call<string>(t.url, 'GET', '/metrics')).body;
    const res = await execute({
      code: 'import subprocess\nsubprocess.run(["id"])',
      language: 'python',
      test_cases: [{ name: 'x', input_data: '', expected_output: 'uid' }],
    });
    const after = (await call<string>(t.url, 'GET', '/metrics')).body;
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      success: false,
      status: 'security_violation',
      has_security_violations: true,
      all_tests_passed: false,
      output: '',
      resource_usage: { cpu_time: 0, peak_memory: 0, wall_time: 0 },
    });
    expect(res.body.security_violations.length).toBeGreaterThan(0);
    for (const v of res.body.security_violations) {
      expect(v).toMatchObject({ source: 'static', line: expect.any(Number), column: expect.any(Number) });
    }
    expect(res.body.security_violations.map((v) => v.rule)).toContain('import_process');
    expect(res.body.test_results).toEqual([
      {
        name: 'x',
        passed: false,
        actual_output: '',
        expected_output: 'uid',
        execution_time: 0,
        status: 'security_violation',
        truncated: false,
      },
    ]);
    // No sandboxed run happened: the run counter did not move, the rejection was counted.
    expect(sample(after, 'warden_runs_total')).toBe(sample(before, 'warden_runs_total'));
    expect(sample(after, 'warden_executions_total', { status: 'security_violation' })).toBe(
      sample(before, 'warden_executions_total', { status: 'security_violation' }) + 1,
    );
    expect(
      sample(after, 'warden_security_violations_total', { source: 'static', rule: 'import_process' }),
    ).toBeGreaterThan(
      sample(before, 'warden_security_violations_total', { source: 'static', rule: 'import_process' }),
    );
  });

  it('maps limits: memory in MiB is enforced', async () => {
    const res = await execute({
      // The size comes from stdin: a literal this large is flagged by static analysis.
      code: 'n = int(input())\nblob = bytearray(n * 1024 * 1024)\nprint(len(blob))',
      language: 'python',
      stdin: '200',
      limits: { memory_limit: 64 },
    });
    expect(res.body.status).toBe('memory_limit_exceeded');
    expect(res.body.resource_usage.peak_memory).toBeLessThanOrEqual(80 * 1024 * 1024);
  });

  it('wait=false answers 202 at once; the result is polled from the store', async () => {
    const res = await call<{ request_id: string; status: string; poll: string }>(
      t.url,
      'POST',
      '/execute?wait=false',
      {
        code: 'print(6 * 7)',
        language: 'python',
      },
    );
    expect(res.status).toBe(202);
    expect(res.body.status).toBe('pending');
    expect(res.body.poll).toBe(`/executions/${res.body.request_id}`);
    expect(res.headers.get('location')).toBe(res.body.poll);

    let record: { status: string; response: ExecutionResponse | null } | undefined;
    const states = new Set<string>();
    for (let i = 0; i < 200; i++) {
      record = (
        await call<{ status: string; response: ExecutionResponse | null }>(t.url, 'GET', res.body.poll)
      ).body;
      states.add(record.status);
      if (record.status === 'done') break;
      await new Promise((r) => setTimeout(r, 25));
    }
    expect(record?.status).toBe('done');
    expect([...states].every((s) => ['pending', 'running', 'done'].includes(s))).toBe(true);
    expect(record?.response).toMatchObject({
      request_id: res.body.request_id,
      status: 'success',
      output: '42\n',
    });
  });

  it('persists synchronous executions too, with the same response', async () => {
    const res = await execute({ code: 'print("stored")', language: 'python' });
    const record = await call<Record<string, unknown>>(t.url, 'GET', `/executions/${res.body.request_id}`);
    expect(record.status).toBe(200);
    expect(record.body).toMatchObject({
      request_id: res.body.request_id,
      status: 'done',
      language: 'python',
    });
    expect(record.body.response).toEqual(res.body);
    expect(typeof record.body.created_at).toBe('string');
    expect(typeof record.body.finished_at).toBe('string');
  });

  it('an unknown execution id is a 404', async () => {
    const res = await call<{ error: { code: string } }>(t.url, 'GET', '/executions/does-not-exist');
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('not_found');
  });

  it('8 concurrent requests each get their own correct answer', async () => {
    const answers = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        i % 2 === 0
          ? execute({
              code: `import sys\nprint(${i} * 1000 + int(sys.stdin.read()))`,
              language: 'python',
              stdin: String(i),
            })
          : execute({ code: `console.log(${i} * 1000 + ${i})`, language: 'javascript' }),
      ),
    );
    const ids = new Set<string>();
    answers.forEach((res, i) => {
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ status: 'success', output: `${i * 1000 + i}\n` });
      ids.add(res.body.request_id);
    });
    expect(ids.size).toBe(8);
  });
});
