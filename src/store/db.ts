import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect, SqliteDialect, sql, type SqliteDialectConfig } from 'kysely';
import pg from 'pg';
import type { WardenConfig } from '../config/schema.js';
import { redactUrl } from '../redact.js';
import { migrationProvider, type Dialect } from './migrations.js';
import type { Database } from './schema.js';

export interface Store {
  readonly db: Kysely<Database>;
  readonly dialect: Dialect;
  /** Where the data lives, without credentials (for logs and /health). */
  readonly location: string;
  ping(): Promise<void>;
  close(): Promise<void>;
}

export class StoreError extends Error {}

/** `sqlite:<path>` or postgres://…; unset means SQLite under the data dir. */
export function storeTarget(config: Pick<WardenConfig, 'dataDir' | 'store'>): {
  dialect: Dialect;
  target: string;
} {
  const url = config.store.databaseUrl;
  if (!url) return { dialect: 'sqlite', target: resolve(join(config.dataDir, 'warden.sqlite')) };
  if (url.startsWith('sqlite:')) return { dialect: 'sqlite', target: resolve(url.slice('sqlite:'.length)) };
  return { dialect: 'postgres', target: url };
}

const JSON_TYPES = new Set<number>([pg.types.builtins.JSON, pg.types.builtins.JSONB]);

/** pg's own type parsers, except that json and jsonb stay text, as SQLite returns them (codec.ts). */
const typeParsers = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    JSON_TYPES.has(oid)
      ? (text: string) => text
      : pg.types.getTypeParser(oid, format ?? 'text')) as typeof pg.types.getTypeParser,
};

/**
 * SQLite handles by file, shared within the process. better-sqlite3 waits for a lock synchronously:
 * a second connection in the same process waiting on the first one's transaction would block the
 * very event loop that transaction needs to finish. One Kysely per file serialises them instead.
 */
const sqliteHandles = new Map<string, { opened: Promise<Store>; users: number }>();

/**
 * Opens the database and brings its schema up to date (idempotent; safe with several processes).
 * Opening a SQLite file this process already has open shares its connection; each handle is closed
 * on its own and the connection with the last one.
 */
export async function openStore(config: Pick<WardenConfig, 'dataDir' | 'store'>): Promise<Store> {
  const { dialect, target } = storeTarget(config);
  if (dialect === 'postgres') return connect(dialect, target);
  let entry = sqliteHandles.get(target);
  if (!entry) {
    const opened = connect(dialect, target);
    entry = { opened, users: 0 };
    sqliteHandles.set(target, entry);
    opened.catch(() => sqliteHandles.delete(target));
  }
  entry.users++;
  const shared = entry;
  let store: Store;
  try {
    store = await shared.opened;
  } catch (err) {
    shared.users--;
    throw err;
  }
  let closed = false;
  return {
    ...store,
    ping: () => store.ping(),
    async close() {
      if (closed) return;
      closed = true;
      if (--shared.users > 0) return;
      sqliteHandles.delete(target);
      await store.close();
    },
  };
}

/** Statements kept compiled per SQLite file (distinct query texts: a few dozen in practice). */
const MAX_STATEMENTS = 500;

/**
 * Kysely prepares every query anew, and compiling the SQL is most of a small query's cost on
 * better-sqlite3: a statement is compiled once per text and reused (execution is synchronous, so
 * one statement never serves two queries at once; one a stream is still reading is not reused).
 */
function preparedOnce(file: SqliteDatabase.Database): SqliteDialectConfig['database'] {
  const statements = new Map<string, SqliteDatabase.Statement>();
  return {
    close: () => file.close(),
    prepare(text: string) {
      const kept = statements.get(text);
      if (kept && !kept.busy) return kept;
      const statement = file.prepare(text);
      if (statements.size >= MAX_STATEMENTS) statements.clear();
      statements.set(text, statement);
      return statement;
    },
  };
}

async function connect(dialect: Dialect, target: string): Promise<Store> {
  let db: Kysely<Database>;
  if (dialect === 'sqlite') {
    mkdirSync(dirname(target), { recursive: true });
    const file = new SqliteDatabase(target);
    // WAL + busy timeout: `warden serve` and standalone `warden worker` processes share the file.
    file.pragma('journal_mode = WAL');
    file.pragma('busy_timeout = 5000');
    file.pragma('synchronous = NORMAL');
    db = new Kysely<Database>({ dialect: new SqliteDialect({ database: preparedOnce(file) }) });
  } else {
    const pool = new pg.Pool({
      connectionString: target,
      max: 10,
      connectionTimeoutMillis: 5000,
      types: typeParsers,
    });
    // A client losing its server (PostgreSQL restarted) must not crash the process, whether idle in
    // the pool or checked out between two queries of a transaction: the next query reports it.
    pool.on('error', () => {});
    pool.on('connect', (client) => client.on('error', () => {}));
    db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  }
  const migrator = new Migrator({
    db,
    provider: migrationProvider(dialect),
    migrationTableName: 'warden_migrations',
    migrationLockTableName: 'warden_migrations_lock',
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    await db.destroy();
    const failed = results?.find((r) => r.status === 'Error')?.migrationName;
    throw new StoreError(
      `cannot prepare the ${dialect} store${failed ? ` (migration ${failed})` : ''}: ${(error as Error).message}`,
    );
  }
  let closed = false;
  return {
    db,
    dialect,
    location: dialect === 'sqlite' ? target : redactUrl(target),
    async ping() {
      await sql`select 1`.execute(db);
    },
    async close() {
      if (closed) return;
      closed = true;
      await db.destroy();
    },
  };
}
