import { createHash, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WardenConfig } from '../../src/config/schema.js';
import { createLogger } from '../../src/logging.js';
import { createApiKey, revokeApiKey, SCOPES, type Scope } from '../../src/store/api-keys.js';
import { openStore, type Store } from '../../src/store/db.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { call, testConfig, type Answer } from '../helpers/server.js';
import { STORE_DIALECTS } from '../helpers/stores.js';
import { until } from '../helpers/wait.js';

/**
 * API keys, scopes and tenants against a real server under auth.mode keys, on SQLite and PostgreSQL:
 * every documented route with no key, a malformed header, an unknown, a revoked, an expired key and
 * a key without its scope; another tenant's ids; and no key material in the database or the log.
 */

type Headers = Record<string, string>;
const bearer = (key: string): Headers => ({ authorization: `Bearer ${key}` });
const b64 = (s: string) => Buffer.from(s).toString('base64');

/**
 * The error of an answer: Warden's `{ error: { code, message } }`, or Piston's `{ message }` on its
 * compatible routes (/api/v2/*), whose code is then the status's.
 */
function errorOf(body: unknown): { code?: string; message?: string } {
  const b = body as { error?: { code: string; message: string }; message?: string };
  if (b.error) return { code: b.error.code, message: b.error.message };
  return {
    code: /API key does not have/.test(b.message ?? '') ? 'forbidden' : 'unauthorized',
    message: b.message,
  };
}

interface Operation {
  method: string;
  path: string;
  scope: string;
}

