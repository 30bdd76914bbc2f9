import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../../src/server.js';
import { testConfig } from '../helpers/server.js';
import { b64, finished, openEvents, submit } from './helpers.js';

/**
 * `warden serve` stopped while a job runs: after `jobs.shutdownGraceMs` the sandbox is stopped (the
 * service does not wait out a long job, and an open log stream does not hold it either), and the job
 * runs again from the start when the service is back.
 */
describe('a service stopped mid-job', () => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-jobstop-'));
  const config = testConfig(dir, {
    jobs: { shutdownGraceMs: 0, pollMs: 50 },
    tasks: { recoveryIntervalMs: 200 },
  });
  let second: RunningServer | undefined;
  afterAll(async () => {
    await second?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('stops the job at once and runs it again after the restart', async () => {
    const first = await startServer(config);
    const script = 'import time\nprint("up", flush=True)\ntime.sleep(3)\nprint("finished")\n';
    const id = await submit(first.url, {
      command: 'python3 job.py',
      files: [{ path: 'job.py', content: b64(script) }],
    });
    const stream = await openEvents(`${first.url}/jobs/${id}/logs`);
    expect(JSON.parse((await stream.next())!.data).line).toBe('up');
    // The log stream stays open: closing must end it, not wait for it.
    await first.close();

    second = await startServer(config);
    const done = await finished(second.url, id);
    expect(done).toMatchObject({ status: 'completed', attempts: 2 });
    const log = await (await fetch(`${second.url}/jobs/${id}/logs?format=text`)).text();
    expect(log).toContain('the worker stopped before the job ended');
    expect(log.match(/^up$/gm)).toHaveLength(2);
    expect(log.match(/^finished$/gm)).toHaveLength(1);
  });
});
