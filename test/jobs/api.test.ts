import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/db.js';
import { claimJob, finishJob, getJob } from '../../src/store/jobs.js';
import { call, sample, startTestServer, type TestServer } from '../helpers/server.js';
import { as } from '../helpers/tenants.js';
import { allEvents, b64, finished, job, openEvents, runJob, submit, until } from './helpers.js';

/**
 * Jobs end to end on a real server (SQLite, local Redis, the real bwrap sandbox, the local artifact
 * store): files in, environment, limits, live and replayed logs, cancellation, artifacts out through
 * signed URLs.
 */

let t: TestServer;

beforeAll(async () => {
  t = await startTestServer({ jobs: { pollMs: 50, maxRequestBytes: 4 * 2 ** 20 } });
});
afterAll(() => t?.close());

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function download(url: string): Promise<{ status: number; bytes: Buffer }> {
  const res = await fetch(url);
  return { status: res.status, bytes: Buffer.from(await res.arrayBuffer()) };
}

describe('a job with files, environment and outputs', () => {
  const binary = Buffer.from(Array.from({ length: 70_000 }, (_, i) => (i * 7919) % 256));
  const script = [
    'import os, sys',
    'data = open("data/in.bin", "rb").read()',
    'print("greeting:", os.environ["GREETING"])',
    'print("to stderr", file=sys.stderr)',
    'os.makedirs("/out/sub", exist_ok=True)',
    'open("/out/report.txt", "w").write("report " + os.environ["GREETING"] + "\\n")',
    'open("/out/sub/copy.bin", "wb").write(data)',
    'print("bytes", len(data))',
  ].join('\n');

  let id: string;
  beforeAll(async () => {
    id = await submit(t.url, {
      command: 'python3 make.py',
      environment: { GREETING: 'hello jobs' },
      timeout: 30,
      resources: { cpu: '500m', memory: '256Mi', disk: '64Mi' },
      files: [
        { path: 'make.py', content: b64(script) },
        { path: 'data/in.bin', content: b64(binary) },
      ],
    });
  });

  it('completes with each step timed, exit code, usage and the artifact list', async () => {
    const done = await finished(t.url, id);
    expect(done, JSON.stringify(done)).toMatchObject({
      status: 'completed',
      verdict: 'success',
      exit_code: 0,
      signal: null,
      error: null,
      skipped: [],
      resources: { cpu: 0.5, memory: 256 * 2 ** 20, disk: 64 * 2 ** 20 },
      argv: ['/usr/bin/python3', 'make.py'],
      environment: ['GREETING'],
    });
    const steps = [done.created_at, done.preparing_at, done.running_at, done.collecting_at, done.finished_at];
    const times = steps.map((s) => Date.parse(s ?? ''));
    expect(times.every((x) => x > 0)).toBe(true);
    expect([...times].sort((a, b) => a - b)).toEqual(times);
    expect(done.usage?.wall_time).toBeGreaterThan(0);
    expect(done.usage?.peak_memory).toBeGreaterThan(0);
    expect(done.artifacts).toEqual([
      { path: 'report.txt', size: 18, sha256: sha256(Buffer.from('report hello jobs\n')) },
      { path: 'sub/copy.bin', size: binary.length, sha256: sha256(binary) },
    ]);
  });

  it('serves text and binary artifacts byte-identical through signed URLs', async () => {
    const res = await call<{ path: string; url: string; expires_at: string; sha256: string }[]>(
      t.url,
      'GET',
      `/jobs/${id}/artifacts`,
    );
    expect(res.status).toBe(200);
    expect(res.body.map((a) => a.path)).toEqual(['report.txt', 'sub/copy.bin']);
    const [text, bin] = res.body;
    expect(Date.parse(text!.expires_at)).toBeGreaterThan(Date.now());
    expect((await download(text!.url)).bytes.toString()).toBe('report hello jobs\n');
    const got = await download(bin!.url);
    expect(got.status).toBe(200);
    expect(got.bytes.equals(binary)).toBe(true);
    // A signature for one artifact does not open another.
    const forged = bin!.url.replace('sub/copy.bin', 'report.txt');
    expect((await download(forged)).status).toBe(403);
  });

  it('keeps the log: replay over SSE, resume after Last-Event-ID, plain text', async () => {
    const events = await allEvents(`${t.url}/jobs/${id}/logs`);
    const lines = events
      .filter((e) => e.event === 'message')
      .map((e) => ({ id: Number(e.id), ...JSON.parse(e.data) }));
    expect(events.at(-1)).toMatchObject({ event: 'end' });
    expect(JSON.parse(events.at(-1)!.data)).toEqual({ status: 'completed' });
    const out = lines.filter((l) => l.stream === 'stdout').map((l) => l.line);
    expect(out).toEqual(['greeting: hello jobs', `bytes ${binary.length}`]);
    expect(lines.filter((l) => l.stream === 'stderr').map((l) => l.line)).toEqual(['to stderr']);
    expect(lines.every((l) => Date.parse(l.time) > 0)).toBe(true);
    const ids = lines.map((l) => l.id);
    expect([...new Set(ids)].sort((a, b) => a - b)).toEqual(ids);

    const resumed = await allEvents(`${t.url}/jobs/${id}/logs`, { 'last-event-id': String(ids[1]) });
    expect(resumed.filter((e) => e.event === 'message').map((e) => Number(e.id))).toEqual(ids.slice(2));

    const text = await fetch(`${t.url}/jobs/${id}/logs?format=text`);
    expect(text.headers.get('content-type')).toMatch(/^text\/plain/);
    const body = await text.text();
    expect(body).toContain('greeting: hello jobs\n');
    expect(body).toContain('to stderr\n');
  });
});

