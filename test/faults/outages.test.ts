import { afterAll, describe, expect, it } from 'vitest';
import { isAlive } from '../../src/sandbox/pids.js';
import { postgresAvailable, startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { cleanup, localRedisPid, spawnWarden, tempDir } from '../helpers/processes.js';
import { call } from '../helpers/server.js';
import { until } from '../helpers/wait.js';
import { finals, outcomes, submit, type Submitted } from './helpers.js';

/**
 * The queue or the database going away under load: meanwhile requests are refused with 503 and
 * Retry-After (never a 500, never a hang), afterwards the service recovers by itself, and every
 * execution it accepted ends as a run of its code.
 */
afterAll(cleanup);

const config = {
  tasks: { jobLockMs: 3000, recoveryIntervalMs: 1000 },
  workers: { concurrency: 2 },
  sandbox: { pool: { size: 1 } },
  server: { retryAfterSeconds: 2 },
};

/** Every refusal is a 503 with Retry-After; what the service could not answer at all is listed. */
function refusals(sent: Submitted): string[] {
  return sent.refused
    .filter((r) => r.status !== 503 || r.retryAfter !== '2')
    .map((r) => `${r.status} ${r.code} retry-after=${r.retryAfter}`);
}

describe('the local redis-server SIGKILLed under load', () => {
  it('503s with Retry-After meanwhile, then recovery, nothing lost', async () => {
    const dataDir = tempDir();
    const serve = await spawnWarden('serve', { dataDir, config });
    const killed: number[] = [];
    const sent = await submit(() => serve.url, 60, {
      concurrency: 4,
      during: async (i) => {
        if (i !== 20) return;
        const pid = localRedisPid(dataDir)!;
        process.kill(pid, 'SIGKILL');
        killed.push(pid);
      },
    });
    expect(killed).toHaveLength(1);
    // The supervisor started another redis-server on the same socket and data.
    await until(() => {
      const pid = localRedisPid(dataDir);
      return pid !== undefined && pid !== killed[0] && isAlive(pid) ? true : undefined;
    }, 30_000);
    expect(refusals(sent), serve.output().slice(-3000)).toEqual([]);
    const after = await until(async () => {
      const res = await call<{ request_id: string }>(serve.url, 'POST', '/execute?wait=false', {
        code: 'print("run 60")',
        language: 'python',
      });
      return res.status === 202 ? res.body.request_id : undefined;
    }, 30_000);
    const accepted = [...sent.accepted, { id: after, i: 60 }];
    const last = await finals(
      () => serve.url,
      accepted.map((a) => a.id),
      150_000,
    );
    expect(outcomes(accepted, last)).toEqual(accepted.map(() => 'success'));
    process.stdout.write(
      `redis SIGKILL under load: ${sent.accepted.length} accepted, ${sent.refused.length} refused with 503\n`,
    );
    expect((await serve.stop()).code).toBe(0);
  }, 300_000);
});

describe.skipIf(!postgresAvailable())('PostgreSQL restarted under load', () => {
  let pg: TestPostgres | undefined;
  afterAll(() => pg?.stop());

  it('503s with Retry-After meanwhile, then recovery, nothing lost', async () => {
    pg = await startPostgres();
    const serve = await spawnWarden('serve', {
      dataDir: tempDir(),
      config: { ...config, store: { databaseUrl: pg.url } },
    });
    let refusedWhileDown = 0;
    const sent = await submit(() => serve.url, 60, {
      concurrency: 4,
      during: async (i, sofar) => {
        if (i === 20) await pg!.halt();
        if (i === 40) {
          refusedWhileDown = sofar.refused.length;
          await pg!.resume();
        }
      },
    });
    expect(refusals(sent), serve.output().slice(-3000)).toEqual([]);
    // Requests sent while it was down were refused, not accepted and lost.
    expect(refusedWhileDown).toBeGreaterThan(0);
    const last = await finals(
      () => serve.url,
      sent.accepted.map((a) => a.id),
      150_000,
    );
    expect(outcomes(sent.accepted, last)).toEqual(sent.accepted.map(() => 'success'));
    process.stdout.write(
      `PostgreSQL restart under load: ${sent.accepted.length} accepted, ${sent.refused.length} refused with 503\n`,
    );
    expect((await serve.stop()).code).toBe(0);
  }, 300_000);
});
