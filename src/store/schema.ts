import type { ColumnType } from 'kysely';

/**
 * Row types as Kysely sees them. JSON columns are `jsonb` on PostgreSQL (read back parsed) and
 * `text` on SQLite (read back as a string); timestamps are `timestamptz` (read back as Date) and
 * ISO-8601 text. Writes always use the JSON string and the ISO string, which both accept.
 */
export type JsonColumn = ColumnType<unknown, string, string>;
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
  response: ColumnType<unknown, string | null, string | null>;
  created_at: TimestampColumn;
  started_at: ColumnType<Date | string | null, string | null, string | null>;
  finished_at: ColumnType<Date | string | null, string | null, string | null>;
}

export interface Database {
  executions: ExecutionsTable;
}
