import type { Kysely, Selectable } from 'kysely';
import { iso, json, now } from './codec.js';
import type { JobLogsTable, JobState, JobsTable } from './jobs-schema.js';
import type { Database } from './schema.js';

/**
 * Jobs (SPEC §7): one command run each, from queued to a final state, with the time of every step,
 * and the lines it printed. Every write of a worker is fenced by its claim token, so a worker
 * presumed dead cannot overwrite its successor.
 */

export type { JobState } from './jobs-schema.js';
export type FinalJobState = Extract<JobState, 'completed' | 'failed' | 'timeout' | 'cancelled' | 'error'>;

export const UNFINISHED_JOB: JobState[] = ['queued', 'preparing', 'running', 'collecting'];
const STARTED: JobState[] = ['preparing', 'running', 'collecting'];

export interface JobRecord {
  id: string;
  owner: string;
  status: JobState;
  command: string;
  spec: unknown;
  files: unknown;
  verdict: string | null;
  exitCode: number | null;
  signal: string | null;
  usage: unknown;
  violations: unknown;
  artifacts: unknown;
  skipped: unknown;
  error: string | null;
  attempts: number;
  claim: string | null;
  cancelRequested: boolean;
  createdAt: string;
  updatedAt: string;
  preparingAt: string | null;
  runningAt: string | null;
  collectingAt: string | null;
  finishedAt: string | null;
}

const orNull = (text: string | null) => (text === null ? null : json(text));

function toRecord(row: Selectable<JobsTable>): JobRecord {
  return {
    id: row.id,
    owner: row.owner,
    status: row.status,
    command: row.command,
    spec: json(row.spec),
    files: orNull(row.files),
    verdict: row.verdict,
    exitCode: row.exit_code === null ? null : Number(row.exit_code),
    signal: row.signal,
    usage: orNull(row.usage),
    violations: orNull(row.violations),
    artifacts: orNull(row.artifacts),
    skipped: orNull(row.skipped),
    error: row.error,
    attempts: Number(row.attempts),
    claim: row.claim,
    cancelRequested: Number(row.cancel_requested) === 1,
    createdAt: iso(row.created_at) ?? '',
    updatedAt: iso(row.updated_at) ?? '',
    preparingAt: iso(row.preparing_at),
    runningAt: iso(row.running_at),
    collectingAt: iso(row.collecting_at),
    finishedAt: iso(row.finished_at),
  };
}

export async function insertJob(
  db: Kysely<Database>,
  job: { id: string; owner: string; command: string; spec: unknown; files: unknown },
): Promise<void> {
  const at = now();
  await db
    .insertInto('jobs')
    .values({
      id: job.id,
      owner: job.owner,
      status: 'queued',
      command: job.command,
      spec: JSON.stringify(job.spec),
      files: JSON.stringify(job.files),
      verdict: null,
      exit_code: null,
      signal: null,
      usage: null,
      violations: null,
      artifacts: null,
      skipped: null,
      error: null,
      attempts: 0,
      claim: null,
      cancel_requested: 0,
      created_at: at,
      updated_at: at,
      preparing_at: null,
      running_at: null,
      collecting_at: null,
      finished_at: null,
    })
    .execute();
}

export async function getJob(db: Kysely<Database>, id: string): Promise<JobRecord | undefined> {
  const row = await db.selectFrom('jobs').selectAll().where('id', '=', id).executeTakeFirst();
  return row ? toRecord(row) : undefined;
}

/** For a job refused after its row was written (the queue was down). */
export async function deleteJob(db: Kysely<Database>, id: string): Promise<void> {
  await db.deleteFrom('job_logs').where('job_id', '=', id).execute();
  await db.deleteFrom('jobs').where('id', '=', id).execute();
}

export interface JobPage {
  jobs: JobRecord[];
  /** Pass as `cursor` for the next (older) page; null on the last one. */
  next: { createdAt: string; id: string } | null;
}