describe('a running job', () => {
  it('streams its lines live, and a cancel kills it and keeps what it printed', async () => {
    const id = await submit(t.url, {
      command: `python3 -u -c "import time; print('first line'); time.sleep(120); print('never')"`,
      timeout: 60,
    });
    const stream = await openEvents(`${t.url}/jobs/${id}/logs`);
    expect(stream.contentType).toMatch(/^text\/event-stream/);
    const first = await stream.next();
    expect(first?.event).toBe('message');
    expect(JSON.parse(first!.data)).toMatchObject({ stream: 'stdout', line: 'first line' });
    // The line arrived while the job was still running (it sleeps for two minutes).
    expect((await job(t.url, id)).status).toBe('running');

    const cancel = await call(t.url, 'DELETE', `/jobs/${id}`);
    expect(cancel.status).toBe(202);
    expect(cancel.body).toMatchObject({ id, cancel_requested: true });
    const rest = [];
    for (let ev = await stream.next(); ev; ev = await stream.next()) rest.push(ev);
    expect(rest.at(-1)).toMatchObject({ event: 'end', data: JSON.stringify({ status: 'cancelled' }) });
    expect(rest.map((e) => e.data).join('\n')).not.toContain('never');

    const done = await job(t.url, id);
    expect(done).toMatchObject({
      status: 'cancelled',
      error: 'cancelled by request',
      cancel_requested: true,
    });
    expect(done.usage!.wall_time).toBeLessThan(60);
    const text = await (await fetch(`${t.url}/jobs/${id}/logs?format=text`)).text();
    expect(text).toContain('first line\n');
    expect((await call(t.url, 'DELETE', `/jobs/${id}`)).status).toBe(409);
  });

  it('resumes a live log after Last-Event-ID, and keeps the outputs a cancelled job wrote', async () => {
    const id = await submit(t.url, {
      command: `python3 -u -c "import time; open('/out/partial.txt','w').write('so far'); print('written'); time.sleep(120)"`,
    });
    const stream = await openEvents(`${t.url}/jobs/${id}/logs`);
    const first = (await stream.next())!;
    expect(JSON.parse(first.data).line).toBe('written');
    stream.close();
    // Resumed while still running: nothing already seen comes again.
    const resumed = await openEvents(`${t.url}/jobs/${id}/logs`, { 'last-event-id': first.id! });
    expect((await call(t.url, 'DELETE', `/jobs/${id}`)).status).toBe(202);
    const rest = [];
    for (let ev = await resumed.next(); ev; ev = await resumed.next()) rest.push(ev);
    expect(rest.at(-1)).toMatchObject({ event: 'end' });
    const ids = rest.filter((e) => e.event === 'message').map((e) => Number(e.id));
    expect(ids.every((n) => n > Number(first.id))).toBe(true);
    expect(rest.map((e) => e.data).join('\n')).not.toContain('"written"');
    const done = await finished(t.url, id);
    expect(done.status).toBe('cancelled');
    expect(done.artifacts.map((a) => a.path)).toEqual(['partial.txt']);
  });

  it('cancels a job still queued at once, and it never runs', async () => {
    const sleepers: string[] = [];
    for (let i = 0; i < t.config.workers.concurrency; i++)
      sleepers.push(await submit(t.url, { command: 'sleep 120', timeout: 60 }));
    await until(async () => {
      const all = await Promise.all(sleepers.map((id) => job(t.url, id)));
      return all.every((j) => j.status === 'running') ? true : undefined;
    });
    const waiting = await submit(t.url, { command: 'echo never' });
    expect((await job(t.url, waiting)).status).toBe('queued');
    const cancel = await call(t.url, 'DELETE', `/jobs/${waiting}`);
    expect(cancel.status).toBe(200);
    expect(cancel.body).toMatchObject({ id: waiting, status: 'cancelled' });
    for (const id of sleepers) expect((await call(t.url, 'DELETE', `/jobs/${id}`)).status).toBe(202);
    for (const id of sleepers) expect((await finished(t.url, id)).status).toBe('cancelled');
    const never = await job(t.url, waiting);
    expect(never).toMatchObject({ status: 'cancelled', running_at: null, attempts: 0 });
  });

  it('is stopped by its worker as soon as another worker holds its claim (never two runs at once)', async () => {
    const id = await submit(t.url, { command: `python3 -u -c "import time; print('up'); time.sleep(120)"` });
    const stream = await openEvents(`${t.url}/jobs/${id}/logs`);
    expect(JSON.parse((await stream.next())!.data).line).toBe('up');
    stream.close();
    const store = await openStore(t.config);
    try {
      // What a second worker does when BullMQ hands it a job whose first worker looked dead.
      expect(await claimJob(store.db, id, 'successor')).toBeDefined();
      const sandboxes = async () =>
        sample((await call(t.url, 'GET', '/metrics')).body as unknown as string, 'warden_active_sandboxes');
      await until(async () => ((await sandboxes()) === 0 ? true : undefined));
      const row = await getJob(store.db, id);
      expect(row).toMatchObject({ status: 'preparing', claim: 'successor', finishedAt: null });
      expect(await finishJob(store.db, id, 'successor', { status: 'cancelled' })).toBe(true);
    } finally {
      await store.close();
    }
  });

  it('ends as timeout past its time limit, and failed past its memory limit', async () => {
    const [slow, hog] = await Promise.all([
      runJob(t.url, { command: 'sleep 30', timeout: 1 }),
      runJob(t.url, {
        command: `python3 -c "x = bytearray(256 * 1024 * 1024); print(len(x))"`,
        resources: { memory: '64Mi' },
      }),
    ]);
    expect(slow).toMatchObject({ status: 'timeout', verdict: 'timeout' });
    expect(slow.error).toMatch(/time limit of 1 s/);
    expect(hog).toMatchObject({ status: 'failed', verdict: 'memory_limit_exceeded' });
    expect(hog.error).toMatch(/memory limit of 67108864 bytes/);
  });

  it('reports a non-zero exit as failed, once (never retried)', async () => {
    const done = await runJob(t.url, { command: `python3 -c "import sys; print('bye'); sys.exit(3)"` });
    expect(done).toMatchObject({ status: 'failed', exit_code: 3, attempts: 1 });
    expect(done.error).toBe('the command exited with status 3');
  });
});

