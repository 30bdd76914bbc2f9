import type { Kysely, Selectable } from 'kysely';
import { iso, json, now } from './codec.js';
import { prepared } from './prepared.js';
import type { Database, ExecutionState, ExecutionsTable } from './schema.js';

/**
 * One POST /execute as stored: the request as accepted and, once done, the response as answered.
 * The store is the truth; queue jobs only say "work on this id". Every write of a worker is fenced by
 * the claim token it took, so a worker that lost the execution to another (it looked dead) changes
 * nothing, and a finished execution is never written again.
 */
export interface ExecutionRecord {
  requestId: string;
  tenant: string | null;
  /** The API key that submitted it (null under auth.mode none). */
  apiKeyId: string | null;
  language: string;
  backend: string | null;
  status: ExecutionState;
  verdict: string | null;
  request: unknown;
  response: unknown;
  attempts: number;
  claim: string | null;
  casesTotal: number;
  casesDone: number;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  updatedAt: string | null;
}

function toRecord(row: Selectable<ExecutionsTable>): ExecutionRecord {
  return {
    requestId: row.request_id,
    tenant: row.tenant,
    apiKeyId: row.api_key_id,
    language: row.language,
    backend: row.backend,
    status: row.status,
    verdict: row.verdict,
    request: json(row.request),
    response: row.response === null ? null : json(row.response),
    attempts: Number(row.attempts),
    claim: row.claim,
    casesTotal: Number(row.cases_total),
    casesDone: Number(row.cases_done),
    createdAt: iso(row.created_at) ?? '',
    startedAt: iso(row.started_at),
    finishedAt: iso(row.finished_at),
    updatedAt: iso(row.updated_at),
  };
}

export async function insertExecution(
  db: Kysely<Database>,
  row: {
    requestId: string;
    language: string;
    backend: string | null;
    request: unknown;
    /** Whose execution it is: only this tenant reads it (requestTenant). */
    tenant: string;
    /** The API key that submitted it (null under auth.mode none). */
    apiKeyId?: string | null;
  },
): Promise<void> {
  await insertRow(db, {
    requestId: row.requestId,
    tenant: row.tenant,
    apiKeyId: row.apiKeyId ?? null,
    language: row.language,
    backend: row.backend,
    request: JSON.stringify(row.request),
    at: now(),
  });
}

// The statements every execution runs (accepted, waited on, claimed, finished), compiled once.
const insertRow = prepared<
  {
    requestId: string;
    tenant: string;
    apiKeyId: string | null;
    language: string;
    backend: string | null;
    request: string;
    at: string;
  },
  unknown
>((db, hole) =>
  db.insertInto('executions').values({
    request_id: hole('requestId'),
    tenant: hole('tenant'),
    api_key_id: hole('apiKeyId'),
    language: hole('language'),
    backend: hole('backend'),
    status: 'pending',
    verdict: null,
    request: hole('request'),
    response: null,
    created_at: hole('at'),
    started_at: null,
    finished_at: null,
    updated_at: hole('at'),
  }),
);

const stateOf = prepared<{ requestId: string }, { status: ExecutionState }>((db, hole) =>
  db.selectFrom('executions').select('status').where('request_id', '=', hole('requestId')),
);

const claimRow = prepared<{ requestId: string; token: string; at: string }, Selectable<ExecutionsTable>>(
  (db, hole) =>
    db
      .updateTable('executions')
      .set((eb) => ({
        status: 'running',
        claim: hole('token'),
        attempts: eb('attempts', '+', 1),
        cases_done: eb
          .selectFrom('execution_cases')
          .select((s) => s.fn.countAll<number>().as('n'))
          .where('execution_cases.request_id', '=', hole('requestId')),
        started_at: hole('at'),
        updated_at: hole('at'),
      }))
      .where('request_id', '=', hole('requestId'))
      .where('status', '!=', 'done')
      .returningAll(),
);

/** The answer written, under the claim `token` (fenced) or under any claim (an abandoned execution). */
const finishRow = (fenced: boolean) =>
  prepared<
    { requestId: string; verdict: string; response: string; at: string; token?: string },
    { cases_total: number }
  >((db, hole) => {
    let query = db
      .updateTable('executions')
      .set({
        status: 'done',
        verdict: hole('verdict'),
        response: hole('response'),
        claim: null,
        finished_at: hole('at'),
        updated_at: hole('at'),
      })
      .where('request_id', '=', hole('requestId'))
      .where('status', '!=', 'done');
    if (fenced) query = query.where('claim', '=', hole('token')!);
    return query.returning('cases_total');
  });
const finishFenced = finishRow(true);
const finishAny = finishRow(false);

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

/** Only the state: what a waiting request asks, without reading request and response. */
export async function executionState(
  db: Kysely<Database>,
  requestId: string,
): Promise<ExecutionState | undefined> {
  return (await stateOf(db, { requestId })).rows[0]?.status;
}

/** For a request that was refused after its row was written (the queue was down). */
export async function deleteExecution(db: Kysely<Database>, requestId: string): Promise<void> {
  await db.deleteFrom('executions').where('request_id', '=', requestId).execute();
}

/**
 * A worker takes the execution, first or again (its previous worker died): `running`, one more
 * attempt, `token` as the only claim whose writes count, and the request's time budget starting now.
 * Cases already recorded stay (cases_done counts them). Undefined when it is finished or gone.
 */
