import { sql, type Kysely, type Migration, type MigrationProvider } from 'kysely';

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
  };
}

export function migrationProvider(dialect: Dialect): MigrationProvider {
  return { getMigrations: async () => migrations(dialect) };
}
