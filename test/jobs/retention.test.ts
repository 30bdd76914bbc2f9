import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, sample, startTestServer, type TestServer } from '../helpers/server.js';
import { submit, until } from './helpers.js';

/** Finished jobs past `jobs.retention` lose their row, log and artifacts to the workers' sweep. */

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer({ jobs: { retention: 1 }, tasks: { recoveryIntervalMs: 100 } });
});
afterAll(() => t?.close());

describe('retention', () => {
  it('deletes a finished job, its log and its artifacts', async () => {
    const id = await submit(t.url, {
      command: `python3 -c "print('x'); open('/out/a.txt', 'w').write('a')"`,
    });
    const stored = join(t.config.artifacts.dir, 'objects', 'jobs', id);
    await until(async () => ((await call(t.url, 'GET', `/jobs/${id}`)).status === 404 ? true : undefined));
    expect((await call(t.url, 'GET', `/jobs/${id}/logs?format=text`)).status).toBe(404);
    // It did complete with its artifact before the sweep took it all.
    const metrics = (await call(t.url, 'GET', '/metrics')).body as unknown as string;
    expect(sample(metrics, 'warden_jobs_total', { status: 'completed' })).toBe(1);
    expect(sample(metrics, 'warden_job_artifact_bytes_total')).toBe(1);
    expect(existsSync(stored)).toBe(false);
  });
});
