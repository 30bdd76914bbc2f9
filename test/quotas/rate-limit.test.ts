import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalRedis, type LocalRedis } from '../../src/queue/redis-server.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { call, testConfig, type Answer } from '../helpers/server.js';

/**
 * Two API servers (two nodes) sharing one Redis and one store: a key's requests are counted
 * together whichever node answers them. The window is long (10 minutes) so it cannot roll over
 * during the test: the counts, not the clock, decide every assertion.
 */
describe('requests per window per API key, across two API nodes', () => {
  let dir: string;
  let redis: LocalRedis;
  let nodes: RunningServer[] = [];
  const max = 5;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-rate-'));
    redis = await startLocalRedis({ dir: join(dir, 'redis') });
    const config = testConfig(dir, {
      queue: { redisUrl: redis.url },
      store: { databaseUrl: `sqlite:${join(dir, 'shared.sqlite')}` },
      workers: { inProcess: false },
      quotas: { rate: { max, windowMs: 600_000 }, tenants: { tight: { rate: { max: 2 } } } },
    });
    nodes = [await startServer(config), await startServer(config)];
  });
  afterAll(async () => {
    for (const node of nodes) await node.close();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const newKey = async (tenant: string) => {
    const res = await call<{ key: string }>(nodes[0]!.url, 'POST', '/admin/keys', {
      tenant,
      scopes: ['jobs'],
    });
    expect(res.status).toBe(201);
    return { authorization: `Bearer ${res.body.key}` };
  };
  const limitHeaders = (a: Answer) => ({
    limit: a.headers.get('ratelimit-limit'),
    remaining: a.headers.get('ratelimit-remaining'),
    reset: a.headers.get('ratelimit-reset'),
  });

  it('counts down on both nodes, then 429 rate_limited with Retry-After on either', async () => {
    const key = await newKey('alpha');
    const remaining: string[] = [];
    for (let i = 0; i < max; i++) {
      const res = await call(nodes[i % 2]!.url, 'GET', '/jobs', undefined, key);
      expect(res.status).toBe(200);
      const h = limitHeaders(res);
      expect(h.limit).toBe(String(max));
      expect(Number(h.reset)).toBeGreaterThan(0);
      remaining.push(h.remaining!);
    }
    expect(remaining).toEqual(['4', '3', '2', '1', '0']);
    for (const node of nodes) {
      const over = await call<{ error: { code: string; field: null; request_id: string } }>(
        node.url,
        'GET',
        '/jobs',
        undefined,
        key,
      );
      expect(over.status).toBe(429);
      expect(over.body.error.code).toBe('rate_limited');
      expect(over.body.error.request_id).toBe(over.headers.get('x-request-id'));
      expect(Number(over.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(limitHeaders(over)).toMatchObject({ limit: String(max), remaining: '0' });
    }
  });

  it('each key has its own count; a tenant override sets its own limit', async () => {
    const fresh = await call(nodes[1]!.url, 'GET', '/jobs', undefined, await newKey('beta'));
    expect(limitHeaders(fresh)).toMatchObject({ limit: String(max), remaining: String(max - 1) });

    const tight = await newKey('tight');
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++)
      statuses.push((await call(nodes[i % 2]!.url, 'GET', '/jobs', undefined, tight)).status);
    expect(statuses).toEqual([200, 200, 429]);
  });

  it('public routes and keyless requests (auth.mode none, loopback) are not limited', async () => {
    for (let i = 0; i < max + 2; i++) {
      const health = await call(nodes[0]!.url, 'GET', '/health');
      expect(health.headers.get('ratelimit-limit')).toBeNull();
      expect(health.status).not.toBe(429);
      const keyless = await call(nodes[1]!.url, 'GET', '/jobs');
      expect(keyless.status).toBe(200);
      expect(keyless.headers.get('ratelimit-limit')).toBeNull();
    }
  });

  it('a request refused for its key (401) is not counted against anyone', async () => {
    const key = await newKey('gamma');
    const bad = await call(nodes[0]!.url, 'GET', '/jobs', undefined, { authorization: 'Bearer wdn_nope' });
    expect(bad.status).toBe(401);
    const first = await call(nodes[0]!.url, 'GET', '/jobs', undefined, key);
    expect(first.headers.get('ratelimit-remaining')).toBe(String(max - 1));
  });
});
