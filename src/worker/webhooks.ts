import type { Job } from 'bullmq';
import { finalButWaiting, staleQueued } from '../store/webhooks.js';
import { attemptDelivery } from '../webhooks/deliver.js';
import type { HookNotifier } from '../webhooks/notify.js';
import { hookJobId, type HookMessage, type WebhookQueue } from '../webhooks/queue.js';
import { targetPolicy } from '../webhooks/target.js';
import type { Role, WorkerContext } from './role.js';

/**
 * Callback deliveries (README, "Webhooks"), in every worker process that finishes work: one POST
 * per BullMQ attempt; a failed one throws so that BullMQ retries it after its exponential backoff.
 * Recovery queues callbacks whose resource is final but whose delivery was never queued (the
 * finishing process stopped in between), and re-adds queued ones whose job Redis lost.
 */

class RetryLater extends Error {}

export function webhookRole(ctx: WorkerContext, queue: WebhookQueue, notifier: HookNotifier): Role {
  const { config, store, metrics, logger } = ctx;
  const db = store.db;
  const policy = targetPolicy(config.webhooks);
  return {
    name: 'webhooks',
    queue: queue.name,
    // An attempt is at most one request's timeout; a worker that dies mid-attempt hands it on.
    lockMs: config.webhooks.timeoutMs + 15_000,
    graceMs: config.webhooks.timeoutMs + 5_000,
    async process(job: Job<HookMessage>): Promise<void> {
      const { kind, resource_id: id } = job.data;
      const result = await attemptDelivery({ db, config: config.webhooks, policy }, kind, id);
      if (result === 'skipped') return; // ended already (a redelivered job)
      metrics.observeWebhook(result);
      if (result === 'retry') throw new RetryLater(`callback of ${kind} ${id} not delivered yet`);
      logger.info({ kind, resourceId: id, result }, 'callback ended');
    },
    async recover() {
      for (const hook of await finalButWaiting(db)) await notifier.finished(hook.kind, hook.resourceId);
      const before = new Date(Date.now() - Math.min(config.tasks.recoveryIntervalMs, 30_000)).toISOString();
      for (const hook of await staleQueued(db, before)) {
        const message = { kind: hook.kind, resource_id: hook.resourceId };
        if (await queue.ensure(hookJobId(hook.kind, hook.resourceId), message))
          logger.warn({ kind: hook.kind, resourceId: hook.resourceId }, 'queued again a lost callback');
      }
    },
  };
}
