import { sql, type Kysely, type Migration } from 'kysely';
import type { Dialect } from './migrations.js';

/** The JSON columns of the first migrations, which PostgreSQL created as jsonb. */
const JSON_COLUMNS: Record<string, string[]> = {
  executions: ['request', 'response'],
  task_files: ['sample_payloads', 'reasons', 'report'],
  tasks: ['payload', 'result', 'usage'],
};

async function retypeJson(db: Kysely<unknown>, type: 'text' | 'jsonb'): Promise<void> {
  for (const [table, columns] of Object.entries(JSON_COLUMNS)) {
    for (const column of columns) {
      const col = sql.ref(column);
      await sql`alter table ${sql.table(table)} alter column ${col} type ${sql.raw(type)} using ${col}::${sql.raw(type)}`.execute(
        db,
      );
    }
  }
}

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
      up: (db: Kysely<unknown>) => (dialect === 'postgres' ? retypeJson(db, 'text') : Promise.resolve()),
      down: (db: Kysely<unknown>) => (dialect === 'postgres' ? retypeJson(db, 'jsonb') : Promise.resolve()),
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