describe('job requests that are refused', () => {
  it.each([
    ['an absolute file path', { files: [{ path: '/etc/cron.d/x', content: '' }] }, 'files.0.path'],
    ['a traversal file path', { files: [{ path: '../../x', content: '' }] }, 'files.0.path'],
    ['a nested traversal', { files: [{ path: 'a/../../x', content: '' }] }, 'files.0.path'],
    ['a command off the allow-list', { command: 'bash -c id' }, 'command'],
    ['sh by absolute path', { command: '/bin/sh -c id' }, 'command'],
    ['a pipe', { command: 'cat x | python3' }, 'command'],
    ['a command separator', { command: 'ls; id' }, 'command'],
    ['a substitution', { command: 'echo $(id)' }, 'command'],
    ['a redirection', { command: 'echo x > /tmp/y' }, 'command'],
    ['a glob', { command: 'cat *.txt' }, 'command'],
    ['LD_PRELOAD', { environment: { LD_PRELOAD: '/tmp/x.so' } }, 'environment.LD_PRELOAD'],
    ['NODE_OPTIONS', { environment: { NODE_OPTIONS: '--require /tmp/x' } }, 'environment.NODE_OPTIONS'],
    ['a bad memory quantity', { resources: { memory: '1GB' } }, 'resources.memory'],
    ['a bad cpu quantity', { resources: { cpu: 'fast' } }, 'resources.cpu'],
    ['an unknown field', { shell: true }, 'shell'],
    ['a negative timeout', { timeout: -1 }, 'timeout'],
  ])('%s → 400 naming the field', async (_, extra, field) => {
    const res = await call<{ error: { code: string; field: string; message: string } }>(
      t.url,
      'POST',
      '/jobs',
      {
        command: 'python3 x.py',
        ...extra,
      },
    );
    expect(res.status, JSON.stringify(res.body)).toBe(400);
    expect(res.body.error.field).toBe(field);
  });

  it('takes files past the server’s general body limit, up to jobs.maxRequestBytes (then 413)', async () => {
    const big = Buffer.alloc(2 * 2 ** 20, 7);
    const done = await runJob(t.url, {
      command: 'sha256sum big.bin',
      files: [{ path: 'big.bin', content: b64(big) }],
    });
    const log = await (await fetch(`${t.url}/jobs/${done.id}/logs?format=text`)).text();
    expect(log).toContain(`${sha256(big)}  big.bin`);
    const tooBig = await call(t.url, 'POST', '/jobs', {
      command: 'true',
      files: [{ path: 'big.bin', content: b64(Buffer.alloc(4 * 2 ** 20)) }],
    });
    expect(tooBig.status).toBe(413);
  });

  it('answers 404 for an unknown job or another tenant’s job', async () => {
    const id = await submit(t.url, { command: 'true' }, 'alice');
    expect((await call(t.url, 'GET', `/jobs/${id}`, undefined, await as(t.url, 'alice'))).status).toBe(200);
    for (const path of [`/jobs/${id}`, `/jobs/${id}/logs`, `/jobs/${id}/artifacts`])
      expect((await call(t.url, 'GET', path, undefined, await as(t.url, 'bob'))).status).toBe(404);
    expect((await call(t.url, 'DELETE', `/jobs/${id}`, undefined, await as(t.url, 'bob'))).status).toBe(404);
    expect((await call(t.url, 'GET', '/jobs/nope')).status).toBe(404);
  });
});

