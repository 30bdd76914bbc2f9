import { createHash } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { iso, now } from './codec.js';
import type { Database } from './schema.js';

/**
 * The audit log (issue 12): who did what, and what came of it, in an append-only table. Rows say
 * what happened to what, by hash and id, never the material itself: no code (its sha256), no
 * payloads, environment values, file contents or keys.
 *
 * Writers call `audit.record(event)`: it returns at once and never throws; the writer stores events
 * in batches (one multi-row insert every `flushMs`, or sooner when `maxBatch` wait), so a request
 * never waits for the audit log. `close()` writes what is left before the store closes; events the
 * store refuses even then go to the log as whole lines, so a clean shutdown loses none.
 */

export const AUDIT_ACTIONS = [
  'key.created',
  'key.revoked',
  /** An execution finished: sha256 of its code, language, verdict (the outcome). */
  'code.submitted',
  /** Static analysis rejected it: the rules. */
  'code.rejected',
  /** A forbidden action at run time: the system calls. */
  'code.violation',
  'task_file.uploaded',
  'task_file.validated',
  'task_file.quarantined',
  'task.run',
  'job.created',
  'job.cancelled',
  'job.connection_refused',
  /** A callback_url refused at submission (where it would have reached): the reason, not the URL. */
  'webhook.refused',
  'webhook.secret_rotated',
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

/** Detail values: scalars and lists of strings (ids, rule names, reasons), each string capped. */
export type AuditDetail = string | number | boolean | null | string[];

export interface AuditEvent {
  /** The tenant the action was for (null: the service itself). */
  tenant: string | null;
  /** Who did it: an API key id, `cli`, `worker`, or the tenant's label where there are no keys. */
  actor: string;
  action: AuditAction;
  /** What it was done to: a request, job, task, validation or key id. */
  target?: string | null;
  /** What came of it: `ok`, `refused`, a verdict, a status. */
  outcome: string;
  details?: Record<string, AuditDetail>;
}

export interface AuditRecord extends Required<AuditEvent> {
  id: number;
  at: string;
  details: Record<string, AuditDetail>;
}

const MAX_STRING = 512;
const MAX_LIST = 50;

/** The sha256 of submitted code: enough to recognise it again, nothing to read it from. */
export const codeHash = (code: string): string => createHash('sha256').update(code, 'utf8').digest('hex');

const cap = (s: string) => (s.length > MAX_STRING ? `${s.slice(0, MAX_STRING - 1)}…` : s);

function row(event: AuditEvent, at: string) {
  const details: Record<string, AuditDetail> = {};
  for (const [key, value] of Object.entries(event.details ?? {})) {
    if (Array.isArray(value)) details[key] = value.slice(0, MAX_LIST).map(cap);
    else details[key] = typeof value === 'string' ? cap(value) : value;
  }
  return {
    at,
    tenant: event.tenant === null ? null : event.tenant.slice(0, 128),
    actor: event.actor.slice(0, 128),
    action: event.action,
    target: event.target ? event.target.slice(0, 255) : null,
    outcome: event.outcome.slice(0, 64),
    details: JSON.stringify(details),
  };
}

/** Writes events now, in one statement (the CLI, and the batching writer below). */
export async function writeAudit(
  db: Kysely<Database>,
  events: readonly (AuditEvent & { at?: string })[],
): Promise<void> {
  if (events.length === 0) return;
  await db
    .insertInto('audit_log')
    .values(events.map((e) => row(e, e.at ?? now())))
    .execute();
}

export interface AuditLog {
  /** Queues the event for the next batch; never waits, never throws. */
  record(event: AuditEvent): void;
  /** Writes everything queued so far (tests, and before reading back). */
  flush(): Promise<void>;
  /** Writes what is left, then stops; later events are written at once, one by one. */
  close(): Promise<void>;
}

export interface AuditLogOptions {
  logger?: Pick<Logger, 'warn' | 'error'>;
  /** How long an event may wait for its batch. */
  flushMs?: number;
  /** Events per insert; reaching it flushes at once. */
  maxBatch?: number;
  /** Events kept while the store is away; past it the oldest go to the log instead. */
  maxPending?: number;
}

export function openAuditLog(db: Kysely<Database>, options: AuditLogOptions = {}): AuditLog {
  const { logger, flushMs = 200, maxBatch = 200, maxPending = 10_000 } = options;
  let pending: (AuditEvent & { at: string })[] = [];
  let timer: NodeJS.Timeout | undefined;
  let writing: Promise<void> | undefined;
  let closed = false;
  let failing = false;

  /** The last resort: the event as a log line (it holds nothing secret by construction). */
  const spill = (events: (AuditEvent & { at: string })[], why: string) => {
    for (const event of events) logger?.error({ audit: event }, `audit event not stored: ${why}`);
  };

  const writeBatch = async (): Promise<void> => {
    while (pending.length > 0) {
      const batch = pending.slice(0, maxBatch);
      try {
        await writeAudit(db, batch);
      } catch (err) {
        if (!failing)
          logger?.warn({ err: (err as Error).message }, 'audit log: store unavailable; will retry');
        failing = true;
        throw err;
      }
      failing = false;
      pending = pending.slice(batch.length);
    }
  };

  /** One batch writer at a time, so rows keep the order events were recorded in. */
  const flush = (): Promise<void> => {
    if (timer) {
      clearTimeout(timer);
      timer = undefined;
    }
    writing ??= writeBatch().finally(() => {
      writing = undefined;
      if (pending.length > 0 && !closed) schedule();
    });
    return writing;
  };

  const schedule = () => {
    timer ??= setTimeout(() => void flush().catch(() => {}), flushMs);
    timer.unref();
  };

  return {
    record(event) {
      pending.push({ ...event, at: now() });
      if (pending.length > maxPending) spill(pending.splice(0, pending.length - maxPending), 'backlog full');
      if (closed) void flush().catch(() => {});
      else if (pending.length >= maxBatch && !writing) void flush().catch(() => {});
      else schedule();
    },
    async flush() {
      // A batch under way may have been taken before the latest events: wait for it, then the rest.
      await writing?.catch(() => {});
      await flush();
    },
    async close() {
      closed = true;
      await writing?.catch(() => {});
      try {
        await flush();
      } catch (err) {
        spill(pending.splice(0), (err as Error).message);
      }
    },
  };
}

/** Newest first (default), or oldest first from a point (`warden audit tail --follow`). */
export interface AuditQuery {
  tenant?: string;
  action?: AuditAction;
  /** ISO 8601, inclusive. */
  from?: string;
  /** ISO 8601, exclusive. */
  to?: string;
  /** Rows with ids before this one (newest first) or after it (oldest first). */
  cursor?: number;
  order?: 'desc' | 'asc';
  limit: number;
}

export async function listAudit(
  db: Kysely<Database>,
  query: AuditQuery,
): Promise<{ records: AuditRecord[]; next: number | null }> {
  const order = query.order ?? 'desc';
  let q = db.selectFrom('audit_log').selectAll();
  if (query.tenant !== undefined) q = q.where('tenant', '=', query.tenant);
  if (query.action !== undefined) q = q.where('action', '=', query.action);
  if (query.from !== undefined) q = q.where('at', '>=', query.from);
  if (query.to !== undefined) q = q.where('at', '<', query.to);
  if (query.cursor !== undefined) q = q.where('id', order === 'desc' ? '<' : '>', query.cursor);
  const rows = await q
    .orderBy('id', order)
    .limit(query.limit + 1)
    .execute();
  const records = rows.slice(0, query.limit).map((r): AuditRecord => ({
    id: Number(r.id),
    at: iso(r.at) ?? '',
    tenant: r.tenant,
    actor: r.actor,
    action: r.action as AuditAction,
    target: r.target,
    outcome: r.outcome,
    details: JSON.parse(r.details) as Record<string, AuditDetail>,
  }));
  const last = records.at(-1);
  return { records, next: rows.length > query.limit && last ? last.id : null };
}

/** The retention sweep's only way to remove rows (`store.auditRetention`); nothing else deletes. */
export async function deleteAuditBefore(db: Kysely<Database>, before: string): Promise<number> {
  const result = await db.deleteFrom('audit_log').where('at', '<', before).executeTakeFirst();
  return Number(result.numDeletedRows);
}
