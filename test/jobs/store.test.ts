import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  advanceJob,
  appendLogs,
  claimJob,
  expiredJobs,
  finishJob,
  getJob,
  insertJob,
  jobControl,
  listJobs,
  nextLogSeq,
  readLogs,
  requestCancel,
} from '../../src/store/jobs.js';
import { STORE_DIALECTS, useStore } from '../helpers/stores.js';

/** The jobs store on SQLite (always) and PostgreSQL (when installed): claims fence every write. */
describe.each(STORE_DIALECTS)('jobs store on %s', (dialect) => {
  const store = useStore(dialect);

  const spec = {
    argv: ['/usr/bin/true'],
    env: { A: 'b' },
    limits: { timeoutMs: 1000 },
    network: { outbound: false },
  };
  const newJob = async (owner = 'u') => {
    const id = randomUUID();
    await insertJob(store.db, { id, owner, command: 'true', spec, files: [{ path: 'a', content: 'eA==' }] });
    return id;
  };
  const line = (seq: number, text = `line ${seq}`) => ({
    seq,
    stream: 'stdout' as const,
    line: text,
    time: new Date().toISOString(),
  });

  it('round-trips a job, its spec and files as JSON', async () => {
    const id = await newJob();
    expect(await getJob(store.db, id)).toMatchObject({
      status: 'queued',
      spec,
      files: [{ path: 'a', content: 'eA==' }],
      attempts: 0,
      cancelRequested: false,
      preparingAt: null,
    });
  });

  it('lets only the latest claim advance, log and finish the job', async () => {
    const id = await newJob();
    const first = await claimJob(store.db, id, 'token-1');
    expect(first).toMatchObject({ status: 'preparing', attempts: 1 });
    expect(await advanceJob(store.db, id, 'token-1', 'running')).toBe(true);
    await appendLogs(store.db, id, [line(1), line(2)]);

    // Another worker takes the job over (the first one was presumed dead).
    const second = await claimJob(store.db, id, 'token-2');
    expect(second).toMatchObject({ status: 'preparing', attempts: 2, runningAt: null });
    expect(await jobControl(store.db, id, 'token-1')).toEqual({ held: false, cancel: false });
    expect(await advanceJob(store.db, id, 'token-1', 'collecting')).toBe(false);
    expect(await finishJob(store.db, id, 'token-1', { status: 'completed' })).toBe(false);
    // The stale worker's next line collides with its successor's numbering.
    expect(await nextLogSeq(store.db, id)).toBe(3);
    await appendLogs(store.db, id, [line(3, 'successor')]);
    await expect(appendLogs(store.db, id, [line(3, 'stale')])).rejects.toThrow();

    expect(
      await finishJob(store.db, id, 'token-2', { status: 'completed', exitCode: 0, artifacts: [] }),
    ).toBe(true);
    expect(await finishJob(store.db, id, 'token-2', { status: 'failed' })).toBe(false);
    const done = await getJob(store.db, id);
    expect(done).toMatchObject({ status: 'completed', exitCode: 0, files: null, claim: null });
    expect(await claimJob(store.db, id, 'token-3')).toBeUndefined();
    expect((await readLogs(store.db, id, 0, 10)).map((l) => l.line)).toEqual([
      'line 1',
      'line 2',
      'successor',
    ]);
    expect((await readLogs(store.db, id, 2, 10)).map((l) => l.seq)).toEqual([3]);
  });

  it('cancels a queued job at once and flags a started one', async () => {
    const queued = await newJob();
    expect(await requestCancel(store.db, queued)).toMatchObject({ status: 'cancelled', files: null });
    expect(await claimJob(store.db, queued, 't')).toBeUndefined();

    const started = await newJob();
    await claimJob(store.db, started, 't');
    expect(await requestCancel(store.db, started)).toMatchObject({
      status: 'preparing',
      cancelRequested: true,
    });
    expect(await jobControl(store.db, started, 't')).toEqual({ held: true, cancel: true });
    expect(await finishJob(store.db, started, 't', { status: 'cancelled' })).toBe(true);
    // Cancelling a finished job changes nothing.
    expect(await requestCancel(store.db, started)).toMatchObject({ status: 'cancelled' });
  });

  it('pages an owner’s jobs newest first without skipping or repeating', async () => {
    const owner = `pager-${dialect}`;
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) ids.push(await newJob(owner));
    const seen: string[] = [];
    let after: { createdAt: string; id: string } | undefined;
    for (;;) {
      const page = await listJobs(store.db, { owner, limit: 3, after });
      seen.push(...page.jobs.map((j) => j.id));
      if (!page.next) break;
      after = page.next;
    }
    expect(seen).toHaveLength(7);
    expect(new Set(seen)).toEqual(new Set(ids));
    const created = await Promise.all(seen.map(async (id) => (await getJob(store.db, id))!.createdAt));
    expect([...created].sort().reverse()).toEqual(created);
  });

  it('finds finished jobs past retention only', async () => {
    const old = await newJob();
    await claimJob(store.db, old, 't');
    await finishJob(store.db, old, 't', { status: 'completed' });
    const running = await newJob();
    await claimJob(store.db, running, 't');
    const future = new Date(Date.now() + 60_000).toISOString();
    const expired = await expiredJobs(store.db, future, 10_000);
    expect(expired).toContain(old);
    expect(expired).not.toContain(running);
    expect(await expiredJobs(store.db, new Date(0).toISOString())).toEqual([]);
  });
});
