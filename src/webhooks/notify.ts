import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Database } from '../store/schema.js';
import { markQueued, type HookKind } from '../store/webhooks.js';
import { hookJobId, type WebhookQueue } from './queue.js';

/**
 * Called where a resource becomes final (each worker role's `finish`): a callback waiting for it is
 * queued for delivery. Idempotent, and it never fails its caller: a store or Redis failure here
 * leaves the callback to the webhook role's recovery pass, which finds final resources whose
 * callback still waits, and queued callbacks without a job.
 */
export interface HookNotifier {
  finished(kind: HookKind, resourceId: string): Promise<void>;
}

export function hookNotifier(db: Kysely<Database>, queue: WebhookQueue, logger: Logger): HookNotifier {
  return {
    async finished(kind, resourceId) {
      try {
        if (await markQueued(db, kind, resourceId))
          await queue.enqueue(hookJobId(kind, resourceId), { kind, resource_id: resourceId });
      } catch (err) {
        logger.warn(
          { kind, resourceId, err: (err as Error).message },
          'cannot queue a callback now; recovery will',
        );
      }
    },
  };
}
