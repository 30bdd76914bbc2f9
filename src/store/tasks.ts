import type { Kysely, Selectable } from 'kysely';
import { iso, json, now } from './codec.js';
import type { Database, TaskState, TasksTable } from './schema.js';

/** Tasks (SPEC §6 `POST /tasks`): one handler call each, from queued to a result or an error. */

export interface TaskRecord {
  taskId: string;
  title: string;
  owner: string;
  validationId: string | null;
  status: TaskState;
  payload: unknown;
  result: unknown;
  error: string | null;
  /** Sandbox usage of the run: { wallMs, cpuMs, peakMemoryBytes }. */
  usage: unknown;
  logs: string | null;
  attempts: number;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

export const UNFINISHED_TASK: TaskState[] = ['queued', 'running'];

function toRecord(row: Selectable<TasksTable>): TaskRecord {
  return {
    taskId: row.task_id,
    title: row.title,
    owner: row.owner,
    validationId: row.validation_id,
    status: row.status,
    payload: json(row.payload),
    result: row.result === null ? null : json(row.result),
    error: row.error,
    usage: row.usage === null ? null : json(row.usage),
    logs: row.logs,
    attempts: Number(row.attempts),
    createdAt: iso(row.created_at) ?? '',
    startedAt: iso(row.started_at),
    finishedAt: iso(row.finished_at),
  };
}

export async function insertTask(
  db: Kysely<Database>,
  task: { taskId: string; title: string; owner: string; payload: unknown },
): Promise<void> {
  const at = now();
  await db
    .insertInto('tasks')
    .values({
      task_id: task.taskId,
      title: task.title,
      owner: task.owner,
      validation_id: null,
      status: 'queued',
      payload: JSON.stringify(task.payload),
      result: null,
      error: null,
      usage: null,
      logs: null,
      attempts: 0,
      created_at: at,
      updated_at: at,
      started_at: null,
      finished_at: null,
    })
    .execute();
}

export async function getTask(db: Kysely<Database>, taskId: string): Promise<TaskRecord | undefined> {
  const row = await db.selectFrom('tasks').selectAll().where('task_id', '=', taskId).executeTakeFirst();
  return row ? toRecord(row) : undefined;
}

/** For a task refused after its row was written (the queue was down). */
export async function deleteTask(db: Kysely<Database>, taskId: string): Promise<void> {
  await db.deleteFrom('tasks').where('task_id', '=', taskId).execute();
}

/** A worker starts the task (again, after a crash). Undefined when it has already finished. */
export async function startTask(db: Kysely<Database>, taskId: string): Promise<TaskRecord | undefined> {
  const at = now();
  await db
    .updateTable('tasks')
    .set((eb) => ({ status: 'running', attempts: eb('attempts', '+', 1), started_at: at, updated_at: at }))
    .where('task_id', '=', taskId)
    .where('status', 'in', UNFINISHED_TASK)
    .execute();
  const record = await getTask(db, taskId);
  return record?.status === 'running' ? record : undefined;
}

export interface TaskEnd {
  status: Exclude<TaskState, 'queued' | 'running'>;
  validationId?: string | null;
  result?: unknown;
  error?: string | null;
  usage?: unknown;
  logs?: string | null;
}

/** Only an unfinished task ends: a redelivered job never rewrites a result. */
export async function finishTask(db: Kysely<Database>, taskId: string, end: TaskEnd): Promise<boolean> {
  const at = now();
  const res = await db
    .updateTable('tasks')
    .set({
      status: end.status,
      validation_id: end.validationId ?? null,
      result: end.result === undefined ? null : JSON.stringify(end.result),
      error: end.error ?? null,
      usage: end.usage === undefined ? null : JSON.stringify(end.usage),
      logs: end.logs ?? null,
      finished_at: at,
      updated_at: at,
    })
    .where('task_id', '=', taskId)
    .where('status', 'in', UNFINISHED_TASK)
    .executeTakeFirst();
  return Number(res.numUpdatedRows) === 1;
}

/** Unfinished tasks nobody has touched since `before` (recovery looks at these). */
export async function staleTasks(db: Kysely<Database>, before: string, limit = 500): Promise<TaskRecord[]> {
  const rows = await db
    .selectFrom('tasks')
    .selectAll()
    .where('status', 'in', UNFINISHED_TASK)
    .where('updated_at', '<', before)
    .orderBy('updated_at')
    .limit(limit)
    .execute();
  return rows.map(toRecord);
}

/** Retention: tasks created before `before`, whatever became of them. */
export async function deleteTasksBefore(db: Kysely<Database>, before: string): Promise<number> {
  const res = await db.deleteFrom('tasks').where('created_at', '<', before).executeTakeFirst();
  return Number(res.numDeletedRows);
}
