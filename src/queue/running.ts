import { DelayedError, type Job } from 'bullmq';
import type { AdmissionRedis } from './admission.js';
import { guard } from './connection.js';

/**
 * Concurrent runs per tenant (quotas.maxRunning): a worker takes a slot of the work's tenant before
 * running it, one sorted set per tenant (scored by when the slot was taken), check and add in one
 * script. A tenant at its limit does not block the worker: the job is put back, delayed by a moment,
 * and the worker takes other tenants' work meanwhile. A slot is given back when the run ends; one
 * whose worker died is dropped once older than `staleMs` (longer than any run may last), so a crash
 * never shrinks a tenant's limit for good.
 */

/** KEYS = the tenant's slots; ARGV = id, limit, now, stale before. 1: taken (or held already). */
const ACQUIRE = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[4])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 1 end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return 1`;

export interface RunningSlots {
  /**
   * Runs `work` holding a slot of `tenant` (limit `limit`, unlimited when undefined). When the tenant
   * has `limit` runs already, the job goes back to the queue for `retryMs` and this throws BullMQ's
   * DelayedError, which tells the worker the job is not finished.
   */
  run<T>(
    job: Job,
    token: string | undefined,
    tenant: string,
    limit: number | undefined,
    work: () => Promise<T>,
  ): Promise<T>;
  /** Slots `tenant` holds now. */
  held(tenant: string): Promise<number>;
}

export function createRunningSlots(
  redis: () => Promise<AdmissionRedis & { zrem(key: string, member: string): Promise<number> }>,
  prefix: string,
  options: { staleMs: number; retryMs: number },
): RunningSlots {
  const key = (tenant: string) => `${prefix}:running:t:${tenant}`;
  return {
    async run(job, token, tenant, limit, work) {
      if (limit === undefined) return work();
      const id = job.id ?? '';
      const now = Date.now();
      const taken = await guard(async () =>
        (await redis()).eval(
          ACQUIRE,
          1,
          key(tenant),
          id,
          String(limit),
          String(now),
          String(now - options.staleMs),
        ),
      );
      if (taken !== 1) {
        await job.moveToDelayed(now + options.retryMs, token);
        throw new DelayedError();
      }
      try {
        return await work();
      } finally {
        await guard(async () => (await redis()).zrem(key(tenant), id)).catch(() => {});
      }
    },
    held: (tenant) => guard(async () => (await redis()).zcard(key(tenant))),
  };
}
