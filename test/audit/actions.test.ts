import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../../src/server.js';
import { call, testConfig } from '../helpers/server.js';
import { as, keyOf } from '../helpers/tenants.js';
import { until } from '../helpers/wait.js';
import { b64, finished, submit } from '../jobs/helpers.js';
import { runTask, upload, validated, verdict } from '../tasks/helpers.js';

/**
 * The audit log against a real server (SQLite): a row for each action, written by the API and the
 * workers, read back through GET /audit; and no secret of the caller's anywhere in the rows, the
 * database file or the log lines.
 */

interface AuditRow {
  id: number;
  at: string;
  tenant: string | null;
  actor: string;
  action: string;
  target: string | null;
  outcome: string;
  details: Record<string, unknown>;
}
type Page = { records: AuditRow[]; next_cursor: string | null };

const logLines: string[] = [];
let dir: string;
let server: RunningServer;
let url: string;
const TENANT = 'audit-alice';
const CODE_SECRET = 'sk-live-AUDITFAKE0123456789abcdef';
const ENV_SECRET = 'env-secret-value-4242';
const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'warden-audit-'));
  const logger = pino({ level: 'info' }, { write: (line: string) => void logLines.push(line) });
  server = await startServer(testConfig(dir, { jobs: { pollMs: 50 } }), { logger });
  url = server.url;
});
afterAll(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function audit(query: string, headers: Record<string, string> = {}): Promise<Page> {
  const res = await call<Page>(url, 'GET', `/audit?${query}`, undefined, headers);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body;
}

/** Records are written in batches: wait until `count` matching ones are there. */
function records(query: string, count = 1): Promise<AuditRow[]> {
  return until(async () => {
    const page = await audit(query);
    return page.records.length >= count ? page.records : undefined;
  });
}

const one = async (query: string, target: string) =>
  (await until(async () => (await audit(query)).records.find((r) => r.target === target)))!;

describe('audit rows for each action', () => {
  it('code submitted (hash, language, verdict) and rejected by analysis (rules), never the code', async () => {
    const headers = await as(url, TENANT);
    const code = `token = "${CODE_SECRET}"\nprint(len(token))\n`;
    const ok = await call<{ request_id: string; status: string }>(
      url,
      'POST',
      '/execute',
      { language: 'python', code },
      headers,
    );
    expect(ok.body.status).toBe('success');
    const bad = 'import subprocess\nsubprocess.run(["id"])\n';
    const rejected = await call<{ request_id: string; status: string }>(
      url,
      'POST',
      '/execute',
      { language: 'python', code: bad },
      headers,
    );
    expect(rejected.body.status).toBe('security_violation');

    const submitted = await one(`tenant=${TENANT}&action=code.submitted`, ok.body.request_id);
    expect(submitted).toMatchObject({
      tenant: TENANT,
      outcome: 'success',
      details: { sha256: sha256(code), language: 'python', test_cases: 0 },
    });
    expect(Object.keys(submitted.details).sort()).toEqual(['language', 'sha256', 'test_cases']);
    expect(submitted.actor).toMatch(/^key_/);
    const refused = await one(`tenant=${TENANT}&action=code.submitted`, rejected.body.request_id);
    expect(refused.outcome).toBe('security_violation');
    const rules = await one(`tenant=${TENANT}&action=code.rejected`, rejected.body.request_id);
    expect(rules.details.sha256).toBe(sha256(bad));
    expect(rules.details.rules).toEqual(expect.arrayContaining([expect.stringMatching(/\w/)]));
  });

  it('task files uploaded, validated, quarantined (reasons), and tasks run', async () => {
    const good = await validated(
      url,
      'audited.py',
      'async def handler(payload):\n    return {"ok": True}\n',
      {
        user: TENANT,
      },
    );
    expect(good.status).toBe('VALIDATED');
    const res = await upload(
      url,
      'shady.py',
      'import os\nasync def handler(payload):\n    os.system("id")\n',
      {
        user: TENANT,
      },
    );
    const bad = await verdict(url, res.body.validation_id as string, TENANT);
    expect(bad.status).toBe('REJECTED');
    const task = await runTask(url, 'audited', {}, TENANT);
    expect(task.status).toBe('succeeded');

    const uploaded = await records(`tenant=${TENANT}&action=task_file.uploaded`, 2);
    expect(uploaded.map((r) => r.target)).toEqual(
      expect.arrayContaining([good.validation_id, bad.validation_id]),
    );
    expect((await one('action=task_file.validated', good.validation_id)).details).toMatchObject({
      title: 'audited',
      file_name: 'audited.py',
    });
    const quarantined = await one('action=task_file.quarantined', bad.validation_id);
    expect(quarantined.outcome).toBe('REJECTED');
    expect(quarantined.details.reasons).toEqual(bad.reasons);
    const run = await one(`tenant=${TENANT}&action=task.run`, task.task_id);
    expect(run).toMatchObject({
      outcome: 'succeeded',
      details: { title: 'audited', validation_id: good.validation_id },
    });
  });

  it('jobs created and cancelled, a forbidden system call, a refused connection', async () => {
    const sleeper = await submit(
      url,
      { command: 'sleep 60', environment: { API_TOKEN: ENV_SECRET } },
      TENANT,
    );
    const cancel = await call(url, 'DELETE', `/jobs/${sleeper}`, undefined, await as(url, TENANT));
    expect([200, 202]).toContain(cancel.status);
    await finished(url, sleeper, TENANT);

    const ptrace = await submit(
      url,
      {
        command: 'python3 trace.py',
        files: [
          { path: 'trace.py', content: b64('import ctypes\nctypes.CDLL(None).syscall(101, 0, 0, 0, 0)\n') },
        ],
      },
      TENANT,
    );
    expect((await finished(url, ptrace, TENANT)).status).toBe('failed');

    const probe =
      'import urllib.request\ntry:\n    urllib.request.urlopen("http://169.254.169.254/latest/", timeout=10)\nexcept Exception as e:\n    print(e)\n';
    const net = await submit(
      url,
      {
        command: 'python3 probe.py',
        network: { outbound: true, allowed_hosts: ['example.org'] },
        files: [{ path: 'probe.py', content: b64(probe) }],
      },
      TENANT,
    );
    await finished(url, net, TENANT);

    const created = await one(`tenant=${TENANT}&action=job.created`, sleeper);
    expect(created.details).toMatchObject({
      program: '/usr/bin/sleep',
      arguments: 1,
      environment: ['API_TOKEN'],
    });
    expect((await one(`tenant=${TENANT}&action=job.cancelled`, sleeper)).details).toMatchObject({
      was: expect.any(String),
    });
    const violation = await one(`tenant=${TENANT}&action=code.violation`, ptrace);
    expect(violation.details).toMatchObject({
      kind: 'job',
      rules: ['forbidden_syscall'],
      syscalls: ['ptrace'],
    });
    const connection = await one(`tenant=${TENANT}&action=job.connection_refused`, net);
    expect(connection).toMatchObject({ outcome: 'refused', details: { host: '169.254.169.254', port: 80 } });
  });
});

describe('audit rows for keys', () => {
  it('key created and revoked: id, tenant, scopes — never the key', async () => {
    const created = await call<{ id: string; key: string }>(url, 'POST', '/admin/keys', {
      tenant: 'audit-keys',
      scopes: ['jobs'],
    });
    expect(created.status).toBe(201);
    const revoked = await call(url, 'DELETE', `/admin/keys/${created.body.id}`);
    expect(revoked.status).toBe(200);
    const made = await one('tenant=audit-keys&action=key.created', created.body.id);
    expect(made).toMatchObject({
      actor: 'default',
      outcome: 'ok',
      details: { scopes: ['jobs'], expires_at: null },
    });
    expect(await one('tenant=audit-keys&action=key.revoked', created.body.id)).toMatchObject({
      outcome: 'ok',
    });
    expect(JSON.stringify(await audit('tenant=audit-keys'))).not.toContain(created.body.key);
  });
});

describe('GET /audit', () => {
  it('filters by action and time, and pages with an opaque cursor without gaps or repeats', async () => {
    const all = await audit(`tenant=${TENANT}&limit=500`);
    expect(all.records.length).toBeGreaterThanOrEqual(10);
    const ids = all.records.map((r) => r.id);
    expect(ids).toEqual([...ids].sort((a, b) => b - a));

    const paged: number[] = [];
    let cursor: string | null = null;
    do {
      const page: Page = await audit(`tenant=${TENANT}&limit=3${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.records.length).toBeLessThanOrEqual(3);
      paged.push(...page.records.map((r) => r.id));
      cursor = page.next_cursor;
    } while (cursor);
    expect(paged).toEqual(ids);

    const middle = all.records[Math.floor(all.records.length / 2)]!;
    const before = await audit(`tenant=${TENANT}&limit=500&to=${encodeURIComponent(middle.at)}`);
    expect(before.records.every((r) => r.at < middle.at)).toBe(true);
    const after = await audit(`tenant=${TENANT}&limit=500&from=${encodeURIComponent(middle.at)}`);
    expect(before.records.length + after.records.length).toBe(all.records.length);
    expect((await audit('tenant=nobody-at-all')).records).toEqual([]);
  });

  it('names the field of a bad query, and answers only the admin scope', async () => {
    for (const [query, field] of [
      ['limit=501', 'limit'],
      ['action=code.deleted', 'action'],
      ['from=yesterday', 'from'],
      ['cursor=bm90LWEtY3Vyc29y', 'cursor'],
    ]) {
      const res = await call<{ error: { field: string } }>(url, 'GET', `/audit?${query}`);
      expect([res.status, res.body.error.field]).toEqual([400, field]);
    }
    const user = { authorization: `Bearer ${await keyOf(url, TENANT)}` };
    expect((await call(url, 'GET', '/audit', undefined, user)).status).toBe(403);
    expect((await call(url, 'GET', '/audit', undefined, { authorization: 'Bearer wdn_nope' })).status).toBe(
      401,
    );
    const admin = { authorization: `Bearer ${await keyOf(url, 'audit-ops', ['admin'])}` };
    expect((await call(url, 'GET', '/audit', undefined, admin)).status).toBe(200);
  });
});

describe('secrets', () => {
  it('no key, code secret or environment value in the audit rows, the log lines or (keys) the database file', async () => {
    const key = await keyOf(url, TENANT);
    // A well-formed key this server never issued: refused, and not written down anywhere either.
    const forged = `wdn_${'f'.repeat(64)}`;
    const refused = await call(
      url,
      'POST',
      '/execute',
      { language: 'python', code: 'print(1)' },
      {
        authorization: `Bearer ${forged}`,
      },
    );
    expect(refused.status).toBe(401);
    const rows = JSON.stringify((await audit('limit=500')).records);
    for (const secret of [key, forged, CODE_SECRET, ENV_SECRET]) {
      expect(rows).not.toContain(secret);
      expect(logLines.join('\n')).not.toContain(secret);
    }
    // The code itself is stored with its execution (that is the request), but never the key.
    const db = ['warden.sqlite', 'warden.sqlite-wal']
      .map((f) => join(dir, f))
      .filter(existsSync)
      .map((f) => readFileSync(f).toString('latin1'))
      .join('');
    expect(db).toContain(sha256(`token = "${CODE_SECRET}"\nprint(len(token))\n`));
    expect(db).not.toContain(key);
    expect(db).not.toContain(forged);
    expect(db).not.toContain(key.slice(4, 40));
  });
});
