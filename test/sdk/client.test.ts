import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WardenClient, WardenError, WardenTimeoutError, type LogEvent } from '../../src/sdk/index.js';
import { createApiKey } from '../../src/store/api-keys.js';
import { openStore } from '../../src/store/db.js';
import { call, sample, startTestServer, type TestServer } from '../helpers/server.js';
import { until } from '../helpers/wait.js';

/**
 * The SDK against a real Warden server (SQLite, local Redis, the bwrap sandbox, the local artifact
 * store, API keys required): each helper does what its endpoint does, and the server's errors
 * arrive typed.
 */

let t: TestServer;
let warden: WardenClient;
const keys: Record<'a' | 'b', string> = { a: '', b: '' };

beforeAll(async () => {
  // The server waits 1 ms for a result, then answers 202: execute() must follow it to the result.
  t = await startTestServer({
    auth: { mode: 'keys' },
    server: { requestTimeoutMs: 1 },
    jobs: { pollMs: 50 },
  });
  const store = await openStore(t.config);
  try {
    keys.a = (await createApiKey(store.db, { tenant: 'sdk-a' })).key;
    keys.b = (await createApiKey(store.db, { tenant: 'sdk-b' })).key;
  } finally {
    await store.close();
  }
  warden = new WardenClient({ baseUrl: t.url, apiKey: keys.a, pollIntervalMs: 50 });
});
afterAll(() => t?.close());

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

