import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Kysely } from 'kysely';
import { afterAll, beforeAll } from 'vitest';
import { openStore, type Store } from '../../src/store/db.js';
import type { Database } from '../../src/store/schema.js';
import { postgresAvailable, startPostgres, type TestPostgres } from './postgres.js';
import { testConfig } from './server.js';

/** SQLite always; PostgreSQL when installed (under CI=true always: a missing one fails). */
export const STORE_DIALECTS = postgresAvailable() ? (['sqlite', 'postgres'] as const) : (['sqlite'] as const);

/**
 * A throwaway store of `dialect` for the enclosing describe block: opened before its tests (with a
 * PostgreSQL cluster of its own), closed and removed after. `db` is read once the tests run.
 */
export function useStore(dialect: (typeof STORE_DIALECTS)[number]): { readonly db: Kysely<Database> } {
  let dir: string | undefined;
  let pg: TestPostgres | undefined;
  let store: Store | undefined;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-store-'));
    if (dialect === 'postgres') pg = await startPostgres();
    store = await openStore(testConfig(dir, { store: { databaseUrl: pg?.url } }));
  });
  afterAll(async () => {
    await store?.close();
    await pg?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  return {
    get db() {
      if (!store) throw new Error('the store opens in beforeAll: read it from a test');
      return store.db;
    },
  };
}
