import { sql, type Expression, type SqlBool } from 'kysely';
import { iso, json } from './codec.js';
import type { Store } from './db.js';
import type { ExecutionState, ValidationState } from './schema.js';

/**
 * Newest-first pages of a tenant's executions and task files (the dashboard's lists). Keyset
 * pagination on (created_at, id): rows added meanwhile neither repeat nor shift later pages, and an
 * executions page is one range read of the (tenant, created_at) index however deep it is.
 */

export interface PageAfter {
  createdAt: string;
  id: string;
}

export interface Page<T> {
  items: T[];
  /** Where the next (older) page starts; null on the last one. */
  next: PageAfter | null;
}

/** Rows strictly older than the cursor in (created_at desc, id desc) order. */
function olderThan(after: PageAfter, idColumn: string): Expression<SqlBool> {
  return sql<SqlBool>`(created_at < ${after.createdAt} or (created_at = ${after.createdAt} and ${sql.ref(idColumn)} < ${after.id}))`;
}

/** One row more than asked says whether another page exists. */
function page<T extends { createdAt: string }>(rows: T[], limit: number, id: (row: T) => string): Page<T> {
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  return {
    items,
    next: rows.length > limit && last ? { createdAt: last.createdAt, id: id(last) } : null,
  };
}

export interface ExecutionSummary {
  requestId: string;
  language: string;
  backend: string | null;
  status: ExecutionState;
  verdict: string | null;
  /** `resource_usage` of the response (seconds, bytes), once done. */
  usage: { cpu_time: number; peak_memory: number; wall_time: number } | null;
  securityViolations: boolean;
  createdAt: string;
  finishedAt: string | null;
}

/**
 * The response is read only for its usage and violation flag, in the database: a response can be
 * megabytes of output, and a list of twenty must not carry them. SQLite's JSON functions take any
 * JSON; PostgreSQL's refuse the whole document when an output holds a `\u0000` ("unsupported Unicode
 * escape sequence"), so there the two fields are matched in the text. That match is exact because
 * the response is compact JSON we wrote, whose only user-controlled parts are string values, where
 * every `"` is escaped: `"resource_usage":{` can only be the key itself, and its object holds numbers.
 */
const USAGE_RE = '"resource_usage":(\\{[^{}]*\\})';
const VIOLATIONS_RE = '"has_security_violations":(true|false)';

function responseFields(dialect: Store['dialect']) {
  return dialect === 'postgres'
    ? {
        usage: sql<string | null>`substring(response from ${USAGE_RE}::text)`,
        violations: sql<string | null>`substring(response from ${VIOLATIONS_RE}::text)`,
      }
    : {
        usage: sql<string | null>`json_extract(response, '$.resource_usage')`,
        violations: sql<string | number | null>`json_extract(response, '$.has_security_violations')`,
      };
}

export async function listExecutions(
  store: Pick<Store, 'db' | 'dialect'>,
  query: { tenant: string; limit: number; after?: PageAfter },
): Promise<Page<ExecutionSummary>> {
  const fields = responseFields(store.dialect);
  let q = store.db
    .selectFrom('executions')
    .select([
      'request_id',
      'language',
      'backend',
      'status',
      'verdict',
      'created_at',
      'finished_at',
      fields.usage.as('usage'),
      fields.violations.as('violations'),
    ])
    .where('tenant', '=', query.tenant);
  if (query.after) q = q.where(olderThan(query.after, 'request_id'));
  const rows = await q
    .orderBy('created_at', 'desc')
    .orderBy('request_id', 'desc')
    .limit(query.limit + 1)
    .execute();
  const summaries = rows.map((r): ExecutionSummary => ({
    requestId: r.request_id,
    language: r.language,
    backend: r.backend,
    status: r.status,
    verdict: r.verdict,
    usage: r.usage === null ? null : (json(r.usage) as ExecutionSummary['usage']),
    // SQLite's json_extract gives a JSON true as 1; PostgreSQL's text of it is 'true'.
    securityViolations: r.violations === 1 || r.violations === 'true',
    createdAt: iso(r.created_at) ?? '',
    finishedAt: iso(r.finished_at),
  }));
  return page(summaries, query.limit, (s) => s.requestId);
}

export interface TaskFileSummary {
  validationId: string;
  title: string;
  fileName: string;
  originalName: string;
  language: string;
  status: ValidationState;
  /** Why it was rejected; empty until there is a verdict. */
  reasons: string[];
  createdAt: string;
  checkedAt: string | null;
}

export async function listTaskFiles(
  store: Pick<Store, 'db'>,
  query: { owner: string; limit: number; after?: PageAfter },
): Promise<Page<TaskFileSummary>> {
  let q = store.db
    .selectFrom('task_files')
    .select([
      'validation_id',
      'title',
      'file_name',
      'original_name',
      'language',
      'status',
      'reasons',
      'created_at',
      'checked_at',
    ])
    .where('owner', '=', query.owner);
  if (query.after) q = q.where(olderThan(query.after, 'validation_id'));
  const rows = await q
    .orderBy('created_at', 'desc')
    .orderBy('validation_id', 'desc')
    .limit(query.limit + 1)
    .execute();
  const summaries = rows.map((r): TaskFileSummary => ({
    validationId: r.validation_id,
    title: r.title,
    fileName: r.file_name,
    originalName: r.original_name,
    language: r.language,
    status: r.status,
    reasons: r.status === 'VALIDATED' || r.status === 'REJECTED' ? (json(r.reasons) as string[]) : [],
    createdAt: iso(r.created_at) ?? '',
    checkedAt: iso(r.checked_at),
  }));
  return page(summaries, query.limit, (s) => s.validationId);
}
