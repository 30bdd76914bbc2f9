import { Job, Queue } from 'bullmq';
import { createAdmission, redisClient, type Admission } from './admission.js';
import { finishNotices, type FinishNotices } from './finish-notices.js';
import { createRunningSlots, type RunningSlots } from './running.js';
import { guard, QueueUnavailableError, redactUrl, redisConnections, withDeadline } from './connection.js';

/**
 * A BullMQ queue of messages keyed by the id of the row they are about (a validation, a task). The
 * row in the store is the truth; the job only says "work on this id", so adding it twice is harmless
 * (BullMQ keeps one job per id) and a job Redis lost can be added again from the row.
 */
export interface JobQueue<T> {
  readonly name: string;
  enqueue(id: string, data: T): Promise<void>;
  /**
   * Adds the job again unless one is alive (waiting, delayed or active). True when it was added: the
   * job had finished, failed for good, or was lost with Redis' memory.
   */
  ensure(id: string, data: T): Promise<boolean>;
  /** Jobs not yet taken by a worker. */
  depth(): Promise<number>;
  counts(): Promise<Record<'waiting' | 'active' | 'delayed', number>>;
  /** Places of work accepted and not yet taken by a worker (one atomic check-and-take). */
  readonly admission: Admission;
  /**
   * Recovery: frees the places admitted before `beforeMs` whose job is no longer waiting (taken by a
   * worker that died before releasing it, or refused after admission). How many were freed.
   */
  releaseStale(beforeMs: number): Promise<number>;
  /** Slots of this queue's work running per tenant (quotas.maxRunning), held by workers. */
  runningSlots(options: { staleMs: number; retryMs: number }): RunningSlots;
  /** Where a worker tells the requests waiting for its work that it ended (it sends, never receives). */
  readonly notices: Pick<FinishNotices, 'notify'>;
  close(): Promise<void>;
}

export interface JobQueueOptions {
  name: string;
  redisUrl: string;
  prefix: string;
  /** Tries per job when the processor throws (Warden's own failures). */
  attempts: number;
  /** Wait before the first retry (ms, default 500); each later one waits twice as long. */
  backoffMs?: number;
  onError?: (err: Error, component: string) => void;
}

const ALIVE = new Set(['waiting', 'prioritized', 'delayed', 'active', 'waiting-children']);
const WAITING = new Set(['waiting', 'prioritized', 'delayed']);

export async function openJobQueue<T>(options: JobQueueOptions): Promise<JobQueue<T>> {
  const connections = redisConnections(options.redisUrl);
  const queue = new Queue(options.name, {
    connection: connections.producer,
    prefix: options.prefix,
    defaultJobOptions: {
      attempts: options.attempts,
      backoff: { type: 'exponential', delay: options.backoffMs ?? 500 },
      removeOnComplete: { age: 3600, count: 1000 },
      removeOnFail: { age: 24 * 3600, count: 1000 },
    },
  });
  const redis = redisClient(connections.producer);
  queue.on('error', (err) => options.onError?.(err, `queue ${options.name}`));
  redis.on('error', (err: Error) => options.onError?.(err, `queue ${options.name} admission`));
  if (!(await withDeadline(Promise.all([queue.waitUntilReady(), redis.connect()]), 10_000))) {
    connections.stop();
    redis.disconnect();
    await withDeadline(queue.close(), 1000);
    throw new QueueUnavailableError(`cannot reach Redis at ${redactUrl(options.redisUrl)}`);
  }

  const jobName = options.name;
  const admission = createAdmission(async () => redis, `${options.prefix}:${options.name}:admitted`);
  async function counts() {
    const c = await guard(() => queue.getJobCounts('wait', 'prioritized', 'delayed', 'active'));
    return { waiting: (c.wait ?? 0) + (c.prioritized ?? 0), active: c.active ?? 0, delayed: c.delayed ?? 0 };
  }

  return {
    name: options.name,
    async enqueue(id, data) {
      await guard(() => queue.add(jobName, data, { jobId: id }));
    },
    async ensure(id, data) {
      return guard(async () => {
        const job = await Job.fromId(queue, id);
        if (job) {
          if (ALIVE.has(await job.getState())) return false;
          try {
            await job.remove();
          } catch {
            return false; // it came alive meanwhile (another worker retried it)
          }
        }
        await queue.add(jobName, data, { jobId: id });
        return true;
      });
    },
    async depth() {
      const c = await counts();
      return c.waiting + c.delayed;
    },
    counts,
    admission,
    notices: finishNotices({ prefix: options.prefix, publisher: redis }),
    runningSlots: (slots) =>
      createRunningSlots(async () => redis, `${options.prefix}:${options.name}`, slots),
    async releaseStale(beforeMs) {
      let freed = 0;
      for (const id of await admission.admittedBefore(beforeMs)) {
        if (WAITING.has(await guard(() => queue.getJobState(id)))) continue;
        await admission.release(id);
        freed++;
      }
      return freed;
    },
    async close() {
      connections.stop();
      redis.disconnect();
      await withDeadline(queue.close(), 5000);
    },
  };
}
