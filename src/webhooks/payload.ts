import type { Kysely } from 'kysely';
import { executionRecord, taskRecord } from '../api/schemas.js';
import { jobRecord } from '../api/schemas/jobs.js';
import { executionView, jobView, taskView } from '../api/views.js';
import { getExecution } from '../store/executions.js';
import { getJob, UNFINISHED_JOB } from '../store/jobs.js';
import type { Database } from '../store/schema.js';
import { getTask, UNFINISHED_TASK } from '../store/tasks.js';
import type { HookKind } from '../store/webhooks.js';

/**
 * What a callback posts: the resource exactly as its GET answers it (the same view, passed through
 * the same response schema Fastify serialises with). Undefined while the resource is not final, or
 * once it is gone (retention).
 */
export async function finalView(
  db: Kysely<Database>,
  kind: HookKind,
  id: string,
): Promise<Record<string, unknown> | undefined> {
  if (kind === 'execution') {
    const record = await getExecution(db, id);
    return record?.status === 'done' ? executionRecord.parse(executionView(record)) : undefined;
  }
  if (kind === 'task') {
    const task = await getTask(db, id);
    return task && !UNFINISHED_TASK.includes(task.status) ? taskRecord.parse(taskView(task)) : undefined;
  }
  const job = await getJob(db, id);
  return job && !UNFINISHED_JOB.includes(job.status) ? jobRecord.parse(jobView(job)) : undefined;
}
