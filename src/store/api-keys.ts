import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Kysely, Selectable } from 'kysely';
import { iso, now } from './codec.js';
import type { ApiKeysTable } from './auth-migration.js';
import type { Database } from './schema.js';

/**
 * API keys (SPEC §8). A key is `wdn_` and 256 random bits in hex; the store keeps only its SHA-256,
 * so neither the database nor a backup of it can be used to call the API. A key is looked up by its
 * hash (the index makes that one query) and the hashes are then compared in constant time.
 */

export const SCOPES = ['execute', 'tasks', 'jobs', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

/** Scopes a key gets when none are named: everything but administration. */
export const DEFAULT_SCOPES: readonly Scope[] = ['execute', 'tasks', 'jobs'];

/** The tenant of requests without a key under auth.mode none (and of work from before keys). */
export const DEFAULT_TENANT = 'default';

/** Tenant names: they also name directories (the tasks dir has one per tenant). */
export const TENANT_RE = /^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$/;
export const TENANT_RULE = '1 to 128 letters, digits or "_.@-", starting with a letter or digit';

/** Recognisable in logs, config files and secret scanners; what follows is the secret. */
export const KEY_PREFIX = 'wdn_';
const KEY_RE = /^wdn_[0-9a-f]{64}$/;

export interface ApiKeyRecord {
  id: string;
  tenant: string;
  scopes: Scope[];
  name: string | null;
  createdAt: string;
  expiresAt: string | null;
  revokedAt: string | null;
}

export class InvalidKeyRequestError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

const hashOf = (key: string) => createHash('sha256').update(key, 'utf8').digest();

function toRecord(row: Omit<Selectable<ApiKeysTable>, 'hash'>): ApiKeyRecord {
  return {
    id: row.id,
    tenant: row.tenant,
    scopes: row.scopes.split(',').filter((s): s is Scope => (SCOPES as readonly string[]).includes(s)),
    name: row.name,
    createdAt: iso(row.created_at) ?? '',
    expiresAt: iso(row.expires_at),
    revokedAt: iso(row.revoked_at),
  };
}

const COLUMNS = ['id', 'tenant', 'scopes', 'name', 'created_at', 'expires_at', 'revoked_at'] as const;

/** `execute,tasks` → scopes, refusing unknown names and duplicates. */
export function parseScopes(text: string | readonly string[]): Scope[] {
  const names = (typeof text === 'string' ? text.split(',') : [...text]).map((s) => s.trim());
  const scopes: Scope[] = [];
  for (const name of names) {
    if (!(SCOPES as readonly string[]).includes(name))
      throw new InvalidKeyRequestError(
        'scopes',
        `unknown scope ${JSON.stringify(name)}; scopes are ${SCOPES.join(', ')}`,
      );
    if (!scopes.includes(name as Scope)) scopes.push(name as Scope);
  }
  if (scopes.length === 0)
    throw new InvalidKeyRequestError('scopes', `name at least one of ${SCOPES.join(', ')}`);
  return scopes;
}

export interface NewKey {
  tenant: string;
  scopes?: readonly Scope[];
  name?: string | null;
  /** When the key stops working; none: it works until revoked. */
  expiresAt?: Date | null;
}

/** Creates a key; the returned `key` is the only time it exists outside the caller's hands. */
export async function createApiKey(
  db: Kysely<Database>,
  input: NewKey,
  at: Date = new Date(),
): Promise<{ key: string; record: ApiKeyRecord }> {
  if (!TENANT_RE.test(input.tenant))
    throw new InvalidKeyRequestError('tenant', `the tenant must be ${TENANT_RULE}`);
  if (input.expiresAt && input.expiresAt.getTime() <= at.getTime())
    throw new InvalidKeyRequestError('expires', 'the expiry must be in the future');
  const scopes = parseScopes(input.scopes ?? DEFAULT_SCOPES);
  const key = `${KEY_PREFIX}${randomBytes(32).toString('hex')}`;
  const id = `key_${randomBytes(8).toString('hex')}`;
  const row = {
    id,
    tenant: input.tenant,
    hash: hashOf(key).toString('hex'),
    scopes: scopes.join(','),
    name: input.name ?? null,
    created_at: at.toISOString(),
    expires_at: input.expiresAt ? input.expiresAt.toISOString() : null,
    revoked_at: null,
  };
  await db.insertInto('api_keys').values(row).execute();
  return { key, record: toRecord(row) };
}

/**
 * The key's record if it is a key this store issued that is neither revoked nor expired; undefined
 * otherwise, without saying which (a caller learns nothing about keys it does not hold).
 */
export async function verifyApiKey(
  db: Kysely<Database>,
  presented: string,
  at: Date = new Date(),
): Promise<ApiKeyRecord | undefined> {
  if (!KEY_RE.test(presented)) return undefined;
  const hash = hashOf(presented);
  const row = await db
    .selectFrom('api_keys')
    .select([...COLUMNS, 'hash'])
    .where('hash', '=', hash.toString('hex'))
    .executeTakeFirst();
  if (!row) return undefined;
  // The lookup already matched; this keeps the decision itself independent of any index or collation.
  if (!timingSafeEqual(Buffer.from(row.hash, 'hex'), hash)) return undefined;
  const record = toRecord(row);
  if (record.revokedAt !== null) return undefined;
  if (record.expiresAt !== null && Date.parse(record.expiresAt) <= at.getTime()) return undefined;
  return record;
}

export async function listApiKeys(
  db: Kysely<Database>,
  filter: { tenant?: string } = {},
): Promise<ApiKeyRecord[]> {
  let q = db.selectFrom('api_keys').select(COLUMNS);
  if (filter.tenant !== undefined) q = q.where('tenant', '=', filter.tenant);
  const rows = await q.orderBy('created_at').orderBy('id').execute();
  return rows.map(toRecord);
}

export async function getApiKey(db: Kysely<Database>, id: string): Promise<ApiKeyRecord | undefined> {
  const row = await db.selectFrom('api_keys').select(COLUMNS).where('id', '=', id).executeTakeFirst();
  return row ? toRecord(row) : undefined;
}

/** Revokes the key (at once, on every node: each request looks its key up). Idempotent. */
export async function revokeApiKey(
  db: Kysely<Database>,
  id: string,
  at: Date = new Date(),
): Promise<ApiKeyRecord | undefined> {
  await db
    .updateTable('api_keys')
    .set({ revoked_at: at.toISOString() })
    .where('id', '=', id)
    .where('revoked_at', 'is', null)
    .execute();
  return getApiKey(db, id);
}

/** Keys that would let a request in now: what `warden serve` needs at least one of beyond loopback. */
export async function countUsableKeys(db: Kysely<Database>, at: string = now()): Promise<number> {
  const row = await db
    .selectFrom('api_keys')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('revoked_at', 'is', null)
    .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', at)]))
    .executeTakeFirst();
  return Number(row?.n ?? 0);
}

export type KeyState = 'active' | 'revoked' | 'expired';

export function keyState(record: ApiKeyRecord, at: Date = new Date()): KeyState {
  if (record.revokedAt !== null) return 'revoked';
  if (record.expiresAt !== null && Date.parse(record.expiresAt) <= at.getTime()) return 'expired';
  return 'active';
}

/** A key as the API and `warden keys --json` show it: everything but the key itself. */
export function keyView(record: ApiKeyRecord, at: Date = new Date()) {
  return {
    id: record.id,
    tenant: record.tenant,
    scopes: record.scopes,
    name: record.name,
    state: keyState(record, at),
    created_at: record.createdAt,
    expires_at: record.expiresAt,
    revoked_at: record.revokedAt,
  };
}
