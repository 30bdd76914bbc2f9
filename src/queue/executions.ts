import { Job, Queue, QueueEvents } from 'bullmq';
import type { ExecutionRequest } from '../runner/execution.js';
import type { Verdict } from '../sandbox/types.js';
import { guard, QueueUnavailableError, redactUrl, redisConnections, withDeadline } from './connection.js';

export { QueueUnavailableError, redactUrl };

/** The queue between the API and the workers (SPEC §9: api → queue → worker). */
export const EXECUTION_QUEUE = 'warden-executions';

export interface ExecutionJobData {
  requestId: string;
  request: ExecutionRequest;
}

/**
 * What a job returns: only the verdict. The response itself (outputs up to the output limit per run)
 * is in the store, so Redis never holds outputs, neither in jobs nor in its event stream.
 */
export interface ExecutionJobResult {
  status: Verdict;
}

export type WaitOutcome =
  { kind: 'done' } | { kind: 'failed'; reason: string } | { kind: 'timeout' } | { kind: 'aborted' };

export interface ExecutionQueue {
  /** Executions waiting for a worker (not counting those running). */
  depth(): Promise<number>;
  counts(): Promise<Record<'waiting' | 'active' | 'delayed', number>>;
  enqueue(data: ExecutionJobData): Promise<void>;
  /** Resolves when the job ends, the time is up, or `signal` aborts; never rejects. */
  waitForResult(requestId: string, timeoutMs: number, signal?: AbortSignal): Promise<WaitOutcome>;
  /** Round trip to Redis in ms. */
  ping(): Promise<number>;
  /** Ids of executions still waiting for a worker. */
  waitingIds(): Promise<string[]>;
  close(): Promise<void>;
}

export interface QueueOptions {
  redisUrl: string;
  prefix: string;
  onError?: (err: Error, component: string) => void;
}

export async function openExecutionQueue(options: QueueOptions): Promise<ExecutionQueue> {
  const connections = redisConnections(options.redisUrl);
  const queue = new Queue<ExecutionJobData, ExecutionJobResult>(EXECUTION_QUEUE, {
    connection: connections.producer,
    prefix: options.prefix,
    defaultJobOptions: {
      // A job is only a messenger: the execution (request and response) lives in the store.
      removeOnComplete: { age: 60, count: 1000 },
      removeOnFail: { age: 3600, count: 1000 },
      attempts: 1,
    },
  });
  const events = new QueueEvents(EXECUTION_QUEUE, {
    connection: connections.consumer,
    prefix: options.prefix,
  });
  queue.on('error', (err) => options.onError?.(err, 'queue'));
  events.on('error', (err) => options.onError?.(err, 'queue events'));
  // QueueEvents must be listening before the first job is added, or a fast result could be missed.
  const ready = await withDeadline(Promise.all([queue.waitUntilReady(), events.waitUntilReady()]), 10_000);
  if (!ready) {
    connections.stop();
    await Promise.all([withDeadline(events.close(), 1000), withDeadline(queue.close(), 1000)]);
    throw new QueueUnavailableError(`cannot reach Redis at ${redactUrl(options.redisUrl)}`);
  }

  // One listener per event kind, dispatching to the request waiting for that job.
  const waiters = new Map<string, (outcome: WaitOutcome) => void>();
  events.on('completed', ({ jobId }) => waiters.get(jobId)?.({ kind: 'done' }));
  events.on('failed', ({ jobId, failedReason }) =>
    waiters.get(jobId)?.({ kind: 'failed', reason: failedReason }),
  );

  async function counts() {
    const c = await guard(() => queue.getJobCounts('wait', 'prioritized', 'delayed', 'active'));
    return { waiting: (c.wait ?? 0) + (c.prioritized ?? 0), active: c.active ?? 0, delayed: c.delayed ?? 0 };
  }

  return {
    async depth() {
      const c = await counts();
      return c.waiting + c.delayed;
    },
    counts,
    async enqueue(data) {
      await guard(() => queue.add('execute', data, { jobId: data.requestId }));
    },
    waitForResult(requestId, timeoutMs, signal) {
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
        // The job may have ended before the waiter was in place: look once, now.
        void (async () => {
          try {
            const job = await Job.fromId<ExecutionJobData, ExecutionJobResult>(queue, requestId);
            const state = await job?.getState();
            if (job && state === 'completed') finish({ kind: 'done' });
            else if (job && state === 'failed') finish({ kind: 'failed', reason: job.failedReason });
          } catch {
            // Redis hiccup: the events (or the timeout) still decide.
          }
        })();
      });
    },
    async ping() {
      const started = performance.now();
      await counts();
      return performance.now() - started;
    },
    async waitingIds() {
      const jobs = await guard(() => queue.getJobs(['wait', 'prioritized', 'delayed']));
      return jobs.flatMap((j) => (j?.id ? [j.id] : []));
    },
    async close() {
      connections.stop();
      await withDeadline(events.close(), 5000);
      await withDeadline(queue.close(), 5000);
    },
  };
}
