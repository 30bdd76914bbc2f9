import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { createAdmission, redisClient, type Admission } from './admission.js';
import { finishNotices, type FinishNotices } from './finish-notices.js';
import { createRunningSlots, type RunningSlots } from './running.js';
import { guard, QueueUnavailableError, redactUrl, redisConnections, withDeadline } from './connection.js';

export { QueueUnavailableError, redactUrl };

/** The queue between the API and the workers (SPEC §9: api → queue → worker). */
export const EXECUTION_QUEUE = 'warden-executions';

/**
 * Jobs only name what to work on; the request, the claim and the outcomes are in the store, so Redis
 * never holds code or outputs. `execution`: take the request (analysis, then its single run, or its
 * split into cases). `case`: one test case of the execution's attempt `attempt`.
 */
export type ExecutionJobData =
  | { kind: 'execution'; requestId: string }
  | { kind: 'case'; requestId: string; attempt: number; index: number };

const ALIVE = new Set(['waiting', 'prioritized', 'delayed', 'active', 'waiting-children']);

/** Job id of one case of one attempt (BullMQ ids may not contain `:`). */
export const caseJobId = (requestId: string, attempt: number, index: number) =>
  `${requestId}_a${attempt}_c${index}`;

export interface ExecutionQueue {
  /** Places of executions accepted and not yet taken by a worker (one atomic check-and-take). */
  readonly admission: Admission;
  /** Slots of executions running per tenant (quotas.maxRunning), held by workers. */
  runningSlots(options: { staleMs: number; retryMs: number }): RunningSlots;
  counts(): Promise<Record<'waiting' | 'active' | 'delayed', number>>;
  /**
   * Queues each execution's own job (id = request id; adding one while it exists is a no-op), in one
   * round trip.
   */
  enqueue(requestIds: readonly string[]): Promise<void>;
  /**
   * One job per case, case i at priority i + 1: case 0 of a new request goes before case 5 of an
   * older one, so requests take turns; execution jobs (no priority) go before every case.
   */
  enqueueCases(requestId: string, attempt: number, indexes: number[]): Promise<void>;
  /** Whether any of these jobs is waiting, delayed or running. */
  anyAlive(jobIds: string[]): Promise<boolean>;
  /** Queues the execution's job again unless it is alive; true when it was added. */
  ensure(requestId: string): Promise<boolean>;
  /**
   * Ends of executions, tasks and validations, for the requests waiting on them: a worker's execution
   * is `done` (the response written) or `ended` (its job failed). Received only when `listen`.
   */
  readonly notices: FinishNotices;
  /** Round trip to Redis in ms. */
  ping(): Promise<number>;
  close(): Promise<void>;
}

export interface QueueOptions {
  redisUrl: string;
  prefix: string;
  /** Listen for finished work (the API, which answers waiting requests); workers do not. */
  listen?: boolean;
  onError?: (err: Error, component: string) => void;
}

export async function openExecutionQueue(options: QueueOptions): Promise<ExecutionQueue> {
  const connections = redisConnections(options.redisUrl);
  const queue = new Queue<ExecutionJobData>(EXECUTION_QUEUE, {
    connection: connections.producer,
    prefix: options.prefix,
    defaultJobOptions: {
      removeOnComplete: { age: 60, count: 1000 },
      removeOnFail: { age: 3600, count: 1000 },
      // A processor that throws leaves the execution to recovery, which counts attempts in the store.
      attempts: 1,
    },
  });
  // Finish notices: one pub/sub message per finished piece of work whose waiter is in another
  // process (BullMQ's event stream would wake every listener for each job's every step).
  const listening = options.listen !== false;
  const subscriber: Redis | undefined = listening ? redisClient(connections.consumer) : undefined;
  const redis = redisClient(connections.producer);
  const notices = finishNotices({ prefix: options.prefix, publisher: redis, subscriber });
  queue.on('error', (err) => options.onError?.(err, 'queue'));
  subscriber?.on('error', (err: Error) => options.onError?.(err, 'queue notices'));
  redis.on('error', (err: Error) => options.onError?.(err, 'queue admission'));
  const ready = await withDeadline(
    Promise.all([queue.waitUntilReady(), notices.ready, redis.connect()]),
    10_000,
  );
  if (!ready) {
    connections.stop();
    redis.disconnect();
    subscriber?.disconnect();
    await withDeadline(queue.close(), 1000);
    throw new QueueUnavailableError(`cannot reach Redis at ${redactUrl(options.redisUrl)}`);
  }

  async function counts() {
    const c = await guard(() => queue.getJobCounts('wait', 'prioritized', 'delayed', 'active'));
    return { waiting: (c.wait ?? 0) + (c.prioritized ?? 0), active: c.active ?? 0, delayed: c.delayed ?? 0 };
  }
  const alive = async (jobId: string) => ALIVE.has(await queue.getJobState(jobId));

  return {
    admission: createAdmission(async () => redis, `${options.prefix}:${EXECUTION_QUEUE}:admitted`),
    runningSlots: (slots) =>
      createRunningSlots(async () => redis, `${options.prefix}:${EXECUTION_QUEUE}`, slots),
    counts,
    async enqueue(requestIds) {
      const jobs = requestIds.map((requestId) => ({
        name: 'execution',
        data: { kind: 'execution' as const, requestId },
        opts: { jobId: requestId },
      }));
      const [one] = jobs;
      // A single job goes without addBulk's MULTI around it.
      if (jobs.length === 1) await guard(() => queue.add(one!.name, one!.data, one!.opts));
      else await guard(() => queue.addBulk(jobs));
    },
    async enqueueCases(requestId, attempt, indexes) {
      await guard(() =>
        queue.addBulk(
          indexes.map((index) => ({
            name: 'case',
            data: { kind: 'case' as const, requestId, attempt, index },
            opts: { jobId: caseJobId(requestId, attempt, index), priority: index + 1 },
          })),
        ),
      );
    },
    async anyAlive(jobIds) {
      return guard(async () => (await Promise.all(jobIds.map(alive))).some(Boolean));
    },
    async ensure(requestId) {
      return guard(async () => {
        const job = await queue.getJob(requestId);
        if (job) {
          if (ALIVE.has(await job.getState())) return false;
          try {
            await job.remove();
          } catch {
            return false; // it came alive meanwhile
          }
        }
        await queue.add('execution', { kind: 'execution', requestId }, { jobId: requestId });
        return true;
      });
    },
    notices,
    async ping() {
      const started = performance.now();
      await counts();
      return performance.now() - started;
    },
    async close() {
      connections.stop();
      redis.disconnect();
      subscriber?.disconnect();
      await withDeadline(queue.close(), 5000);
    },
  };
}
