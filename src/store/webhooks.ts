import { randomBytes } from 'node:crypto';
import { sql, type Kysely, type Selectable } from 'kysely';
import { iso, now } from './codec.js';
import { UNFINISHED_JOB } from './jobs.js';
import type { Database } from './schema.js';
import { UNFINISHED_TASK } from './tasks.js';
import type { HookKind, HookState, WebhookAttemptsTable, WebhooksTable } from './webhooks-migration.js';

/**
 * Callbacks (README, "Webhooks"): one row per resource given a `callback_url`, its attempts, and
 * each tenant's signing secret. The row is the truth about a delivery; the BullMQ job only says
 * "deliver this one", so a lost job is added again from the row and a delivered one never twice.
 */

export type { HookKind, HookState } from './webhooks-migration.js';

export interface HookRecord {
  kind: HookKind;
  resourceId: string;
  tenant: string;
  url: string;
  status: HookState;
  attempts: number;
  createdAt: string;
  updatedAt: string;
  finishedAt: string | null;
}

export interface HookAttempt {
  attempt: number;
  statusCode: number | null;
  error: string | null;
  durationMs: number;
  at: string;
}

function toRecord(row: Selectable<WebhooksTable>): HookRecord {
  return {
    kind: row.kind,
    resourceId: row.resource_id,
    tenant: row.tenant,
    url: row.url,
    status: row.status,
    attempts: Number(row.attempts),
    createdAt: iso(row.created_at) ?? '',
    updatedAt: iso(row.updated_at) ?? '',
    finishedAt: iso(row.finished_at),
  };
}

function toAttempt(row: Selectable<WebhookAttemptsTable>): HookAttempt {
  return {
    attempt: Number(row.attempt),
    statusCode: row.status_code === null ? null : Number(row.status_code),
    error: row.error,
    durationMs: Number(row.duration_ms),
    at: iso(row.at) ?? '',
  };
}

/** Written before the resource itself, so a resource with a callback never exists without its row. */
export async function insertHook(
  db: Kysely<Database>,
  hook: { kind: HookKind; resourceId: string; tenant: string; url: string },
): Promise<void> {
  const at = now();
  await db
    .insertInto('webhooks')
    .values({
      kind: hook.kind,
      resource_id: hook.resourceId,
      tenant: hook.tenant,
      url: hook.url,
      status: 'waiting',
      attempts: 0,
      created_at: at,
      updated_at: at,
      finished_at: null,
    })
    .execute();
}

export async function getHook(
  db: Kysely<Database>,
  kind: HookKind,
  resourceId: string,
): Promise<HookRecord | undefined> {
  const row = await db
    .selectFrom('webhooks')
    .selectAll()
    .where('kind', '=', kind)
    .where('resource_id', '=', resourceId)
    .executeTakeFirst();
  return row ? toRecord(row) : undefined;
}

/** waiting → queued, once: true for the one caller that moved it (and so adds the delivery job). */
export async function markQueued(db: Kysely<Database>, kind: HookKind, resourceId: string): Promise<boolean> {
  const res = await db
    .updateTable('webhooks')
    .set({ status: 'queued', updated_at: now() })
    .where('kind', '=', kind)
    .where('resource_id', '=', resourceId)
    .where('status', '=', 'waiting')
    .executeTakeFirst();
  return Number(res.numUpdatedRows) === 1;
}

/** Takes the next attempt number of a queued callback; undefined when it is no longer queued. */
export async function startAttempt(
  db: Kysely<Database>,
  kind: HookKind,
  resourceId: string,
): Promise<HookRecord | undefined> {
  const row = await db
    .updateTable('webhooks')
    .set((eb) => ({ attempts: eb('attempts', '+', 1), updated_at: now() }))
    .where('kind', '=', kind)
    .where('resource_id', '=', resourceId)
    .where('status', '=', 'queued')
    .returningAll()
    .executeTakeFirst();
  return row ? toRecord(row) : undefined;
}

/** An attempt's outcome; a second record of the same attempt (a redelivered job) is ignored. */
export async function recordAttempt(
  db: Kysely<Database>,
  kind: HookKind,
  resourceId: string,
  outcome: Omit<HookAttempt, 'at'>,
): Promise<void> {
  await db
    .insertInto('webhook_attempts')
    .values({
      kind,
      resource_id: resourceId,
      attempt: outcome.attempt,
      status_code: outcome.statusCode,
      error: outcome.error,
      duration_ms: Math.round(outcome.durationMs),
      at: now(),
    })
    .onConflict((oc) => oc.columns(['kind', 'resource_id', 'attempt']).doNothing())
    .execute();
}

