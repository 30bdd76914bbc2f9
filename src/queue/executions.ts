import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { createAdmission, redisClient, type Admission } from './admission.js';
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

/**
 * How a wait ended. `done` carries the answer when the worker that wrote it runs in this process
 * (it is what the store now holds); otherwise the store is read.
 */
export type WaitOutcome =
  { kind: 'done'; response?: unknown } | { kind: 'ended' } | { kind: 'timeout' } | { kind: 'aborted' };

const ALIVE = new Set(['waiting', 'prioritized', 'delayed', 'active', 'waiting-children']);

/**
 * While waiting, the store is also asked this often: a finish notice published while the API's
 * subscriber was reconnecting is lost (pub/sub keeps nothing), the row is not.
 */
const STORE_CHECK_MS = 1000;

/**
 * Requests waiting in this process, by `<prefix>:<request id>`. A worker in the same process (the
 * default `warden serve`) hands the outcome over here directly: no Redis message, no store read.
 */
const localWaiters = new Map<string, (outcome: WaitOutcome) => void>();

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
   * Resolves when a worker reports the execution finished (or its job failed), the time is up or
   * `signal` aborts; never rejects. Call it before anything could finish the execution (right after
   * enqueueing it: a notice arriving before would be missed until the next store check). `isDone`
   * asks the store, every STORE_CHECK_MS, in case a notice was lost.
   */
  waitForDone(
    requestId: string,
    timeoutMs: number,
    isDone: () => Promise<boolean>,
    signal?: AbortSignal,
  ): Promise<WaitOutcome>;
  /**
   * A worker wrote the execution's answer (`done`, with the response written), or its execution job
   * failed (`ended`): the request waiting for it, in this process or another, is told.
   */
  notify(requestId: string, outcome: { kind: 'done'; response: unknown } | { kind: 'ended' }): Promise<void>;
  /** Round trip to Redis in ms. */
  ping(): Promise<number>;
  close(): Promise<void>;
}

export interface QueueOptions {
  redisUrl: string;
  prefix: string;
  /** Listen for finished executions (the API, which answers synchronous requests); workers do not. */
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
  // Finish notices: one pub/sub message per finished execution whose waiter is in another process
  // (BullMQ's event stream would wake every listener for each job's every step).
  const channel = `${options.prefix}:${EXECUTION_QUEUE}:finished`;
  const listening = options.listen !== false;
  const subscriber: Redis | undefined = listening ? redisClient(connections.consumer) : undefined;
  const redis = redisClient(connections.producer);
  queue.on('error', (err) => options.onError?.(err, 'queue'));
  subscriber?.on('error', (err: Error) => options.onError?.(err, 'queue notices'));
  redis.on('error', (err: Error) => options.onError?.(err, 'queue admission'));
  const ready = await withDeadline(
    Promise.all([
      queue.waitUntilReady(),
      subscriber?.connect().then(() => subscriber.subscribe(channel)),
      redis.connect(),
    ]),
    10_000,
  );
  if (!ready) {
    connections.stop();
    redis.disconnect();
    subscriber?.disconnect();
    await withDeadline(queue.close(), 1000);
    throw new QueueUnavailableError(`cannot reach Redis at ${redactUrl(options.redisUrl)}`);
  }

  const waiterKey = (requestId: string) => `${options.prefix}:${requestId}`;
  // Notices are `done:<id>` or `ended:<id>`; the waiter, if it is here, reads the store.
  subscriber?.on('message', (from: string, message: string) => {
    if (from !== channel) return;
    const at = message.indexOf(':');
    const kind = message.slice(0, at);
    if (kind === 'done' || kind === 'ended') localWaiters.get(waiterKey(message.slice(at + 1)))?.({ kind });
  });

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
    waitForDone(requestId, timeoutMs, isDone, signal) {
      return new Promise<WaitOutcome>((resolve) => {
        const key = waiterKey(requestId);
        let settled = false;
        const finish = (outcome: WaitOutcome) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          clearInterval(check);
          localWaiters.delete(key);
          signal?.removeEventListener('abort', onAbort);
          resolve(outcome);
        };
        const onAbort = () => finish({ kind: 'aborted' });
        const timer = setTimeout(() => finish({ kind: 'timeout' }), timeoutMs);
        const check = setInterval(() => {
          isDone().then(
            (done) => done && finish({ kind: 'done' }),
            () => {}, // the store is away: notices (or the timeout) still decide
          );
        }, STORE_CHECK_MS);
        localWaiters.set(key, finish);
        if (signal?.aborted) return onAbort();
        signal?.addEventListener('abort', onAbort);
      });
    },
    async notify(requestId, outcome) {
      const waiter = localWaiters.get(waiterKey(requestId));
      if (waiter) return waiter(outcome);
      // Only the process that took the request waits for it; if that one is not listening (or Redis
      // is away), its store check finds the answer.
      await redis.publish(channel, `${outcome.kind}:${requestId}`).catch(() => {});
    },
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