describe('the job list', () => {
  it('is newest first, paginated by cursor, filtered by status, and per tenant', async () => {
    const user = await as(t.url, 'lister');
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await submit(t.url, { command: `echo ${i}` }, 'lister'));
    await until(async () => {
      const all = await Promise.all(ids.map((id) => call(t.url, 'GET', `/jobs/${id}`, undefined, user)));
      return all.every((r) => r.body.status === 'completed') ? true : undefined;
    });
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const q: string = `/jobs?limit=2${cursor ? `&cursor=${cursor}` : ''}`;
      const page = await call<{ jobs: { id: string }[]; next_cursor: string | null }>(
        t.url,
        'GET',
        q,
        undefined,
        user,
      );
      expect(page.status).toBe(200);
      expect(page.body.jobs.length).toBeLessThanOrEqual(2);
      seen.push(...page.body.jobs.map((j) => j.id));
      cursor = page.body.next_cursor;
    } while (cursor);
    expect(seen).toEqual([...ids].reverse());
    const done = await call<{ jobs: unknown[] }>(t.url, 'GET', '/jobs?status=completed', undefined, user);
    expect(done.body.jobs).toHaveLength(5);
    const none = await call<{ jobs: unknown[] }>(t.url, 'GET', '/jobs?status=failed', undefined, user);
    expect(none.body.jobs).toHaveLength(0);
    expect((await call(t.url, 'GET', '/jobs?cursor=garbage')).status).toBe(400);
    expect((await call(t.url, 'GET', '/jobs?status=sleeping')).status).toBe(400);
  });

  it('counts finished jobs by status in the metrics', async () => {
    const text = (await call(t.url, 'GET', '/metrics')).body as unknown as string;
    expect(sample(text, 'warden_jobs_total', { status: 'completed' })).toBeGreaterThanOrEqual(6);
    expect(sample(text, 'warden_jobs_total', { status: 'cancelled' })).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'warden_job_artifact_bytes_total')).toBeGreaterThan(70_000);
  });
});

describe('after the jobs', () => {
  it('leaves no output dir or mount of this process behind', async () => {
    const { outputBase } = await import('../../src/jobs/outdir.js');
    const base = outputBase(t.config.dataDir);
    const mine = (name: string) => name.startsWith(`${process.pid}-`);
    await until(async () => {
      const left = existsSync(base) ? readdirSync(base).filter(mine) : [];
      const mounts = readFileSync('/proc/mounts', 'utf8')
        .split('\n')
        .filter((l) => l.includes(`${base}/${process.pid}-`));
      return left.length === 0 && mounts.length === 0 ? true : undefined;
    });
  });
});
