import { sql, type ColumnType, type Kysely, type Migration, type RawBuilder } from 'kysely';

/** One API key: never the key itself, only the SHA-256 of it (see api-keys.ts). */
export interface ApiKeysTable {
  /** Public handle (`key_…`): what `keys list` shows and `keys revoke` takes. */
  id: string;
  tenant: string;
  /** Hex SHA-256 of the whole key; unique, so a key is found by its hash. */
  hash: string;
  /** Comma-separated scopes (execute, tasks, jobs, admin). */
  scopes: string;
  /** The operator's note on what the key is for. */
  name: string | null;
  created_at: ColumnType<Date | string, string, never>;
  expires_at: ColumnType<Date | string | null, string | null, never>;
  revoked_at: ColumnType<Date | string | null, string | null, string>;
}

/** The columns of task_titles (0002_task_files), under a new name; the caller adds the key. */
function titlesTable(db: Kysely<unknown>, name: string, timestamp: RawBuilder<unknown>) {
  return db.schema
    .createTable(name)
    .addColumn('title', 'varchar(128)', (c) => c.notNull())
    .addColumn('owner', 'varchar(128)', (c) => c.notNull())
    .addColumn('validation_id', 'varchar(64)')
    .addColumn('file_name', 'varchar(128)')
    .addColumn('language', 'varchar(32)')
    .addColumn('sha256', 'varchar(64)')
    .addColumn('updated_at', timestamp, (c) => c.notNull());
}

/** What owned the work before keys: requests without `X-Warden-User` were `anonymous`. */
const ANONYMOUS = 'anonymous';

/**
 * API keys and tenants (issue 12), appended after the earlier migrations:
 * - `api_keys` holds hashed keys;
 * - every row's owner is its tenant: work of the former `anonymous` label and executions recorded
 *   without a tenant move to the built-in tenant `default` (what auth.mode none acts for);
 * - task titles are unique per tenant, not across tenants: `task_titles` is rebuilt with the key
 *   (owner, title) — SQLite cannot change a primary key in place.
 */
export function authMigrations(
  timestamp: RawBuilder<unknown>,
  defaultTenant: string,
): Record<string, Migration> {
  return {
    '0400_auth_keys': {
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable('api_keys')
          .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
          .addColumn('tenant', 'varchar(128)', (c) => c.notNull())
          .addColumn('hash', 'varchar(64)', (c) => c.notNull().unique())
          .addColumn('scopes', 'varchar(128)', (c) => c.notNull())
          .addColumn('name', 'varchar(255)')
          .addColumn('created_at', timestamp, (c) => c.notNull())
          .addColumn('expires_at', timestamp)
          .addColumn('revoked_at', timestamp)
          .execute();
        await db.schema
          .createIndex('api_keys_tenant_created')
          .on('api_keys')
          .columns(['tenant', 'created_at'])
          .execute();
      },
      async down(db: Kysely<unknown>) {
        await db.schema.dropTable('api_keys').execute();
      },
    },
    '0401_auth_tenants': {
      async up(db: Kysely<unknown>) {
        for (const table of ['task_files', 'task_titles', 'tasks', 'jobs']) {
          await sql`update ${sql.table(table)} set owner = ${defaultTenant} where owner = ${ANONYMOUS}`.execute(
            db,
          );
        }
        await sql`update executions set tenant = ${defaultTenant} where tenant is null or tenant = ${ANONYMOUS}`.execute(
          db,
        );
        await titlesTable(db, 'task_titles_by_tenant', timestamp)
          .addPrimaryKeyConstraint('task_titles_owner_title_pk', ['owner', 'title'])
          .execute();
        await sql`insert into task_titles_by_tenant (title, owner, validation_id, file_name, language, sha256, updated_at)
          select title, owner, validation_id, file_name, language, sha256, updated_at from task_titles`.execute(
          db,
        );
        await db.schema.dropTable('task_titles').execute();
        await db.schema.alterTable('task_titles_by_tenant').renameTo('task_titles').execute();
        await db.schema
          .createIndex('task_files_owner_title_created')
          .on('task_files')
          .columns(['owner', 'title', 'created_at'])
          .execute();
      },
      async down(db: Kysely<unknown>) {
        await db.schema.dropIndex('task_files_owner_title_created').execute();
        await titlesTable(db, 'task_titles_global', timestamp)
          .addPrimaryKeyConstraint('task_titles_title_pk', ['title'])
          .execute();
        // Where two tenants hold one title, the most recently updated keeps it.
        await sql`insert into task_titles_global (title, owner, validation_id, file_name, language, sha256, updated_at)
          select title, owner, validation_id, file_name, language, sha256, updated_at from task_titles t
          where not exists (select 1 from task_titles u where u.title = t.title and (u.updated_at > t.updated_at
            or (u.updated_at = t.updated_at and u.owner > t.owner)))`.execute(db);
        await db.schema.dropTable('task_titles').execute();
        await db.schema.alterTable('task_titles_global').renameTo('task_titles').execute();
      },
    },
  };
}
