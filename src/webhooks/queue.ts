import type { WardenConfig } from '../config/schema.js';
import { openJobQueue, type JobQueue } from '../queue/job-queue.js';
import type { HookKind } from '../store/webhooks.js';

/**
 * The queue of callback deliveries. A job names the callback (`<kind>_<id>`, so adding it twice is
 * one job); its attempts and exponential backoff are BullMQ's, configured by `webhooks.attempts`
 * and `webhooks.backoffMs`. Redis persists it, so a delivery waiting for its retry survives a restart.
 */
export interface HookMessage {
  kind: HookKind;
  resource_id: string;
}

export type WebhookQueue = JobQueue<HookMessage>;

export const hookJobId = (kind: HookKind, resourceId: string) => `${kind}_${resourceId}`;

export function openWebhookQueue(
  config: Pick<WardenConfig, 'queue' | 'webhooks'> & { queue: { redisUrl: string } },
  onError?: (err: Error, component: string) => void,
): Promise<WebhookQueue> {
  return openJobQueue<HookMessage>({
    name: config.webhooks.queue,
    redisUrl: config.queue.redisUrl,
    prefix: config.queue.prefix,
    attempts: config.webhooks.attempts,
    backoffMs: config.webhooks.backoffMs,
    onError,
  });
}
