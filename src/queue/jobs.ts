import type { WardenConfig } from '../config/schema.js';
import { openJobQueue, type JobQueue } from './job-queue.js';

/** The queue between `POST /jobs` and the job workers (SPEC §7). The job itself is in the store. */

export interface JobMessage {
  job_id: string;
}

export type JobsQueue = JobQueue<JobMessage>;

export function openJobsQueue(
  config: Pick<WardenConfig, 'queue' | 'jobs'> & { queue: { redisUrl: string } },
  onError?: (err: Error, component: string) => void,
): Promise<JobsQueue> {
  return openJobQueue<JobMessage>({
    name: config.jobs.queue,
    redisUrl: config.queue.redisUrl,
    prefix: config.queue.prefix,
    attempts: config.jobs.maxAttempts,
    onError,
  });
}