/** queued → delivered | failed. */
export async function endHook(
  db: Kysely<Database>,
  kind: HookKind,
  resourceId: string,
  status: 'delivered' | 'failed',
): Promise<void> {
  const at = now();
  await db
    .updateTable('webhooks')
    .set({ status, updated_at: at, finished_at: at })
    .where('kind', '=', kind)
    .where('resource_id', '=', resourceId)
    .where('status', '=', 'queued')
    .execute();
}

export async function hookAttempts(
  db: Kysely<Database>,
  kind: HookKind,
  resourceId: string,
): Promise<HookAttempt[]> {
  const rows = await db
    .selectFrom('webhook_attempts')
    .selectAll()
    .where('kind', '=', kind)
    .where('resource_id', '=', resourceId)
    .orderBy('attempt')
    .execute();
  return rows.map(toAttempt);
}

/** A tenant's callbacks, newest first, optionally only one resource's. */
export async function listHooks(
  db: Kysely<Database>,
  query: { tenant: string; resourceId?: string; limit: number },
): Promise<HookRecord[]> {
  let q = db.selectFrom('webhooks').selectAll().where('tenant', '=', query.tenant);
  if (query.resourceId !== undefined) q = q.where('resource_id', '=', query.resourceId);
  const rows = await q.orderBy('created_at', 'desc').limit(query.limit).execute();
  return rows.map(toRecord);
}

/** Where each kind's resource lives, and the states in which it is not final yet. */
const RESOURCES: { kind: HookKind; table: string; id: string; unfinished: readonly string[] }[] = [
  { kind: 'execution', table: 'executions', id: 'request_id', unfinished: ['pending', 'running'] },
  { kind: 'task', table: 'tasks', id: 'task_id', unfinished: UNFINISHED_TASK },
  { kind: 'job', table: 'jobs', id: 'id', unfinished: UNFINISHED_JOB },
];

/**
 * Callbacks still `waiting` although their resource is final: the process that finished it stopped
 * before queueing the delivery (or the resource ended where no worker runs, e.g. a job cancelled
 * while queued). Recovery queues these.
 */
export async function finalButWaiting(db: Kysely<Database>, limit = 500): Promise<HookRecord[]> {
  const found = await Promise.all(
    RESOURCES.map((r) =>
      db
        .selectFrom('webhooks')
        .selectAll()
        .where('kind', '=', r.kind)
        .where('status', '=', 'waiting')
        .where(({ exists }) =>
          exists(
            sql`(select 1 from ${sql.table(r.table)} as r where r.${sql.ref(r.id)} = webhooks.resource_id and r.status not in (${sql.join(r.unfinished)}))`,
          ),
        )
        .limit(limit)
        .execute(),
    ),
  );
  return found.flat().map(toRecord);
}

/** Queued callbacks nobody has touched since `before`: their delivery job may be lost. */
export async function staleQueued(db: Kysely<Database>, before: string, limit = 500): Promise<HookRecord[]> {
  const rows = await db
    .selectFrom('webhooks')
    .selectAll()
    .where('status', '=', 'queued')
    .where('updated_at', '<', before)
    .orderBy('updated_at')
    .limit(limit)
    .execute();
  return rows.map(toRecord);
}

/** Retention: callbacks (and their attempts) created before `before`. */
export async function deleteHooksBefore(db: Kysely<Database>, before: string): Promise<number> {
  await db.deleteFrom('webhook_attempts').where('at', '<', before).execute();
  const res = await db.deleteFrom('webhooks').where('created_at', '<', before).executeTakeFirst();
  return Number(res.numDeletedRows);
}

const newSecret = () => `whsec_${randomBytes(32).toString('base64url')}`;

export interface HookSecret {
  secret: string;
  createdAt: string;
  rotatedAt: string | null;
}

/** The tenant's signing secret, made now if it has none (two first uses at once agree on one). */
export async function tenantSecret(db: Kysely<Database>, tenant: string): Promise<HookSecret> {
  const read = () =>
    db.selectFrom('webhook_secrets').selectAll().where('tenant', '=', tenant).executeTakeFirst();
  let row = await read();
  if (!row) {
    await db
      .insertInto('webhook_secrets')
      .values({ tenant, secret: newSecret(), created_at: now(), rotated_at: null })
      .onConflict((oc) => oc.column('tenant').doNothing())
      .execute();
    row = await read();
  }
  if (!row) throw new Error(`cannot store a webhook secret for ${tenant}`);
  return { secret: row.secret, createdAt: iso(row.created_at) ?? '', rotatedAt: iso(row.rotated_at) };
}

/** A new secret for the tenant; deliveries signed from now on use it. */
export async function rotateSecret(db: Kysely<Database>, tenant: string): Promise<HookSecret> {
  await tenantSecret(db, tenant);
  await db
    .updateTable('webhook_secrets')
    .set({ secret: newSecret(), rotated_at: now() })
    .where('tenant', '=', tenant)
    .execute();
  return tenantSecret(db, tenant);
}