export async function claimExecution(
  db: Kysely<Database>,
  requestId: string,
  token: string,
): Promise<ExecutionRecord | undefined> {
  const [row] = (await claimRow(db, { requestId, token, at: now() })).rows;
  return row ? toRecord(row) : undefined;
}

/** The execution is split into `total` case jobs. False when `token` no longer holds it. */
export async function planCases(
  db: Kysely<Database>,
  requestId: string,
  token: string,
  total: number,
): Promise<boolean> {
  const res = await db
    .updateTable('executions')
    .set({ cases_total: total, updated_at: now() })
    .where('request_id', '=', requestId)
    .where('claim', '=', token)
    .where('status', '=', 'running')
    .executeTakeFirst();
  return Number(res.numUpdatedRows) === 1;
}

/** Indexes of the cases whose outcome is recorded. */
export async function recordedCases(db: Kysely<Database>, requestId: string): Promise<Set<number>> {
  const rows = await db
    .selectFrom('execution_cases')
    .select('idx')
    .where('request_id', '=', requestId)
    .execute();
  return new Set(rows.map((r) => Number(r.idx)));
}

class NotRecorded extends Error {}

/**
 * Records one case's outcome under `token`, once: a duplicate (a redelivered job) or a stale token
 * records nothing (`recorded: false`). `last` is true for the one call that completed the set.
 */
export async function recordCase(
  db: Kysely<Database>,
  requestId: string,
  token: string,
  index: number,
  outcome: unknown,
): Promise<{ recorded: boolean; last: boolean }> {
  try {
    return await db.transaction().execute(async (trx) => {
      // The write first: on SQLite it takes the write lock at once.
      const counted = await trx
        .updateTable('executions')
        .set((eb) => ({ cases_done: eb('cases_done', '+', 1), updated_at: now() }))
        .where('request_id', '=', requestId)
        .where('claim', '=', token)
        .where('status', '=', 'running')
        .returning(['cases_done', 'cases_total'])
        .executeTakeFirst();
      if (!counted) throw new NotRecorded();
      const inserted = await trx
        .insertInto('execution_cases')
        .values({ request_id: requestId, idx: index, result: JSON.stringify(outcome), created_at: now() })
        .onConflict((oc) => oc.columns(['request_id', 'idx']).doNothing())
        .executeTakeFirst();
      if (Number(inserted.numInsertedOrUpdatedRows ?? 0) !== 1) throw new NotRecorded();
      return { recorded: true, last: Number(counted.cases_done) === Number(counted.cases_total) };
    });
  } catch (err) {
    if (err instanceof NotRecorded) return { recorded: false, last: false };
    throw err;
  }
}

/** The recorded outcomes by case index. */
export async function caseOutcomes(db: Kysely<Database>, requestId: string): Promise<Map<number, unknown>> {
  const rows = await db
    .selectFrom('execution_cases')
    .select(['idx', 'result'])
    .where('request_id', '=', requestId)
    .execute();
  return new Map(rows.map((r) => [Number(r.idx), json(r.result)]));
}

/**
 * The answer: `done` with its verdict and response, then its case rows go. Only an unfinished
 * execution ends, and only under `token` when one is given (an abandoned one is closed without).
 * False when nothing was written.
 */
export async function finishExecution(
  db: Kysely<Database>,
  requestId: string,
  verdict: string,
  response: unknown,
  token?: string,
): Promise<boolean> {
  const values = { requestId, verdict, response: JSON.stringify(response), at: now(), token };
  const [ended] = (await (token === undefined ? finishAny : finishFenced)(db, values)).rows;
  if (!ended) return false;
  // A single run has no case rows: no second statement on its way.
  if (Number(ended.cases_total) > 0)
    await db.deleteFrom('execution_cases').where('request_id', '=', requestId).execute();
  return true;
}

/** Unfinished executions nobody has touched since `before` (recovery looks at these). */
export async function staleExecutions(
  db: Kysely<Database>,
  before: string,
  limit = 500,
): Promise<ExecutionRecord[]> {
  const rows = await db
    .selectFrom('executions')
    .selectAll()
    .where('status', 'in', ['pending', 'running'])
    .where((eb) => eb.or([eb('updated_at', '<', before), eb('updated_at', 'is', null)]))
    .orderBy('created_at')
    .limit(limit)
    .execute();
  return rows.map(toRecord);
}

/** Which of these ids are still waiting for a worker. */
export async function pendingAmong(db: Kysely<Database>, ids: string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const rows = await db
    .selectFrom('executions')
    .select('request_id')
    .where('request_id', 'in', ids)
    .where('status', '=', 'pending')
    .execute();
  return new Set(rows.map((r) => r.request_id));
}

/** Deletes executions (and their case rows) created before `before`; how many executions went. */
export async function deleteExecutionsBefore(
  db: Kysely<Database>,
  before: string,
  batch = 1000,
): Promise<number> {
  let total = 0;
  for (;;) {
    const ids = (
      await db
        .selectFrom('executions')
        .select('request_id')
        .where('created_at', '<', before)
        .limit(batch)
        .execute()
    ).map((r) => r.request_id);
    if (ids.length > 0) {
      await db.deleteFrom('execution_cases').where('request_id', 'in', ids).execute();
      await db.deleteFrom('executions').where('request_id', 'in', ids).execute();
    }
    total += ids.length;
    if (ids.length < batch) break;
  }
  // Case rows of executions already gone (an execution deleted while its last case was recorded).
  await db.deleteFrom('execution_cases').where('created_at', '<', before).execute();
  return total;
}