/** An owner's jobs, newest first; `after` is the last job of the previous page. */
export async function listJobs(
  db: Kysely<Database>,
  query: { owner: string; status?: JobState; limit: number; after?: { createdAt: string; id: string } },
): Promise<JobPage> {
  let q = db.selectFrom('jobs').selectAll().where('owner', '=', query.owner);
  if (query.status) q = q.where('status', '=', query.status);
  const after = query.after;
  if (after) {
    q = q.where((eb) =>
      eb.or([
        eb('created_at', '<', after.createdAt),
        eb.and([eb('created_at', '=', after.createdAt), eb('id', '<', after.id)]),
      ]),
    );
  }
  const rows = await q
    .orderBy('created_at', 'desc')
    .orderBy('id', 'desc')
    .limit(query.limit + 1)
    .execute();
  const jobs = rows.slice(0, query.limit).map(toRecord);
  const last = jobs[jobs.length - 1];
  return {
    jobs,
    next: rows.length > query.limit && last ? { createdAt: last.createdAt, id: last.id } : null,
  };
}

/**
 * DELETE /jobs/{id}: a queued job ends as cancelled here; a started one is flagged, and its worker
 * (which looks every `jobs.pollMs`) kills the sandbox and ends it. A finished job is left alone.
 */
export async function requestCancel(db: Kysely<Database>, id: string): Promise<JobRecord | undefined> {
  const at = now();
  await db
    .updateTable('jobs')
    .set({ status: 'cancelled', files: null, claim: null, finished_at: at, updated_at: at })
    .where('id', '=', id)
    .where('status', '=', 'queued')
    .execute();
  await db
    .updateTable('jobs')
    .set({ cancel_requested: 1, updated_at: at })
    .where('id', '=', id)
    .where('status', 'in', STARTED)
    .execute();
  return getJob(db, id);
}

/**
 * A worker takes the job (again, after a crash): `preparing`, one more attempt, and `token` as the
 * only claim whose writes count from now on. Undefined when it has finished or another worker won.
 */
export async function claimJob(
  db: Kysely<Database>,
  id: string,
  token: string,
): Promise<JobRecord | undefined> {
  const at = now();
  await db
    .updateTable('jobs')
    .set((eb) => ({
      status: 'preparing',
      claim: token,
      attempts: eb('attempts', '+', 1),
      preparing_at: at,
      running_at: null,
      collecting_at: null,
      updated_at: at,
    }))
    .where('id', '=', id)
    .where('status', 'in', UNFINISHED_JOB)
    .execute();
  const record = await getJob(db, id);
  return record?.claim === token && record.status === 'preparing' ? record : undefined;
}

/** The next step (`running`, `collecting`), with its time. False when `token` lost the job. */
export async function advanceJob(
  db: Kysely<Database>,
  id: string,
  token: string,
  status: 'running' | 'collecting',
): Promise<boolean> {
  const at = now();
  const res = await db
    .updateTable('jobs')
    .set({ status, updated_at: at, ...(status === 'running' ? { running_at: at } : { collecting_at: at }) })
    .where('id', '=', id)
    .where('claim', '=', token)
    .where('status', 'in', STARTED)
    .executeTakeFirst();
  return Number(res.numUpdatedRows) === 1;
}

/** What a running job's worker checks between log flushes. */
export async function jobControl(
  db: Kysely<Database>,
  id: string,
  token: string,
): Promise<{ held: boolean; cancel: boolean }> {
  const row = await db
    .selectFrom('jobs')
    .select(['claim', 'cancel_requested'])
    .where('id', '=', id)
    .executeTakeFirst();
  return { held: row?.claim === token, cancel: Number(row?.cancel_requested ?? 0) === 1 };
}