describe.each(STORE_DIALECTS)('API keys against a real server on %s', (dialect) => {
  let dir: string;
  let pg: TestPostgres | undefined;
  let config: WardenConfig;
  let server: RunningServer;
  let store: Store;
  let base: string;
  const logLines: string[] = [];
  /** Every key made in this block: none may show up in the database or a log line. */
  const issued: string[] = [];
  const keys = {} as Record<'alice' | 'bob' | 'admin' | 'revoked' | 'expired', string> &
    Record<`without_${Scope}`, string>;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-auth-'));
    if (dialect === 'postgres') pg = await startPostgres();
    config = testConfig(dir, {
      auth: { mode: 'keys' },
      store: { databaseUrl: pg?.url },
      server: { logLevel: 'trace' },
    });
    store = await openStore(config);
    const make = async (tenant: string, scopes?: Scope[], expiresAt?: Date, at?: Date) => {
      const made = await createApiKey(store.db, { tenant, scopes, expiresAt }, at);
      issued.push(made.key);
      return made;
    };
    keys.alice = (await make('alice', ['execute', 'tasks', 'jobs'])).key;
    keys.bob = (await make('bob', ['execute', 'tasks', 'jobs'])).key;
    keys.admin = (await make('ops', ['admin'])).key;
    for (const scope of SCOPES)
      keys[`without_${scope}`] = (
        await make(
          'alice',
          SCOPES.filter((s) => s !== scope),
        )
      ).key;
    const revoked = await make('alice', [...SCOPES]);
    await revokeApiKey(store.db, revoked.record.id);
    keys.revoked = revoked.key;
    const past = new Date(Date.now() - 3_600_000);
    keys.expired = (await make('alice', [...SCOPES], new Date(past.getTime() + 60_000), past)).key;

    const sink = { write: (line: string) => void logLines.push(line) };
    server = await startServer(config, { logger: createLogger('trace', sink) });
    base = server.url;
  }, 60_000);

  afterAll(async () => {
    await server?.close();
    await store?.close();
    await pg?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function documented(): Promise<Operation[]> {
    const doc = await call<{ paths: Record<string, Record<string, { 'x-warden-scope'?: string }>> }>(
      base,
      'GET',
      '/docs/json',
    );
    expect(doc.status).toBe(200);
    return Object.entries(doc.body.paths).flatMap(([path, methods]) =>
      Object.entries(methods).map(([method, op]) => ({
        method: method.toUpperCase(),
        path: path.replace(/\{[^}]+\}/g, randomUUID()),
        scope: op['x-warden-scope'] ?? 'undeclared',
      })),
    );
  }

  it('every documented route declares its scope; only the harmless ones are public', async () => {
    const ops = await documented();
    expect(ops.filter((o) => o.scope === 'undeclared')).toEqual([]);
    const publicOps = ops.filter((o) => o.scope === 'public').map((o) => `${o.method} ${o.path}`);
    for (const op of ['GET /', 'GET /health', 'GET /metrics', 'GET /languages'])
      expect(publicOps).toContain(op);
    const scopeOf = (method: string, path: string) =>
      ops.find((o) => o.method === method && o.path === path)?.scope;
    expect(scopeOf('POST', '/execute')).toBe('execute');
    expect(scopeOf('POST', '/validate')).toBe('execute');
    expect(scopeOf('POST', '/tasks')).toBe('tasks');
    expect(scopeOf('POST', '/tasks/upload_file')).toBe('tasks');
    expect(scopeOf('POST', '/jobs')).toBe('jobs');
    expect(scopeOf('GET', '/jobs')).toBe('jobs');
    expect(scopeOf('POST', '/admin/keys')).toBe('admin');
    for (const o of ops.filter((x) => x.path.startsWith('/admin') || x.path.startsWith('/audit')))
      expect(o.scope, `${o.method} ${o.path}`).toBe('admin');
    // The public routes answer without a key.
    for (const path of ['/', '/health', '/metrics', '/languages', '/languages/python/validate', '/docs/json'])
      expect((await call(base, 'GET', path)).status, path).toBe(200);
  });

  it('every other route: no key, a malformed header, an unknown, revoked or expired key → one and the same 401', async () => {
    const ops = (await documented()).filter((o) => o.scope !== 'public');
    expect(ops.length).toBeGreaterThan(10);
    const unknownKey = `wdn_${'0'.repeat(64)}`;
    const variants: [string, Headers][] = [
      ['no key', {}],
      ['an empty header', { authorization: '' }],
      ['another scheme', { authorization: `Basic ${b64(`alice:${keys.alice}`)}` }],
      ['a bare key', { authorization: keys.alice }],
      ['two keys', { authorization: `Bearer ${keys.alice} ${keys.bob}` }],
      ['a key not of ours', bearer('not-a-key')],
      ['an unknown key', bearer(unknownKey)],
      ['a revoked key', bearer(keys.revoked)],
      ['an expired key', bearer(keys.expired)],
    ];
    for (const op of ops) {
      const answers: Answer<{ error: { code: string; message: string; field: string } }>[] = [];
      for (const [what, headers] of variants) {
        const res = await call<{ error: { code: string; message: string; field: string } }>(
          base,
          op.method,
          op.path,
          op.method === 'GET' || op.method === 'DELETE' ? undefined : {},
          headers,
        );
        expect(res.status, `${op.method} ${op.path} with ${what}`).toBe(401);
        expect(res.headers.get('www-authenticate')).toBe('Bearer realm="warden"');
        expect(res.headers.get('x-content-type-options')).toBe('nosniff');
        answers.push(res);
      }
      // Nothing in the answer tells a revoked or expired key from one that never existed.
      const shapes = new Set(
        answers.map((a) => JSON.stringify({ ...errorOf(a.body), request_id: undefined })),
      );
      expect(shapes.size, `${op.method} ${op.path}`).toBe(1);
      expect(errorOf(answers[0]!.body), `${op.method} ${op.path}`).toMatchObject({
        code: 'unauthorized',
        message: expect.stringContaining('a valid API key is required'),
      });
    }
  });

  it('a key without the route’s scope → 403; with it the route is reached', async () => {
    for (const op of (await documented()).filter((o) => o.scope !== 'public')) {
      const res = await call<{ error: { code: string } }>(
        base,
        op.method,
        op.path,
        op.method === 'GET' || op.method === 'DELETE' ? undefined : {},
        bearer(keys[`without_${op.scope as Scope}`]),
      );
      expect(res.status, `${op.method} ${op.path}`).toBe(403);
      expect(errorOf(res.body), `${op.method} ${op.path}`).toMatchObject({
        code: 'forbidden',
        message: expect.stringContaining(`does not have the ${op.scope} scope`),
      });
    }
    const code = { language: 'python', code: 'print(1)' };
    expect((await call(base, 'POST', '/validate', code, bearer(keys.alice))).status).toBe(200);
    expect((await call(base, 'GET', '/jobs', undefined, bearer(keys.alice))).status).toBe(200);
    expect((await call(base, 'GET', '/admin/keys', undefined, bearer(keys.alice))).status).toBe(403);
    expect((await call(base, 'GET', '/admin/keys', undefined, bearer(keys.admin))).status).toBe(200);
    expect((await call(base, 'POST', '/validate', code, bearer(keys.admin))).status).toBe(403);
  });

  it('another tenant’s execution, job, artifacts, task file and task answer 404, like ids that never were', async () => {
    const alice = bearer(keys.alice);
    const bob = bearer(keys.bob);

    const exec = await call<{ request_id: string }>(
      base,
      'POST',
      '/execute?wait=false',
      { language: 'python', code: 'print(6 * 7)' },
      alice,
    );
    expect(exec.status).toBe(202);
    const executionId = exec.body.request_id;

    const created = await call<{ id: string }>(
      base,
      'POST',
      '/jobs',
      {
        command: 'python3 w.py',
        files: [{ path: 'w.py', content: b64("open('/out/answer.txt', 'w').write('42')\n") }],
      },
      alice,
    );
    expect(created.status, JSON.stringify(created.body)).toBe(202);
    const jobId = created.body.id;
    await until(async () => {
      const res = await call<{ status: string }>(base, 'GET', `/jobs/${jobId}`, undefined, alice);
      return res.body.status === 'completed' ? true : undefined;
    }, 60_000);

    const form = new FormData();
    form.append('file', new Blob(['async def handler(payload):\n    return "alice"\n']), 'secretive.py');
    const uploaded = await fetch(`${base}/tasks/upload_file`, { method: 'POST', body: form, headers: alice });
    expect(uploaded.status).toBe(202);
    const validationId = ((await uploaded.json()) as { validation_id: string }).validation_id;
    await until(async () => {
      const res = await call<{ status: string }>(
        base,
        'GET',
        `/tasks/validation_status/${validationId}`,
        undefined,
        alice,
      );
      return res.body.status === 'VALIDATED' ? true : undefined;
    }, 60_000);
    const task = await call<{ task_id: string }>(
      base,
      'POST',
      '/tasks',
      { title: 'secretive', payload: {} },
      alice,
    );
    expect(task.status).toBe(201);

    // [method, path, what alice gets, body]: a finished job cannot be cancelled (409), but it is hers.
    const theirs: [string, string, number, unknown?][] = [
      ['GET', `/executions/${executionId}`, 200],
      ['GET', `/jobs/${jobId}`, 200],
      ['GET', `/jobs/${jobId}/logs?format=text`, 200],
      ['GET', `/jobs/${jobId}/artifacts`, 200],
      ['DELETE', `/jobs/${jobId}`, 409],
      ['GET', `/tasks/validation_status/${validationId}`, 200],
      ['GET', `/tasks/${task.body.task_id}`, 200],
      ['POST', '/tasks', 201, { title: 'secretive', payload: {} }],
    ];
    for (const [method, path, hers, body] of theirs) {
      expect((await call(base, method, path, body, alice)).status, `alice: ${method} ${path}`).toBe(hers);
      const asBob = await call<{ error: { code: string; message: string } }>(base, method, path, body, bob);
      expect(asBob.status, `bob: ${method} ${path}`).toBe(404);
      // The same answer as for an id nobody has.
      const none = path.replace(/[0-9a-f-]{36}/, randomUUID());
      const nobody = await call<{ error: { code: string; message: string } }>(
        base,
        method,
        body ? path : none,
        body ? { title: 'no_such_title', payload: {} } : undefined,
        alice,
      );
      expect(nobody.status).toBe(404);
      expect(asBob.body.error.code).toBe(nobody.body.error.code);
    }
    // Lists hold only one's own.
    const listed = async (path: string, headers: Headers) =>
      JSON.stringify((await call(base, 'GET', path, undefined, headers)).body);
    expect(await listed('/jobs', alice)).toContain(jobId);
    expect(await listed('/jobs', bob)).not.toContain(jobId);
    expect(await listed('/executions', alice)).toContain(executionId);
    expect(await listed('/executions', bob)).not.toContain(executionId);
    expect(await listed('/tasks/files', bob)).not.toContain(validationId);
    // Bob may take the same title for himself: titles are per tenant and tell him nothing.
    const mine = new FormData();
    mine.append('file', new Blob(['async def handler(payload):\n    return "bob"\n']), 'secretive.py');
    expect(
      (await fetch(`${base}/tasks/upload_file`, { method: 'POST', body: mine, headers: bob })).status,
    ).toBe(202);

    // The signed artifact URL is the capability: it works without a key, only alice could get it.
    const links = await call<{ url: string }[]>(base, 'GET', `/jobs/${jobId}/artifacts`, undefined, alice);
    expect(links.body).toHaveLength(1);
    const download = await fetch(links.body[0]!.url);
    expect(download.status).toBe(200);
    expect(await download.text()).toBe('42');
  }, 120_000);

  it('/admin/keys creates (the key shown once), lists (never a key or hash) and revokes at once', async () => {
    const admin = bearer(keys.admin);
    const bad = await call<{ error: { field: string } }>(
      base,
      'POST',
      '/admin/keys',
      { tenant: '../x' },
      admin,
    );
    expect(bad.status).toBe(400);
    expect(bad.body.error.field).toBe('tenant');
    expect(
      (await call(base, 'POST', '/admin/keys', { tenant: 'carol', scopes: ['root'] }, admin)).status,
    ).toBe(400);

    const made = await call<{
      id: string;
      key: string;
      tenant: string;
      scopes: string[];
      expires_at: string;
    }>(
      base,
      'POST',
      '/admin/keys',
      { tenant: 'carol', scopes: ['execute'], expires_in: '1d', name: 'carol’s CI' },
      admin,
    );
    expect(made.status).toBe(201);
    issued.push(made.body.key);
    expect(made.body).toMatchObject({
      tenant: 'carol',
      scopes: ['execute'],
      name: 'carol’s CI',
      state: 'active',
    });
    expect(Date.parse(made.body.expires_at) - Date.now()).toBeGreaterThan(23 * 3_600_000);
    const carol = bearer(made.body.key);
    expect((await call(base, 'POST', '/validate', { language: 'python', code: '1' }, carol)).status).toBe(
      200,
    );
    expect((await call(base, 'GET', '/jobs', undefined, carol)).status).toBe(403);

    const list = await call<{ keys: Record<string, unknown>[] }>(
      base,
      'GET',
      '/admin/keys?tenant=carol',
      undefined,
      admin,
    );
    expect(list.body.keys).toHaveLength(1);
    expect(list.body.keys[0]).toMatchObject({ id: made.body.id, state: 'active' });
    expect(JSON.stringify(list.body)).not.toContain(made.body.key.slice(4));
    expect(list.body.keys[0]).not.toHaveProperty('key');
    expect(list.body.keys[0]).not.toHaveProperty('hash');

    const revoked = await call<{ state: string }>(
      base,
      'DELETE',
      `/admin/keys/${made.body.id}`,
      undefined,
      admin,
    );
    expect(revoked.status).toBe(200);
    expect(revoked.body.state).toBe('revoked');
    expect((await call(base, 'POST', '/validate', { language: 'python', code: '1' }, carol)).status).toBe(
      401,
    );
    expect((await call(base, 'DELETE', '/admin/keys/key_0000', undefined, admin)).status).toBe(404);
  });

  it('sends the helmet headers; CORS stays off', async () => {
    const res = await fetch(`${base}/health`, { headers: { origin: 'https://evil.example' } });
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('x-frame-options')).toBe('SAMEORIGIN');
    expect(res.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect(res.headers.get('content-security-policy')).not.toContain('upgrade-insecure-requests');
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    const preflight = await fetch(`${base}/execute`, {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
    });
    expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('no key ever reaches the database or a log line (run last)', async () => {
    expect(issued.length).toBeGreaterThan(8);
    const secrets = issued.flatMap((k) => [k, k.slice(4)]);
    // The log was written: the lines name tenants and key ids, never keys.
    const log = logLines.join('');
    expect(log).toContain('"tenant":"alice"');
    expect(log).toMatch(/"keyId":"key_[0-9a-f]{16}"/);
    for (const secret of secrets)
      expect(
        logLines.find((l) => l.includes(secret)),
        'a log line with a key',
      ).toBeUndefined();

    let stored: string;
    if (dialect === 'sqlite') {
      // The file itself (and its write-ahead log), as a backup would copy it.
      stored = readdirSync(dir)
        .filter((f) => f.startsWith('warden.sqlite'))
        .map((f) => readFileSync(join(dir, f)).toString('latin1'))
        .join('');
    } else {
      const tables = await sql<{
        tablename: string;
      }>`select tablename from pg_tables where schemaname = 'public'`.execute(store.db);
      const dumps = await Promise.all(
        tables.rows.map((t) =>
          sql<{ row: string }>`select t::text as row from ${sql.table(t.tablename)} t`.execute(store.db),
        ),
      );
      stored = dumps.flatMap((d) => d.rows.map((r) => r.row)).join('\n');
    }
    // What is there is the hash: proof that this search would find a key if it were stored.
    expect(stored).toContain(createHash('sha256').update(issued[0]!).digest('hex'));
    for (const secret of secrets) expect(stored.includes(secret)).toBe(false);
  });
});
