import { sql, type Kysely, type Migration, type MigrationProvider } from 'kysely';
import { auditMigration } from './audit-migration.js';
import { DEFAULT_TENANT } from './api-keys.js';
import { authMigrations } from './auth-migration.js';
import { durabilityMigrations } from './durability-migrations.js';
import { executionMigrations } from './executions-migration.js';
import { jobsMigration } from './jobs-migration.js';
import { webhooksMigration } from './webhooks-migration.js';

export type Dialect = 'sqlite' | 'postgres';

/**
 * Column types that differ between the two databases. Everything else is written once: the same
 * migrations and queries run on SQLite and PostgreSQL.
 */
function types(dialect: Dialect) {
  return dialect === 'postgres'
    ? { json: sql`jsonb`, timestamp: sql`timestamptz` }
    : { json: sql`text`, timestamp: sql`text` };
}

/**
 * The schema's history, applied in key order and never edited once released: a later feature (task
 * files, jobs, API keys) adds its own tables by appending an entry here.
 */
function migrations(dialect: Dialect): Record<string, Migration> {
  const t = types(dialect);
  return {
    '0001_executions': {
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable('executions')
          .addColumn('request_id', 'varchar(64)', (c) => c.primaryKey())
          // Tenancy arrives with API keys; nullable until then.
          .addColumn('tenant', 'varchar(128)')
          .addColumn('api_key_id', 'varchar(128)')
          .addColumn('language', 'varchar(32)', (c) => c.notNull())
          .addColumn('backend', 'varchar(16)')
          .addColumn('status', 'varchar(16)', (c) => c.notNull())
          .addColumn('verdict', 'varchar(32)')
          .addColumn('request', t.json, (c) => c.notNull())
          .addColumn('response', t.json)
          .addColumn('created_at', t.timestamp, (c) => c.notNull())
          .addColumn('started_at', t.timestamp)
          .addColumn('finished_at', t.timestamp)
          .execute();
        await db.schema
          .createIndex('executions_tenant_created')
          .on('executions')
          .columns(['tenant', 'created_at'])
          .execute();
        await db.schema.createIndex('executions_status').on('executions').column('status').execute();
      },
      async down(db: Kysely<unknown>) {
        await db.schema.dropTable('executions').execute();
      },
    },
    '0002_task_files': {
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable('task_files')
          .addColumn('validation_id', 'varchar(64)', (c) => c.primaryKey())
          .addColumn('title', 'varchar(128)', (c) => c.notNull())
          .addColumn('file_name', 'varchar(128)', (c) => c.notNull())
          .addColumn('original_name', 'varchar(255)', (c) => c.notNull())
          .addColumn('language', 'varchar(32)', (c) => c.notNull())
          .addColumn('owner', 'varchar(128)', (c) => c.notNull())
          .addColumn('sha256', 'varchar(64)', (c) => c.notNull())
          .addColumn('size_bytes', 'integer', (c) => c.notNull())
          .addColumn('sample_payloads', t.json)
          .addColumn('status', 'varchar(16)', (c) => c.notNull())
          .addColumn('verdict', 'varchar(16)')
          .addColumn('reasons', t.json, (c) => c.notNull())
          .addColumn('report', t.json)
          .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('claim', 'varchar(64)')
          .addColumn('created_at', t.timestamp, (c) => c.notNull())
          .addColumn('updated_at', t.timestamp, (c) => c.notNull())
          .addColumn('started_at', t.timestamp)
          .addColumn('checked_at', t.timestamp)
          .execute();
        await db.schema
          .createIndex('task_files_title_created')
          .on('task_files')
          .columns(['title', 'created_at'])
          .execute();
        await db.schema
          .createIndex('task_files_status_updated')
          .on('task_files')
          .columns(['status', 'updated_at'])
          .execute();
        await db.schema
          .createTable('task_titles')
          .addColumn('title', 'varchar(128)', (c) => c.primaryKey())
          .addColumn('owner', 'varchar(128)', (c) => c.notNull())
          .addColumn('validation_id', 'varchar(64)')
          .addColumn('file_name', 'varchar(128)')
          .addColumn('language', 'varchar(32)')
          .addColumn('sha256', 'varchar(64)')
          .addColumn('updated_at', t.timestamp, (c) => c.notNull())
          .execute();
      },
      async down(db: Kysely<unknown>) {
        await db.schema.dropTable('task_titles').execute();
        await db.schema.dropTable('task_files').execute();
      },
    },
    '0003_tasks': {
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable('tasks')
          .addColumn('task_id', 'varchar(64)', (c) => c.primaryKey())
          .addColumn('title', 'varchar(128)', (c) => c.notNull())
          .addColumn('owner', 'varchar(128)', (c) => c.notNull())
          .addColumn('validation_id', 'varchar(64)')
          .addColumn('status', 'varchar(16)', (c) => c.notNull())
          .addColumn('payload', t.json, (c) => c.notNull())
          .addColumn('result', t.json)
          .addColumn('error', 'text')
          .addColumn('usage', t.json)
          .addColumn('logs', 'text')
          .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('created_at', t.timestamp, (c) => c.notNull())
          .addColumn('updated_at', t.timestamp, (c) => c.notNull())
          .addColumn('started_at', t.timestamp)
          .addColumn('finished_at', t.timestamp)
          .execute();
        await db.schema
          .createIndex('tasks_status_updated')
          .on('tasks')
          .columns(['status', 'updated_at'])
          .execute();
        await db.schema
          .createIndex('tasks_owner_created')
          .on('tasks')
          .columns(['owner', 'created_at'])
          .execute();
      },
      async down(db: Kysely<unknown>) {
        await db.schema.dropTable('tasks').execute();
      },
    },
    ...executionMigrations(t.timestamp),
    ...durabilityMigrations(dialect),
    // JSON as text on both databases from here on (see 0200_dur_json_text: jsonb reorders keys, refuses NUL).
    '0300_jobs': jobsMigration({ ...t, json: sql`text` }),
    ...authMigrations(t.timestamp, DEFAULT_TENANT),
    '0410_audit_log': auditMigration(dialect, t.timestamp),
    '0420_hook_tables': webhooksMigration(t.timestamp),
  };
}

export function migrationProvider(dialect: Dialect): MigrationProvider {
  return { getMigrations: async () => migrations(dialect) };
}
