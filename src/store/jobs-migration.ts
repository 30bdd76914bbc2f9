import type { Kysely, Migration, RawBuilder } from 'kysely';

/** The jobs tables (SPEC §7), as one migration entry; `t` are the dialect's JSON and timestamp types. */
export function jobsMigration(t: { json: RawBuilder<unknown>; timestamp: RawBuilder<unknown> }): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('jobs')
        .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('owner', 'varchar(128)', (c) => c.notNull())
        .addColumn('status', 'varchar(16)', (c) => c.notNull())
        .addColumn('command', 'text', (c) => c.notNull())
        .addColumn('spec', t.json, (c) => c.notNull())
        .addColumn('files', t.json)
        .addColumn('verdict', 'varchar(32)')
        .addColumn('exit_code', 'integer')
        .addColumn('signal', 'varchar(16)')
        .addColumn('usage', t.json)
        .addColumn('violations', t.json)
        .addColumn('artifacts', t.json)
        .addColumn('skipped', t.json)
        .addColumn('error', 'text')
        .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('claim', 'varchar(64)')
        .addColumn('cancel_requested', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('created_at', t.timestamp, (c) => c.notNull())
        .addColumn('updated_at', t.timestamp, (c) => c.notNull())
        .addColumn('preparing_at', t.timestamp)
        .addColumn('running_at', t.timestamp)
        .addColumn('collecting_at', t.timestamp)
        .addColumn('finished_at', t.timestamp)
        .execute();
      await db.schema
        .createIndex('jobs_owner_created')
        .on('jobs')
        .columns(['owner', 'created_at', 'id'])
        .execute();
      await db.schema
        .createIndex('jobs_status_updated')
        .on('jobs')
        .columns(['status', 'updated_at'])
        .execute();
      await db.schema
        .createTable('job_logs')
        .addColumn('job_id', 'varchar(64)', (c) => c.notNull())
        .addColumn('seq', 'integer', (c) => c.notNull())
        .addColumn('stream', 'varchar(8)', (c) => c.notNull())
        .addColumn('line', 'text', (c) => c.notNull())
        .addColumn('time', t.timestamp, (c) => c.notNull())
        // The key is also the fence: a stale worker's lines collide with its successor's and fail.
        .addPrimaryKeyConstraint('job_logs_pk', ['job_id', 'seq'])
        .execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('job_logs').execute();
      await db.schema.dropTable('jobs').execute();
    },
  };
}
