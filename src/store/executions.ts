import type { Kysely, Selectable } from 'kysely';
import { iso, json, now } from './codec.js';
import type { Database, ExecutionState, ExecutionsTable } from './schema.js';

/** One POST /execute as stored: the request as accepted and, once done, the response as answered. */
export interface ExecutionRecord {
  requestId: string;
  tenant: string | null;
  language: string;
  backend: string | null;
  status: ExecutionState;
  verdict: string | null;
  request: unknown;
  response: unknown;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

function toRecord(row: Selectable<ExecutionsTable>): ExecutionRecord {
  return {
    requestId: row.request_id,
    tenant: row.tenant,
    language: row.language,
    backend: row.backend,
    status: row.status,
    verdict: row.verdict,
    request: json(row.request),
    response: row.response === null ? null : json(row.response),
    createdAt: iso(row.created_at) ?? '',
    startedAt: iso(row.started_at),
    finishedAt: iso(row.finished_at),
  };
}

export async function insertExecution(
  db: Kysely<Database>,
  row: {
    requestId: string;
    language: string;
    backend: string | null;
    request: unknown;
    tenant?: string | null;
  },
): Promise<void> {
  await db
    .insertInto('executions')
    .values({
      request_id: row.requestId,
      tenant: row.tenant ?? null,
      api_key_id: null,
      language: row.language,
      backend: row.backend,
      status: 'pending',
      verdict: null,
      request: JSON.stringify(row.request),
      response: null,
      created_at: now(),
      started_at: null,
      finished_at: null,
    })
    .execute();
}

/** A worker took the execution. Only from `pending`: a redelivered job never moves `done` back. */
export async function markExecutionRunning(db: Kysely<Database>, requestId: string): Promise<void> {
  await db
    .updateTable('executions')
    .set({ status: 'running', started_at: now() })
    .where('request_id', '=', requestId)
    .where('status', '=', 'pending')
    .execute();
}

export async function finishExecution(
  db: Kysely<Database>,
  requestId: string,
  verdict: string,
  response: unknown,
): Promise<void> {
  await db
    .updateTable('executions')
    .set({ status: 'done', verdict, response: JSON.stringify(response), finished_at: now() })
    .where('request_id', '=', requestId)
    .execute();
}

export async function getExecution(
  db: Kysely<Database>,
  requestId: string,
): Promise<ExecutionRecord | undefined> {
  const row = await db
    .selectFrom('executions')
    .selectAll()
    .where('request_id', '=', requestId)
    .executeTakeFirst();
  return row ? toRecord(row) : undefined;
}

/** For a request that was refused after its row was written (the queue was down). */
export async function deleteExecution(db: Kysely<Database>, requestId: string): Promise<void> {
  await db.deleteFrom('executions').where('request_id', '=', requestId).execute();
}
