import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/store/api-keys.js';
import { openStore } from '../../src/store/db.js';
import { call, startTestServer, type TestServer } from '../helpers/server.js';
import { until } from '../helpers/wait.js';
import { startReceiver, verify, type Receiver } from './receiver.js';

/**
 * Webhooks with API keys: each tenant has its own secret, a callback is signed with the secret of
 * the tenant that submitted the work, and one tenant cannot see or touch another's deliveries.
 */

let t: TestServer;
let receiver: Receiver;
const keys: Record<'a' | 'b' | 'jobsOnly' | 'admin', string> = { a: '', b: '', jobsOnly: '', admin: '' };
const keyIds: Record<string, string> = {};

beforeAll(async () => {
  t = await startTestServer({ auth: { mode: 'keys' }, webhooks: { allowlist: ['127.0.0.2/32'] } });
  receiver = await startReceiver('127.0.0.2');
  const store = await openStore(t.config);
  try {
    for (const [who, tenant] of [
      ['a', 'hooks-a'],
      ['b', 'hooks-b'],
    ] as const) {
      const made = await createApiKey(store.db, { tenant });
      keys[who] = made.key;
      keyIds[who] = made.record.id;
    }
    keys.admin = (await createApiKey(store.db, { tenant: 'ops', scopes: ['admin'] })).key;
    keys.jobsOnly = (await createApiKey(store.db, { tenant: 'hooks-a', scopes: ['jobs'] })).key;
  } finally {
    await store.close();
  }
}, 120_000);
afterAll(async () => {
  await receiver?.close();
  await t?.close();
});

const as = (who: keyof typeof keys) => ({ authorization: `Bearer ${keys[who]}` });
const secretOf = async (who: keyof typeof keys) =>
  (await call<{ secret: string }>(t.url, 'GET', '/webhooks/secret', undefined, as(who))).body.secret;

describe('webhooks per tenant', () => {
  it('needs a key with the execute scope', async () => {
    expect((await call(t.url, 'GET', '/webhooks/secret')).status).toBe(401);
    expect((await call(t.url, 'GET', '/webhooks/deliveries', undefined, as('jobsOnly'))).status).toBe(403);
  });

  it('signs with the submitting tenant’s secret and shows its deliveries to it alone', async () => {
    const [a, b] = [await secretOf('a'), await secretOf('b')];
    expect(a).not.toBe(b);
    const res = await call<{ request_id: string }>(
      t.url,
      'POST',
      '/execute?wait=false',
      { code: 'print(1)', language: 'python', callback_url: `${receiver.url}/tenant-a` },
      as('a'),
    );
    expect(res.status).toBe(202);
    const id = res.body.request_id;
    const path = `/webhooks/deliveries?resource=${id}`;
    await until(
      async () => {
        const d = await call<{ deliveries: { status: string }[] }>(t.url, 'GET', path, undefined, as('a'));
        return d.body.deliveries?.[0]?.status === 'delivered' ? true : undefined;
      },
      60_000,
      50,
      'the delivery',
    );
    const [got] = receiver.received.filter((r) => r.path === '/tenant-a');
    expect(verify(a, got!)).toBe(true);
    expect(verify(b, got!)).toBe(false);

    const other = await call<{ error: { code: string } }>(t.url, 'GET', path, undefined, as('b'));
    expect(other.status).toBe(404);
    const listed = await call<{ deliveries: unknown[] }>(
      t.url,
      'GET',
      '/webhooks/deliveries',
      undefined,
      as('b'),
    );
    expect(listed.body.deliveries).toEqual([]);

    // Rotating b's secret leaves a's alone.
    expect((await call(t.url, 'POST', '/webhooks/secret', undefined, as('b'))).status).toBe(200);
    expect(await secretOf('a')).toBe(a);
    expect(await secretOf('b')).not.toBe(b);
  });

  it('audits refused callback URLs (the reason, never the URL) and secret rotations', async () => {
    const refused = await call(
      t.url,
      'POST',
      '/jobs',
      { command: 'echo hi', callback_url: 'http://localhost:9/hook?token=sekrit' },
      as('a'),
    );
    expect(refused.status).toBe(400);
    interface Rec {
      tenant: string;
      actor: string;
      action: string;
      outcome: string;
      details: Record<string, unknown>;
    }
    const records = (action: string) =>
      until(
        async () => {
          const res = await call<{ records: Rec[] }>(
            t.url,
            'GET',
            `/audit?action=${action}`,
            undefined,
            as('admin'),
          );
          return res.body.records?.length ? res.body.records : undefined;
        },
        10_000,
        50,
        `an audit record ${action}`,
      );
    const [refusal] = await records('webhook.refused');
    expect(refusal).toMatchObject({ tenant: 'hooks-a', actor: keyIds.a, outcome: 'refused' });
    expect(String(refusal!.details.reason)).toMatch(/localhost resolves to .* is loopback/);
    expect(JSON.stringify(refusal)).not.toContain('sekrit');
    const [rotation] = await records('webhook.secret_rotated');
    expect(rotation).toMatchObject({ tenant: 'hooks-b', actor: keyIds.b, outcome: 'ok' });
  });
});
