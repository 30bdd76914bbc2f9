import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalRedis, type LocalRedis } from '../../src/queue/redis-server.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { call, testConfig } from '../helpers/server.js';

/** An API without workers, so nothing leaves the queue while requests race for its places. */
describe('server.maxQueueDepth under concurrency', () => {
  let dir: string;
  let redis: LocalRedis;
  let server: RunningServer;
  const maxQueueDepth = 100;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-cap-'));
    redis = await startLocalRedis({ dir: join(dir, 'redis') });
    server = await startServer(
      testConfig(dir, {
        queue: { redisUrl: redis.url },
        workers: { inProcess: false },
        server: { maxQueueDepth },
        // One tenant here: it may take every place (fair share is test/quotas/fair-share.test.ts).
        quotas: { queuedShare: 1 },
      }),
    );
  });
  afterAll(async () => {
    await server?.close();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('400 concurrent requests: no more than the cap is accepted, the rest are 429', async () => {
    const answers = await Promise.all(
      Array.from({ length: 400 }, (_, i) =>
        call(server.url, 'POST', '/execute?wait=false', { code: `print(${i})`, language: 'python' }),
      ),
    );
    const statuses = answers.map((a) => a.status);
    const accepted = statuses.filter((s) => s === 202).length;
    expect(statuses.filter((s) => s !== 202 && s !== 429)).toEqual([]);
    expect(accepted).toBeGreaterThan(0);
    expect(accepted).toBeLessThanOrEqual(maxQueueDepth);
    for (const a of answers.filter((a) => a.status === 429)) {
      expect(a.headers.get('retry-after')).not.toBeNull();
      expect((a.body as { error: { code: string } }).error.code).toBe('queue_full');
    }
    // Once the race is over, the places left are taken one by one up to the cap, exactly.
    for (let i = accepted; i < maxQueueDepth; i++) {
      const res = await call(server.url, 'POST', '/execute?wait=false', {
        code: 'print(1)',
        language: 'python',
      });
      expect(res.status).toBe(202);
    }
    const over = await call(server.url, 'POST', '/execute?wait=false', {
      code: 'print(1)',
      language: 'python',
    });
    expect(over.status).toBe(429);
    // Refused requests left no execution behind.
    const refused = answers.find((a) => a.status === 429)!;
    const id = refused.headers.get('x-request-id');
    expect((await call(server.url, 'GET', `/executions/${id}`)).status).toBe(404);
  });
});
