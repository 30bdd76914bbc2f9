import { z } from 'zod';
import { HOOK_KINDS, HOOK_STATES } from '../../store/webhooks-migration.js';

/** GET/POST /webhooks/secret and GET /webhooks/deliveries (README, "Webhooks"). */

export const hookSecret = z.object({
  secret: z
    .string()
    .describe(
      'Signs every callback of this tenant: X-Warden-Signature is `sha256=` + hex HMAC-SHA256 under it over `<X-Warden-Timestamp>.<body>`.',
    ),
  created_at: z.string(),
  rotated_at: z.string().nullable().describe('When POST /webhooks/secret last replaced it.'),
});

export const deliveriesQuery = z.strictObject({
  resource: z
    .string()
    .min(1)
    .max(128)
    .optional()
    .describe('An execution request_id, task_id or job id; unset: your latest callbacks.'),
  limit: z.coerce.number().int().min(1).max(100).default(20),
});

export const hookDelivery = z.object({
  kind: z.enum(HOOK_KINDS),
  resource_id: z.string(),
  url: z.string(),
  status: z
    .enum(HOOK_STATES)
    .describe(
      'waiting: the resource is not final yet; queued: being delivered (or waiting for a retry); delivered: a 2xx came back; failed: every attempt failed, or the URL was refused at delivery.',
    ),
  attempts: z.array(
    z.object({
      attempt: z.number().int(),
      status_code: z
        .number()
        .int()
        .nullable()
        .describe('What the receiver answered; null when there was no answer (see error).'),
      error: z.string().nullable(),
      duration_ms: z.number().int(),
      at: z.string(),
    }),
  ),
  created_at: z.string(),
  finished_at: z.string().nullable(),
});

export const deliveryList = z.object({ deliveries: z.array(hookDelivery) });
