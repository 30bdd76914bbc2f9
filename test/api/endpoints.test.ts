import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, sample, startTestServer, type TestServer } from '../helpers/server.js';

type ErrorAnswer = { error: { code: string; message: string; field: string | null; request_id: string } };

/** Everything but the execution path itself: discovery, validation, health, metrics, docs, errors. */
describe('API endpoints', () => {
  let t: TestServer;
  beforeAll(async () => {
    // A Docker socket that answers nothing: one backend this server surely cannot run (runsc and a
    // Docker daemon may both be installed here), for the backend_unavailable answer below.
    t = await startTestServer({ sandbox: { docker: { socketPath: '/nonexistent/docker.sock' } } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('GET / describes the service', async () => {
    const res = await call(t.url, 'GET', '/');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      name: 'warden',
      documentation: '/docs',
      default_backend: 'bwrap',
      languages: ['python', 'javascript', 'typescript'],
    });
    expect(res.body.endpoints).toContain('POST /execute');
  });

  it('GET /docs serves Swagger UI and /docs/json the OpenAPI document built from the schemas', async () => {
    const ui = await call<string>(t.url, 'GET', '/docs/');
    expect(ui.status).toBe(200);
    expect(ui.body).toContain('swagger');
    const doc = await call<{
      openapi: string;
      paths: Record<
        string,
        Record<
          string,
          {
            requestBody?: unknown;
            responses: Record<string, { content?: Record<string, { schema: Record<string, unknown> }> }>;
          }
        >
      >;
    }>(t.url, 'GET', '/docs/json');
    expect(doc.status).toBe(200);
    expect(doc.body.openapi).toMatch(/^3\./);
    for (const path of [
      '/execute',
      '/validate',
      '/languages',
      '/languages/{language}/validate',
      '/health',
      '/',
      '/executions/{request_id}',
    ]) {
      expect(Object.keys(doc.body.paths)).toContain(path);
    }
    expect(Object.keys(doc.body.paths).some((p) => p.startsWith('/docs'))).toBe(false);
    const execute = doc.body.paths['/execute']!.post!;
    expect(Object.keys(execute.responses)).toEqual(
      expect.arrayContaining(['200', '202', '400', '413', '429', '503']),
    );
    const text = JSON.stringify(execute);
    // Units are documented.
    expect(text).toContain('Bytes: the highest peak memory');
    expect(text).toContain('Seconds of CPU time');
    expect(text).toContain('MB (MiB');
    expect(text).toContain('clamped');
  });

  it('GET /languages lists runtimes with versions', async () => {
    const res = await call<{ languages: Record<string, unknown>[] }>(t.url, 'GET', '/languages');
    expect(res.status).toBe(200);
    expect(res.body.languages.map((l) => l.id)).toEqual(['python', 'javascript', 'typescript']);
    const python = res.body.languages[0]!;
    expect(python).toMatchObject({ file_name: 'main.py', extensions: ['.py'] });
    expect(python.aliases).toContain('py');
    expect(python.version).toMatch(/^3\.\d+/);
    expect(res.body.languages[2]!.version).toContain('esbuild');
  });

  it('GET /languages/{language}/validate gives the rule catalogue and what rejects', async () => {
    const res = await call<{
      language: string;
      profile: string;
      reject_at: string;
      rules: { id: string; severity: string; action: string; rejects: boolean }[];
    }>(t.url, 'GET', '/languages/py/validate');
    expect(res.status).toBe(200);
    expect(res.body.language).toBe('python');
    expect(res.body.profile).toBe('strict');
    expect(res.body.reject_at).toBe('high');
    const ids = res.body.rules.map((r) => r.id);
    expect(ids).toContain('import_process');
    expect(ids).toContain('import_native_code'); // Python only
    // Under strict, importing an OS or network module rejects although the rule is only medium.
    const strictImports = ['import_system', 'import_network'];
    for (const r of res.body.rules) {
      const rejects = strictImports.includes(r.id) || r.severity === 'high' || r.severity === 'critical';
      expect([r.id, r.rejects, r.action]).toEqual([r.id, rejects, rejects ? 'reject' : 'warn']);
    }
    const js = await call<{ rules: { id: string }[] }>(t.url, 'GET', '/languages/javascript/validate');
    expect(js.body.rules.map((r) => r.id)).not.toContain('import_native_code');

    const unknown = await call<ErrorAnswer>(t.url, 'GET', '/languages/cobol/validate');
    expect(unknown.status).toBe(400);
    expect(unknown.body.error).toMatchObject({ code: 'unknown_language', field: 'language' });
  });

  it('POST /validate checks without running', async () => {
    const before = (await call<string>(t.url, 'GET', '/metrics')).body;
    const safe = await call(t.url, 'POST', '/validate', {
      code: 'print(sum(range(10)))',
      language: 'python',
    });
    expect(safe.status).toBe(200);
    expect(safe.body).toMatchObject({
      safe: true,
      language: 'python',
      profile: 'strict',
      violations: [],
      rejected: 0,
    });

    const unsafe = await call<{
      safe: boolean;
      violations: { rule: string; severity: string; line: number; column: number }[];
    }>(t.url, 'POST', '/validate', {
      code: 'const cp = require("child_process");\ncp.execSync("id");',
      language: 'javascript',
    });
    expect(unsafe.status).toBe(200);
    expect(unsafe.body.safe).toBe(false);
    expect(unsafe.body.violations[0]).toMatchObject({
      rule: 'import_process',
      line: 1,
      column: expect.any(Number),
    });
    const after = (await call<string>(t.url, 'GET', '/metrics')).body;
    expect(sample(after, 'warden_runs_total')).toBe(sample(before, 'warden_runs_total'));
  });

  it('GET /health is 200 with every check passing', async () => {
    const res = await call<{
      status: string;
      checks: Record<string, { ok: boolean }>;
      pool: Record<string, number>;
    }>(t.url, 'GET', '/health');
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('ok');
    expect(Object.keys(res.body.checks).sort()).toEqual(['backend', 'queue', 'store', 'workers']);
    for (const check of Object.values(res.body.checks)) expect(check.ok).toBe(true);
    expect(res.body.checks.workers).toMatchObject({ live: 1, in_process: true });
    expect(res.body.checks.store).toMatchObject({ dialect: 'sqlite' });
    expect(Object.keys(res.body.pool)).toContain('python');
  });

  it('GET /metrics exposes Prometheus text', async () => {
    await call(t.url, 'POST', '/execute', { code: 'print(1)', language: 'python' });
    const res = await call<string>(t.url, 'GET', '/metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    for (const name of [
      'warden_runs_total',
      'warden_run_duration_seconds_bucket',
      'warden_executions_total',
      'warden_queue_jobs',
      'warden_active_sandboxes',
      'warden_pool_idle_sandboxes',
      'warden_http_request_duration_seconds_bucket',
      'warden_process_cpu_user_seconds_total',
    ]) {
      expect(res.body).toContain(name);
    }
    expect(
      sample(res.body, 'warden_runs_total', { verdict: 'success', backend: 'bwrap', language: 'python' }),
    ).toBeGreaterThan(0);
  });

  describe('errors', () => {
    const post = (body: unknown, headers?: Record<string, string>) =>
      call<ErrorAnswer>(t.url, 'POST', '/execute', body, headers);

    it('names the bad field', async () => {
      const cases: [unknown, string][] = [
        [{ language: 'python' }, 'code'],
        [{ code: 'print(1)' }, 'language'],
        [{ code: 'print(1)', language: 'python', limits: { timeout: 'soon' } }, 'limits.timeout'],
        [{ code: 'print(1)', language: 'python', limits: { timeout: 0 } }, 'limits.timeout'],
        [{ code: 'print(1)', language: 'python', limits: { memory_limit: 1 } }, 'limits.memory_limit'],
        [{ code: 'print(1)', language: 'python', limits: { timout: 1 } }, 'limits.timout'],
        [
          { code: 'print(1)', language: 'python', test_cases: [{ name: 'a', input_data: '' }] },
          'test_cases.0.expected_output',
        ],
        [{ code: 'print(1)', language: 'python', backend: 'vm' }, 'backend'],
        [{ code: 'print(1)', language: 'python', extra: true }, 'extra'],
        [
          {
            code: 'print(1)',
            language: 'python',
            stdin: 'x',
            test_cases: [{ name: 'a', expected_output: '' }],
          },
          'stdin',
        ],
      ];
      for (const [body, field] of cases) {
        const res = await post(body);
        expect(res.status, JSON.stringify(body)).toBe(400);
        expect(res.body.error.field, JSON.stringify(body)).toBe(field);
        expect(res.body.error.message).toContain(field);
        expect(res.body.error.request_id).toBe(res.headers.get('x-request-id'));
      }
      const query = await call<ErrorAnswer>(t.url, 'POST', '/execute?wait=maybe', {
        code: 'print(1)',
        language: 'python',
      });
      expect(query.status).toBe(400);
      expect(query.body.error.field).toBe('wait');
    });

    it('refuses an unknown language, code over the limit, network access and the unisolated backend', async () => {
      const lang = await post({ code: 'x', language: 'cobol' });
      expect(lang.status).toBe(400);
      expect(lang.body.error).toMatchObject({ code: 'unknown_language', field: 'language' });
      expect(lang.body.error.message).toContain('python');

      const big = await post({ code: 'x'.repeat(50_001), language: 'python' });
      expect(big.status).toBe(400);
      expect(big.body.error).toMatchObject({ code: 'code_too_large', field: 'code' });

      const net = await post({ code: 'print(1)', language: 'python', limits: { network_access: true } });
      expect(net.status).toBe(400);
      expect(net.body.error).toMatchObject({ code: 'network_not_allowed', field: 'limits.network_access' });

      const proc = await post({ code: 'print(1)', language: 'python', backend: 'process' });
      expect(proc.status).toBe(400);
      expect(proc.body.error).toMatchObject({ code: 'backend_not_allowed', field: 'backend' });

      const docker = await post({ code: 'print(1)', language: 'python', backend: 'docker' });
      expect(docker.status).toBe(400);
      expect(docker.body.error).toMatchObject({ code: 'backend_unavailable', field: 'backend' });
    });

    it('413 for a body over the limit, 415 for a non-JSON body, 400 for malformed JSON, 404 for unknown routes', async () => {
      const huge = await post({ code: 'x'.repeat(t.config.server.bodyLimitBytes + 10), language: 'python' });
      expect(huge.status).toBe(413);
      expect(huge.body.error).toMatchObject({ code: 'body_too_large', field: 'body' });

      const text = await post('print(1)', { 'content-type': 'text/plain' });
      expect(text.status).toBe(415);
      expect(text.body.error.code).toBe('unsupported_media_type');

      const malformed = await post('{"code": "print(1)", ', { 'content-type': 'application/json' });
      expect(malformed.status).toBe(400);
      expect(malformed.body.error).toMatchObject({ code: 'invalid_body', field: 'body' });

      const missing = await call<ErrorAnswer>(t.url, 'GET', '/nope');
      expect(missing.status).toBe(404);
      expect(missing.body.error.code).toBe('not_found');
    });

    it('never answers 500 to a malformed request', async () => {
      const bodies: unknown[] = [
        'null',
        '[]',
        '42',
        '"code"',
        '{"__proto__": {"polluted": true}, "code": "x", "language": "python"}',
        { code: 123, language: 'python' },
        { code: 'x', language: null },
        { code: 'x', language: 'python', test_cases: 'all' },
        {
          code: 'x',
          language: 'python',
          test_cases: Array.from({ length: 51 }, (_, i) => ({ name: `t${i}`, expected_output: '' })),
        },
        { code: 'x', language: 'python', limits: { cpu_limit: 1e308 * 10 } },
        { code: 'x', language: 'python', limits: [] },
        { code: 'x', language: 'p'.repeat(1000) },
      ];
      for (const body of bodies) {
        const res = await post(typeof body === 'string' ? body : body, {
          'content-type': 'application/json',
        });
        expect(res.status, JSON.stringify(body)).toBeGreaterThanOrEqual(400);
        expect(res.status, JSON.stringify(body)).toBeLessThan(500);
        expect(res.body.error.code).toEqual(expect.any(String));
        expect(JSON.stringify(res.body)).not.toMatch(/at .+\.(ts|js):\d+/); // no stack trace
      }
      const validate = await call<ErrorAnswer>(t.url, 'POST', '/validate', { code: '', language: 'python' });
      expect(validate.status).toBe(400);
      expect(validate.body.error.field).toBe('code');
    });
  });
});
