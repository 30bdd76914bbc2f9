import { z } from 'zod';
import { TENANT_RE } from '../store/api-keys.js';

/**
 * Who may use how much (SPEC §8): requests per window per API key, a tenant's share of each queue
 * (fair share: one tenant flooding a queue leaves places for the others) and ceilings on the limits
 * a tenant's requests may ask for. `tenants` overrides any of these for one tenant.
 */

/** Requests per window per API key (README: Limits and quotas). */
const rateSchema = z
  .object({
    /** Requests one API key may make per window; past it, 429 with Retry-After. */
    max: z.number().int().min(1).default(100),
    /** The window the count is kept for (fixed windows, counted in Redis across API nodes). */
    windowMs: z.number().int().min(100).max(3_600_000).default(1000),
  })
  .strict();

/** Ceilings on what a tenant's requests may ask (a request past one is a 400 naming its field). */
const tenantMaxLimitsSchema = z
  .object({
    /** Wall time of one run (executions' `limits.timeout`, jobs' `timeout`). */
    wallTimeMs: z.number().int().positive().optional(),
    /** Memory of one run (executions' `limits.memory_limit`, jobs' `resources.memory`). */
    memoryBytes: z.number().int().positive().optional(),
    /** Cores of one run (executions' `limits.cpu_limit`, jobs' `resources.cpu`). */
    cpus: z.number().positive().optional(),
  })
  .strict();

const tenantQuotaSchema = z
  .object({
    /** Its own rate; what it leaves out is quotas.rate's (no defaults here, unlike rateSchema). */
    rate: z
      .object({
        max: z.number().int().min(1).optional(),
        windowMs: z.number().int().min(100).max(3_600_000).optional(),
      })
      .strict()
      .optional(),
    /** Places this tenant may hold in each queue at once (instead of queuedShare of it). */
    maxQueued: z.number().int().min(0).optional(),
    /** Runs of this tenant going at once in each queue (instead of quotas.maxRunning). */
    maxRunning: z.number().int().min(1).optional(),
    maxLimits: tenantMaxLimitsSchema.optional(),
  })
  .strict();

export const quotasConfigSchema = z
  .object({
    rate: rateSchema.default(rateSchema.parse({})),
    /**
     * The part of each queue's places (server.maxQueueDepth) one tenant may hold at once, rounded up:
     * 0.8 leaves at least a fifth of every queue to the other tenants however hard one floods it.
     */
    queuedShare: z.number().gt(0).max(1).default(0.8),
    /**
     * Runs one tenant may have going at once on all workers together, in each queue: executions
     * (each single run or test case), jobs, tasks. More wait in the queue while workers take other
     * tenants' work. Unset: no limit beyond the workers' own concurrency.
     */
    maxRunning: z.number().int().min(1).optional(),
    /** Ceilings for every tenant (below sandbox.maxLimits, which still applies to all). */
    maxLimits: tenantMaxLimitsSchema.default({}),
    /**
     * Per-tenant overrides, by tenant name: `rate` (`max`, `windowMs`), `maxQueued` (places the
     * tenant may hold in each queue, instead of queuedShare), `maxRunning` and `maxLimits` (its own
     * ceilings).
     */
    tenants: z.record(z.string().regex(TENANT_RE, 'must be a tenant name'), tenantQuotaSchema).default({}),
  })
  .strict();

export type QuotasConfig = z.infer<typeof quotasConfigSchema>;

/** Whether any tenant has a limit on running executions (else workers need not look). */
export const limitsRunning = (quotas: QuotasConfig) =>
  quotas.maxRunning !== undefined || Object.values(quotas.tenants).some((t) => t.maxRunning !== undefined);

export interface TenantQuotas {
  rate: { max: number; windowMs: number };
  /** Places the tenant may hold in each queue. */
  maxQueued: number;
  /** Runs it may have going at once in each queue; undefined: no limit. */
  maxRunning: number | undefined;
  maxLimits: z.infer<typeof tenantMaxLimitsSchema>;
}

/** What applies to `tenant`: its overrides over the defaults, its queue places within maxQueueDepth. */
export function tenantQuotas(quotas: QuotasConfig, maxQueueDepth: number, tenant: string): TenantQuotas {
  const own = quotas.tenants[tenant];
  const share = Math.ceil(quotas.queuedShare * maxQueueDepth);
  return {
    rate: { max: own?.rate?.max ?? quotas.rate.max, windowMs: own?.rate?.windowMs ?? quotas.rate.windowMs },
    maxQueued: Math.min(own?.maxQueued ?? share, maxQueueDepth),
    maxRunning: own?.maxRunning ?? quotas.maxRunning,
    maxLimits: { ...quotas.maxLimits, ...own?.maxLimits },
  };
}
