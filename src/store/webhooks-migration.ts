import type { ColumnType, Kysely, Migration, RawBuilder } from 'kysely';

/** Row types of the webhook tables (README, "Webhooks"); see schema.ts for how timestamps are stored. */

type Timestamp = ColumnType<Date | string, string, string>;
type NullableTimestamp = ColumnType<Date | string | null, string | null, string | null>;

export const HOOK_KINDS = ['execution', 'task', 'job'] as const;
export type HookKind = (typeof HOOK_KINDS)[number];

/**
 * waiting: the resource is not final yet; queued: a delivery job exists (or recovery adds one);
 * delivered: a 2xx was received; failed: every attempt failed, or the callback was refused.
 */
export const HOOK_STATES = ['waiting', 'queued', 'delivered', 'failed'] as const;
export type HookState = (typeof HOOK_STATES)[number];

/** One `callback_url` given with a resource: where its final state goes, and how that went. */
export interface WebhooksTable {
  kind: HookKind;
  resource_id: string;
  tenant: string;
  url: string;
  status: HookState;
  /** Attempts started (the next one is attempts + 1). */
  attempts: number;
  created_at: Timestamp;
  updated_at: Timestamp;
  finished_at: NullableTimestamp;
}

/** One delivery attempt: what the receiver answered (status code), or why there was no answer. */
export interface WebhookAttemptsTable {
  kind: HookKind;
  resource_id: string;
  attempt: number;
  status_code: number | null;
  error: string | null;
  duration_ms: number;
  at: Timestamp;
}

/** A tenant's signing secret, made on first use and replaced by rotation. */
export interface WebhookSecretsTable {
  tenant: string;
  secret: string;
  created_at: Timestamp;
  rotated_at: NullableTimestamp;
}

export function webhooksMigration(timestamp: RawBuilder<unknown>): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('webhooks')
        .addColumn('kind', 'varchar(16)', (c) => c.notNull())
        .addColumn('resource_id', 'varchar(128)', (c) => c.notNull())
        .addColumn('tenant', 'varchar(128)', (c) => c.notNull())
        .addColumn('url', 'text', (c) => c.notNull())
        .addColumn('status', 'varchar(16)', (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('created_at', timestamp, (c) => c.notNull())
        .addColumn('updated_at', timestamp, (c) => c.notNull())
        .addColumn('finished_at', timestamp)
        .addPrimaryKeyConstraint('webhooks_pk', ['kind', 'resource_id'])
        .execute();
      await db.schema
        .createIndex('webhooks_status_updated')
        .on('webhooks')
        .columns(['status', 'updated_at'])
        .execute();
      await db.schema
        .createIndex('webhooks_tenant_created')
        .on('webhooks')
        .columns(['tenant', 'created_at'])
        .execute();
      await db.schema
        .createTable('webhook_attempts')
        .addColumn('kind', 'varchar(16)', (c) => c.notNull())
        .addColumn('resource_id', 'varchar(128)', (c) => c.notNull())
        .addColumn('attempt', 'integer', (c) => c.notNull())
        .addColumn('status_code', 'integer')
        .addColumn('error', 'text')
        .addColumn('duration_ms', 'integer', (c) => c.notNull())
        .addColumn('at', timestamp, (c) => c.notNull())
        .addPrimaryKeyConstraint('webhook_attempts_pk', ['kind', 'resource_id', 'attempt'])
        .execute();
      await db.schema
        .createTable('webhook_secrets')
        .addColumn('tenant', 'varchar(128)', (c) => c.primaryKey())
        .addColumn('secret', 'varchar(128)', (c) => c.notNull())
        .addColumn('created_at', timestamp, (c) => c.notNull())
        .addColumn('rotated_at', timestamp)
        .execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('webhook_secrets').execute();
      await db.schema.dropTable('webhook_attempts').execute();
      await db.schema.dropTable('webhooks').execute();
    },
  };
}
