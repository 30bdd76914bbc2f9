import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  activateVersion,
  claimValidation,
  deleteUploadsBefore,
  finishValidation,
  getTaskFile,
  getTitle,
  insertUpload,
  latestUpload,
  lockTitle,
  recordVerdict,
  staleValidations,
  uploadContent,
  validatedVersion,
  type NewUpload,
} from '../../src/store/task-files.js';
import {
  deleteTasksBefore,
  finishTask,
  getTask,
  insertTask,
  staleTasks,
  startTask,
} from '../../src/store/tasks.js';
import { STORE_DIALECTS, useStore } from '../helpers/stores.js';

/** Task files, titles and tasks on SQLite (always) and PostgreSQL (when installed). */
describe.each(STORE_DIALECTS)('task store on %s', (dialect) => {
  const store = useStore(dialect);

  const upload = (title: string, owner: string, extension = 'py', sha256 = 'a'.repeat(64)): NewUpload => ({
    validationId: randomUUID(),
    title,
    fileName: `${title}.${extension}`,
    originalName: `${title}.${extension}`,
    language: extension === 'py' ? 'python' : 'javascript',
    owner,
    sha256,
    sizeBytes: 42,
    content: Buffer.from(`async def handler(p):\n    return ${JSON.stringify(title)}\n`),
    samplePayloads: [{ a: 1 }],
  });

  /** Takes the upload through validation to `verdict`, as a worker does. */
  async function decide(id: string, verdict: 'VALIDATED' | 'REJECTED'): Promise<void> {
    const token = randomUUID();
    expect(await claimValidation(store.db, id, token)).toBeDefined();
    expect(
      await recordVerdict(store.db, id, token, { verdict, reasons: verdict === 'REJECTED' ? ['bad'] : [] }),
    ).toBe(true);
    const record = (await getTaskFile(store.db, id))!;
    await store.db.transaction().execute(async (trx) => {
      await lockTitle(trx, record.title, record.owner);
      if (verdict === 'VALIDATED') await activateVersion(trx, record);
      expect(await finishValidation(trx, id, token, verdict)).toBe(true);
    });
  }

  it('records an upload as PENDING with its title claimed, JSON intact', async () => {
    const u = upload('alpha', 'alice');
    await insertUpload(store.db, u);
    expect(await getTaskFile(store.db, u.validationId)).toMatchObject({
      status: 'PENDING',
      verdict: null,
      reasons: [],
      samplePayloads: [{ a: 1 }],
      attempts: 0,
      sizeBytes: 42,
      owner: 'alice',
    });
    expect(await getTitle(store.db, 'alice', 'alpha')).toEqual({
      title: 'alpha',
      owner: 'alice',
      active: null,
    });
    // The bytes are kept for workers on other nodes, and only read when asked for.
    expect((await uploadContent(store.db, u.validationId))?.equals(u.content)).toBe(true);
    expect(await getTaskFile(store.db, u.validationId)).not.toHaveProperty('content');
    expect(await uploadContent(store.db, 'no-such-upload')).toBeNull();
  });

  it('titles are per tenant: two tenants each hold their own, and neither reaches the other’s', async () => {
    const first = upload('beta', 'alice');
    await insertUpload(store.db, first);
    const bobs = upload('beta', 'bob', 'js');
    await insertUpload(store.db, bobs);
    // The owner may upload again, in another language too.
    await insertUpload(store.db, upload('beta', 'alice', 'js'));
    await decide(first.validationId, 'VALIDATED');
    expect((await getTitle(store.db, 'alice', 'beta'))?.active).toMatchObject({
      validationId: first.validationId,
      fileName: 'beta.py',
    });
    expect(await getTitle(store.db, 'bob', 'beta')).toEqual({ title: 'beta', owner: 'bob', active: null });
    expect(await getTitle(store.db, 'carol', 'beta')).toBeUndefined();
    expect((await latestUpload(store.db, 'beta', 'bob'))?.validationId).toBe(bobs.validationId);
    await decide(bobs.validationId, 'VALIDATED');
    expect((await getTitle(store.db, 'bob', 'beta'))?.active?.validationId).toBe(bobs.validationId);
    expect((await getTitle(store.db, 'alice', 'beta'))?.active?.validationId).toBe(first.validationId);
  });

  it('tenants racing for one title name all get their own', async () => {
    const owners = ['erin', 'frank', 'grace', 'heidi'];
    const results = await Promise.allSettled(
      owners.map((owner) => insertUpload(store.db, upload('delta', owner))),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(owners.length);
    for (const owner of owners) expect((await getTitle(store.db, owner, 'delta'))?.owner).toBe(owner);
  });

  it('fences a stale claim: only the latest claimer writes, and only the decided status finishes', async () => {
    const u = upload('epsilon', 'ivan');
    await insertUpload(store.db, u);
    const [stale, current] = [randomUUID(), randomUUID()];
    expect((await claimValidation(store.db, u.validationId, stale))?.attempts).toBe(1);
    expect((await claimValidation(store.db, u.validationId, current))?.attempts).toBe(2);
    expect(await recordVerdict(store.db, u.validationId, stale, { verdict: 'VALIDATED', reasons: [] })).toBe(
      false,
    );
    expect(await finishValidation(store.db, u.validationId, current, 'REJECTED')).toBe(false); // nothing decided
    expect(
      await recordVerdict(store.db, u.validationId, current, {
        verdict: 'REJECTED',
        reasons: ['r'],
        report: { x: 1 },
      }),
    ).toBe(true);
    expect(await finishValidation(store.db, u.validationId, current, 'VALIDATED')).toBe(false); // not what was decided
    expect(await finishValidation(store.db, u.validationId, current, 'REJECTED')).toBe(true);
    expect(await claimValidation(store.db, u.validationId, randomUUID())).toBeUndefined(); // finished for good
    expect(await getTaskFile(store.db, u.validationId)).toMatchObject({
      status: 'REJECTED',
      reasons: ['r'],
      report: { x: 1 },
      claim: null,
    });
  });

  it('finds validated bytes by digest, and unfinished validations by age', async () => {
    const u = upload('zeta', 'judy', 'py', 'b'.repeat(64));
    await insertUpload(store.db, u);
    const cutoff = new Date(Date.now() + 1000).toISOString();
    expect((await staleValidations(store.db, cutoff)).map((r) => r.validationId)).toContain(u.validationId);
    expect(await validatedVersion(store.db, 'judy', 'zeta', 'zeta.py', 'b'.repeat(64))).toBeUndefined();
    await decide(u.validationId, 'VALIDATED');
    expect(await validatedVersion(store.db, 'judy', 'zeta', 'zeta.py', 'b'.repeat(64))).toBe(u.validationId);
    expect(await validatedVersion(store.db, 'judy', 'zeta', 'zeta.js', 'b'.repeat(64))).toBeUndefined();
    expect(await validatedVersion(store.db, 'mallory', 'zeta', 'zeta.py', 'b'.repeat(64))).toBeUndefined();
    expect((await staleValidations(store.db, cutoff)).map((r) => r.validationId)).not.toContain(
      u.validationId,
    );
  });

  it('records a task from queued to its result, once', async () => {
    const taskId = randomUUID();
    await insertTask(store.db, { taskId, title: 'zeta', owner: 'judy', payload: { n: [1, 'é'] } });
    expect(await getTask(store.db, taskId)).toMatchObject({
      status: 'queued',
      payload: { n: [1, 'é'] },
      attempts: 0,
    });
    expect((await startTask(store.db, taskId))?.attempts).toBe(1);
    const cutoff = new Date(Date.now() + 1000).toISOString();
    expect((await staleTasks(store.db, cutoff)).map((t) => t.taskId)).toContain(taskId);
    const usage = { cpu_time: 0.01, peak_memory: 1, wall_time: 0.02 };
    expect(
      await finishTask(store.db, taskId, {
        status: 'succeeded',
        result: { ok: true },
        usage,
        validationId: 'v',
      }),
    ).toBe(true);
    expect(await finishTask(store.db, taskId, { status: 'error', error: 'late' })).toBe(false);
    expect(await startTask(store.db, taskId)).toBeUndefined();
    expect(await getTask(store.db, taskId)).toMatchObject({
      status: 'succeeded',
      result: { ok: true },
      usage,
      error: null,
      validationId: 'v',
    });
  });
  it('retention deletes old uploads and tasks, but never the version a title runs', async () => {
    const kept = upload('ret_kept', 'kim');
    const older = upload('ret_kept', 'kim');
    const gone = upload('ret_gone', 'lee');
    for (const u of [older, kept, gone]) await insertUpload(store.db, u);
    await decide(older.validationId, 'REJECTED');
    await decide(kept.validationId, 'VALIDATED');
    await decide(gone.validationId, 'REJECTED');
    const taskId = randomUUID();
    await insertTask(store.db, { taskId, title: 'ret_kept', owner: 'kim', payload: {} });

    const past = new Date(Date.now() - 3_600_000).toISOString();
    expect(await deleteUploadsBefore(store.db, past)).toBe(0);
    expect(await deleteTasksBefore(store.db, past)).toBe(0);

    const future = new Date(Date.now() + 3_600_000).toISOString();
    expect(await deleteUploadsBefore(store.db, future)).toBeGreaterThanOrEqual(2);
    expect(await deleteTasksBefore(store.db, future)).toBeGreaterThanOrEqual(1);
    expect(await getTask(store.db, taskId)).toBeUndefined();
    expect(await getTaskFile(store.db, older.validationId)).toBeUndefined();
    expect(await getTaskFile(store.db, gone.validationId)).toBeUndefined();
    // The running version, its bytes and its title stay; a title with nothing left is free again.
    expect((await getTaskFile(store.db, kept.validationId))?.status).toBe('VALIDATED');
    expect((await uploadContent(store.db, kept.validationId))?.equals(kept.content)).toBe(true);
    expect((await getTitle(store.db, 'kim', 'ret_kept'))?.active?.validationId).toBe(kept.validationId);
    expect(await getTitle(store.db, 'lee', 'ret_gone')).toBeUndefined();
  });
});