describe('code', () => {
  it('execute runs code in the sandbox and resolves with the verdict', async () => {
    const result = await warden.execute({
      language: 'python',
      code: 'import sys\nprint(sys.stdin.read().upper())',
      stdin: 'hello sdk',
    });
    expect(result).toMatchObject({ status: 'success', success: true, output: 'HELLO SDK\n' });
    expect(result.resource_usage.wall_time).toBeGreaterThan(0);
    const page = await warden.listExecutions({ limit: 5 });
    expect(page.executions.map((e) => e.request_id)).toContain(result.request_id);
  });

  it('execute followed the server’s 202 to the result; submitExecution does not wait', async () => {
    const metrics = (await call<string>(t.url, 'GET', '/metrics')).body;
    expect(
      sample(metrics, 'warden_http_request_duration_seconds_count', {
        route: '/execute',
        status_code: '202',
      }),
    ).toBeGreaterThan(0);
    expect(
      sample(metrics, 'warden_http_request_duration_seconds_count', {
        route: '/execute',
        status_code: '200',
      }),
    ).toBe(0);
    const accepted = await warden.submitExecution({ language: 'javascript', code: 'console.log(6 * 7)' });
    expect(accepted.status).toBe('pending');
    const state = await warden.getExecution(accepted.request_id);
    expect(state.request_id).toBe(accepted.request_id);
  });

  it('validate reports why code would be rejected, without running it', async () => {
    const report = await warden.validate({ language: 'python', code: 'import os\nos.system("id")' });
    expect(report.safe).toBe(false);
    expect(report.violations.map((v) => v.rule)).toContain('process_spawn');
  });

  it('languages and rules list what the server offers', async () => {
    const languages = await warden.languages();
    expect(languages.map((l) => l.id).sort()).toEqual(['javascript', 'python', 'typescript']);
    const rules = await warden.rules('py');
    expect(rules.language).toBe('python');
    expect(rules.rules.length).toBeGreaterThan(0);
  });

  it('health answers with the checks', async () => {
    const health = await warden.health();
    expect(['ok', 'degraded']).toContain(health.status);
    expect(health.checks.store.dialect).toBe('sqlite');
  });

  it('a refused request is a WardenError with the server’s code, field and request id', async () => {
    const err = await warden.execute({ language: 'cobol', code: 'DISPLAY 1' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WardenError);
    const e = err as WardenError;
    expect(e).toMatchObject({ status: 400, code: 'unknown_language', field: 'language' });
    expect(e.requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(e.message).toContain('cobol');

    const bad = (await warden
      .validate({ language: 'python', code: 'x', extra: 1 } as never)
      .catch((x: unknown) => x)) as WardenError;
    expect(bad).toMatchObject({ status: 400, code: 'invalid_request', field: 'extra' });
  });
});

describe('task files', () => {
  it('upload, wait for VALIDATED, run the handler', async () => {
    const upload = await warden.uploadTaskFile({
      fileName: 'sdk_double.py',
      content: 'async def handler(payload):\n    return {"double": payload.get("n", 0) * 2}\n',
      samplePayloads: [{ n: 1 }],
    });
    expect(upload).toMatchObject({ status: 'PENDING', title: 'sdk_double', language: 'python' });
    const verdict = await warden.waitForValidation(upload.validation_id, { timeoutMs: 60_000 });
    expect(verdict.status, JSON.stringify(verdict.reasons)).toBe('VALIDATED');
    const task = await warden.runTask('sdk_double', { n: 21 }, { timeoutMs: 60_000 });
    expect(task).toMatchObject({ status: 'succeeded', result: { double: 42 } });
    const files = await warden.listTaskFiles();
    expect(files.task_files.map((f) => f.validation_id)).toContain(upload.validation_id);
  });

  it('a rejected upload resolves with its reasons; running it is a typed 412', async () => {
    const upload = await warden.uploadTaskFile({
      fileName: 'sdk_evil.py',
      content: new TextEncoder().encode('import os\nasync def handler(p):\n    return os.system("id")\n'),
    });
    const verdict = await warden.waitForValidation(upload.validation_id, { timeoutMs: 60_000 });
    expect(verdict.status).toBe('REJECTED');
    expect(verdict.reasons.length).toBeGreaterThan(0);
    const err = (await warden.runTask('sdk_evil', {}).catch((e: unknown) => e)) as WardenError;
    expect(err).toMatchObject({ status: 412, code: 'task_file_not_validated', field: 'title' });
    expect(err.body).toMatchObject({ status: 'REJECTED', validation_id: upload.validation_id });
  });
});

describe('waiting', () => {
  it('gives up at its own timeout though the server would wait longer (a typed timeout error)', async () => {
    const upload = await warden.uploadTaskFile({
      fileName: 'sdk_slow.py',
      content:
        'import asyncio\nasync def handler(payload):\n    if payload.get("slow"):\n        await asyncio.sleep(30)\n    return 1\n',
      samplePayloads: [{}],
    });
    const verdict = await warden.waitForValidation(upload.validation_id, { timeoutMs: 60_000 });
    expect(verdict.status, JSON.stringify(verdict.reasons)).toBe('VALIDATED');
    const err = await warden.runTask('sdk_slow', { slow: true }, { timeoutMs: 300 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WardenTimeoutError);
    expect((err as Error).message).toMatch(/^task \S+ has not finished within 300 ms$/);
  });
});

describe('jobs', () => {
  const script = [
    'import sys',
    'for i in range(5):',
    '    print("line", i, flush=True)',
    'open("/out/result.txt", "w").write("result\\n")',
  ].join('\n');
  let id: string;
  let lines: Extract<LogEvent, { type: 'line' }>[];

  beforeAll(async () => {
    const job = await warden.createJob({
      command: 'python3 -u work.py',
      files: [{ path: 'work.py', content: Buffer.from(script).toString('base64') }],
      timeout: 30,
    });
    id = job.id;
    lines = [];
    let end: LogEvent | undefined;
    for await (const event of warden.streamLogs(id)) {
      if (event.type === 'line') lines.push(event);
      else end = event;
    }
    expect(end).toEqual({ type: 'end', status: 'completed' });
  });

  it('streamLogs yields every line in order, then the end', () => {
    const out = lines.filter((l) => l.stream === 'stdout').map((l) => l.line);
    expect(out).toEqual(['line 0', 'line 1', 'line 2', 'line 3', 'line 4']);
    expect(lines.map((l) => l.id)).toEqual(lines.map((_, i) => i + 1));
  });

  it('streamLogs resumes after lastEventId without repeating a line', async () => {
    const resumed: number[] = [];
    for await (const event of warden.streamLogs(id, { lastEventId: 2 })) {
      if (event.type === 'line') resumed.push(event.id);
    }
    expect(resumed).toEqual(lines.map((l) => l.id).filter((n) => n > 2));
  });

  it('breaking out of streamLogs closes the stream', async () => {
    for await (const event of warden.streamLogs(id)) {
      expect(event.type).toBe('line');
      break;
    }
  });

  it('downloadArtifacts fetches each file and checks its sha256', async () => {
    const job = await warden.waitForJob(id);
    expect(job).toMatchObject({ status: 'completed', exit_code: 0 });
    const files = await warden.downloadArtifacts(id);
    expect(files.map((f) => [f.path, new TextDecoder().decode(f.bytes), f.sha256])).toEqual([
      ['result.txt', 'result\n', sha256('result\n')],
    ]);
    const page = await warden.listJobs({ limit: 5 });
    expect(page.jobs.map((j) => j.id)).toContain(id);
  });

  it('the API key says whose jobs these are: another tenant gets a typed 404, no key a 401', async () => {
    const other = new WardenClient({ baseUrl: t.url, apiKey: keys.b });
    const err = (await other.getJob(id).catch((e: unknown) => e)) as WardenError;
    expect(err).toMatchObject({ status: 404, code: 'not_found', field: 'id' });
    const anonymous = new WardenClient({ baseUrl: t.url });
    const refused = (await anonymous.getJob(id).catch((e: unknown) => e)) as WardenError;
    expect(refused).toMatchObject({ status: 401, code: 'unauthorized', field: 'authorization' });
  });

  it('an aborted signal stops a live log stream', async () => {
    const job = await warden.createJob({ command: 'sleep 20', timeout: 30 });
    const controller = new AbortController();
    const seen: LogEvent[] = [];
    const reading = (async () => {
      for await (const event of warden.streamLogs(job.id, { signal: controller.signal })) seen.push(event);
    })();
    controller.abort(new Error('caller gave up'));
    await expect(reading).rejects.toThrow('caller gave up');
    expect(seen.some((e) => e.type === 'end')).toBe(false);
    await warden.cancelJob(job.id);
    const ended = await warden.waitForJob(job.id, { timeoutMs: 60_000 });
    expect(ended.status).toBe('cancelled');
  });
});

describe('batch, webhooks and administration', () => {
  it('executeBatch answers each submission in its place: accepted ones run, a refused one names its field', async () => {
    const answer = await warden.executeBatch({
      submissions: [
        { language: 'python', code: 'print(1 + 1)' },
        { language: 'cobol', code: 'DISPLAY 1' },
        { language: 'javascript', code: 'console.log(3)' },
      ],
    });
    expect(answer.submissions[1]).toMatchObject({ index: 1, error: { field: 'submissions.1.language' } });
    const outputs: string[] = [];
    for (const item of [answer.submissions[0], answer.submissions[2]]) {
      if (!item || !('request_id' in item)) throw new Error(`not accepted: ${JSON.stringify(item)}`);
      const done = await until(async () => {
        const e = await warden.getExecution(item.request_id);
        return e.status === 'done' ? e : undefined;
      }, 60_000);
      outputs.push(done.response?.output ?? '');
    }
    expect(outputs).toEqual(['2\n', '3\n']);
  });

  it('the webhook secret is the tenant’s own, and rotating it changes it', async () => {
    const first = await warden.webhookSecret();
    expect((await warden.webhookSecret()).secret).toBe(first.secret);
    const other = await new WardenClient({ baseUrl: t.url, apiKey: keys.b }).webhookSecret();
    expect(other.secret).not.toBe(first.secret);
    const rotated = await warden.rotateWebhookSecret();
    expect(rotated.secret).not.toBe(first.secret);
    expect((await warden.webhookSecret()).secret).toBe(rotated.secret);
  });

  it('an admin key creates, lists and revokes keys and reads the audit log; a tenant key gets a typed 403', async () => {
    const store = await openStore(t.config);
    let adminKey: string;
    try {
      adminKey = (await createApiKey(store.db, { tenant: 'sdk-admin', scopes: ['admin'] })).key;
    } finally {
      await store.close();
    }
    const admin = new WardenClient({ baseUrl: t.url, apiKey: adminKey });
    const created = await admin.createApiKey({ tenant: 'sdk-c', scopes: ['execute'] });
    expect(created.key).toMatch(/^wdn_/);
    const listed = await admin.listApiKeys({ tenant: 'sdk-c' });
    expect(listed.keys.map((k) => k.id)).toEqual([created.id]);
    expect(JSON.stringify(listed)).not.toContain(created.key);
    await admin.revokeApiKey(created.id);
    await expect(
      new WardenClient({ baseUrl: t.url, apiKey: created.key }).languages(),
    ).resolves.toBeDefined();
    await expect(
      new WardenClient({ baseUrl: t.url, apiKey: created.key }).validate({ language: 'python', code: '1' }),
    ).rejects.toMatchObject({ status: 401 });
    const page = await until(async () => {
      const p = await admin.audit({ action: 'key.revoked', limit: 10 });
      return p.records.some((r) => r.target === created.id) ? p : undefined;
    }, 30_000);
    expect(page.records.find((r) => r.target === created.id)).toMatchObject({ action: 'key.revoked' });
    await expect(warden.audit()).rejects.toMatchObject({ status: 403, code: 'forbidden' });
  });
});
