import type { WardenConfig } from '../config/schema.js';
import { openJobQueue, type JobQueue } from './job-queue.js';

/** The queue between `POST /tasks/upload_file` and the validation workers (SPEC §6). */

export interface ValidationMessage {
  validation_id: string;
  /**
   * Where the API staged the upload, for logs. Workers read the file from their own configured staging
   * dir under the validation id, never from a path found in Redis.
   */
  staging_path: string;
  original_filename: string;
  user: string;
}

export type ValidationQueue = JobQueue<ValidationMessage>;

export function openValidationQueue(
  config: Pick<WardenConfig, 'queue' | 'tasks'> & { queue: { redisUrl: string } },
  onError?: (err: Error, component: string) => void,
): Promise<ValidationQueue> {
  return openJobQueue<ValidationMessage>({
    name: config.tasks.validationQueue,
    redisUrl: config.queue.redisUrl,
    prefix: config.queue.prefix,
    attempts: config.tasks.maxAttempts,
    onError,
  });
}
