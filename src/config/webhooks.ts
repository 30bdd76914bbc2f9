import { z } from 'zod';
import { isAllowPrivateEntry } from '../jobs/proxy-policy.js';

/**
 * The `webhooks` section: `callback_url` deliveries (README, "Webhooks"). Retries are BullMQ's,
 * exponential: attempt n + 1 waits `backoffMs · 2^(n-1)` after attempt n failed.
 */
export const webhooksConfigSchema = z
  .object({
    /** BullMQ queue of deliveries waiting for a worker. */
    queue: z
      .string()
      .regex(/^[A-Za-z0-9_.-]+$/)
      .default('warden-webhooks'),
    /** Tries per callback (the first included) before it is recorded as failed. */
    attempts: z.number().int().min(1).max(30).default(8),
    /** Wait before the first retry; each later retry waits twice as long as the one before. */
    backoffMs: z.number().int().min(10).default(5_000),
    /** One attempt, from connecting to the response's status line. */
    timeoutMs: z.number().int().min(100).max(120_000).default(10_000),
    /** Response body bytes read (and thrown away) before the connection is closed. */
    maxResponseBytes: z
      .number()
      .int()
      .min(0)
      .default(64 * 1024),
    /**
     * true: callbacks may reach loopback, private and other non-public addresses (a trusted
     * network). IPv4 link-local (169.254/16, cloud metadata) and fd00:ec2::254 stay refused unless
     * listed in allowlist.
     */
    allowPrivate: z.boolean().default(false),
    /** CIDRs, addresses or host names (`*.suffix` too) callbacks may reach although not public. */
    allowlist: z
      .array(z.string().min(1).refine(isAllowPrivateEntry, 'a CIDR, an IP address or a host name'))
      .default([]),
  })
  .strict();

export type WebhooksConfig = z.infer<typeof webhooksConfigSchema>;
