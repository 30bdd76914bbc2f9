import { sql, type ColumnType, type Generated, type Kysely, type Migration, type RawBuilder } from 'kysely';
import type { Dialect } from './migrations.js';

/** One row of the audit log: who (tenant, actor) did what (action, target) and what came of it. */
export interface AuditLogTable {
  /** Increasing: the order rows were written in, and the cursor of GET /audit. */
  id: Generated<number | string>;
  at: ColumnType<Date | string, string, never>;
  tenant: ColumnType<string | null, string | null, never>;
  actor: ColumnType<string, string, never>;
  action: ColumnType<string, string, never>;
  target: ColumnType<string | null, string | null, never>;
  outcome: ColumnType<string, string, never>;
  /** JSON text: hashes, rule ids, reasons — never code, payloads, environment values or keys. */
  details: ColumnType<string, string, never>;
}

/**
 * The audit log (issue 12) as one migration entry. Append-only in the database itself: a trigger
 * refuses every UPDATE, on both dialects, so no code path (or a later feature) can rewrite history.
 * DELETE stays possible for the retention sweep only (`store.auditRetention`).
 */
export function auditMigration(dialect: Dialect, timestamp: RawBuilder<unknown>): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('audit_log')
        .addColumn('id', dialect === 'postgres' ? 'bigserial' : 'integer', (c) =>
          dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement(),
        )
        .addColumn('at', timestamp, (c) => c.notNull())
        .addColumn('tenant', 'varchar(128)')
        .addColumn('actor', 'varchar(128)', (c) => c.notNull())
        .addColumn('action', 'varchar(64)', (c) => c.notNull())
        .addColumn('target', 'varchar(255)')
        .addColumn('outcome', 'varchar(64)', (c) => c.notNull())
        .addColumn('details', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('audit_log_tenant_id').on('audit_log').columns(['tenant', 'id']).execute();
      await db.schema.createIndex('audit_log_action_id').on('audit_log').columns(['action', 'id']).execute();
      await db.schema.createIndex('audit_log_at').on('audit_log').column('at').execute();
      if (dialect === 'postgres') {
        await sql`create function audit_log_append_only() returns trigger language plpgsql as $$
          begin raise exception 'audit_log is append-only'; end $$`.execute(db);
        await sql`create trigger audit_log_no_update before update on audit_log
          for each row execute function audit_log_append_only()`.execute(db);
      } else {
        await sql`create trigger audit_log_no_update before update on audit_log
          begin select raise(abort, 'audit_log is append-only'); end`.execute(db);
      }
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('audit_log').execute();
      if (dialect === 'postgres') await sql`drop function if exists audit_log_append_only()`.execute(db);
    },
  };
}
