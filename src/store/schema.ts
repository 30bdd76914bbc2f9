import type { ColumnType } from 'kysely';
import type { AuditLogTable } from './audit-migration.js';
import type { ApiKeysTable } from './auth-migration.js';
import type { JobLogsTable, JobsTable } from './jobs-schema.js';
import type { WebhookAttemptsTable, WebhookSecretsTable, WebhooksTable } from './webhooks-migration.js';

/**
 * Row types as Kysely sees them. JSON columns hold JSON text on both databases and are read back as
 * text (see codec.ts); timestamps are `timestamptz` (read back as Date) and ISO-8601 text. Writes
 * always use the JSON string and the ISO string, which both accept.
 */
export type JsonColumn = ColumnType<string, string, string>;
export type TimestampColumn = ColumnType<Date | string, string, string>;

export type ExecutionState = 'pending' | 'running' | 'done';

export interface ExecutionsTable {
  request_id: string;
  tenant: string | null;
  api_key_id: string | null;
  language: string;
  backend: string | null;
  status: ExecutionState;
  /** The run's verdict once done (`success`, `timeout`, …). */
  verdict: string | null;
  request: JsonColumn;
  response: ColumnType<string | null, string | null, string | null>;
  created_at: TimestampColumn;
  started_at: ColumnType<Date | string | null, string | null, string | null>;
  finished_at: ColumnType<Date | string | null, string | null, string | null>;
  /** Times a worker took the execution (crashes and redeliveries included). */
  attempts: ColumnType<number, number | undefined, number>;
  /** Token of the worker holding it now; writes under any other token are refused (a stale worker). */
  claim: string | null;
  /** Test cases to run (0: a single run); set when the execution is split into case jobs. */
  cases_total: ColumnType<number, number | undefined, number>;
  /** Cases whose outcome is in execution_cases; the worker that brings it to cases_total answers. */
  cases_done: ColumnType<number, number | undefined, number>;
  updated_at: ColumnType<Date | string | null, string | null, string | null>;
}

/** The outcome of one test case of a running execution, until the answer is assembled from them. */
export interface ExecutionCasesTable {
  request_id: string;
  idx: number;
  result: string;
  created_at: TimestampColumn;
}

type NullableJson = ColumnType<string | null, string | null, string | null>;
type NullableTimestamp = ColumnType<Date | string | null, string | null, string | null>;

export type ValidationState = 'PENDING' | 'VALIDATING' | 'VALIDATED' | 'REJECTED';

/** One upload of a task file and its validation (SPEC §6); the validation id is the row's id. */
export interface TaskFilesTable {
  validation_id: string;
  title: string;
  /** Its name in the tasks dir once validated (`<title>.<ext>`). */
  file_name: string;
  /** As uploaded. */
  original_name: string;
  language: string;
  /** The tenant that uploaded it (its API key's tenant). */
  owner: string;
  sha256: string;
  size_bytes: number;
  /**
   * The uploaded bytes, so that a worker on any node can validate them and run their tasks (null for
   * uploads older than this column: their file is on the disk of the node that received them).
   */
  content: ColumnType<Buffer | null, Buffer | null, never>;
  sample_payloads: NullableJson;
  status: ValidationState;
  /**
   * The decision, recorded before the file is moved: a worker that dies between the two leaves the
   * row VALIDATING with its verdict, and the next one only finishes the move.
   */
  verdict: 'VALIDATED' | 'REJECTED' | null;
  reasons: JsonColumn;
  /** Warnings, findings, probes, usage, violations, logs of the validation run. */
  report: NullableJson;
  /** Times a worker took this validation (retries and crashes included). */
  attempts: number;
  /** Token of the worker holding it now; writes of any other worker are refused (a stale one). */
  claim: string | null;
  created_at: TimestampColumn;
  updated_at: TimestampColumn;
  started_at: NullableTimestamp;
  checked_at: NullableTimestamp;
}

/**
 * A tenant's title, across languages (`foo.py` and `foo.js` are both `foo`), with the version tasks
 * run. Its primary key (owner, title) makes titles unique per tenant; locking its row serialises
 * promotions.
 */
export interface TaskTitlesTable {
  title: string;
  owner: string;
  /** The validated upload tasks run; null until one is validated. */
  validation_id: string | null;
  file_name: string | null;
  language: string | null;
  sha256: string | null;
  updated_at: TimestampColumn;
}

export type TaskState = 'queued' | 'running' | 'succeeded' | 'failed' | 'error';

/** One POST /tasks: a handler call with a payload, and what came of it. */
export interface TasksTable {
  task_id: string;
  title: string;
  /** The tenant whose task it is (only it reads the task). */
  owner: string;
  /** The validated upload that ran (set when it starts). */
  validation_id: string | null;
  status: TaskState;
  payload: JsonColumn;
  result: NullableJson;
  error: string | null;
  usage: NullableJson;
  logs: string | null;
  attempts: number;
  created_at: TimestampColumn;
  updated_at: TimestampColumn;
  started_at: NullableTimestamp;
  finished_at: NullableTimestamp;
}

export interface Database {
  executions: ExecutionsTable;
  execution_cases: ExecutionCasesTable;
  task_files: TaskFilesTable;
  task_titles: TaskTitlesTable;
  tasks: TasksTable;
  jobs: JobsTable;
  job_logs: JobLogsTable;
  api_keys: ApiKeysTable;
  audit_log: AuditLogTable;
  webhooks: WebhooksTable;
  webhook_attempts: WebhookAttemptsTable;
  webhook_secrets: WebhookSecretsTable;
}
