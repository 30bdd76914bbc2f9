import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import {
  countUsableKeys,
  createApiKey,
  InvalidKeyRequestError,
  keyState,
  listApiKeys,
  parseScopes,
  revokeApiKey,
  verifyApiKey,
} from '../../src/store/api-keys.js';
import { STORE_DIALECTS, useStore } from '../helpers/stores.js';

/** The key store on SQLite (always) and PostgreSQL (when installed). */
describe.each(STORE_DIALECTS)('API keys in the %s store', (dialect) => {
  const store = useStore(dialect);

  it('makes wdn_ keys of 256 random bits and finds them by what the client sends', async () => {
    const a = await createApiKey(store.db, { tenant: 'acme' });
    const b = await createApiKey(store.db, { tenant: 'acme' });
    expect(a.key).toMatch(/^wdn_[0-9a-f]{64}$/);
    expect(a.key).not.toBe(b.key);
    expect(a.record).toMatchObject({ tenant: 'acme', scopes: ['execute', 'tasks', 'jobs'], revokedAt: null });
    expect(await verifyApiKey(store.db, a.key)).toEqual(a.record);
    // One bit off, another length, another case, or the hash itself: not a key.
    const flipped = `${a.key.slice(0, -1)}${a.key.endsWith('0') ? '1' : '0'}`;
    const hash = createHash('sha256').update(a.key).digest('hex');
    for (const wrong of [flipped, a.key.slice(0, -1), a.key.toUpperCase(), `wdn_${hash}`, hash, '', 'wdn_'])
      expect(await verifyApiKey(store.db, wrong), wrong).toBeUndefined();
  });

  it('stores only the SHA-256 of a key, never the key or its secret part', async () => {
    const { key, record } = await createApiKey(store.db, { tenant: 'hashed', name: 'ci' });
    const rows = await sql<{ row: string }>`select * from api_keys where id = ${record.id}`.execute(store.db);
    const text = JSON.stringify(rows.rows);
    expect(text).toContain(createHash('sha256').update(key).digest('hex'));
    expect(text).not.toContain(key);
    expect(text).not.toContain(key.slice(4));
    expect(text).not.toContain(key.slice(4, 20));
  });

  it('a revoked key and an expired key are no keys, at once', async () => {
    const revoked = await createApiKey(store.db, { tenant: 'r' });
    const before = await countUsableKeys(store.db);
    expect((await revokeApiKey(store.db, revoked.record.id))?.revokedAt).not.toBeNull();
    expect(await verifyApiKey(store.db, revoked.key)).toBeUndefined();
    expect(await countUsableKeys(store.db)).toBe(before - 1);
    // Revoking twice keeps the first time.
    const first = (await listApiKeys(store.db, { tenant: 'r' }))[0]!.revokedAt;
    expect((await revokeApiKey(store.db, revoked.record.id))?.revokedAt).toBe(first);
    expect(await revokeApiKey(store.db, 'key_nope')).toBeUndefined();

    const past = new Date(Date.now() - 60_000);
    const expired = await createApiKey(
      store.db,
      { tenant: 'e', expiresAt: new Date(past.getTime() + 1000) },
      past,
    );
    expect(await verifyApiKey(store.db, expired.key)).toBeUndefined();
    expect(keyState(expired.record)).toBe('expired');
    const later = await createApiKey(store.db, { tenant: 'e', expiresAt: new Date(Date.now() + 60_000) });
    expect(await verifyApiKey(store.db, later.key)).toBeDefined();
    expect(await verifyApiKey(store.db, later.key, new Date(Date.now() + 120_000))).toBeUndefined();
  });

  it('refuses unknown scopes, bad tenants and expiries in the past', async () => {
    expect(parseScopes('execute, admin,execute')).toEqual(['execute', 'admin']);
    for (const bad of ['root', '', 'execute,', 'Execute'])
      expect(() => parseScopes(bad), bad).toThrow(InvalidKeyRequestError);
    for (const tenant of ['', '../etc', '.hidden', 'a/b', 'x'.repeat(129), 'white space'])
      await expect(createApiKey(store.db, { tenant }), tenant).rejects.toThrow(/tenant must be/);
    await expect(
      createApiKey(store.db, { tenant: 't', expiresAt: new Date(Date.now() - 1) }),
    ).rejects.toThrow(/expiry must be in the future/);
  });

  it('lists keys by tenant without any secret in the records', async () => {
    await createApiKey(store.db, { tenant: 'lister', scopes: ['admin'] });
    const listed = await listApiKeys(store.db, { tenant: 'lister' });
    expect(listed).toHaveLength(1);
    expect(Object.keys(listed[0]!).sort()).toEqual(
      ['createdAt', 'expiresAt', 'id', 'name', 'revokedAt', 'scopes', 'tenant'].sort(),
    );
    expect(listed[0]!.scopes).toEqual(['admin']);
  });
});
