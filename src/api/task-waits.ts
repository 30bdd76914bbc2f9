import { QueueEvents } from 'bullmq';
import type { Logger } from 'pino';
import { onEnd, type EndKind } from '../pipeline/index.js';
import { redisConnections, withDeadline } from '../queue/connection.js';

/**
 * Tells requests waiting for a task (`GET /tasks/{id}?wait=true`) that its job ended, instead of
 * their polling the store: a task worker's job completes only after the task's end is stored, and
 * BullMQ's event stream reaches every API process, whichever node ran it. The store stays the truth:
 * an event only makes the waiter ask it again (a job also ends when its tenant's slot deferred it).
 */
export interface TaskWaits {
  /**
   * Resolves once `isDone` says yes (asked now, and again whenever the task's job ends), the time
   * is up or `signal` aborts. Never rejects.
   */
  until(
    taskId: string,
    timeoutMs: number,
    isDone: () => Promise<boolean>,
    signal?: AbortSignal,
  ): Promise<void>;
  close(): Promise<void>;
}

export function openTaskWaits(
  options: { redisUrl: string; prefix: string; queueName: string; kind: EndKind },
  logger: Logger,
): TaskWaits {
  const connections = redisConnections(options.redisUrl);
  const events = new QueueEvents(options.queueName, {
    connection: connections.consumer,
    prefix: options.prefix,
  });
  // Redis away: waits end by their timeout and answer what the store says; the outage is logged elsewhere.
  events.on('error', (err) => logger.debug({ err: err.message, queue: options.queueName }, 'queue events'));
  const waiters = new Map<string, Set<() => void>>();
  const ended = ({ jobId }: { jobId: string }) => {
    for (const check of waiters.get(jobId) ?? []) check();
  };
  events.on('completed', ended);
  events.on('failed', ended);
  // Work this process's own workers stored: heard at once (see pipeline/ends.ts).
  const unsubscribe = onEnd(options.kind, (id) => ended({ jobId: id }));

  return {
    until(id, timeoutMs, isDone, signal) {
      return new Promise<void>((resolve) => {
        const set = waiters.get(id) ?? new Set<() => void>();
        waiters.set(id, set);
        let settled = false;
        const finish = () => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          set.delete(check);
          if (set.size === 0 && waiters.get(id) === set) waiters.delete(id);
          signal?.removeEventListener('abort', finish);
          resolve();
        };
        const check = () => {
          isDone().then(
            (done) => done && finish(),
            () => {}, // the store is away: a later event or the timeout decides
          );
        };
        const timer = setTimeout(finish, timeoutMs);
        set.add(check);
        if (signal?.aborted) return finish();
        signal?.addEventListener('abort', finish);
        // After the listener is in place: a task that ended before is seen here.
        check();
      });
    },
    async close() {
      unsubscribe();
      connections.stop();
      await withDeadline(events.close(), 5000);
    },
  };
}
