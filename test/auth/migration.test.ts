import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect, SqliteDialect, sql } from 'kysely';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/db.js';
import { getExecution } from '../../src/store/executions.js';
import { getJob } from '../../src/store/jobs.js';
import { migrationProvider } from '../../src/store/migrations.js';
import { getTitle, insertUpload } from '../../src/store/task-files.js';
import { getTask } from '../../src/store/tasks.js';
import { startPostgres } from '../helpers/postgres.js';
import { testConfig } from '../helpers/server.js';
import { STORE_DIALECTS } from '../helpers/stores.js';

/**
 * A store from before API keys, upgraded: work of the `anonymous` label and executions without a
 * tenant belong to the built-in tenant `default`, other labels stay their owners' tenants, and task
 * titles become per tenant with every validated version intact.
 */
describe.each(STORE_DIALECTS)('a %s store from before API keys', (dialect) => {
  it('is upgraded to tenants without losing a title or a version', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-auth-migration-'));
    const server = dialect === 'postgres' ? await startPostgres() : undefined;
    try {
      const old = new Kysely<unknown>({
        dialect: server
          ? new PostgresDialect({ pool: new pg.Pool({ connectionString: server.url }) })
          : new SqliteDialect({ database: new SqliteDatabase(join(dir, 'warden.sqlite')) }),
      });
      const migrator = new Migrator({
        db: old,
        provider: migrationProvider(dialect),
        migrationTableName: 'warden_migrations',
        migrationLockTableName: 'warden_migrations_lock',
      });
      expect((await migrator.migrateTo('0300_jobs')).error).toBeUndefined();
      const at = new Date().toISOString();
      await sql`insert into executions (request_id, tenant, language, status, request, created_at)
        values ('e1', null, 'python', 'pending', '{}', ${at})`.execute(old);
      for (const [id, title, owner] of [
        ['v1', 'shared', 'anonymous'],
        ['v2', 'other', 'carol'],
      ]) {
        await sql`insert into task_files (validation_id, title, file_name, original_name, language, owner, sha256,
          size_bytes, status, verdict, reasons, attempts, created_at, updated_at)
          values (${id}, ${title}, ${`${title}.py`}, ${`${title}.py`}, 'python', ${owner}, ${'a'.repeat(64)}, 1,
          'VALIDATED', 'VALIDATED', '[]', 1, ${at}, ${at})`.execute(old);
        await sql`insert into task_titles (title, owner, validation_id, file_name, language, sha256, updated_at)
          values (${title}, ${owner}, ${id}, ${`${title}.py`}, 'python', ${'a'.repeat(64)}, ${at})`.execute(
          old,
        );
      }
      await sql`insert into tasks (task_id, title, owner, status, payload, attempts, created_at, updated_at)
        values ('t1', 'shared', 'anonymous', 'queued', '{}', 0, ${at}, ${at})`.execute(old);
      await sql`insert into jobs (id, owner, status, command, spec, attempts, cancel_requested, created_at, updated_at)
        values ('j1', 'anonymous', 'queued', 'true', '{}', 0, 0, ${at}, ${at})`.execute(old);
      await old.destroy();

      const store = await openStore(testConfig(dir, { store: { databaseUrl: server?.url } }));
      try {
        expect((await getExecution(store.db, 'e1'))?.tenant).toBe('default');
        expect((await getTask(store.db, 't1'))?.owner).toBe('default');
        expect((await getJob(store.db, 'j1'))?.owner).toBe('default');
        expect(await getTitle(store.db, 'default', 'shared')).toMatchObject({
          owner: 'default',
          active: { validationId: 'v1', fileName: 'shared.py' },
        });
        expect((await getTitle(store.db, 'carol', 'other'))?.active?.validationId).toBe('v2');
        expect(await getTitle(store.db, 'anonymous', 'shared')).toBeUndefined();
        // Per tenant now: carol may take "shared" for herself; the default tenant's stays.
        await insertUpload(store.db, {
          validationId: 'v3',
          title: 'shared',
          fileName: 'shared.js',
          originalName: 'shared.js',
          language: 'javascript',
          owner: 'carol',
          sha256: 'b'.repeat(64),
          sizeBytes: 1,
          content: Buffer.from('x'),
        });
        expect(await getTitle(store.db, 'carol', 'shared')).toMatchObject({ owner: 'carol', active: null });
        expect((await getTitle(store.db, 'default', 'shared'))?.active?.validationId).toBe('v1');
      } finally {
        await store.close();
      }
    } finally {
      await server?.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
