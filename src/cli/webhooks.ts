import { TENANT_RE, TENANT_RULE } from '../store/api-keys.js';
import { openStore } from '../store/db.js';
import { rotateSecret, tenantSecret } from '../store/webhooks.js';
import { readConfig, UsageError } from './common.js';

export interface WebhookSecretOptions {
  config?: string;
  tenant?: string;
  rotate?: boolean;
  json?: boolean;
}

/**
 * `warden webhooks secret --tenant T [--rotate]`: prints the tenant's webhook signing secret (made
 * now if it has none), or a new one. Works on the store directly, as an operator on the host.
 */
export async function webhookSecretCommand(opts: WebhookSecretOptions): Promise<number> {
  const tenant = opts.tenant;
  if (!tenant) throw new UsageError('--tenant is required');
  if (!TENANT_RE.test(tenant)) throw new UsageError(`--tenant: ${TENANT_RULE}`);
  const config = readConfig(opts.config);
  const store = await openStore(config);
  try {
    const s = opts.rotate ? await rotateSecret(store.db, tenant) : await tenantSecret(store.db, tenant);
    process.stdout.write(
      opts.json
        ? `${JSON.stringify({ tenant, secret: s.secret, created_at: s.createdAt, rotated_at: s.rotatedAt })}\n`
        : `${s.secret}\n`,
    );
    return 0;
  } finally {
    await store.close();
  }
}