export interface JobEnd {
  status: FinalJobState;
  verdict?: string | null;
  exitCode?: number | null;
  signal?: string | null;
  usage?: unknown;
  violations?: unknown;
  artifacts?: unknown;
  skipped?: unknown;
  error?: string | null;
}

const jsonOrNull = (value: unknown) => (value === undefined ? null : JSON.stringify(value));

/**
 * The final state. With a token only that claim's write counts; without one (a job that never
 * started) only an unclaimed unfinished job ends.
 */
export async function finishJob(
  db: Kysely<Database>,
  id: string,
  token: string | null,
  end: JobEnd,
): Promise<boolean> {
  const at = now();
  let q = db
    .updateTable('jobs')
    .set({
      status: end.status,
      verdict: end.verdict ?? null,
      exit_code: end.exitCode ?? null,
      signal: end.signal ?? null,
      usage: jsonOrNull(end.usage),
      violations: jsonOrNull(end.violations),
      artifacts: jsonOrNull(end.artifacts),
      skipped: jsonOrNull(end.skipped),
      error: end.error ?? null,
      files: null,
      claim: null,
      finished_at: at,
      updated_at: at,
    })
    .where('id', '=', id)
    .where('status', 'in', UNFINISHED_JOB);
  q = token === null ? q.where('claim', 'is', null) : q.where('claim', '=', token);
  const res = await q.executeTakeFirst();
  return Number(res.numUpdatedRows) === 1;
}

/** Unfinished jobs nobody has touched since `before` (recovery looks at these). */
export async function staleJobs(db: Kysely<Database>, before: string, limit = 500): Promise<JobRecord[]> {
  const rows = await db
    .selectFrom('jobs')
    .selectAll()
    .where('status', 'in', UNFINISHED_JOB)
    .where('updated_at', '<', before)
    .orderBy('updated_at')
    .limit(limit)
    .execute();
  return rows.map(toRecord);
}

/** Finished jobs older than `before`: their rows, logs and artifacts go (retention). */
export async function expiredJobs(db: Kysely<Database>, before: string, limit = 500): Promise<string[]> {
  const rows = await db
    .selectFrom('jobs')
    .select('id')
    .where('status', 'not in', UNFINISHED_JOB)
    .where('finished_at', '<', before)
    .limit(limit)
    .execute();
  return rows.map((r) => r.id);
}

export type LogStream = JobLogsTable['stream'];

export interface LogLine {
  seq: number;
  stream: LogStream;
  line: string;
  time: string;
}

/** Lines go in with the seq the writer counted; a seq already taken (a stale writer) fails the insert. */
export async function appendLogs(db: Kysely<Database>, jobId: string, lines: LogLine[]): Promise<void> {
  if (lines.length === 0) return;
  // SQLite binds at most 32,766 values per statement: 5 per line.
  for (let i = 0; i < lines.length; i += 1000) {
    await db
      .insertInto('job_logs')
      .values(lines.slice(i, i + 1000).map((l) => ({ job_id: jobId, ...l })))
      .execute();
  }
}

/** The seq the next line of this job gets (after every line of earlier attempts). */
export async function nextLogSeq(db: Kysely<Database>, jobId: string): Promise<number> {
  const row = await db
    .selectFrom('job_logs')
    .select((eb) => eb.fn.max('seq').as('last'))
    .where('job_id', '=', jobId)
    .executeTakeFirst();
  return row?.last === null || row?.last === undefined ? 1 : Number(row.last) + 1;
}

export async function readLogs(
  db: Kysely<Database>,
  jobId: string,
  afterSeq: number,
  limit: number,
): Promise<LogLine[]> {
  const rows = await db
    .selectFrom('job_logs')
    .selectAll()
    .where('job_id', '=', jobId)
    .where('seq', '>', afterSeq)
    .orderBy('seq')
    .limit(limit)
    .execute();
  return rows.map((r) => ({ seq: Number(r.seq), stream: r.stream, line: r.line, time: iso(r.time) ?? '' }));
}
