import type { WardenConfig } from '../config/schema.js';
import { openJobQueue, type JobQueue } from './job-queue.js';

/** The queue between `POST /tasks` and the task workers (SPEC §6). The task itself is in the store. */

export interface TaskMessage {
  task_id: string;
  title: string;
  user: string;
}

export type TaskQueue = JobQueue<TaskMessage>;

export function openTaskQueue(
  config: Pick<WardenConfig, 'queue' | 'tasks'> & { queue: { redisUrl: string } },
  onError?: (err: Error, component: string) => void,
): Promise<TaskQueue> {
  return openJobQueue<TaskMessage>({
    name: config.tasks.taskQueue,
    redisUrl: config.queue.redisUrl,
    prefix: config.queue.prefix,
    attempts: config.tasks.maxAttempts,
    onError,
  });
}
