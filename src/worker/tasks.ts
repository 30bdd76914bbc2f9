import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Job } from 'bullmq';
import { languageForFile } from '../languages/index.js';
import { prewarmHarnesses, resourceUsage, runTask, sha256, tenantTasksDir } from '../pipeline/index.js';
import type { TaskMessage, TaskQueue } from '../queue/tasks.js';
import { getTitle, uploadContent, validatedVersion, type TitleRecord } from '../store/task-files.js';
import { finishTask, staleTasks, startTask, type TaskRecord } from '../store/tasks.js';
import { tenantQuotas } from '../config/quotas.js';
import type { Role, WorkerContext } from './role.js';

/**
 * The task worker (SPEC §6): calls a validated file's handler with a task's payload, in a sandbox
 * (never in this process), and stores the result. A task whose worker dies is run again by the next
 * one (at least once); after `maxAttempts` takes it ends as `error`, Warden's fault.
 */

/** The tasks dir does not hold a validated version under the title right now (a promotion is under way). */
class FileNotReadyError extends Error {}

export function taskRole(ctx: WorkerContext, queue: TaskQueue): Role {
  const { config, engine, store, audit, metrics, logger } = ctx;
  const db = store.db;
  const maxAttempts = config.tasks.maxAttempts;
  prewarmHarnesses(engine, config.sandbox.pool);

  async function finish(task: TaskRecord, end: Parameters<typeof finishTask>[2]): Promise<void> {
    if (!(await finishTask(db, task.taskId, end))) return;
    await queue.notices.notify('task', task.taskId, { kind: 'done' });
    metrics.observeTask(end.status);
    audit.record({
      tenant: task.owner,
      actor: task.owner,
      action: 'task.run',
      target: task.taskId,
      outcome: end.status,
      details: { title: task.title, validation_id: end.validationId ?? task.validationId },
    });
    await ctx.webhooks.finished('task', task.taskId);
  }

  /**
   * The bytes of the title's validated version, from the store (any node can run them). Uploads
   * recorded before the store kept bytes run from this node's tasks dir, and only if what is there
   * now passed validation, whatever a concurrent promotion is doing to the file.
   */
  async function validatedBytes(
    title: TitleRecord,
    active: NonNullable<TitleRecord['active']>,
  ): Promise<{ bytes: Buffer; version: string }> {
    const stored = await uploadContent(db, active.validationId);
    if (stored) {
      if (sha256(stored) !== active.sha256)
        throw new Error(`the stored task file ${active.fileName} is corrupt`);
      return { bytes: stored, version: active.validationId };
    }
    let bytes: Buffer;
    try {
      bytes = await readFile(join(tenantTasksDir(config.tasks.dir, title.owner), active.fileName));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      throw new FileNotReadyError(`the task file ${active.fileName} is missing from the tasks dir`);
    }
    const version = await validatedVersion(db, title.owner, title.title, active.fileName, sha256(bytes));
    if (!version) throw new FileNotReadyError(`the task file ${active.fileName} is being replaced`);
    return { bytes, version };
  }

  async function run(task: TaskRecord): Promise<void> {
    const title = await getTitle(db, task.owner, task.title);
    if (!title?.active) {
      return finish(task, { status: 'failed', error: `the task file ${task.title} is no longer validated` });
    }
    const { fileName } = title.active;
    const language = languageForFile(fileName);
    if (!language) throw new Error(`no language for ${fileName}`);
    const { bytes, version } = await validatedBytes(title, title.active);

    const outcome = await runTask(
      { engine },
      { code: bytes.toString('utf8'), language, payload: task.payload },
    );
    await finish(task, {
      status: outcome.status,
      validationId: version,
      result: outcome.status === 'succeeded' ? (outcome.result ?? null) : undefined,
      error: outcome.error ?? null,
      usage: resourceUsage(outcome.usage),
      logs: outcome.logs,
    });
    logger.info(
      { taskId: task.taskId, title: task.title, status: outcome.status, ms: outcome.durationMs },
      'task finished',
    );
  }

  /** Starts the task and runs it (under its tenant's slot when quotas.maxRunning applies). */
  async function take(job: Job<TaskMessage>): Promise<void> {
    // Taken: its place among the waiting tasks is free (a retry holds none).
    queue.admission
      .release(job.data.task_id)
      .catch((err: Error) => logger.warn({ err: err.message }, 'queue admission'));
    const task = await startTask(db, job.data.task_id);
    if (!task) return; // finished already, or withdrawn
    if (task.attempts > maxAttempts) {
      return finish(task, {
        status: 'error',
        error: `Warden could not run the task: it was interrupted ${maxAttempts} times; submit it again`,
      });
    }
    try {
      await run(task);
    } catch (err) {
      const attempts = job.opts.attempts ?? 1;
      if (job.attemptsMade + 1 < attempts && task.attempts < maxAttempts) throw err;
      logger.error({ taskId: task.taskId, err }, 'task failed on its last attempt');
      await finish(task, {
        status: 'error',
        error: `Warden could not run the task: ${(err as Error).message}`,
      });
    }
  }

  // A tenant at quotas.maxRunning: its task waits this long in the queue before it is tried again.
  const slots = queue.runningSlots({ staleMs: config.sandbox.maxLimits.wallTimeMs + 60_000, retryMs: 250 });

  return {
    name: 'tasks',
    queue: queue.name,
    lockMs: config.tasks.jobLockMs,
    maxStalledCount: maxAttempts,
    graceMs: config.sandbox.maxLimits.wallTimeMs + 30_000,
    async process(job: Job<TaskMessage>, lock?: string): Promise<void> {
      const { maxRunning } = tenantQuotas(config.quotas, config.server.maxQueueDepth, job.data.user);
      return slots.run(job, lock, job.data.user, maxRunning, () => take(job));
    },
    async recover() {
      const before = new Date(Date.now() - Math.min(config.tasks.recoveryIntervalMs, 30_000)).toISOString();
      for (const task of await staleTasks(db, before)) {
        const message: TaskMessage = { task_id: task.taskId, title: task.title, user: task.owner };
        if (await queue.ensure(task.taskId, message)) {
          logger.warn({ taskId: task.taskId, status: task.status }, 'queued again a task whose job was lost');
        }
      }
      await queue.releaseStale(Date.parse(before));
    },
  };
}
