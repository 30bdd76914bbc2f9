import type { ColumnType } from 'kysely';

/** Row types of the jobs tables (SPEC §7); see schema.ts for how JSON and timestamps are stored. */

type Json = ColumnType<string, string, string>;
type NullableJson = ColumnType<string | null, string | null, string | null>;
type Timestamp = ColumnType<Date | string, string, string>;
type NullableTimestamp = ColumnType<Date | string | null, string | null, string | null>;

export const JOB_STATES = [
  'queued',
  'preparing',
  'running',
  'collecting',
  'completed',
  'failed',
  'timeout',
  'cancelled',
  'error',
] as const;
export type JobState = (typeof JOB_STATES)[number];

export interface JobsTable {
  id: string;
  /** The tenant whose job it is: only it reads, cancels or gets links to its artifacts. */
  owner: string;
  status: JobState;
  /** The command line as submitted. */
  command: string;
  /** What the worker runs: argv (absolute program), env, limits, network. */
  spec: Json;
  /** Input files (base64 content); cleared once the job has finished. */
  files: NullableJson;
  /** The sandbox's verdict (`success`, `memory_limit_exceeded`, …) once the run has ended. */
  verdict: string | null;
  exit_code: number | null;
  signal: string | null;
  usage: NullableJson;
  violations: NullableJson;
  /** [{ path, size, sha256 }] collected from /out. */
  artifacts: NullableJson;
  /** [{ path, reason }] found in /out and not collected. */
  skipped: NullableJson;
  error: string | null;
  attempts: number;
  /** Token of the worker holding the job; writes of any other worker are refused. */
  claim: string | null;
  /** 1 once DELETE /jobs/{id} asked a running job to stop. */
  cancel_requested: number;
  created_at: Timestamp;
  updated_at: Timestamp;
  preparing_at: NullableTimestamp;
  running_at: NullableTimestamp;
  collecting_at: NullableTimestamp;
  finished_at: NullableTimestamp;
}

/** One line of a job's output; `seq` orders a job's lines and is the SSE event id. */
export interface JobLogsTable {
  job_id: string;
  seq: number;
  stream: 'stdout' | 'stderr' | 'system';
  line: string;
  time: Timestamp;
}
