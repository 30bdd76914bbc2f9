import { call } from './server.js';

/**
 * Acting as a tenant against a test server under auth.mode none (loopback): a key for the tenant,
 * made once per server through POST /admin/keys (a keyless request there holds every scope, admin
 * included). No tenant: no header, i.e. the built-in tenant `default`.
 */
const keys = new Map<string, Promise<string>>();

export function keyOf(base: string, tenant: string, scopes?: string[]): Promise<string> {
  const id = `${base} ${tenant} ${scopes?.join(',') ?? ''}`;
  let key = keys.get(id);
  if (!key) {
    key = call<{ key: string }>(base, 'POST', '/admin/keys', { tenant, scopes }).then((res) => {
      if (res.status !== 201) throw new Error(`POST /admin/keys: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body.key;
    });
    keys.set(id, key);
  }
  return key;
}

export async function as(base: string, tenant: string | undefined): Promise<Record<string, string>> {
  return tenant === undefined ? {} : { authorization: `Bearer ${await keyOf(base, tenant)}` };
}
