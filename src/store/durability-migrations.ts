import { sql, type Kysely, type Migration } from 'kysely';
import type { Dialect } from './migrations.js';

/** The JSON columns of the first migrations, which PostgreSQL created as jsonb. */
const JSON_COLUMNS: Record<string, string[]> = {
  executions: ['request', 'response'],
  task_files: ['sample_payloads', 'reasons', 'report'],
  tasks: ['payload', 'result', 'usage'],
};

/**
 * Durability and multi-node (issue 11), appended after the first migrations:
 * - JSON is kept as text on PostgreSQL too: jsonb reorders object keys and refuses the string
 *   "\u0000", so values would not come back exactly as SQLite gives them back;
 * - an upload's bytes live in its row, so that any worker on any machine can validate it and run
 *   its tasks without the disk of the node that received it.
 */
export function durabilityMigrations(dialect: Dialect): Record<string, Migration> {
  return {
    '0200_dur_json_text': {
      async up(db: Kysely<unknown>) {
        if (dialect !== 'postgres') return;
        for (const [table, columns] of Object.entries(JSON_COLUMNS)) {
          for (const column of columns) {
            await sql`alter table ${sql.table(table)} alter column ${sql.ref(column)} type text using ${sql.ref(column)}::text`.execute(
              db,
            );
          }
        }
      },
      async down(db: Kysely<unknown>) {
        if (dialect !== 'postgres') return;
        for (const [table, columns] of Object.entries(JSON_COLUMNS)) {
          for (const column of columns) {
            await sql`alter table ${sql.table(table)} alter column ${sql.ref(column)} type jsonb using ${sql.ref(column)}::jsonb`.execute(
              db,
            );
          }
        }
      },
    },
    '0201_dur_task_file_content': {
      async up(db: Kysely<unknown>) {
        await db.schema
          .alterTable('task_files')
          .addColumn('content', dialect === 'postgres' ? sql`bytea` : sql`blob`)
          .execute();
      },
      async down(db: Kysely<unknown>) {
        await db.schema.alterTable('task_files').dropColumn('content').execute();
      },
    },
  };
}
