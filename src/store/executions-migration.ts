import type { Kysely, Migration, RawBuilder } from 'kysely';

/**
 * Executions as the store's truth (issue 11), appended after the first migrations: attempts and a
 * claim token fence each worker's writes, per-case results wait in `execution_cases` until the last
 * one is in, and `updated_at` tells recovery which executions nobody has touched for a while.
 */
export function executionMigrations(timestamp: RawBuilder<unknown>): Record<string, Migration> {
  return {
    '0100_exec_cases': {
      async up(db: Kysely<unknown>) {
        // One column per statement: SQLite adds them one at a time.
        const add = [
          ['attempts', 'integer', 0],
          ['cases_total', 'integer', 0],
          ['cases_done', 'integer', 0],
        ] as const;
        for (const [name, type, initial] of add) {
          await db.schema
            .alterTable('executions')
            .addColumn(name, type, (c) => c.notNull().defaultTo(initial))
            .execute();
        }
        await db.schema.alterTable('executions').addColumn('claim', 'varchar(64)').execute();
        await db.schema.alterTable('executions').addColumn('updated_at', timestamp).execute();
        await db.schema
          .createIndex('executions_status_updated')
          .on('executions')
          .columns(['status', 'updated_at'])
          .execute();
        await db.schema.createIndex('executions_created').on('executions').column('created_at').execute();
        await db.schema
          .createTable('execution_cases')
          .addColumn('request_id', 'varchar(64)', (c) => c.notNull())
          .addColumn('idx', 'integer', (c) => c.notNull())
          // JSON as text on both databases (PostgreSQL's jsonb refuses "\u0000").
          .addColumn('result', 'text', (c) => c.notNull())
          .addColumn('created_at', timestamp, (c) => c.notNull())
          .addPrimaryKeyConstraint('execution_cases_pk', ['request_id', 'idx'])
          .execute();
        await db.schema
          .createIndex('execution_cases_created')
          .on('execution_cases')
          .column('created_at')
          .execute();
      },
      async down(db: Kysely<unknown>) {
        await db.schema.dropTable('execution_cases').execute();
        await db.schema.dropIndex('executions_created').execute();
        await db.schema.dropIndex('executions_status_updated').execute();
        for (const name of ['updated_at', 'claim', 'cases_done', 'cases_total', 'attempts'])
          await db.schema.alterTable('executions').dropColumn(name).execute();
      },
    },
  };
}
