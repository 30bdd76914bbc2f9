import { Queue, QueueEvents } from 'bullmq';
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

/** What a job returns: whether it finished the execution (the API waits for that). */
export interface ExecutionJobResult {
  requestId: string;
  done: boolean;
}

export type WaitOutcome = { kind: 'done' } | { kind: 'ended' } | { kind: 'timeout' } | { kind: 'aborted' };

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
  /** Queues the execution's own job (id = request id; adding it while it exists is a no-op). */
  enqueue(requestId: string): Promise<void>;
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
   * Resolves when a job reports the execution finished, the time is up or `signal` aborts; never
   * rejects. `isDone` is asked once the listener is in place, for an execution that ended before.
   */
  waitForDone(
    requestId: string,
    timeoutMs: number,
    isDone: () => Promise<boolean>,
    signal?: AbortSignal,
  ): Promise<WaitOutcome>;
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
  const queue = new Queue<ExecutionJobData, ExecutionJobResult>(EXECUTION_QUEUE, {
    connection: connections.producer,
    prefix: options.prefix,
    defaultJobOptions: {
      removeOnComplete: { age: 60, count: 1000 },
      removeOnFail: { age: 3600, count: 1000 },
      // A processor that throws leaves the execution to recovery, which counts attempts in the store.
      attempts: 1,
    },
  });
  const events =
    options.listen === false
      ? undefined
      : new QueueEvents(EXECUTION_QUEUE, { connection: connections.consumer, prefix: options.prefix });
  const redis = redisClient(connections.producer);
  queue.on('error', (err) => options.onError?.(err, 'queue'));
  events?.on('error', (err) => options.onError?.(err, 'queue events'));
  redis.on('error', (err: Error) => options.onError?.(err, 'queue admission'));
  const ready = await withDeadline(
    Promise.all([queue.waitUntilReady(), events?.waitUntilReady(), redis.connect()]),
    10_000,
  );
  if (!ready) {
    connections.stop();
    redis.disconnect();
    await Promise.all([
      withDeadline(events?.close() ?? Promise.resolve(), 1000),
      withDeadline(queue.close(), 1000),
    ]);
    throw new QueueUnavailableError(`cannot reach Redis at ${redactUrl(options.redisUrl)}`);
  }

  // One listener per event kind, dispatching to the request waiting for that execution.
  const waiters = new Map<string, (outcome: WaitOutcome) => void>();
  events?.on('completed', ({ returnvalue }) => {
    const result = returnvalue as unknown as ExecutionJobResult | undefined;
    if (result?.done) waiters.get(result.requestId)?.({ kind: 'done' });
  });
  // A failed execution job: the store tells what became of it (recovery runs it again).
  events?.on('failed', ({ jobId }) => waiters.get(jobId)?.({ kind: 'ended' }));

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
    async enqueue(requestId) {
      await guard(() => queue.add('execution', { kind: 'execution', requestId }, { jobId: requestId }));
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
        let settled = false;
        const finish = (outcome: WaitOutcome) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          waiters.delete(requestId);
          signal?.removeEventListener('abort', onAbort);
          resolve(outcome);
        };
        const onAbort = () => finish({ kind: 'aborted' });
        const timer = setTimeout(() => finish({ kind: 'timeout' }), timeoutMs);
        waiters.set(requestId, finish);
        if (signal?.aborted) return onAbort();
        signal?.addEventListener('abort', onAbort);
        isDone().then(
          (done) => done && finish({ kind: 'done' }),
          () => {}, // the store is away: the events (or the timeout) still decide
        );
      });
    },
    async ping() {
      const started = performance.now();
      await counts();
      return performance.now() - started;
    },
    async close() {
      connections.stop();
      redis.disconnect();
      await withDeadline(events?.close() ?? Promise.resolve(), 5000);
      await withDeadline(queue.close(), 5000);
    },
  };
}
