import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExecutionResponse } from '../../src/runner/index.js';
import { call, sample, startTestServer, type TestServer } from '../helpers/server.js';
import { validated } from '../tasks/helpers.js';

/**
 * Code that does not parse, transpile or type-check is `compile_error` (SPEC §1): a typo is told
 * with its line and column and is never a security violation. Real server, queue and workers.
 */
describe('compile_error', () => {
  let t: TestServer;
  let unchecked: TestServer;
  const execute = (server: TestServer, body: unknown) =>
    call<ExecutionResponse>(server.url, 'POST', '/execute', body);

  beforeAll(async () => {
    [t, unchecked] = await Promise.all([
      startTestServer({ languages: { typescript: { typecheck: true } } }),
      startTestServer({ languages: { typescript: { typecheck: false } }, analysis: { profile: 'off' } }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([t?.close(), unchecked?.close()]);
  });

  it.each([
    ['python', 'print("ok")\ndef f(:\n    pass\n', 2],
    ['javascript', 'console.log("ok");\nconst x = ;\n', 2],
    ['typescript', 'console.log("ok");\nconst n: number = ;\n', 2],
    // Parses (tree-sitter) but esbuild refuses to transpile it.
    ['typescript', 'let x = 1;\nlet x = 2;\nconsole.log(x);\n', 2],
  ])(
    '%s that does not compile: 200, compile_error at its line, no violation',
    async (language, code, line) => {
      const res = await execute(t, { code, language });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({
        status: 'compile_error',
        success: false,
        output: '',
        has_security_violations: false,
        security_violations: [],
        all_tests_passed: false,
      });
      expect(res.body.errors[0]).toMatch(new RegExp(`^does not compile: line ${line}, column \\d+: `));
      expect(res.body.resource_usage.wall_time).toBe(0);
    },
  );

  it('a TypeScript type error is compile_error with the checker’s message, line and column', async () => {
    const res = await execute(t, { code: 'const x: number = "a";\nconsole.log(x);\n', language: 'ts' });
    expect(res.body.status).toBe('compile_error');
    expect(res.body.errors[0]).toBe(
      "does not compile: line 1, column 7: TS2322: Type 'string' is not assignable to type 'number'.",
    );
    expect(res.body.has_security_violations).toBe(false);
  });

  it('ordinary TypeScript using Node’s globals and modules still type-checks and runs', async () => {
    const code = [
      "import { format } from 'node:util';",
      'function twice(x) { return x * 2; }',
      'const input: string = format("%d", 21);',
      'await Promise.resolve();',
      'process.stdout.write(`${twice(Number(input))}\\n`);',
      'console.log(process.argv.length > 0, typeof setTimeout);',
    ].join('\n');
    const res = await execute(t, { code, language: 'typescript' });
    expect(res.body.errors).toEqual([]);
    expect(res.body).toMatchObject({ status: 'success', output: '42\ntrue function\n' });
  });

  it('with languages.typescript.typecheck off, a type error runs', async () => {
    const res = await execute(unchecked, {
      code: 'const x: number = "a";\nconsole.log(x);\n',
      language: 'ts',
    });
    expect(res.body).toMatchObject({ status: 'success', output: 'a\n' });
  });

  it('under the `off` profile (nothing rejects) code that does not parse is still compile_error', async () => {
    const res = await execute(unchecked, { code: 'import subprocess\ndef f(:\n', language: 'python' });
    expect(res.body).toMatchObject({ status: 'compile_error', security_violations: [] });
    expect(res.body.errors[0]).toMatch(/^does not compile: line 2, /);
  });

  it('every test case reads compile_error, and nothing runs', async () => {
    const res = await execute(t, {
      code: 'def f(:\n',
      language: 'python',
      test_cases: [
        { name: 'one', input_data: '', expected_output: '' },
        { name: 'two', input_data: '', expected_output: '' },
      ],
    });
    expect(res.body.status).toBe('compile_error');
    expect(res.body.test_results.map((r) => r.status)).toEqual(['compile_error', 'compile_error']);
    expect(res.body.resource_usage.wall_time).toBe(0);
  });

  it('a syntax error beside a rejected import is a security_violation; the syntax error is in errors', async () => {
    const res = await execute(t, { code: 'import subprocess\ndef f(:\n', language: 'python' });
    expect(res.body.status).toBe('security_violation');
    expect(res.body.has_security_violations).toBe(true);
    expect(res.body.security_violations.map((v) => v.rule)).toEqual(['import_process']);
    expect(res.body.errors).toContainEqual(expect.stringMatching(/^does not compile: line 2, column \d+: /));
  });

  it('is counted by verdict, not as a security violation', async () => {
    const read = async () => (await call<string>(t.url, 'GET', '/metrics')).body;
    const before = await read();
    const res = await execute(t, { code: 'const x = ;\n', language: 'javascript' });
    expect(res.body.status).toBe('compile_error');
    const after = await read();
    const executions = { status: 'compile_error', language: 'javascript' };
    expect(sample(after, 'warden_executions_total', executions)).toBe(
      sample(before, 'warden_executions_total', executions) + 1,
    );
    expect(sample(after, 'warden_security_violations_total', { rule: 'syntax_error' })).toBe(0);
  });

  it('/validate answers safe:false with the syntax_error finding at its line', async () => {
    const res = await call<{ safe: boolean; violations: { rule: string; line: number }[] }>(
      t.url,
      'POST',
      '/validate',
      { code: 'x = 1\ndef f(:\n', language: 'python' },
    );
    expect(res.status).toBe(200);
    expect(res.body.safe).toBe(false);
    expect(res.body.violations).toEqual([expect.objectContaining({ rule: 'syntax_error', line: 2 })]);
  });

  it('a task file with a syntax error is REJECTED for its syntax, not its security', async () => {
    const done = await validated(
      t.url,
      'typo.js',
      'export async function handler(payload) {\n  return ;;(\n}\n',
    );
    expect(done.status).toBe('REJECTED');
    expect(done.reasons).toEqual([expect.stringMatching(/^syntax error \(line \d+\)/)]);
    expect(done.reasons.join(' ')).not.toMatch(/security|static analysis/);
  });
});
