import { duration } from '../config/duration.js';
import {
  createApiKey,
  InvalidKeyRequestError,
  keyState,
  keyView,
  listApiKeys,
  parseScopes,
  revokeApiKey,
} from '../store/api-keys.js';
import { keyEvent } from '../audit/events.js';
import { writeAudit } from '../store/audit.js';
import { openStore, type Store } from '../store/db.js';
import { EXIT, readConfig, UsageError } from './common.js';

/**
 * `warden keys create|list|revoke`: API keys, straight in the store the server uses (the same config
 * and DATABASE_URL), so the first key can exist before any server does.
 */

async function withStore<T>(configPath: string | undefined, work: (store: Store) => Promise<T>): Promise<T> {
  const store = await openStore(readConfig(configPath));
  try {
    return await work(store);
  } finally {
    await store.close();
  }
}

/** A refused key request is the user's mistake, named by its option. */
function asUsage(err: unknown): never {
  if (err instanceof InvalidKeyRequestError) throw new UsageError(`--${err.field}: ${err.message}`);
  throw err;
}

const json = (value: unknown) => process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);

export async function keysCreateCommand(opts: {
  config?: string;
  tenant: string;
  scopes?: string;
  expires?: string;
  name?: string;
  json?: boolean;
}): Promise<number> {
  let scopes;
  try {
    scopes = opts.scopes === undefined ? undefined : parseScopes(opts.scopes);
  } catch (err) {
    asUsage(err);
  }
  let expiresAt: Date | null = null;
  if (opts.expires !== undefined) {
    const ttl = duration.safeParse(opts.expires);
    if (!ttl.success) throw new UsageError('--expires: a duration such as 90d, 12h or 30m');
    expiresAt = new Date(Date.now() + ttl.data);
  }
  const { key, record } = await withStore(opts.config, async (store) => {
    const created = await createApiKey(store.db, { tenant: opts.tenant, scopes, name: opts.name, expiresAt });
    await writeAudit(store.db, [keyEvent('key.created', created.record, 'cli')]);
    return created;
  }).catch(asUsage);
  if (opts.json) {
    json({ ...keyView(record), key });
  } else {
    process.stdout.write(`${key}\n`);
    process.stderr.write(
      `warden: key ${record.id} for tenant ${record.tenant}, scopes ${record.scopes.join(',')}, ` +
        `${record.expiresAt ? `expires ${record.expiresAt}` : 'no expiry'}. ` +
        'It is shown only this once (the server keeps a hash): store it now. ' +
        'Clients send it as `Authorization: Bearer <key>`.\n',
    );
  }
  return EXIT.ok;
}

export async function keysListCommand(opts: {
  config?: string;
  tenant?: string;
  json?: boolean;
}): Promise<number> {
  const keys = await withStore(opts.config, (store) => listApiKeys(store.db, { tenant: opts.tenant }));
  if (opts.json) {
    json({ keys: keys.map((k) => keyView(k)) });
    return EXIT.ok;
  }
  const rows = [
    ['ID', 'TENANT', 'SCOPES', 'STATE', 'CREATED', 'EXPIRES', 'NAME'],
    ...keys.map((k) => [
      k.id,
      k.tenant,
      k.scopes.join(','),
      keyState(k),
      k.createdAt,
      k.expiresAt ?? '-',
      k.name ?? '',
    ]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows)
    process.stdout.write(
      `${r
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd()}\n`,
    );
  return EXIT.ok;
}

export async function keysRevokeCommand(id: string, opts: { config?: string }): Promise<number> {
  const record = await withStore(opts.config, async (store) => {
    const revoked = await revokeApiKey(store.db, id);
    if (revoked) await writeAudit(store.db, [keyEvent('key.revoked', revoked, 'cli')]);
    return revoked;
  });
  if (!record) throw new UsageError(`no API key ${JSON.stringify(id)} (see \`warden keys list\`)`);
  process.stderr.write(
    `warden: key ${record.id} of tenant ${record.tenant} is revoked (${record.revokedAt})\n`,
  );
  return EXIT.ok;
}
